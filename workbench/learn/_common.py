"""Shared pieces of the learning modules: the prediction result and input checks."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._config import MANY_CLASSES, NORMALISE_ROW_BLOCK

__all__ = [
    "NotEnoughLabels",
    "Predictions",
    "Propagation",
    "check_labels",
    "labelled_classes",
    "normalise_rows",
    "side_by_side",
    "warn_if_many_classes",
]


class NotEnoughLabels(ValueError):
    """Too few human labels (or classes) for a model to say anything.

    A ``ValueError``, so code that guards against bad input catches it; the message says how
    many labels and classes were found and how many are needed.
    """


@dataclass(frozen=True)
class Predictions:
    """A prediction for every item.

    Attributes
    ----------
    classes : (C,) int64 class ids; column ``j`` of ``proba`` is class ``classes[j]``.
    proba : (N, C) float32 class probabilities, rows sum to 1 (uniform where the model
        has no information, e.g. a graph component without labels).
    label : (N,) int64 predicted class id (``classes[argmax]``); -1 where nothing is known.
    confidence : (N,) float32 probability of the predicted class; 0 where ``label`` is -1.
    source : which model made it: ``"propagated"``, ``"probe"``, ``"combined"`` or
        ``"zeroshot"``.
    """

    classes: np.ndarray
    proba: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    source: str

    @property
    def n(self) -> int:
        return int(self.proba.shape[0])

    def margin(self) -> np.ndarray:
        """(N,) float32 top-1 minus top-2 probability: small = the model hesitates."""
        if self.proba.shape[1] < 2:
            return np.ones(self.n, np.float32)
        part = np.partition(self.proba, -2, axis=1)
        return (part[:, -1] - part[:, -2]).astype(np.float32)

    @classmethod
    def from_proba(
        cls, classes: np.ndarray, proba: np.ndarray, source: str, *, known: np.ndarray | None = None
    ) -> Predictions:
        """Build from probabilities; ``known`` (N,) bool marks rows with any information."""
        classes = np.asarray(classes, np.int64)
        proba = np.asarray(proba, np.float32)
        best = proba.argmax(axis=1)
        label = classes[best] if classes.size else np.full(proba.shape[0], -1, np.int64)
        conf = proba[np.arange(proba.shape[0]), best] if classes.size else np.zeros(0)
        conf = np.asarray(conf, np.float32)
        if known is not None:
            label = np.where(known, label, -1)
            conf = np.where(known, conf, 0.0).astype(np.float32)
        return cls(classes, proba, label.astype(np.int64), conf, source)


@dataclass(frozen=True)
class Propagation(Predictions):
    """:class:`~workbench.learn.Predictions` of label spreading, plus what a warm start needs.

    Attributes
    ----------
    n_iter : conjugate-gradient iterations used (the most any block of classes needed).
    converged : whether the relative residual reached ``tol`` within ``max_iter``.
    mass : (N,) float64 label mass reaching each item: the row sums of the scores clipped
        at 0 (what ``calibrate.label_mass`` takes the log of), without an (N, C) copy.
    scores : (N, C) raw spreading scores ``F`` (columns aligned with ``classes``), made on
        demand as ``proba * mass`` (float32, clipped at 0): with many classes a second
        stored (N, C) table per propagation is what memory could not afford (400 MB at
        100k items x 1,000 classes). Solves with ``tol`` < 1e-6 (float64) keep their exact,
        unclipped scores. :meth:`score_columns` makes only some columns.
    """

    n_iter: int
    converged: bool
    mass: np.ndarray
    exact_scores: np.ndarray | None = field(default=None, repr=False)

    @property
    def scores(self) -> np.ndarray:
        return self.score_columns(slice(None))

    def score_columns(self, columns: np.ndarray | slice) -> np.ndarray:
        """(N, len(columns)) scores of some classes (positions in ``classes``)."""
        if self.exact_scores is not None:
            return self.exact_scores[:, columns]
        return self.proba[:, columns] * self.mass.astype(np.float32)[:, None]


def normalise_rows(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, C) float32 probabilities (scores clipped at 0, rows summing to 1, uniform where a
    row has no mass), (N,) bool rows with mass and (N,) float64 the mass itself.

    Row block by row block, written over float32 ``scores`` (which becomes the answer), so
    no second (N, C) array is made; float64 scores are left as they are.
    """
    n, c = scores.shape
    proba = scores if scores.dtype == np.float32 else np.empty((n, c), np.float32)
    known = np.empty(n, bool)
    mass = np.empty(n, np.float64)
    for r0 in range(0, n, NORMALISE_ROW_BLOCK):
        f = np.maximum(scores[r0:r0 + NORMALISE_ROW_BLOCK], scores.dtype.type(0.0))
        rows = slice(r0, r0 + f.shape[0])
        mass[rows] = f.sum(axis=1, dtype=np.float64)
        total = f.sum(axis=1)
        k = total > 1e-12
        np.divide(f, total[:, None], out=f, where=k[:, None])
        f[~k] = 1.0 / c
        proba[rows] = f
        known[rows] = k
    return proba, known, mass


def check_labels(labels: np.ndarray, n: int | None = None) -> np.ndarray:
    """``labels`` as a (N,) int64 array of class ids, -1 = unlabelled; clear errors otherwise."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one class id per item, shape (N,), got {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integer class ids (-1 = unlabelled), not {arr.dtype}; "
            "use LabelStore.state.human"
        )
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < -1:
        raise ValueError(f"labels must be class ids >= 0 or -1 for unlabelled; found {arr.min()}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{arr.shape[0]} labels for {n} items; give one per item (-1 = none)")
    return arr


def labelled_classes(labels: np.ndarray, *, what: str, min_per_class: int = 1) -> np.ndarray:
    """(C,) sorted class ids present in ``labels``; ``NotEnoughLabels`` below 2 classes.

    ``what`` names the model in the message (e.g. "propagation").
    """
    lab = labels[labels >= 0]
    classes, counts = np.unique(lab, return_counts=True)
    if lab.size < 2 or classes.size < 2:
        raise NotEnoughLabels(
            f"{what} needs human labels in at least 2 classes (at least 2 labelled items); "
            f"got {lab.size} labelled item(s) in {classes.size} class(es). "
            "Label a few items of another class first."
        )
    if counts.min() < min_per_class:
        raise NotEnoughLabels(
            f"{what} needs at least {min_per_class} labelled items per class; class "
            f"{int(classes[counts.argmin()])} has {int(counts.min())}."
        )
    return classes.astype(np.int64)


def warn_if_many_classes(n_classes: int, what: str) -> None:
    """``warnings.warn`` (a ``UserWarning``, shown once per class count and caller by
    Python's default filter) when ``n_classes`` exceeds ``MANY_CLASSES``.

    ``what`` names the model in the message (e.g. "label propagation").
    """
    if n_classes > MANY_CLASSES:
        warnings.warn(
            f"{what} over {n_classes} classes (more than {MANY_CLASSES}): each retrain's "
            f"time and memory grow with the class count (every model keeps an "
            f"(items x classes) float32 table, {n_classes * 4 / 1000:.1f} MB per 1,000 "
            "items). Merge rare classes, or label in stages, if retrains get slow.",
            UserWarning,
            stacklevel=3,
        )


def side_by_side(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """``first()`` in a worker thread while ``second()`` runs in this one; both results.

    For two independent fits that release the GIL (label propagation's compiled loops and
    the probe's torch steps): on two cores they take the time of the longer one, not the
    sum. An exception of ``second`` is raised once ``first`` has finished, then one of
    ``first``; the results are exactly those of running them one after the other.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = first()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    worker = threading.Thread(target=run, name="workbench-side-by-side", daemon=True)
    worker.start()
    try:
        other = second()
    finally:
        worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"], other
