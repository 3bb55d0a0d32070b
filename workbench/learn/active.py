"""What to label next: uncertain items, spread out, in batches of one screen."""

from __future__ import annotations

import numpy as np

from .._arrays import as_vectors
from .._config import ACTIVE_BATCH_SIZE, ACTIVE_POOL_FACTOR
from ..neighbors import normalize
from ._common import Predictions, check_labels
from .clusters import Group

__all__ = ["cluster_coverage_batch", "suggest_batch", "uncertainty"]


def uncertainty(predictions: Predictions, *, kind: str = "margin") -> np.ndarray:
    """(N,) float32 in [0, 1], higher = less sure.

    Parameters
    ----------
    kind : ``"margin"`` (default): 1 - (top-1 - top-2 probability); ``"entropy"``:
        entropy / log(C); ``"confidence"``: 1 - top-1 probability.
    Items the models know nothing about (label -1) get 1.
    """
    p = predictions.proba
    if kind == "margin":
        u = 1.0 - predictions.margin()
    elif kind == "entropy":
        c = max(p.shape[1], 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        u = h / np.log(c)
    elif kind == "confidence":
        u = 1.0 - predictions.confidence
    else:
        raise ValueError(f"kind must be 'margin', 'entropy' or 'confidence', not {kind!r}")
    u = np.where(predictions.label < 0, 1.0, u)
    return np.clip(u, 0.0, 1.0).astype(np.float32)


def suggest_batch(
    predictions: Predictions,
    vectors: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = ACTIVE_BATCH_SIZE,
    kind: str = "margin",
    pool_factor: int = ACTIVE_POOL_FACTOR,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Unlabelled items to label next: uncertain, and far from each other and the labels.

    The ``batch_size × pool_factor`` most uncertain unlabelled items form a pool; from it,
    items are taken greedily by uncertainty × cosine distance to the nearest item already
    labelled or chosen (k-center), so a batch does not spend a screen on near-duplicates.

    Parameters
    ----------
    predictions : current :class:`Predictions` for all N items.
    vectors : (N, D) float32 embeddings.
    labels : (N,) int64 human labels, -1 = unlabelled (labelled items are never proposed).
    batch_size : items to return (default ``ACTIVE_BATCH_SIZE`` = 12).
    kind : uncertainty measure, see :func:`uncertainty`.
    pool_factor : pool size per slot (default 10); 1 = pure uncertainty.
    exclude : optional (N,) bool of further items never to propose (e.g. already shown).

    Returns
    -------
    (B,) int64 positions, B <= batch_size, in the order chosen.
    """
    x = as_vectors(vectors)
    labels = check_labels(labels, x.shape[0])
    if predictions.n != x.shape[0]:
        raise ValueError(f"{predictions.n} predictions for {x.shape[0]} vectors")
    if batch_size < 1 or pool_factor < 1:
        raise ValueError("batch_size and pool_factor must be >= 1")
    free = labels < 0
    if exclude is not None:
        free &= ~np.asarray(exclude, bool)
    cand = np.flatnonzero(free)
    if cand.size == 0:
        return np.zeros(0, np.int64)
    u = uncertainty(predictions, kind=kind)[cand]
    pool = cand[np.argsort(-u, kind="stable")[: batch_size * pool_factor]]
    return _compute_kcenter(normalize(x), pool, uncertainty(predictions, kind=kind)[pool],
                            np.flatnonzero(labels >= 0), batch_size)


def cluster_coverage_batch(
    groups: list[Group],
    labels: np.ndarray,
    *,
    batch_size: int = ACTIVE_BATCH_SIZE,
) -> np.ndarray:
    """One typical unlabelled item from each of the least-covered groups.

    Coverage of a group is its human-labelled members per member; groups are visited from
    least covered (ties: larger first) and give their most central unlabelled member.
    Returns (B,) int64 positions, B <= batch_size.
    """
    labels = check_labels(labels)
    cover = []
    for g in groups:
        lab = labels[g.members] >= 0
        cover.append((lab.mean() if g.size else 1.0, -g.size))
    order = sorted(range(len(groups)), key=lambda i: cover[i])
    out: list[int] = []
    for i in order:
        free = groups[i].members[labels[groups[i].members] < 0]
        if free.size:
            out.append(int(free[0]))
        if len(out) == batch_size:
            break
    return np.asarray(out, np.int64)


def _compute_kcenter(
    x: np.ndarray, pool: np.ndarray, weight: np.ndarray, labelled: np.ndarray, batch: int
) -> np.ndarray:
    xp = x[pool]
    if labelled.size:
        # Distance of each candidate to its nearest labelled item, in chunks of labels.
        best = np.full(pool.size, -1.0, np.float32)
        for s in range(0, labelled.size, 4096):
            best = np.maximum(best, (xp @ x[labelled[s:s + 4096]].T).max(axis=1))
        dist = 1.0 - best
    else:
        dist = np.ones(pool.size, np.float32)
    dist = np.clip(dist, 1e-6, None)
    w = np.clip(weight, 1e-3, None)
    chosen: list[int] = []
    avail = np.ones(pool.size, bool)
    for _ in range(min(batch, pool.size)):
        j = int(np.argmax(np.where(avail, w * dist, -np.inf)))
        chosen.append(j)
        avail[j] = False
        dist = np.minimum(dist, np.clip(1.0 - xp @ xp[j], 1e-6, None))
    return pool[np.asarray(chosen, np.int64)]
