"""FAISS plumbing shared by the index and the graph: the GPU check and clone, and the
k-means cells of IVF search."""

from __future__ import annotations

import numpy as np

__all__ = ["assign_cells", "default_nlist", "gpu_available", "to_gpu", "train_cells"]


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


def assign_cells(
    x: np.ndarray, centroids: np.ndarray, *, max_ratio: float, seed: int, nearest=None
) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (C, D), cell of each item (N,)): nearest centroid, big cells split.

    k-means cells on real embeddings are uneven (16 to 2,000 items for a mean of 300 at
    100k), and a cell's cost in the graph is its size times its candidates', so the big
    cells dominate. A cell over ``max_ratio`` times the mean size is split by a k-means of
    its own items into pieces of about the mean size. ``nearest(centroids)`` gives the
    first assignment when given (the GPU build's), else FAISS here.
    """
    import faiss

    d = x.shape[1]
    if nearest is not None:
        assign = np.asarray(nearest(centroids), np.int64)
    else:
        _, assign = faiss.knn(x, centroids, 1, metric=faiss.METRIC_INNER_PRODUCT)
        assign = assign.ravel().astype(np.int64)
    sizes = np.bincount(assign, minlength=len(centroids))
    mean = x.shape[0] / len(centroids)
    parts = [centroids.copy()]
    next_id = len(centroids)
    for c in np.flatnonzero(sizes > max_ratio * mean):
        members = np.flatnonzero(assign == c)
        pieces = int(np.ceil(sizes[c] / mean))
        km = faiss.Kmeans(d, pieces, niter=10, spherical=True, seed=seed + int(c),
                          min_points_per_centroid=1, max_points_per_centroid=256)
        km.train(x[members])
        _, sub = faiss.knn(x[members], km.centroids, 1, metric=faiss.METRIC_INNER_PRODUCT)
        sub = sub.ravel()
        # Piece 0 keeps the cell's number; the others are new cells at the end.
        assign[members[sub > 0]] = next_id + sub[sub > 0] - 1
        centroids_c = np.ascontiguousarray(km.centroids, dtype=np.float32)
        parts[0][c] = centroids_c[0]
        parts.append(centroids_c[1:])
        next_id += pieces - 1
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32), assign
