"""Label spreading over the sparse kNN graph (Zhou et al., 2004).

The scores ``F`` solve ``(I - alpha S) F = (1 - alpha) Y`` with ``S = D^-1/2 W D^-1/2`` the
normalised affinity of the shared kNN graph and ``Y`` the one-hot human labels. scikit-learn
iterates ``F <- alpha S F + (1 - alpha) Y``, which needs ~1/(1 - alpha) steps; the matrix
``I - alpha S`` is symmetric positive definite, so conjugate gradients reach the same answer
in ~sqrt(1/(1 - alpha)) steps, and starting from the previous ``F`` after a small label change
needs fewer still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._config import PROPAGATION_ALPHA, PROPAGATION_MAX_ITER, PROPAGATION_TOL
from ..neighbors import KnnGraph
from ._common import Predictions, check_labels, labelled_classes

__all__ = ["LabelSpreader", "Propagation", "propagate", "spreading_operator"]


@dataclass(frozen=True)
class Propagation(Predictions):
    """:class:`~workbench.learn.Predictions` of label spreading, plus what a warm start needs.

    Attributes
    ----------
    scores : (N, C) float64 raw spreading scores ``F`` (columns aligned with ``classes``).
    n_iter : conjugate-gradient iterations used.
    converged : whether the relative residual reached ``tol`` within ``max_iter``.
    """

    scores: np.ndarray
    n_iter: int
    converged: bool


def spreading_operator(graph: KnnGraph | sp.spmatrix) -> sp.csr_matrix:
    """``S = D^-1/2 W D^-1/2`` (N, N) CSR float64 from a kNN graph or an affinity matrix.

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
    w = w.astype(np.float64)
    deg = np.asarray(w.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    np.divide(1.0, np.sqrt(deg), out=inv, where=deg > 0)
    d = sp.diags(inv)
    return (d @ w @ d).tocsr()


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
    s = spreading_operator(graph)
    return _compute_propagation(s, labels, alpha=alpha, tol=tol, max_iter=max_iter,
                                warm_start=warm_start)


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
        self.predictions_: Propagation | None = None

    def fit(self, labels: np.ndarray) -> LabelSpreader:
        self.predictions_ = _compute_propagation(
            self.operator_, labels, alpha=self.alpha, tol=self.tol, max_iter=self.max_iter,
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
    s: sp.csr_matrix,
    labels: np.ndarray,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    warm_start: Propagation | None,
) -> Propagation:
    n = s.shape[0]
    labels = check_labels(labels, n)
    classes = labelled_classes(labels, what="propagation")
    c = classes.size
    idx = np.flatnonzero(labels >= 0)
    col = np.searchsorted(classes, labels[idx])
    # Class mass normalisation (Zhu et al., 2003): each class seeds the same total mass, so
    # a class labelled in bulk (one big group) does not flood the classes labelled sparsely.
    counts = np.bincount(col, minlength=c)
    b = np.zeros((n, c))
    b[idx, col] = (1.0 - alpha) * (counts.mean() / counts[col])
    x = b / (1.0 - alpha)  # a cold start at Y is already right on the labelled items
    if warm_start is not None and warm_start.scores.shape[0] == n:
        # Carry over the columns of classes that still exist; a new class starts at Y.
        old = {int(k): j for j, k in enumerate(warm_start.classes)}
        for j, k in enumerate(classes):
            if int(k) in old:
                x[:, j] = warm_start.scores[:, old[int(k)]]
    x, n_iter, converged = _block_cg(s, b, x, alpha=alpha, tol=tol, max_iter=max_iter)
    f = np.clip(x, 0.0, None)
    total = f.sum(axis=1)
    known = total > 1e-12
    proba = np.full((n, c), 1.0 / c, np.float32)
    proba[known] = (f[known] / total[known, None]).astype(np.float32)
    pred = Predictions.from_proba(classes, proba, "propagated", known=known)
    return Propagation(pred.classes, pred.proba, pred.label, pred.confidence, pred.source,
                       scores=x, n_iter=n_iter, converged=converged)


def _block_cg(
    s: sp.csr_matrix, b: np.ndarray, x: np.ndarray, *, alpha: float, tol: float, max_iter: int
) -> tuple[np.ndarray, int, bool]:
    """Conjugate gradients on ``(I - alpha S) X = B``, one independent solve per column.

    float32 (half the memory traffic, which is what bounds this at 100k items) unless ``tol``
    asks for more precision than float32 holds; updates in place to avoid (N, C) temporaries.
    """
    dtype = np.float32 if tol >= 1e-6 else np.float64
    s = s.astype(dtype)
    b = b.astype(dtype)
    x = x.astype(dtype)

    def apply(v: np.ndarray) -> np.ndarray:
        out = s @ v
        out *= -alpha
        out += v
        return out

    r = b - apply(x)
    p = r.copy()
    tmp = np.empty_like(r)
    rs = np.einsum("ij,ij->j", r, r, dtype=np.float64)
    target = (tol * np.linalg.norm(b, axis=0).astype(np.float64)) ** 2
    for it in range(1, max_iter + 1):
        if np.all(rs <= target):
            return x.astype(np.float64), it - 1, True
        ap = apply(p)
        denom = np.einsum("ij,ij->j", p, ap, dtype=np.float64)
        step = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 0).astype(dtype)
        np.multiply(p, step, out=tmp)
        x += tmp
        np.multiply(ap, step, out=tmp)
        r -= tmp
        rs_new = np.einsum("ij,ij->j", r, r, dtype=np.float64)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0).astype(dtype)
        p *= beta
        p += r
        rs = rs_new
    return x.astype(np.float64), max_iter, bool(np.all(rs <= target))
