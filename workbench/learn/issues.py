"""Which human labels look wrong: out-of-fold probe probabilities and neighbour disagreement.

Two independent witnesses: the linear probe, fitted on the other folds, says how likely the
given label is for each labelled item; the item's nearest labelled neighbours vote too.
Their average probability of the given label ranks the labels (lowest first, as cleanlab's
``self_confidence`` ranking does), and a label is flagged as an issue in the manner of
confident learning: another class wins and the given class scores below that class's
average self-confidence.

:func:`neighbour_vote` searches its own exact FAISS index (inner product, on the CPU) over the
labelled items only, not the shared graph (neighbours among all items) nor a
:class:`~workbench.neighbors.NeighborIndex`: it asks for k + 1 neighbours and gives the item
itself weight zero wherever it comes (an item outranked by its duplicates keeps k + 1 voters),
and a NeighborIndex would search on the GPU where FAISS sees one and renormalise every row when
one is zero, changing similarities in their last bits and the order of ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._arrays import as_vectors
from .._config import ISSUES_KNN_K, PROBE_CV_FOLDS
from ..neighbors import normalize
from ._common import check_labels, labelled_classes
from .probe import LinearProbe

__all__ = ["LabelIssues", "neighbour_vote", "rank_label_issues"]


@dataclass(frozen=True)
class LabelIssues:
    """Human labels ranked by how likely they are wrong.

    Attributes
    ----------
    ranked : (M,) int64 positions of the M labelled items, most suspicious first.
    score : (M,) float32 suspicion in [0, 1] aligned with ``ranked`` (1 - the estimated
        probability of the given label).
    is_issue : (M,) bool aligned with ``ranked``: flagged as probably wrong.
    suggested : (M,) int64 class id the models prefer, aligned with ``ranked``.
    """

    ranked: np.ndarray
    score: np.ndarray
    is_issue: np.ndarray
    suggested: np.ndarray

    @property
    def issues(self) -> np.ndarray:
        """Positions of the flagged labels, most suspicious first."""
        return self.ranked[self.is_issue]


def rank_label_issues(
    vectors: np.ndarray,
    labels: np.ndarray,
    *,
    oof_proba: np.ndarray | None = None,
    k: int = ISSUES_KNN_K,
    probe_weight: float = 0.5,
    probe: LinearProbe | None = None,
) -> LabelIssues:
    """Rank the human labels in ``labels`` by how likely each is wrong.

    Parameters
    ----------
    vectors : (N, D) float32 embeddings.
    labels : (N,) int64 human class ids, -1 = unlabelled.
    oof_proba : optional (M, C) out-of-fold probabilities of the M labelled items (in
        position order, columns = sorted class ids), e.g. a fitted probe's ``oof_proba_``
        when it used k folds; default: a :class:`LinearProbe` with
        ``PROBE_CV_FOLDS`` folds is fitted here.
    k : labelled neighbours that vote (default ``ISSUES_KNN_K``).
    probe_weight : weight of the probe against the neighbours, in [0, 1] (default 0.5).
    probe : an unfitted :class:`LinearProbe` to use instead of the default one.

    Raises
    ------
    NotEnoughLabels : fewer than 2 labelled items or 2 classes.
    """
    x = as_vectors(vectors)
    labels = check_labels(labels, x.shape[0])
    classes = labelled_classes(labels, what="label-issue ranking")
    pos = np.flatnonzero(labels >= 0)
    if not 0.0 <= probe_weight <= 1.0:
        raise ValueError(f"probe_weight must be in [0, 1], got {probe_weight}")
    if oof_proba is None or np.isnan(oof_proba).any():
        fitted = (probe or LinearProbe(cv=PROBE_CV_FOLDS)).fit(x, labels)
        oof_proba = fitted.oof_proba_
    oof = np.asarray(oof_proba, np.float64)
    if oof.shape != (pos.size, classes.size):
        raise ValueError(
            f"oof_proba must be (labelled items, classes) = {(pos.size, classes.size)}, "
            f"got {oof.shape}"
        )
    oof = np.where(np.isnan(oof), 1.0 / classes.size, oof)
    nn = neighbour_vote(x, labels, k=k)
    return _compute_issues(pos, np.searchsorted(classes, labels[pos]), classes,
                           probe_weight * oof + (1.0 - probe_weight) * nn)


def neighbour_vote(vectors: np.ndarray, labels: np.ndarray, *, k: int = ISSUES_KNN_K) -> np.ndarray:
    """(M, C) float64: class shares among each labelled item's k nearest labelled neighbours.

    Votes are weighted by cosine similarity and smoothed with one pseudo-vote spread over
    the classes, so an isolated item gets a flat vote rather than a certain one.
    """
    import faiss

    x = normalize(as_vectors(vectors))
    labels = check_labels(labels, x.shape[0])
    classes = labelled_classes(labels, what="neighbour voting")
    pos = np.flatnonzero(labels >= 0)
    y = np.searchsorted(classes, labels[pos])
    xl = np.ascontiguousarray(x[pos])
    kk = int(min(k + 1, pos.size))
    index = faiss.IndexFlatIP(xl.shape[1])
    index.add(xl)
    sims, nbr = index.search(xl, kk)
    not_self = nbr != np.arange(pos.size)[:, None]
    w = np.clip(sims, 0.0, None) * not_self * (nbr >= 0)
    votes = np.zeros((pos.size, classes.size))
    rows = np.repeat(np.arange(pos.size), kk)
    np.add.at(votes, (rows, y[np.clip(nbr, 0, None)].ravel()), w.ravel())
    votes += 1.0 / classes.size
    return votes / votes.sum(axis=1, keepdims=True)


def _compute_issues(pos: np.ndarray, y: np.ndarray, classes: np.ndarray,
                    proba: np.ndarray) -> LabelIssues:
    self_conf = proba[np.arange(pos.size), y]
    # Per-class threshold: the average self-confidence of items given that class.
    thresh = np.bincount(y, weights=self_conf, minlength=classes.size) / np.maximum(
        np.bincount(y, minlength=classes.size), 1)
    best = proba.argmax(axis=1)
    flagged = (best != y) & (self_conf < thresh[y])
    order = np.argsort(self_conf, kind="stable")
    return LabelIssues(
        ranked=pos[order].astype(np.int64),
        score=(1.0 - self_conf[order]).astype(np.float32),
        is_issue=flagged[order],
        suggested=classes[best[order]].astype(np.int64),
    )
