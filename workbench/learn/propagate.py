"""Label spreading over the sparse kNN graph (Zhou et al., 2004).

The scores ``F`` solve ``(I - alpha S) F = (1 - alpha) Y`` with ``S = D^-1/2 W D^-1/2`` the
normalised affinity of the shared kNN graph and ``Y`` the one-hot human labels. scikit-learn
iterates ``F <- alpha S F + (1 - alpha) Y``, which needs ~1/(1 - alpha) steps; the matrix
``I - alpha S`` is symmetric positive definite, so conjugate gradients reach the same answer
in ~sqrt(1/(1 - alpha)) steps. After a label change, the previous ``F`` (each class's column
rescaled to the best multiple of itself) starts the solver, and only the classes whose
columns are not already within tolerance (those that gained or lost labels) are iterated.

At 100k items and 50 classes each step is one sparse (N, N) x (N, C) product plus a few
(N, C) vector updates, bound by memory traffic: ``S`` is built straight from the graph's
arrays, the solver runs in float32, ``I - alpha S`` is one matrix (no separate identity
pass), and its rows are put in reverse Cuthill-McKee order so that each row's neighbours sit
close in memory (a kNN graph in arbitrary item order reads ``F`` at random; reordered, the
product is ~4 times faster on 100k items). Answers come back in item order.

Many classes: the classes are solved ``PROPAGATION_BLOCK_COLUMNS`` at a time, so the
solver's work arrays stay (N, 64) however many classes there are and only the answer (the
probabilities, (N, C) float32, written over the scores) is held whole; each step is a
compiled loop (numba, when it loads) that does a neighbour's row of the block as one vector
operation and fuses the vector updates. Time still grows with the class count (one product
per class per step): ``MANY_CLASSES`` is where a warning says so.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import scipy.sparse as sp

from .._config import (
    PROPAGATION_ALPHA,
    PROPAGATION_BLOCK_COLUMNS,
    PROPAGATION_MAX_ITER,
    PROPAGATION_TOL,
)
from ..neighbors import KnnGraph
from . import _cg
from ._common import (
    Predictions,
    Propagation,
    check_labels,
    labelled_classes,
    normalise_rows,
    warn_if_many_classes,
)

__all__ = ["LabelSpreader", "Propagation", "fold_propagation", "propagate",
           "spreading_operator"]

#: Below this many items the reordering is not worth its (small) cost: ``F`` fits in cache.
_REORDER_MIN_ITEMS = 4096


def spreading_operator(graph: KnnGraph | sp.spmatrix) -> sp.csr_matrix:
    """``S = D^-1/2 W D^-1/2`` (N, N) CSR float64 from a kNN graph or an affinity matrix.

    ``W`` is the graph's similarities clipped at 0, made symmetric as ``max(W, W.T)``.
    Isolated items (no edge) get an empty row: they keep their own label and nothing else.
    """
    if isinstance(graph, KnnGraph):
        w = graph.to_csr(symmetric=True)
    elif sp.issparse(graph):
        w = sp.csr_matrix(graph)
        if w.shape[0] != w.shape[1]:
            raise ValueError(f"an affinity matrix must be square, got {w.shape}")
        w = w.maximum(w.T).tocsr()
    else:
        raise TypeError(
            f"graph must be a workbench.neighbors.KnnGraph or a scipy sparse matrix, "
            f"not {type(graph).__name__}; build one with build_knn_graph(vectors)"
        )
    w = w.astype(np.float64)  # a copy: scaled in place below
    deg = np.asarray(w.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    np.divide(1.0, np.sqrt(deg), out=inv, where=deg > 0)
    # D^-1/2 W D^-1/2 in place: each stored w_ij times inv_i * inv_j.
    w.data *= np.repeat(inv, np.diff(w.indptr))
    w.data *= inv[w.indices]
    return w


def _solver_dtype(tol: float) -> type:
    """float32 (half the memory traffic, which is what bounds the solve at 100k items)
    unless ``tol`` asks for more precision than float32 holds."""
    return np.float32 if tol >= 1e-6 else np.float64


class _System:
    """``M = I - alpha S`` as one CSR ``matrix`` of ``dtype``, rows and columns in a
    cache-friendly order: ``perm`` (N,) lists the items in solver order and ``inv`` is its
    inverse (both ``None``: item order).
    """

    def __init__(self, s: sp.csr_matrix, alpha: float, dtype: type) -> None:
        s = sp.csr_matrix(s)
        n = s.shape[0]
        self.n, self.alpha, self.dtype = n, alpha, dtype
        self.perm: np.ndarray | None = None
        self.inv: np.ndarray | None = None
        if n >= _REORDER_MIN_ITEMS and s.nnz:
            from scipy.sparse.csgraph import reverse_cuthill_mckee

            perm = reverse_cuthill_mckee(s, symmetric_mode=True).astype(np.intp)
            inv = np.empty_like(perm)
            inv[perm] = np.arange(n, dtype=np.intp)
            s = s[perm]  # rows in the new order; then the columns renamed to match
            s.indices = inv[s.indices].astype(s.indices.dtype)
            s.has_sorted_indices = False
            self.perm, self.inv = perm, inv
        # I - alpha S with the unit diagonal stored first in each row (duplicate entries,
        # should S have a diagonal of its own, are summed by the product).
        indptr = s.indptr.astype(np.int64) + np.arange(n + 1, dtype=np.int64)
        diag = indptr[:-1]
        rest = np.ones(indptr[-1], bool)
        rest[diag] = False
        index_dtype = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64
        indices = np.empty(indptr[-1], index_dtype)
        indices[diag] = np.arange(n)
        indices[rest] = s.indices
        data = np.empty(indptr[-1], dtype)
        data[diag] = 1.0
        data[rest] = -alpha * s.data
        self.matrix = sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=(n, n))


#: (id(graph), alpha, dtype) -> (weak reference to the KnnGraph, its _System): a retrain
#: propagates over the same graph several times (the held-out folds that choose the mixing
#: weights), and building ``S`` and its ordering again each time costs a second at 100k items.
_SYSTEMS: dict[tuple, tuple[weakref.ref, _System]] = {}
_SYSTEMS_LOCK = threading.RLock()  # re-entrant: a weakref callback may run inside it


def _system_for(graph: KnnGraph | sp.spmatrix, alpha: float, dtype: type) -> _System:
    """The solver's system over ``graph``, shared for the same :class:`KnnGraph` object
    (frozen, so its operator never changes); built afresh for a sparse matrix."""
    if isinstance(graph, KnnGraph):
        with _SYSTEMS_LOCK:
            hit = _SYSTEMS.get((id(graph), alpha, dtype))
        if hit is not None and hit[0]() is graph:
            return hit[1]
    system = _System(spreading_operator(graph), alpha, dtype)
    _remember_system(graph, system)
    return system


def _remember_system(graph: KnnGraph | sp.spmatrix, system: _System) -> None:
    if not isinstance(graph, KnnGraph):
        return
    key = (id(graph), system.alpha, system.dtype)

    def forget(_ref: weakref.ref, key: tuple = key) -> None:
        with _SYSTEMS_LOCK:
            entry = _SYSTEMS.get(key)
            if entry is not None and entry[0] is _ref:
                del _SYSTEMS[key]

    with _SYSTEMS_LOCK:
        _SYSTEMS[key] = (weakref.ref(graph, forget), system)


def propagate(
    graph: KnnGraph | sp.spmatrix,
    labels: np.ndarray,
    *,
    alpha: float = PROPAGATION_ALPHA,
    tol: float = PROPAGATION_TOL,
    max_iter: int = PROPAGATION_MAX_ITER,
    warm_start: Propagation | None = None,
) -> Propagation:
    """Spread the human labels over the graph; a prediction and confidence for every item.

    Parameters
    ----------
    graph : the project's :class:`~workbench.neighbors.KnnGraph` (or an (N, N) sparse
        affinity, or the output of :func:`spreading_operator` via :class:`LabelSpreader`).
    labels : (N,) int64 class ids of the human labels, -1 = unlabelled.
    alpha : in (0, 1); how far labels travel (default ``PROPAGATION_ALPHA`` = 0.99).
    tol : relative residual at which to stop (default 1e-4).
        Each class seeds the same total mass (class mass normalisation), so classes
        labelled in bulk do not drown the others.
    max_iter : iteration cap (default 500).
    warm_start : the previous result on the same items; its scores start the solver.

    Returns
    -------
    :class:`Propagation`; ``source`` is ``"propagated"``.

    Raises
    ------
    NotEnoughLabels : fewer than 2 labelled items or 2 classes.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    system = _system_for(graph, alpha, _solver_dtype(tol))
    return _compute_propagation(system, labels, tol=tol, max_iter=max_iter,
                                warm_start=warm_start)


def fold_propagation(
    graph: KnnGraph | sp.spmatrix,
    human: np.ndarray,
    hidden: np.ndarray,
    full: Propagation,
    *,
    alpha: float = PROPAGATION_ALPHA,
    tol: float = PROPAGATION_TOL,
    max_iter: int = PROPAGATION_MAX_ITER,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The propagation of ``human`` with the labels at ``hidden`` removed, read only at
    ``hidden``, from ``full`` (the propagation of all of ``human`` over the same graph).

    Each class's column is its own linear system. A class none of whose labels is hidden
    has the same seeds as in ``full`` up to the class-mass factor (the mean label count
    changes), so its column is ``full``'s times that factor and needs no solve; only the
    columns of classes with hidden labels are solved (``PROPAGATION_BLOCK_COLUMNS`` at a
    time, started from ``full``'s columns). No (N, C) table is made: the answer is
    (H, C). What a held-out fold with many classes needs (issue 13).

    Parameters
    ----------
    human : (N,) int64 all human labels (those ``full`` saw), -1 = unlabelled.
    hidden : (H,) int64 positions of labelled items to hide (and to predict).
    full : :func:`propagate` of ``human`` over ``graph`` (same ``alpha``).

    Returns
    -------
    classes : (C,) int64 classes that keep a label; proba : (H, C) float32 the hidden
    items' probabilities (as ``propagate(graph, train).proba[hidden]``, to the solver's
    tolerance); mass : (H,) float64 their label mass.

    Raises
    ------
    NotEnoughLabels : fewer than 2 labelled items or 2 classes remain.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    system = _system_for(graph, alpha, _solver_dtype(tol))
    n, dtype = system.n, system.dtype
    human = check_labels(human, n)
    hidden = np.asarray(hidden, np.int64)
    train = human.copy()
    train[hidden] = -1
    classes = labelled_classes(train, what="propagation")
    c = classes.size
    src = _warm_columns(full, classes, n)
    stale = full is None or not np.array_equal(full.classes, np.unique(human[human >= 0]))
    if stale or src is None or (src < 0).any():  # not the propagation of these labels
        p = _compute_propagation(system, train, tol=tol, max_iter=max_iter, warm_start=None)
        return p.classes, p.proba[hidden], p.mass[hidden]
    idx = np.flatnonzero(train >= 0)
    col = np.searchsorted(classes, train[idx])
    counts = np.bincount(col, minlength=c)
    lab_all = human[human >= 0]
    all_counts = np.bincount(np.searchsorted(full.classes, lab_all), minlength=full.classes.size)
    # Full seeds (1 - alpha) mean_full / count_full[j]; fold seeds mean_fold / count_fold[j]:
    # a class that lost no label has its column scaled by mean_fold / mean_full.
    ratio = counts.mean() / all_counts[all_counts > 0].mean()
    changed = np.flatnonzero(counts != all_counts[src])
    same = np.setdiff1d(np.arange(c), changed)
    out = np.empty((hidden.size, c), dtype)
    if same.size:
        if full.exact_scores is not None:
            kept = full.exact_scores[hidden][:, src[same]]
        else:
            kept = full.proba[hidden][:, src[same]] * full.mass[hidden].astype(np.float32)[:, None]
        out[:, same] = kept * dtype(ratio)
    seed = ((1.0 - alpha) * (counts.mean() / counts[col])).astype(dtype)
    rows = idx if system.inv is None else system.inv[idx]
    at = hidden if system.inv is None else system.inv[hidden]
    for j0 in range(0, changed.size, PROPAGATION_BLOCK_COLUMNS):
        cols = changed[j0:j0 + PROPAGATION_BLOCK_COLUMNS]
        local = np.full(c, -1)
        local[cols] = np.arange(cols.size)
        here = local[col] >= 0
        b = np.zeros((n, cols.size), dtype)
        b[rows[here], local[col[here]]] = seed[here]
        start = full.score_columns(src[cols]).astype(dtype)
        x = np.ascontiguousarray(start if system.perm is None else start[system.perm])
        del start
        x, _, _ = _cg.block_cg(system.matrix, b, x, tol=tol, max_iter=max_iter)
        out[:, cols] = x[at]
        del b, x
    proba, _, mass = normalise_rows(out)
    return classes, proba, mass


class LabelSpreader:
    """Label spreading as an estimator that keeps the graph operator and its last answer.

    ``LabelSpreader(graph).fit(labels)`` builds ``S`` once; each later ``fit`` starts from the
    previous scores, so one more label costs a few iterations. Fitted attributes:
    ``classes_`` (C,), ``predictions_`` (:class:`Propagation`).
    """

    def __init__(
        self,
        graph: KnnGraph | sp.spmatrix,
        *,
        alpha: float = PROPAGATION_ALPHA,
        tol: float = PROPAGATION_TOL,
        max_iter: int = PROPAGATION_MAX_ITER,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.alpha, self.tol, self.max_iter = alpha, tol, max_iter
        self.operator_ = spreading_operator(graph)
        self._system = _System(self.operator_, alpha, _solver_dtype(tol))
        _remember_system(graph, self._system)  # later propagate() calls on it reuse it
        self.predictions_: Propagation | None = None

    def fit(self, labels: np.ndarray) -> LabelSpreader:
        self.predictions_ = _compute_propagation(
            self._system, labels, tol=self.tol, max_iter=self.max_iter,
            warm_start=self.predictions_,
        )
        self.classes_ = self.predictions_.classes
        return self

    def predict_proba(self) -> np.ndarray:
        """(N, C) float32 probabilities of the last fit (transductive: all items)."""
        if self.predictions_ is None:
            raise RuntimeError("call fit(labels) first")
        return self.predictions_.proba


def _compute_propagation(
    system: _System,
    labels: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    warm_start: Propagation | None,
) -> Propagation:
    n, alpha = system.n, system.alpha
    labels = check_labels(labels, n)
    classes = labelled_classes(labels, what="propagation")
    c = classes.size
    warn_if_many_classes(c, "label propagation")
    dtype = system.dtype
    idx = np.flatnonzero(labels >= 0)
    col = np.searchsorted(classes, labels[idx])
    # Class mass normalisation (Zhu et al., 2003): each class seeds the same total mass, so
    # a class labelled in bulk (one big group) does not flood the classes labelled sparsely.
    counts = np.bincount(col, minlength=c)
    seed = ((1.0 - alpha) * (counts.mean() / counts[col])).astype(dtype)
    rows = idx if system.inv is None else system.inv[idx]  # the labelled items, solver order
    src = _warm_columns(warm_start, classes, n)
    # The classes are solved PROPAGATION_BLOCK_COLUMNS at a time (each column is its own CG
    # solve, so blocks change no answer): the solver's (N, block) temporaries stay a fixed
    # size however many classes there are, and only the (N, C) scores are kept whole.
    scores = np.empty((n, c), dtype)  # item order
    n_iter, converged = 0, True
    for j0 in range(0, c, PROPAGATION_BLOCK_COLUMNS):
        j1 = min(c, j0 + PROPAGATION_BLOCK_COLUMNS)
        here = (col >= j0) & (col < j1)
        b = np.zeros((n, j1 - j0), dtype)  # in solver order, back in item order below
        b[rows[here], col[here] - j0] = seed[here]
        x = b / dtype(1.0 - alpha)  # a cold start at Y is already right on the labelled items
        if src is not None:  # carry over the columns of classes that still exist
            have = np.flatnonzero(src[j0:j1] >= 0)
            if have.size:
                start = warm_start.score_columns(src[j0:j1][have])
                x[:, have] = start if system.perm is None else start[system.perm]
        x, it, ok = _cg.block_cg(system.matrix, b, x, tol=tol, max_iter=max_iter)
        del b
        scores[:, j0:j1] = x if system.inv is None else x[system.inv]
        n_iter, converged = max(n_iter, it), converged and ok
    exact = scores if dtype != np.float32 else None
    proba, known, mass = normalise_rows(scores)  # in place over float32 scores
    del scores
    pred = Predictions.from_proba(classes, proba, "propagated", known=known)
    return Propagation(pred.classes, pred.proba, pred.label, pred.confidence, pred.source,
                       n_iter=n_iter, converged=converged, mass=mass, exact_scores=exact)


def _warm_columns(warm_start: Propagation | None, classes: np.ndarray, n: int):
    """(C,) int64 column of each class in ``warm_start.scores`` (-1: a new class), or None
    when there is nothing to start from."""
    if warm_start is None or warm_start.n != n:
        return None
    old = warm_start.classes
    if old.size == 0:
        return None
    pos = np.minimum(np.searchsorted(old, classes), old.size - 1)
    src = np.where(old[pos] == classes, pos, -1)
    return src if (src >= 0).any() else None
