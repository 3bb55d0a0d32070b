"""Block-wise exact search in numpy: top-k of similarity blocks, exact neighbours of a sample
(recall checks, graph updates) and the cell-blocked search of the IVF graph. No block holds
more than :data:`NEIGHBOR_BLOCK_BYTES` of similarities."""

from __future__ import annotations

import numpy as np

from .._config import NEIGHBOR_BLOCK_BYTES

__all__ = [
    "cell_blocked_search",
    "exact_neighbors",
    "pad_columns",
    "recall",
    "rows_per_block",
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


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the (non -1) ``exact`` neighbours that ``approx`` found, row by row."""
    hits = [np.intersect1d(a[a >= 0], e[e >= 0]).size for a, e in zip(approx, exact)]
    total = int((exact >= 0).sum())
    return float(sum(hits) / total) if total else 1.0


def cell_blocked_search(x, k, near, order, starts):
    """Each cell's items against all items of the cells listed in ``near`` (nlist, nprobe).

    One dense matrix product per cell instead of one scan per query: the graph's queries
    are the collection itself, so items of a cell share their candidate cells.
    """
    n = x.shape[0]
    idx = np.full((n, k), -1, np.int64)
    sims = np.zeros((n, k), np.float32)
    where = np.full(n, -1, np.int64)  # column of each item in the current candidate list
    for c in range(near.shape[0]):
        members = order[starts[c] : starts[c + 1]]
        if members.size == 0:
            continue
        cand = np.concatenate([order[starts[j] : starts[j + 1]] for j in near[c] if j >= 0])
        if cand.size <= k:  # tiny neighbourhood of cells: compare with everything
            cand = np.arange(n)
        where[cand] = np.arange(cand.size)
        base = x[cand]
        step = rows_per_block(cand.size)
        for s0 in range(0, members.size, step):
            q = members[s0 : s0 + step]
            s = x[q] @ base.T
            col = where[q]
            s[np.flatnonzero(col >= 0), col[col >= 0]] = -np.inf  # each item itself
            idx[q], sims[q] = topk_rows(s, cand, k)
        where[cand] = -1
    return idx, sims
