"""Building the shared kNN graph (:func:`build_knn_graph`: exact for small collections or on a
GPU, otherwise a cell-blocked IVF search whose ``nprobe`` is read off the cells' ranks on a
sample; cached on disk by content) and growing it without a rebuild
(:func:`update_knn_graph`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .._arrays import check_k
from .._config import (
    EXACT_INDEX_MAX_ITEMS,
    GRAPH_RECALL_SAMPLE,
    GRAPH_TARGET_RECALL,
    KNN_K,
)
from .._files import load_cached, save_cached
from ._blocks import cell_blocked_search, exact_neighbors, pad_columns, rows_per_block, topk_rows
from ._faiss import default_nlist, gpu_available, to_gpu, train_cells
from .graph import KnnGraph
from .index import NeighborIndex
from .vectors import unit_rows, vectors_key

__all__ = ["build_knn_graph", "update_knn_graph"]

log = logging.getLogger(__name__)


def build_knn_graph(
    vectors: np.ndarray,
    *,
    k: int = KNN_K,
    method: str = "auto",
    exact_max_items: int = EXACT_INDEX_MAX_ITEMS,
    target_recall: float = GRAPH_TARGET_RECALL,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> KnnGraph:
    """Cosine kNN graph of ``vectors`` (N, D), self matches removed.

    Parameters
    ----------
    vectors : (N, D) float array, finite, N >= 2.
    k : neighbours per item; rows are padded with -1 when N - 1 < k.
    method : ``"auto"`` (exact up to ``exact_max_items`` items or on a GPU, IVF beyond),
        ``"exact"`` or ``"ivf"``. IVF groups items into ~sqrt(N) k-means cells and compares
        each cell's items with every item of the ``nprobe`` cells nearest to it, one matrix
        product per cell; ``nprobe`` doubles until recall on a sample of
        :data:`GRAPH_RECALL_SAMPLE` items reaches ``target_recall``.
    seed : k-means and sampling seed.
    cache_dir : when given, the graph is stored there as ``.npy`` files keyed by a hash of
        the vectors and the parameters, and read back instead of rebuilt.

    Memory stays bounded: no similarity block larger than :data:`NEIGHBOR_BLOCK_BYTES`.
    """
    k = check_k(k)
    x = unit_rows(vectors)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"a neighbour graph needs at least 2 items, got {n}")
    if method == "auto":
        method = "exact" if n <= exact_max_items or gpu_available() else "ivf"
    if method not in ("exact", "ivf"):
        raise ValueError(f"method must be 'auto', 'exact' or 'ivf', got {method!r}")
    name = None
    if cache_dir is not None:
        folder = Path(cache_dir)
        name = "knn-" + vectors_key(x, extra=(k, method, target_recall, seed))
        cached = load_cached(
            "kNN graph",
            [folder / f"{name}{part}" for part in ("-indices.npy", "-similarities.npy", ".json")],
            lambda: KnnGraph.load(folder, name, n=n, k=k),
        )
        if cached is not None:
            return cached
    k_eff = min(k, n - 1)
    if method == "exact":
        idx, sims = _exact_graph(x, k_eff)
        recall = 1.0
    else:
        idx, sims, recall = _ivf_graph(x, k_eff, target_recall=target_recall, seed=seed)
    idx, sims = pad_columns(idx, sims, k)
    graph = KnnGraph(indices=idx, similarities=sims, recall_estimate=recall)
    if name is not None:
        save_cached("kNN graph", Path(cache_dir) / f"{name}-indices.npy",
                     lambda: graph.save(cache_dir, name, durable=False))
    return graph


def _exact_graph(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    n = x.shape[0]
    index = to_gpu(faiss.IndexFlatIP(x.shape[1]))
    index.add(x)
    idx = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    step = rows_per_block(n)
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        s, i = index.search(x[rows], k + 1)
        idx[rows], sims[rows] = _drop_self(i.astype(np.int64), s, rows, k)
    return idx, sims


def _drop_self(idx, sims, rows, k):
    # Drop each point itself (usually column 0, but ties with duplicates can reorder).
    self_mask = idx == rows[:, None]
    no_self = ~self_mask.any(axis=1)
    self_mask[no_self, -1] = True
    keep = ~self_mask
    return idx[keep].reshape(-1, k), sims[keep].reshape(-1, k).astype(np.float32)


def _ivf_graph(
    x: np.ndarray, k: int, *, target_recall: float, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    import faiss

    n, d = x.shape
    nlist = default_nlist(n)
    centroids = train_cells(x, nlist, seed=seed)
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(centroids)
    _, assign = quantizer.search(x, 1)
    assign = assign.ravel()
    order = np.argsort(assign, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(assign, minlength=nlist))]
    _, near = quantizer.search(centroids, nlist)  # every cell's cells, nearest first

    # Choose nprobe on a sample before the one full pass. An item's answer is the exact
    # top-k among its candidates, so a true neighbour is found exactly when its cell is
    # among the nprobe cells scanned for the item's cell: the sample's recall at every
    # nprobe follows from the cells' ranks, with no search. The smallest nprobe whose
    # recall clears the target by two standard errors is used.
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(GRAPH_RECALL_SAMPLE, n), replace=False))
    exact, _ = exact_neighbors(x, sample, k)
    rank = np.empty((nlist, nlist), np.int64)
    rank[np.arange(nlist)[:, None], near] = np.arange(nlist)[None, :]
    valid = exact >= 0
    ranks = rank[assign[sample][:, None], assign[np.where(valid, exact, 0)]][valid]
    found = np.bincount(ranks, minlength=nlist).cumsum() / max(ranks.size, 1)
    margin = 2 * np.sqrt(np.maximum(found * (1 - found), 1e-4) / max(ranks.size, 1))
    ok = np.flatnonzero(found - margin >= target_recall)
    nprobe = int(ok[0]) + 1 if ok.size else nlist
    recall = float(found[nprobe - 1])
    log.info("kNN graph: nlist=%d nprobe=%d sample recall@%d=%.4f", nlist, nprobe, k, recall)
    idx, sims = cell_blocked_search(x, k, near[:, :nprobe], order, starts)
    return idx, sims, recall


def update_knn_graph(
    graph: KnnGraph, index: NeighborIndex, new_vectors: np.ndarray
) -> KnnGraph:
    """Add ``new_vectors`` (M, D) to ``index`` and return the graph over all N + M items.

    ``index`` must hold exactly the graph's N items. New rows come from searching the
    updated index; an old row changes only where a new item beats its current k-th
    neighbour (found exactly, old items against the M new ones). With an exact index the
    result equals :func:`build_knn_graph` on all vectors.
    """
    if index.n != graph.n:
        raise ValueError(
            f"the index holds {index.n} items but the graph {graph.n}; pass the index the "
            "graph was built from"
        )
    new = unit_rows(new_vectors, name="new vectors", dim=index.dim)
    k, n_old, m = graph.k, graph.n, new.shape[0]
    positions = index.add(new)

    # New rows: search the whole updated index, the item itself left out.
    new_idx, new_sims = index.search(new, k, exclude=positions[:, None])

    # Old rows: exact top-min(k, M) among the new items, merged with the current row.
    k_new = min(k, m)
    cand_idx = np.empty((n_old, k_new), np.int64)
    cand_sims = np.empty((n_old, k_new), np.float32)
    step = rows_per_block(m)
    for start in range(0, n_old, step):
        stop = min(n_old, start + step)
        s = index.vectors_range(start, stop) @ new.T
        cand_idx[start:stop], cand_sims[start:stop] = topk_rows(s, positions, k_new)
    old_sims = np.where(graph.indices >= 0, graph.similarities, -np.inf)
    merged_i = np.hstack([graph.indices, cand_idx])
    merged_s = np.hstack([old_sims, cand_sims])
    order = np.argsort(-merged_s, axis=1, kind="stable")[:, :k]
    old_idx = np.take_along_axis(merged_i, order, axis=1)
    old_s = np.take_along_axis(merged_s, order, axis=1)
    old_idx[~np.isfinite(old_s)] = -1
    old_s[~np.isfinite(old_s)] = 0.0
    return KnnGraph(
        indices=np.vstack([old_idx, new_idx]),
        similarities=np.vstack([old_s.astype(np.float32), new_sims]),
        recall_estimate=graph.recall_estimate,
    )

