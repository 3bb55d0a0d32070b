"""The graph's heavy passes on a GPU through torch: the exact graph, and the IVF build's cell
assignment, recall sample and cell pass (``build_knn_graph(..., device="cuda")``).

FAISS from PyPI (``faiss-cpu``) has no GPU code, while torch, which the embedding models
need anyway, usually has CUDA where there is a GPU: so the GPU build goes through torch and
needs nothing more. (A FAISS built with CUDA keeps its own exact GPU path, see
:func:`~._faiss.to_gpu`.)

How. The unit vectors go to the device once, in float16 (2 bytes a value: 10 GB at 10M ×
512) and, when both fit in its free memory, also in float32. Every search ranks candidates by
a float16 product on the tensor cores (float32 accumulation), keeps the
:data:`GRAPH_GPU_RESCORE_EXTRA` best beyond ``k``, and computes their similarities again in
float32 from the float32 copy: the k returned, their order and their similarities are then
those of float32 vectors whenever the true k are among the float16 top ``k + extra``
(float16 rounding moves a similarity of unit 512-d vectors by ~1e-3). Without room for the
float32 copy the similarities are the float16 ranking's. Every product is cut into blocks of
at most :data:`GRAPH_GPU_BLOCK_BYTES`.

The graph is the CPU build's up to ties and float rounding, not bit for bit (a different
order of summation), so its recall is checked on a sample the same way; a graph built
either way is read back from the same cache entry by the other.

The code runs on any torch device; the tests run it on the CPU (``device="cpu"`` here means
torch on the CPU; ``build_knn_graph(device="cpu")`` uses FAISS instead).
"""

from __future__ import annotations

import numpy as np

from .._config import GRAPH_GPU_BLOCK_BYTES, GRAPH_GPU_RESCORE_EXTRA

__all__ = ["TorchVectors", "cuda_device", "fits_on"]

#: Device memory left free beside the vectors, for the blocks of products and their top-k.
_WORK_BYTES = 3 * GRAPH_GPU_BLOCK_BYTES


def cuda_device(device: str | None) -> str | None:
    """The torch CUDA device the graph is built on: ``device`` when it names one (ValueError
    when torch sees no such GPU), None for ``"cpu"``; for None, ``"cuda"`` when torch is
    installed and sees a GPU, else None."""
    if device is None:
        try:
            import torch
        except ImportError:
            return None
        return "cuda" if torch.cuda.is_available() else None
    if str(device) == "cpu":
        return None
    if not str(device).split(":")[0] == "cuda":
        raise ValueError(f"device must be None, 'cpu' or 'cuda[:N]', got {device!r}")
    from .._device import best_device

    return best_device(str(device))  # raises, saying what to install, without CUDA


def fits_on(device: str, n: int, dim: int) -> bool:
    """True when ``n`` × ``dim`` vectors in float16 and the search's blocks fit in the free
    memory of the CUDA ``device``."""
    import torch

    return n * dim * 2 + _WORK_BYTES <= torch.cuda.mem_get_info(torch.device(device))[0]


class TorchVectors:
    """Unit rows ``x`` (N, D) on a torch ``device`` for the graph's searches (see the module)."""

    def __init__(self, x: np.ndarray, device: str):
        import torch

        self._torch = torch
        self.device = torch.device(device)
        n, d = x.shape
        half, full = n * d * 2, n * d * 4
        free = self._free_bytes()
        if free is not None and half + _WORK_BYTES > free:
            raise MemoryError(
                f"the {n:,} × {d} vectors need {(half + _WORK_BYTES) / 2**30:.1f} GiB on "
                f"{self.device} and {free / 2**30:.1f} GiB are free; build the graph on the "
                "CPU with device='cpu'"
            )
        keep_full = free is None or half + full + _WORK_BYTES <= free
        self.x16 = torch.empty((n, d), dtype=torch.float16, device=self.device)
        self.x32 = torch.empty((n, d), dtype=torch.float32, device=self.device) if keep_full \
            else None
        step = max(1, (256 * 2**20) // max(4 * d, 1))
        for a in range(0, n, step):
            part = torch.from_numpy(np.ascontiguousarray(x[a : a + step])).to(self.device)
            self.x16[a : a + step] = part
            if self.x32 is not None:
                self.x32[a : a + step] = part
        self.n, self.dim = n, d

    @property
    def exact(self) -> bool:
        """True when similarities are float32 ones (the float32 copy fits on the device)."""
        return self.x32 is not None

    def _free_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        return int(self._torch.cuda.mem_get_info(self.device)[0])

    def _ids(self, a: np.ndarray):
        return self._torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(self.device)

    def top_k(self, rows, k: int, cand=None, self_col=None):
        """(ids (M, k), sims (M, k)) torch tensors: the top-``k`` of the items ``rows`` (M,)
        among the items ``cand`` (C,) (None: all N), each row leaving out its column
        ``self_col`` (M,) of the candidates (the item itself; -1: none). Needs
        ``k < C``."""
        torch = self._torch
        n_cand = self.n if cand is None else int(cand.shape[0])
        base = self.x16 if cand is None else self.x16[cand]
        kk = min(k + GRAPH_GPU_RESCORE_EXTRA, n_cand - 1 if self_col is not None else n_cand)
        m = int(rows.shape[0])
        ids = torch.empty((m, k), dtype=torch.int64, device=self.device)
        sims = torch.empty((m, k), dtype=torch.float32, device=self.device)
        step = max(1, GRAPH_GPU_BLOCK_BYTES // (2 * max(n_cand, 1)))
        for a in range(0, m, step):
            r = rows[a : a + step]
            s = self.x16[r] @ base.T  # (B, C) float16, accumulated in float32
            if self_col is not None:
                sc = self_col[a : a + step]
                own = torch.nonzero(sc >= 0).squeeze(1)
                s[own, sc[own]] = -torch.inf
            top_s, top_j = torch.topk(s, kk, dim=1)
            del s
            found = top_j if cand is None else cand[top_j]
            if self.x32 is not None:
                # float32 similarities of the float16 shortlist, then its top k by those
                exact = torch.bmm(self.x32[found], self.x32[r].unsqueeze(2)).squeeze(2)
                exact[torch.isinf(top_s)] = -torch.inf
            else:
                exact = top_s.float()
            best_s, best_j = torch.topk(exact, k, dim=1)
            ids[a : a + step] = torch.gather(found, 1, best_j)
            sims[a : a + step] = best_s
        return ids, sims

    def exact_graph(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N, k), sims (N, k)): every item's top-``k`` among all items, self excluded."""
        rows = self._torch.arange(self.n, device=self.device)
        ids, sims = self.top_k(rows, k, self_col=rows)
        return ids.cpu().numpy(), sims.cpu().numpy()

    def exact_rows(self, rows: np.ndarray, k: int) -> np.ndarray:
        """(len(rows), k) ids of the top-``k`` of ``rows`` among all items, self excluded:
        the recall sample (exact when :attr:`exact`)."""
        r = self._ids(rows)
        return self.top_k(r, k, self_col=r)[0].cpu().numpy()

    def nearest(self, centroids: np.ndarray) -> np.ndarray:
        """(N,) int64: each item's nearest of the unit ``centroids`` (C, D) by inner product
        (float16 product; a near tie may go either way, which only moves an item between
        two equally near cells)."""
        torch = self._torch
        c = torch.from_numpy(np.ascontiguousarray(centroids, dtype=np.float32)).to(
            self.device, torch.float16)
        out = torch.empty(self.n, dtype=torch.int64, device=self.device)
        step = max(1, GRAPH_GPU_BLOCK_BYTES // (2 * max(c.shape[0], 1)))
        for a in range(0, self.n, step):
            out[a : a + step] = torch.argmax(self.x16[a : a + step] @ c.T, dim=1)
        return out.cpu().numpy()

    def cell_search(self, k: int, near: np.ndarray, order: np.ndarray,
                    starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The IVF cell pass (as :func:`~._blocks.cell_blocked_search`): each cell's items
        against the items of its own cell and of the cells ``near[c]``, self excluded."""
        torch = self._torch
        idx = torch.full((self.n, k), -1, dtype=torch.int64, device=self.device)
        sims = torch.zeros((self.n, k), dtype=torch.float32, device=self.device)
        for c in range(near.shape[0]):
            if starts[c + 1] == starts[c]:
                continue
            cells = [c, *(int(j) for j in near[c] if j >= 0 and j != c)]
            cand = np.concatenate([order[starts[j] : starts[j + 1]] for j in cells])
            m = int(starts[c + 1] - starts[c])
            if cand.size <= k:  # tiny neighbourhood of cells: compare with everything
                members = self._ids(order[starts[c] : starts[c + 1]])
                found, s = self.top_k(members, k, self_col=members)
            else:
                cand_t = self._ids(cand)
                members = cand_t[:m]  # the cell's own items come first
                found, s = self.top_k(members, k, cand=cand_t,
                                      self_col=torch.arange(m, device=self.device))
            idx[members], sims[members] = found, s
        return idx.cpu().numpy(), sims.cpu().numpy()

    def release(self) -> None:
        """Give the device memory back (the vectors and the allocator's cache)."""
        self.x16 = self.x32 = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
