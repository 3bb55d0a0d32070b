"""The features the confidence calibrator reads for each item (:func:`confidence_features`):
the mixed top probability and margin, how many models agree, the label mass propagation
brought, and how far the nearest labelled item is."""

from __future__ import annotations

import numpy as np

from .._config import CAL_DISTANCE_MAX_PAIRS, MIX_BLOCK_ROWS

__all__ = [
    "FEATURES",
    "confidence_features",
    "label_mass",
    "log_mass",
    "model_vote",
    "nearest_labelled_distance",
    "neighbour_radius",
]

#: Names of the columns of :func:`confidence_features`.
FEATURES = ("top_logit", "margin", "agreement", "log_mass", "distance")
_EPS = 1e-4


def label_mass(scores: np.ndarray) -> np.ndarray:
    """(N,) float64 log of the label mass label spreading brought to each item.

    ``scores``: the (N, C) raw spreading scores (``Propagation.scores``). Each class seeds
    the same total mass, so the row sum is about 1 next to a label and decays with the
    distance along the graph; an item no label reaches gets log(1e-6).
    """
    return log_mass(np.maximum(np.asarray(scores, np.float64), 0.0).sum(axis=1))


def log_mass(mass: np.ndarray) -> np.ndarray:
    """(N,) float64 log of a label mass given as row sums (``Propagation.mass``): the same
    figure as :func:`label_mass` without making the (N, C) scores."""
    return np.log(np.maximum(np.asarray(mass, np.float64), 1e-6))


def neighbour_radius(graph) -> np.ndarray:
    """(N,) float64 cosine distance from each item to its k-th neighbour in ``graph`` (a
    :class:`~workbench.neighbors.KnnGraph`): the scale of its own neighbourhood."""
    sim = np.asarray(graph.similarities, np.float64)
    sim = np.where(np.asarray(graph.indices) >= 0, sim, np.nan)
    far = np.nanmin(np.where(np.isfinite(sim), sim, np.inf), axis=1)
    return np.maximum(1.0 - np.where(np.isfinite(far), far, 0.0), 1e-6)


def nearest_labelled_distance(vectors: np.ndarray, labelled: np.ndarray,
                              rows: np.ndarray | None = None, *,
                              radius: np.ndarray | None = None) -> np.ndarray:
    """(R,) float64 cosine distance from each of ``rows`` (default all) to the nearest of
    the ``labelled`` positions; with ``radius`` ((N,) :func:`neighbour_radius`), the log of
    that distance over the item's own neighbourhood radius (how many neighbourhoods away
    the nearest label is: an item of a class with no label sits in a dense region of its
    own, far from every label). Zeros when that would take more than
    ``CAL_DISTANCE_MAX_PAIRS`` pairs (a million items), where the label mass stands alone."""
    x = np.asarray(vectors)
    rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows, np.int64)
    labelled = np.asarray(labelled, np.int64)
    if labelled.size == 0 or rows.size * labelled.size > CAL_DISTANCE_MAX_PAIRS:
        return np.zeros(rows.size)
    lab = _unit(x[labelled])
    out = np.empty(rows.size)
    block = max(1, int(4_000_000 // max(labelled.size, 1)))
    for s in range(0, rows.size, block):
        sim = _unit(x[rows[s:s + block]]) @ lab.T
        out[s:s + block] = 1.0 - sim.max(axis=1)
    out = np.maximum(out, 0.0)
    if radius is None:
        return out
    return np.log(np.maximum(out, 1e-6) / np.asarray(radius, np.float64)[rows])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def model_vote(proba: np.ndarray, *, missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One model's vote for :func:`confidence_features`: (N,) int64 column of its top
    probability and (N,) bool whether it knows the item (its row is not flat).

    ``proba``: (N, C) probabilities (any float dtype), read in row blocks of
    ``MIX_BLOCK_ROWS`` (no (N, C) float64 copy). ``missing``: the model lacks some of the
    columns the vote is compared over (they count as 0, so any mass makes the row uneven).
    """
    n = proba.shape[0]
    col = np.zeros(n, np.int64)
    knows = np.zeros(n, bool)
    if proba.ndim != 2 or proba.shape[1] == 0:
        return col, knows
    for s in range(0, n, MIX_BLOCK_ROWS):
        p = np.asarray(proba[s:s + MIX_BLOCK_ROWS], np.float64)
        col[s:s + p.shape[0]] = p.argmax(axis=1)
        top = p.max(axis=1)
        knows[s:s + p.shape[0]] = top - (0.0 if missing else p.min(axis=1)) > 1e-9
    return col, knows


def confidence_features(mixed: np.ndarray, models: list, weights: np.ndarray,
                        log_mass: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """(N, 5) float64 features of :data:`FEATURES` for the calibrator.

    Parameters
    ----------
    mixed : (N, C) the mixed probabilities (columns aligned with the models'), read in
        row blocks (at 100k items x 1,000 classes a float64 copy would be 800 MB).
    models : each of the M models as its (N, C) probabilities (rows of all-equal values
        where it knows nothing) or as its :func:`model_vote` (column, knows).
    weights : (M,) mixing weights (unused by the agreement, which counts every model).
    log_mass : (N,) :func:`label_mass`.
    distance : (N,) :func:`nearest_labelled_distance`.
    """
    n, c = mixed.shape
    if len(weights) != len(models):
        raise ValueError(f"{len(weights)} weights for {len(models)} models")
    top, margin = np.ones(n), np.ones(n)
    label = np.zeros(n, np.int64)
    for s in range(0, n, MIX_BLOCK_ROWS):
        p = np.array(mixed[s:s + MIX_BLOCK_ROWS])  # its own dtype: max and argmax are exact
        rows = slice(s, s + p.shape[0])
        at = p.argmax(axis=1)
        label[rows] = at
        if c >= 2:  # the top two by two passes of max (a partition is 20x slower)
            first = p[np.arange(at.size), at].astype(np.float64)
            p[np.arange(at.size), at] = -np.inf
            top[rows], margin[rows] = first, first - p.max(axis=1).astype(np.float64)
    agree = np.zeros(n)
    total = np.zeros(n)
    for m in models:
        col, knows = m if isinstance(m, tuple) else model_vote(m)
        wk = 1.0 * knows  # every model that knows the item votes, weighted or not
        agree += wk * (col == label)
        total += wk
    agree = np.divide(agree, total, out=np.ones(n), where=total > 0)
    top = np.clip(top, _EPS, 1 - _EPS)
    return np.column_stack([np.log(top / (1 - top)), margin, agree,
                            np.asarray(log_mass, np.float64), np.asarray(distance, np.float64)])
