"""Building the shared kNN graph (:func:`build_knn_graph`: exact for small collections or on a
GPU, otherwise a cell-blocked IVF search over balanced cells, threaded, as Ray tasks or on a
GPU through torch, whose ``nprobe`` is read off the cells' ranks on a sample; cached on disk
by content) and growing it without a rebuild (:func:`update_knn_graph`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .._arrays import check_k
from .._config import (
    EXACT_INDEX_MAX_ITEMS,
    GRAPH_CELL_MAX_RATIO,
    GRAPH_CELL_PASS_RECALL,
    GRAPH_GPU_EXACT_MAX_ITEMS,
    GRAPH_RECALL_SAMPLE,
    GRAPH_REFINE_REVERSE,
    GRAPH_REFINE_ROUNDS,
    GRAPH_TARGET_RECALL,
    KNN_K,
)
from .._files import load_cached, save_cached
from .._ray import check_engine, connect
from ._blocks import (
    cell_blocked_search,
    drop_self,
    exact_sample,
    pad_columns,
    rows_per_block,
    topk_rows,
)
from ._faiss import assign_cells, default_nlist, gpu_available, to_gpu, train_cells
from ._ray import RayCellSearch
from ._refine import refine_graph
from ._torch import TorchVectors, cuda_device, fits_on
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
    threads: int | None = None,
    engine: str = "local",
    address: str | None = None,
    device: str | None = None,
) -> KnnGraph:
    """Cosine kNN graph of ``vectors`` (N, D), self matches removed.

    Parameters
    ----------
    vectors : (N, D) float array, finite, N >= 2.
    k : neighbours per item; rows are padded with -1 when N - 1 < k.
    method : ``"auto"`` (exact up to ``exact_max_items`` items, or on a GPU up to
        :data:`GRAPH_GPU_EXACT_MAX_ITEMS`; IVF beyond), ``"exact"`` or ``"ivf"``. IVF
        groups items into ~sqrt(N) k-means cells (cells over
        :data:`GRAPH_CELL_MAX_RATIO` times the mean size split) and compares each cell's
        items with every item of the ``nprobe`` cells nearest to it, one ``faiss.knn`` per
        cell. ``nprobe`` is the smallest whose recall on a sample of
        :data:`GRAPH_RECALL_SAMPLE` items (read off the cells' ranks) clears
        ``target_recall`` by two standard errors; see :data:`GRAPH_CELL_PASS_RECALL` for a
        cheaper pass followed by neighbour-of-neighbour rounds. ``recall_estimate`` is the
        recall measured on that sample of the graph returned.
    seed : k-means and sampling seed.
    cache_dir : when given, the graph is stored there as ``.npy`` files keyed by a hash of
        the vectors and the parameters, and read back instead of rebuilt.
    threads : workers for the IVF build (default: every core this process may use); the
        graph is the same whatever their number.
    engine : ``"local"`` (threads of this process) or ``"ray"``: the IVF cell pass runs as
        Ray tasks over the cluster's CPUs (see :mod:`workbench.neighbors._ray`; needs
        ``pip install 'workbench[ray]'``), the rest of the build here. The graph is the same
        either way, and so is its cache entry. Exact graphs are always built here.
    address : the Ray cluster for ``engine="ray"`` (``"host:port"``); None lets
        ``ray.init()`` choose. Joined only when an IVF build runs (not for a cached graph),
        before any work, and never shut down.
    device : where the build's heavy passes run: ``"cpu"`` (FAISS and threads), ``"cuda"``
        or ``"cuda:N"`` (torch on that GPU: the exact graph, or the IVF build's cell
        assignment, recall sample and cell pass; see :mod:`workbench.neighbors._torch`;
        ValueError when torch sees no such GPU), or None (default): a GPU when torch sees
        one and the collection is larger than ``exact_max_items``. (A FAISS built with CUDA
        runs the exact graph on its GPU without torch.) With ``engine="ray"`` the cell pass
        runs on the cluster's CPUs, so ``device`` must be None or ``"cpu"``. A GPU graph is
        the CPU one up to ties and float rounding, with its recall checked the same way;
        built by the same method, both share one cache entry.

    Memory stays bounded: one cell's candidates (a copy of their vectors) per worker, and
    with ``engine="ray"`` one copy of the vectors in the object store of each node.
    """
    k = check_k(k)
    x = unit_rows(vectors)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"a neighbour graph needs at least 2 items, got {n}")
    if method not in ("auto", "exact", "ivf"):
        raise ValueError(f"method must be 'auto', 'exact' or 'ivf', got {method!r}")
    check_engine(engine)
    if engine == "ray" and device not in (None, "cpu"):
        raise ValueError(
            f"engine='ray' runs the cell pass on the cluster's CPUs, so device={device!r} "
            "cannot apply; pass engine='ray' or a GPU device, not both"
        )
    gpu = _graph_device(device, n=n, dim=x.shape[1], method=method,
                        exact_max_items=exact_max_items, engine=engine)
    if method == "auto":
        on_gpu = gpu is not None or gpu_available()
        exact = n <= exact_max_items or (on_gpu and n <= GRAPH_GPU_EXACT_MAX_ITEMS)
        method = "exact" if exact else "ivf"
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
    if method == "ivf" and engine == "ray":
        connect(address)  # a missing Ray or an unreachable cluster fails before any work
    on = TorchVectors(x, gpu) if gpu is not None else None
    try:
        if method == "exact":
            idx, sims = on.exact_graph(k_eff) if on is not None else _exact_graph(x, k_eff)
            estimate = 1.0
        else:
            idx, sims, estimate = _ivf_graph(
                x, k_eff, target_recall=target_recall, seed=seed, threads=threads,
                engine=engine, address=address, on=on,
            )
    finally:
        if on is not None:
            on.release()
    idx, sims = pad_columns(idx, sims, k)
    graph = KnnGraph(indices=idx, similarities=sims, recall_estimate=estimate)
    if name is not None:
        save_cached("kNN graph", Path(cache_dir) / f"{name}-indices.npy",
                     lambda: graph.save(cache_dir, name, durable=False))
    return graph


def _graph_device(device, *, n: int, dim: int, method: str, exact_max_items: int,
                  engine: str) -> str | None:
    """The torch GPU the build runs on, or None for the CPU (see ``device`` above)."""
    if device is not None:
        return cuda_device(device)
    if engine != "local" or (method != "ivf" and n <= exact_max_items):
        return None  # Ray's CPUs, or a graph the CPU builds in seconds
    gpu = cuda_device(None)
    if gpu is not None and not fits_on(gpu, n, dim):
        log.info("kNN graph: %d × %d vectors do not fit in the GPU's free memory; built on "
                 "the CPU", n, dim)
        return None
    return gpu


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
        idx[rows], sims[rows] = drop_self(i, s, rows, k)
    return idx, sims


def _ivf_graph(
    x: np.ndarray, k: int, *, target_recall: float, seed: int, threads: int | None,
    engine: str = "local", address: str | None = None, on: TorchVectors | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The IVF graph; with ``on`` (the vectors on a GPU) the cell assignment, the recall
    sample and the cell pass run there, the k-means and any refinement rounds here."""
    n = x.shape[0]
    centroids, assign = assign_cells(
        x, train_cells(x, default_nlist(n), seed=seed), max_ratio=GRAPH_CELL_MAX_RATIO,
        seed=seed, nearest=None if on is None else on.nearest,
    )
    nlist = centroids.shape[0]
    order = np.argsort(assign, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(assign, minlength=nlist))]
    near = _cells_by_distance(centroids)  # every cell's cells, nearest first
    if engine == "ray":
        search = RayCellSearch(x, k, order, starts, address=address)
    elif on is not None:
        def search(near_p):
            return on.cell_search(k, near_p, order, starts)
    else:
        def search(near_p):
            return cell_blocked_search(x, k, near_p, order, starts, threads=threads)

    # A true neighbour is found by the cell pass exactly when its cell is among the nprobe
    # cells scanned for the item's cell: the sample's recall at every nprobe follows from
    # the cells' ranks, with no search.
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(GRAPH_RECALL_SAMPLE, n), replace=False))
    if on is not None and on.exact:
        exact = on.exact_rows(sample, k)
    else:
        exact = exact_sample(x, sample, k, threads=threads)
    rank = np.empty((nlist, nlist), np.int64)
    rank[np.arange(nlist)[:, None], near] = np.arange(nlist)[None, :]
    valid = exact >= 0
    rows = np.broadcast_to(np.arange(sample.size)[:, None], exact.shape)[valid]
    ranks = rank[assign[sample][:, None], assign[np.where(valid, exact, 0)]][valid]
    hits = np.zeros((sample.size, nlist))
    np.add.at(hits, (rows, ranks), 1.0)
    per_item = hits.cumsum(axis=1) / np.maximum(valid.sum(axis=1), 1)[:, None]  # (S, nprobe)

    def clears(r):  # per-item recalls (S,) clear the target by two standard errors
        se = r.std(ddof=1) / np.sqrt(r.size) if r.size > 1 else 0.0
        return r.mean() - 2 * max(se, 1e-3 / np.sqrt(r.size)) >= target_recall

    # The cell pass that alone clears the target; or, where GRAPH_CELL_PASS_RECALL asks for
    # it, a cheaper pass and neighbour-of-neighbour rounds, with the full pass as fallback.
    ok = np.flatnonzero([clears(per_item[:, p]) for p in range(nlist)])
    full = int(ok[0]) + 1 if ok.size else nlist
    found = per_item.mean(axis=0)
    nprobe = min(full, int(np.searchsorted(found, GRAPH_CELL_PASS_RECALL)) + 1)
    while True:
        idx, sims = search(near[:, :nprobe])
        recall_now, rounds, changed = row_recalls(idx[sample], exact), 0, 1
        while not clears(recall_now) and rounds < GRAPH_REFINE_ROUNDS and changed:
            idx, sims, changed = refine_graph(
                x, idx, sims, max_reverse=GRAPH_REFINE_REVERSE, threads=threads
            )
            recall_now, rounds = row_recalls(idx[sample], exact), rounds + 1
        log.info("kNN graph: nlist=%d nprobe=%d rounds=%d sample recall@%d=%.4f",
                 nlist, nprobe, rounds, k, recall_now.mean())
        if clears(recall_now) or nprobe >= full:
            break
        nprobe = full
    return idx, sims, float(recall_now.mean())


def row_recalls(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Share of each row's (non -1) ``exact`` neighbours that ``approx`` found."""
    return np.array([np.intersect1d(a[a >= 0], e[e >= 0]).size / max((e >= 0).sum(), 1)
                     for a, e in zip(approx, exact)])


def _cells_by_distance(centroids: np.ndarray) -> np.ndarray:
    import faiss

    c = centroids.shape[0]
    _, near = faiss.knn(centroids, centroids, c, metric=faiss.METRIC_INNER_PRODUCT)
    return near.astype(np.int64)


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

