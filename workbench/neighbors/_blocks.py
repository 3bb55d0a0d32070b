"""Block-wise exact search in numpy: top-k of similarity blocks, exact neighbours of a sample
(recall checks, graph updates) and the cell-blocked search of the IVF graph. No block holds
more than :data:`NEIGHBOR_BLOCK_BYTES` of similarities."""

from __future__ import annotations

import numpy as np

from .._config import NEIGHBOR_BLOCK_BYTES

__all__ = [
    "cell_blocked_search",
    "cells_by_cost",
    "drop_self",
    "exact_neighbors",
    "exact_sample",
    "pad_columns",
    "recall",
    "rows_per_block",
    "search_cell",
    "topk_rows",
]


def rows_per_block(width: int) -> int:
    """Query rows per block when each row holds ``width`` float32 similarities."""
    return max(1, NEIGHBOR_BLOCK_BYTES // (4 * max(width, 1)))


def topk_rows(sims: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of each row of ``sims`` (Q, M) as (ids (Q, k) int64, sims (Q, k)).

    ``sims`` is used as scratch space (left with its original values).
    """
    m = sims.shape[1]
    if m > k:
        # Negated in place (callers pass a scratch block): one block-sized copy fewer.
        part = np.argpartition(np.negative(sims, out=sims), k - 1, axis=1)[:, :k]
        np.negative(sims, out=sims)
    else:
        part = np.broadcast_to(np.arange(m), sims.shape).copy()
    top = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(top, order, axis=1)
    return ids[part].astype(np.int64), top.astype(np.float32)


def pad_columns(idx: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``idx`` / ``sims`` cut or padded (with -1 / 0) to ``k`` columns."""
    if idx.shape[1] >= k:
        return idx[:, :k], sims[:, :k]
    pad = k - idx.shape[1]
    n = idx.shape[0]
    return (
        np.hstack([idx, np.full((n, pad), -1, np.int64)]),
        np.hstack([sims, np.zeros((n, pad), np.float32)]),
    )


def exact_neighbors(
    x: np.ndarray, rows: np.ndarray, k: int, *, base: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of ``x[rows]`` among ``base`` (default ``x``), self excluded, in blocks.

    Used for recall checks and for updating old rows, where a FAISS index would be an
    extra copy of the vectors.
    """
    base = x if base is None else base
    out_i = np.empty((rows.size, k), np.int64)
    out_s = np.empty((rows.size, k), np.float32)
    all_ids = np.arange(base.shape[0])
    step = rows_per_block(base.shape[0])
    for start in range(0, rows.size, step):
        r = rows[start : start + step]
        s = x[r] @ base.T
        if base is x:
            s[np.arange(r.size), r] = -np.inf
        out_i[start : start + step], out_s[start : start + step] = topk_rows(s, all_ids, k)
    return out_i, out_s


def exact_sample(x: np.ndarray, rows: np.ndarray, k: int, *, threads=None) -> np.ndarray:
    """Exact top-``k`` ids of ``x[rows]`` among all of ``x``, self excluded: the graph's
    recall sample. FAISS's blocked product and C++ top-k over slices of ``x`` spread over
    threads (each slice read once for all rows), then the slices' lists merged."""
    import faiss

    from ._threads import run_pieces

    n = x.shape[0]
    q = np.ascontiguousarray(x[rows])
    step = max(4096, -(-n // 64))
    starts = list(range(0, n, step))
    found_s = np.empty((len(starts), rows.size, k + 1), np.float32)
    found_i = np.full((len(starts), rows.size, k + 1), -1, np.int64)

    def piece(p):
        a = starts[p]
        b = min(n, a + step)
        kk = min(k + 1, b - a)
        s, i = faiss.knn(q, x[a:b], kk, metric=faiss.METRIC_INNER_PRODUCT)
        found_s[p, :, :kk], found_i[p, :, :kk] = s, i + a
        found_s[p, :, kk:] = -np.inf

    run_pieces(piece, list(range(len(starts))), threads)
    s = np.concatenate(found_s, axis=1)
    i = np.concatenate(found_i, axis=1)
    top = _top(s, i, k + 1)
    return drop_self(np.take_along_axis(i, top, 1), np.take_along_axis(s, top, 1), rows, k)[0]


def _top(s: np.ndarray, i: np.ndarray, k: int) -> np.ndarray:
    """Columns of each row's ``k`` largest ``s``, ties by smaller id, nearest first."""
    cols = np.empty((s.shape[0], k), np.int64)
    for r in range(s.shape[0]):
        cols[r] = np.lexsort((i[r], -s[r]))[:k]
    return cols


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the (non -1) ``exact`` neighbours that ``approx`` found, row by row."""
    hits = [np.intersect1d(a[a >= 0], e[e >= 0]).size for a, e in zip(approx, exact)]
    total = int((exact >= 0).sum())
    return float(sum(hits) / total) if total else 1.0


def drop_self(idx: np.ndarray, sims: np.ndarray, rows: np.ndarray, k: int):
    """(idx, sims) of ``k + 1`` columns without each row's own id ``rows``, ``k`` columns.

    The item itself is usually column 0, but ties with duplicates can push it out of the
    list: such rows lose their last column instead.
    """
    self_mask = idx == rows[:, None]
    self_mask[~self_mask.any(axis=1), -1] = True
    keep = ~self_mask
    return (idx[keep].reshape(-1, k).astype(np.int64),
            sims[keep].reshape(-1, k).astype(np.float32))


def cell_blocked_search(x, k, near, order, starts, *, threads=None):
    """Each cell's items against all items of the cells listed in ``near`` (nlist, nprobe).

    One dense search per cell instead of one scan per query: the graph's queries are the
    collection itself, so items of a cell share their candidate cells. Each cell is one
    ``faiss.knn`` call (:func:`search_cell`: blocked matrix product and C++ top-k, several
    times faster than numpy's argpartition), cells spread over ``threads`` workers,
    costliest first (:func:`cells_by_cost`).
    """
    from ._threads import run_pieces

    n = x.shape[0]
    idx = np.full((n, k), -1, np.int64)
    sims = np.zeros((n, k), np.float32)

    def cell(c):
        members, cell_idx, cell_sims = search_cell(x, k, near[c], order, starts, c)
        idx[members], sims[members] = cell_idx, cell_sims

    run_pieces(cell, [int(c) for c in cells_by_cost(near, starts)[0]], threads)
    return idx, sims


def cells_by_cost(near: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(non-empty cells, their costs), costliest first: a cell costs its size times the
    summed sizes of its candidate cells ``near[c]`` (ties in cell order)."""
    sizes = np.diff(starts)
    cost = sizes * np.array([sizes[row[row >= 0]].sum() for row in near])
    cells = np.array([c for c in np.argsort(-cost, kind="stable") if sizes[c] > 0], np.int64)
    return cells, cost[cells]


def search_cell(
    x: np.ndarray, k: int, near_c: np.ndarray, order: np.ndarray, starts: np.ndarray, c: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(members (M,), ids (M, k), sims (M, k)): the top-``k`` of cell ``c``'s items among
    the items of its own cell and of the cells ``near_c`` (-1 entries ignored), self
    excluded. Cell ``j`` holds the items ``order[starts[j]:starts[j + 1]]``.

    Its numbers depend only on its arguments (callers run it with one FAISS and BLAS
    thread), so any split of the cells over threads or processes gives the same graph.
    """
    import faiss

    members = order[starts[c] : starts[c + 1]]
    cells = [c, *(j for j in near_c if j >= 0 and j != c)]  # own cell: self is found
    cand = np.concatenate([order[starts[j] : starts[j + 1]] for j in cells])
    if cand.size <= k:  # tiny neighbourhood of cells: compare with everything
        cand = np.arange(x.shape[0])
    s, i = faiss.knn(x[members], x[cand], k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    idx, sims = drop_self(cand[i], s, members, k)
    return members, idx, sims
