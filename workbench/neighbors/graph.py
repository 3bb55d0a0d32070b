"""The kNN graph that everything shares (:class:`KnnGraph`: arrays, sparse and UMAP forms,
checked save and load) and what is read off it: :func:`near_duplicates`,
:func:`outlier_scores`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._config import NEAR_DUPLICATE_SIMILARITY
from .._files import DamagedFile, load_npy, read_meta, save_npy, write_meta
from .vectors import CACHE_VERSION

__all__ = ["KnnGraph", "near_duplicates", "outlier_scores"]


@dataclass(frozen=True)
class KnnGraph:
    """k nearest neighbours of every item, self excluded.

    Attributes
    ----------
    indices : (N, k) int64 neighbour positions, nearest first; -1 where fewer exist.
    similarities : (N, k) float32 cosine similarities, aligned with ``indices``.
    recall_estimate : share of the true k neighbours found, measured on a sample against
        exact search (1.0 for exact graphs; None when unknown).
    """

    indices: np.ndarray
    similarities: np.ndarray
    recall_estimate: float | None = field(default=None, compare=False)

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def to_csr(self, *, symmetric: bool = True):
        """Sparse (N, N) affinity matrix (``scipy.sparse.csr_matrix``, float32).

        Weights are the similarities clipped at 0; with ``symmetric`` the matrix is
        ``max(W, W.T)`` so that every edge goes both ways. Built straight from the arrays:
        each row of ``W`` is one row of ``indices``, so the row pointers are known up front.
        """
        import scipy.sparse as sp

        n, k = self.indices.shape
        cols = self.indices.reshape(-1)
        if cols.size and (cols.min() < -1 or cols.max() >= n):
            # scipy does not check column indices: an out-of-range one crashes the process.
            raise ValueError(
                f"the graph names neighbour positions outside -1..{n - 1}; rebuild it "
                "with build_knn_graph"
            )
        vals = np.maximum(self.similarities.reshape(-1), 0.0).astype(np.float32, copy=False)
        ok = cols >= 0
        if ok.all():
            indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        else:
            indptr = np.zeros(n + 1, np.int64)
            np.cumsum(ok.reshape(n, k).sum(axis=1), out=indptr[1:])
            cols, vals = cols[ok], vals[ok]
        index_dtype = np.int32 if n * k < np.iinfo(np.int32).max else np.int64
        w = sp.csr_matrix(
            (vals, cols.astype(index_dtype), indptr.astype(index_dtype)), shape=(n, n)
        )
        w.sum_duplicates()
        if symmetric:
            w = w.maximum(w.T.tocsr()).tocsr()
        return w

    def umap_knn(self) -> tuple[np.ndarray, np.ndarray]:
        """``(knn_indices, knn_dists)`` for umap-learn's ``precomputed_knn``.

        UMAP expects each point as its own first neighbour at distance 0, and cosine
        distances ``1 - similarity``.
        """
        n = self.n
        idx = np.hstack([np.arange(n, dtype=np.int64)[:, None], self.indices])
        dist = np.hstack(
            [np.zeros((n, 1), np.float32), np.clip(1.0 - self.similarities, 0.0, 2.0)]
        ).astype(np.float32)
        return idx, dist

    def save(
        self, folder: str | os.PathLike[str], name: str = "knn", *, durable: bool = True
    ) -> None:
        """Write ``{name}-indices.npy``, ``{name}-similarities.npy`` and ``{name}.json``
        into ``folder``.

        The JSON (shape, recall estimate, SHA-256 of both arrays, a checksum of itself) is
        written last: it marks a complete entry, and :meth:`load` trusts nothing it does not
        vouch for.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sums = {
            part: save_npy(folder / f"{name}-{part}.npy", arr, durable=durable)
            for part, arr in (("indices", self.indices), ("similarities", self.similarities))
        }
        recall = None if self.recall_estimate is None else float(self.recall_estimate)
        write_meta(
            folder / f"{name}.json",
            {"version": CACHE_VERSION, "n": self.n, "k": self.k, "recall_estimate": recall,
             "sha256": sums},
            durable=durable,
        )

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        name: str = "knn",
        *,
        n: int | None = None,
        k: int | None = None,
    ) -> KnnGraph:
        """Read a graph written by :meth:`save`, checking everything before use.

        Checks the checksums, dtypes (int64 / float32), shape (``(n, k)`` when given),
        neighbour positions (``-1 <= i < N``, never the item itself) and similarities
        (finite, within [-1, 1]). Raises ``ValueError`` naming the file when anything is
        off: a damaged graph would otherwise crash or silently mislead what reads it.
        """
        folder = Path(folder)
        meta_file = folder / f"{name}.json"
        try:
            meta = read_meta(meta_file)
            if meta.get("version") != CACHE_VERSION:
                raise DamagedFile(f"{meta_file.name}: written by another version")
            rows, cols = int(meta["n"]), int(meta["k"])
            if (n is not None and rows != n) or (k is not None and cols != k):
                raise DamagedFile(f"{meta_file.name}: a graph of shape ({rows}, {cols})")
            sums = meta["sha256"]
            idx = load_npy(folder / f"{name}-indices.npy", sha256=sums["indices"],
                           dtype=np.int64, shape=(rows, cols))
            sims = load_npy(folder / f"{name}-similarities.npy", sha256=sums["similarities"],
                            dtype=np.float32, shape=(rows, cols))
            recall = meta.get("recall_estimate")
            if recall is not None and not 0.0 <= float(recall) <= 1.0:
                raise DamagedFile(f"{meta_file.name}: recall estimate {recall}")
            _check_graph_arrays(idx, sims)
        except (DamagedFile, KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"the kNN graph files {name}-* in {str(folder)!r} are damaged or incomplete "
                f"({e}); they are a cache, safe to delete: the graph is rebuilt from the vectors"
            ) from e
        return cls(idx, sims, recall_estimate=recall)


def _check_graph_arrays(idx: np.ndarray, sims: np.ndarray) -> None:
    """Raise DamagedFile unless ``idx`` / ``sims`` form a valid graph (see KnnGraph.load)."""
    n = idx.shape[0]
    if idx.size and (idx.min() < -1 or idx.max() >= n):
        raise DamagedFile(f"neighbour positions outside -1..{n - 1}")
    if (idx == np.arange(n)[:, None]).any():
        raise DamagedFile("an item listed as its own neighbour")
    if not np.isfinite(sims).all() or np.abs(sims).max(initial=0.0) > 1.0 + 1e-3:
        raise DamagedFile("similarities that are not cosines")


# -- read off the graph ----------------------------------------------------------------------


def near_duplicates(
    graph: KnnGraph, *, threshold: float = NEAR_DUPLICATE_SIMILARITY
) -> list[np.ndarray]:
    """Groups of near-duplicate items: connected components of graph edges with cosine
    similarity >= ``threshold``.

    Returns
    -------
    list of (G,) int64 position arrays, G >= 2, largest group first. Only pairs within
    each other's k neighbours are found, which suffices unless a group has more than k
    members (then it is still found, through chains).
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    n, k = graph.indices.shape
    rows = np.repeat(np.arange(n), k)
    cols = graph.indices.ravel()
    ok = (cols >= 0) & (graph.similarities.ravel() >= threshold)
    adj = sp.csr_matrix((np.ones(ok.sum(), np.int8), (rows[ok], cols[ok])), shape=(n, n))
    _, comp = connected_components(adj, directed=True, connection="weak")
    sizes = np.bincount(comp)
    groups = [np.flatnonzero(comp == c) for c in np.flatnonzero(sizes >= 2)]
    groups.sort(key=lambda g: (-g.size, g[0]))
    return [g.astype(np.int64) for g in groups]


def outlier_scores(graph: KnnGraph) -> np.ndarray:
    """(N,) float32: 1 - cosine similarity to each item's k-th (last found) neighbour.

    Higher is more isolated; items with no neighbour at all score 2 (the maximum).
    """
    valid = graph.indices >= 0
    counts = valid.sum(axis=1)
    last = np.clip(counts - 1, 0, None)
    sim = graph.similarities[np.arange(graph.n), last]
    scores = (1.0 - sim).astype(np.float32)
    scores[counts == 0] = 2.0
    return scores
