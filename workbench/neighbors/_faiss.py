"""FAISS plumbing shared by the index and the graph: the GPU check and clone, and the
k-means cells of IVF search."""

from __future__ import annotations

import numpy as np

__all__ = ["default_nlist", "gpu_available", "to_gpu", "train_cells"]


def gpu_available() -> bool:
    """True when the installed FAISS was built with CUDA and sees a GPU."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


_GPU_RESOURCES = None


def to_gpu(index):
    """GPU clone of a CPU index when FAISS sees a GPU, else the index itself."""
    global _GPU_RESOURCES
    if not gpu_available():
        return index
    import faiss

    if _GPU_RESOURCES is None:
        _GPU_RESOURCES = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(_GPU_RESOURCES, 0, index)


def train_cells(x: np.ndarray, nlist: int, *, seed: int) -> np.ndarray:
    """Spherical k-means centroids (nlist, D) float32 on at most 64 points per cell."""
    import faiss

    km = faiss.Kmeans(
        x.shape[1], nlist, niter=10, spherical=True, seed=seed, max_points_per_centroid=64
    )
    km.train(x)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def default_nlist(n: int) -> int:
    """Cells for an IVF search over ``n`` items."""
    # ~sqrt(N) cells balances the cost of choosing cells against the cost of scanning them.
    return int(max(16, min(n // 32, round(np.sqrt(n)))))
