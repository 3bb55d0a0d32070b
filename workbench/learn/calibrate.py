"""Confidence that reads as the chance a machine label is right, and how right the labels are.

The models' mixed top probability is a poor chance of being right: it is the probability of
the best *known* class, so an item whose class has no label yet looks as sure as any other,
and held-out checks that hide a class's only cluster used to drive the whole mix flat.

:class:`Calibrator` is a small logistic model of P(correct | features) fitted on human labels
hidden from the models (the held-out folds of :func:`~workbench.learn.held_out_weights`,
which hide whole clusters). A hidden item whose class is absent from its fold's remaining
labels counts as wrong: that is exactly the situation of an unlabelled item of a class
nobody has named yet, so the calibrator learns that far from any label (low propagation
mass, far from the nearest labelled vector, models disagreeing) a label is likely wrong.

It has two factors: P(the item's class has any label | features), fitted with each hidden
cluster weighing the same (the share of hidden clusters whose class had no other label is
the Good-Turing estimate of the chance that a new region's class is unnamed), times
P(right | its class has labels, features), fitted on the other hidden items.

Features per item (:func:`confidence_features`): the logit of the mixed top probability,
the margin to the second class, the share of models agreeing with the mixed label (all
models, even those the mix leaves out: a disagreement is a warning either way),
the log of the label mass propagation brought to the item, and the log of the distance to
the nearest labelled item over the item's own neighbourhood radius.

The calibrator is checked on its own held-out folds against the uncalibrated top
probability and kept only when its held-out log loss is lower; with too few held-out items
it falls back to a constant (the held-out hit rate, shrunk by the number of clusters).
Bootstrap refits over held-out clusters carry its own uncertainty into :func:`estimate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, logit

from .._config import (
    CAL_BOOTSTRAP,
    CAL_BOUNDS,
    CAL_L2,
    CAL_MIN_GROUPS,
    CAL_MODEL_ERROR,
    CAL_UNKNOWN_CONFIDENCE,
)
from ._logistic import fit_logistic, log_loss
from .accuracy import estimate_accuracy, expected_calibration_error
from .features import (
    FEATURES,
    confidence_features,
    label_mass,
    log_mass,
    model_vote,
    nearest_labelled_distance,
    neighbour_radius,
)

__all__ = [
    "FEATURES",
    "Calibrator",
    "confidence_features",
    "estimate_accuracy",
    "expected_calibration_error",
    "fallback_calibrator",
    "fit_calibrator",
    "label_mass",
    "log_mass",
    "model_vote",
    "nearest_labelled_distance",
    "neighbour_radius",
]

@dataclass(frozen=True)
class Calibrator:
    """P(a machine label is right | :func:`confidence_features`).

    Attributes
    ----------
    kind : ``"logistic"`` (the fitted model), ``"constant"`` (too few held-out items: the
        held-out hit rate) or ``"identity"`` (the model lost to the uncalibrated top
        probability on its own held-out check, which is then used as is).
    mean, scale : (F,) feature standardisation.
    coef : (F + 1,) intercept then weights on standardised features (``kind="logistic"``).
    rate : the held-out hit rate (``kind="constant"``).
    boot : (B, F + 1) bootstrap refits over held-out clusters (B rows of rates for
        ``"constant"``); the spread of the calibrator itself.
    check : held-out figures: ``n``, ``groups``, ``log_loss`` (calibrated, out of fold),
        ``log_loss_uncalibrated``, ``ece``, ``ece_uncalibrated``, ``hit_rate``.
    unknown_mass : items whose log label mass is below this and whose confidence is below
        ``CAL_UNKNOWN_CONFIDENCE`` are flagged as "none of the known classes".
    lo, hi : (F,) range of the features it was fitted on (clipped to, when predicting).
    known_coef, known_boot : the factor P(the item's class has labels | features) and its
        bootstrap refits (None: every held-out item's class had labels).
    """

    kind: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    rate: float
    boot: np.ndarray
    check: dict = field(default_factory=dict)
    unknown_mass: float = -np.inf
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    known_coef: np.ndarray | None = None
    known_boot: np.ndarray | None = None

    def _z(self, f: np.ndarray) -> np.ndarray:
        """Standardised features, clipped to the range the model was fitted on (half a
        standard deviation beyond): a logistic slope extrapolated far past its evidence
        would claim certainty either way."""
        if self.lo is not None:
            f = np.clip(f, self.lo, self.hi)
        return (f - self.mean) / self.scale

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N,) float64 P(correct) for (N, F) features."""
        f = np.asarray(features, np.float64)
        if self.kind == "constant":
            return np.full(f.shape[0], self.rate)
        if self.kind == "identity":
            return expit(f[:, 0])
        z = self._z(f)
        p = _bounded(self.coef[0] + z @ self.coef[1:])
        if self.known_coef is not None:
            p = p * _bounded(self.known_coef[0] + z @ self.known_coef[1:])
        return p

    def boot_sums(self, features: np.ndarray, weight: np.ndarray | None = None, *,
                  block: int = 65_536) -> np.ndarray:
        """(B,) float64 sum over items of ``weight`` (N,) x P(correct) under each bootstrap
        refit, block by block (B x N at once would not fit at a million items)."""
        f = np.asarray(features, np.float64)
        wt = np.ones(f.shape[0]) if weight is None else np.asarray(weight, np.float64)
        if self.kind == "constant" or self.boot.ndim == 1:
            return np.asarray(self.boot, np.float64).ravel() * float(wt.sum())
        if self.boot.shape[0] == 0:
            return np.zeros(0)
        out = np.zeros(self.boot.shape[0])
        for s in range(0, f.shape[0], block):
            z = self._z(f[s:s + block])
            p = _bounded(self.boot[:, :1] + self.boot[:, 1:] @ z.T)
            if self.known_boot is not None:
                p *= _bounded(self.known_boot[:, :1] + self.known_boot[:, 1:] @ z.T)
            out += p @ wt[s:s + block]
        return out

    def model_error(self) -> float:
        """Standard deviation of the calibrator's error in a mean confidence: its
        out-of-fold error in the mean on the held-out items, at least
        ``CAL_MODEL_ERROR``."""
        bias = self.check.get("bias")
        return max(abs(bias) if bias is not None else 0.0, CAL_MODEL_ERROR)

    def unknown(self, features: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """(N,) bool: probably wrong, and more likely of a class with no label than not
        (the ``known`` factor; without one, far from every label by the label mass):
        "none of the known classes"."""
        f = np.asarray(features, np.float64)
        unsure = np.asarray(confidence) < CAL_UNKNOWN_CONFIDENCE
        if self.kind == "logistic" and self.known_coef is not None:
            z = self._z(f)
            return unsure & (expit(self.known_coef[0] + z @ self.known_coef[1:]) < 0.5)
        return (f[:, 3] < self.unknown_mass) & unsure


def fit_calibrator(features: np.ndarray, correct: np.ndarray, groups: np.ndarray, *,
                   present: np.ndarray | None = None, folds: np.ndarray | None = None,
                   weight: np.ndarray | None = None,
                   right_weight: np.ndarray | None = None, l2: float = CAL_L2,
                   n_boot: int = CAL_BOOTSTRAP, seed: int = 0) -> Calibrator:
    """Fit P(correct | features) on held-out human labels.

    With ``present``, in two factors: P(the item's class has labels | features), fitted on
    all items with ``weight`` (each hidden cluster weighing the same: the share of clusters
    whose class had no other labels is the Good-Turing estimate of the chance that a new
    region's class has no label yet), times P(correct | class has labels, features),
    fitted on the items whose class kept labels, each item weighing the same.

    Parameters
    ----------
    features : (H, F) :func:`confidence_features` of H held-out labelled items, computed
        from models that did not see their labels.
    correct : (H,) bool, the mixed label equals the human label.
    groups : (H,) int cluster id of each item (bootstrap and folds resample clusters).
    present : (H,) bool, the item's class kept labels in its fold (default all True); an
        item whose class was hidden entirely counts as wrong.
    folds : (H,) int fold of each item for the held-out check of the calibrator itself
        (default: the groups, up to 5 folds).
    weight : (H,) weight of each item in the first factor (default 1).
    right_weight : (H,) weight of each item in the second factor (default 1).
    l2 : ridge strength on standardised weights (default ``CAL_L2``).
    n_boot : bootstrap refits (default ``CAL_BOOTSTRAP``).

    Returns
    -------
    :class:`Calibrator`. With fewer than ``CAL_MIN_GROUPS`` clusters, or only right or only
    wrong items, a factor is a constant: its rate over clusters, shrunk towards 1/2.
    """
    f = np.asarray(features, np.float64)
    y = np.asarray(correct, bool)
    groups = np.asarray(groups, np.int64)
    if f.ndim != 2 or y.shape != (f.shape[0],) or groups.shape != y.shape:
        raise ValueError(f"features (H, F), correct (H,) and groups (H,) must align; got "
                         f"{f.shape}, {y.shape}, {groups.shape}")
    known = np.ones(y.size, bool) if present is None else np.asarray(present, bool)
    y = y & known
    wt = np.ones(y.size) if weight is None else np.asarray(weight, np.float64)
    if wt.shape != y.shape or not np.all(np.isfinite(wt) & (wt >= 0)):
        raise ValueError("weight must be (H,) finite and >= 0")
    wt = wt * (y.size / wt.sum()) if wt.sum() > 0 else np.ones(y.size)
    rng = np.random.default_rng(seed)
    units, gidx = np.unique(groups, return_inverse=True)
    nf = f.shape[1]
    mean = f.mean(axis=0) if f.size else np.zeros(nf)
    scale = f.std(axis=0) if f.size else np.ones(nf)
    scale = np.where(scale > 1e-9, scale, 1.0)
    lo, hi = (f.min(axis=0) - 0.5 * scale, f.max(axis=0) + 0.5 * scale) if f.size else \
        (None, None)
    z = (f - mean) / scale
    masks = _boot_masks(gidx, units.size, n_boot, rng)
    rate = _shrunk_rate(y, gidx, units.size)
    unknown_mass = _unknown_mass(f, y)
    base = {"n": int(y.size), "groups": int(units.size), "hit_rate": rate}
    if units.size < CAL_MIN_GROUPS or y.all() or not y.any():
        boot = np.array([_shrunk_rate(y[m], gidx[m], units.size) for m in masks]) \
            if y.size else np.linspace(0.05, 0.95, 19)
        return Calibrator("constant", mean, scale, np.zeros(nf + 1), rate, boot, base,
                          unknown_mass)
    ones = np.ones(y.size) if right_weight is None else np.asarray(right_weight, np.float64)
    right = _Factor.fit(z, y, known, gidx, units.size, ones, l2, masks)
    has_class = (_Factor.fit(z, known, np.ones(y.size, bool), gidx, units.size, wt, l2, masks)
                 if not known.all() else None)
    # The calibrator's own held-out check: out-of-fold predictions, fold by fold.
    folds = _default_folds(gidx, units.size) if folds is None else np.asarray(folds, np.int64)
    oof = np.full(y.size, 0.5)
    oof_const = np.full(y.size, 0.5)
    for k in np.unique(folds):
        test, train = folds == k, folds != k
        if train.sum() < 2:
            continue
        zt = _clip_to(z, train)
        p = _Factor.fit(z[train], y[train], known[train], gidx[train], units.size,
                        ones[train], l2, []).predict(zt[test])
        if has_class is not None:
            p = p * _Factor.fit(z[train], known[train], np.ones(int(train.sum()), bool),
                                gidx[train], units.size, wt[train], l2, []).predict(zt[test])
        oof[test] = p
        oof_const[test] = _shrunk_rate(y[train], gidx[train], np.unique(gidx[train]).size)
    raw = expit(f[:, 0])
    check = {
        **base,
        "log_loss": log_loss(oof, y), "log_loss_uncalibrated": log_loss(raw, y),
        "log_loss_constant": log_loss(oof_const, y),
        "bias": float(np.mean(oof - y)),
        "ece": expected_calibration_error(oof, y),
        "ece_uncalibrated": expected_calibration_error(raw, y),
        "class_hidden": float(np.average(~known, weights=wt)),
    }
    if check["log_loss"] > min(check["log_loss_uncalibrated"], check["log_loss_constant"]):
        # Never worse than leaving it alone: the better of the two simpler answers.
        if check["log_loss_uncalibrated"] <= check["log_loss_constant"]:
            check["bias"] = float(np.mean(raw - y))
            return Calibrator("identity", mean, scale, right.coef, rate,
                              np.zeros((0, nf + 1)), check, unknown_mass)
        check["bias"] = float(np.mean(oof_const - y))
        boot = np.array([_shrunk_rate(y[m], gidx[m], units.size) for m in masks])
        return Calibrator("constant", mean, scale, right.coef, rate, boot, check,
                          unknown_mass)
    return Calibrator("logistic", mean, scale, right.coef, rate, right.boot, check,
                      unknown_mass, lo, hi,
                      None if has_class is None else has_class.coef,
                      None if has_class is None else has_class.boot)


def _clip_to(z: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``z`` clipped to the range of its ``rows``, half a standard deviation beyond."""
    return np.clip(z, z[rows].min(0) - 0.5, z[rows].max(0) + 0.5)


@dataclass(frozen=True)
class _Factor:
    """One logistic factor of the calibrator: ``coef`` (F + 1,) and ``boot`` (B, F + 1)."""

    coef: np.ndarray
    boot: np.ndarray

    @classmethod
    def fit(cls, z: np.ndarray, y: np.ndarray, rows: np.ndarray, gidx: np.ndarray,
            n_units: int, wt: np.ndarray, l2: float, masks: list[np.ndarray]) -> _Factor:
        """Fit on ``rows`` (bool); a constant (the shrunk rate) where a fit is not possible;
        refit on each bootstrap resample ``masks`` (index arrays)."""
        nf = z.shape[1]

        def one(idx: np.ndarray) -> np.ndarray:
            idx = idx[rows[idx]]
            yy = y[idx]
            if np.unique(gidx[idx]).size < CAL_MIN_GROUPS or yy.all() or not yy.any():
                r = _shrunk_rate(yy, gidx[idx], n_units)
                return np.r_[logit(np.clip(r, 0.01, 0.99)), np.zeros(nf)]
            return fit_logistic(z[idx], yy, l2, wt[idx])

        coef = one(np.arange(y.size))
        boot = np.array([one(m) for m in masks]) if masks else np.zeros((0, nf + 1))
        return cls(coef, boot)

    def predict(self, z: np.ndarray) -> np.ndarray:
        return _bounded(self.coef[0] + z @ self.coef[1:])


def _boot_masks(gidx: np.ndarray, n_units: int, n_boot: int, rng) -> list[np.ndarray]:
    """Index arrays of ``n_boot`` resamples of whole clusters (with replacement)."""
    members = [np.flatnonzero(gidx == u) for u in range(n_units)]
    out = []
    for _ in range(n_boot):
        pick = rng.integers(0, n_units, n_units)
        out.append(np.concatenate([members[u] for u in pick]) if n_units else
                   np.zeros(0, np.int64))
    return out


def _default_folds(gidx: np.ndarray, n_units: int) -> np.ndarray:
    parts = min(5, n_units)
    return (np.arange(n_units) % parts)[gidx]


def _shrunk_rate(y: np.ndarray, gidx: np.ndarray, n_units: int) -> float:
    """The hit rate over clusters, shrunk towards 1/2 as if one more right and one more wrong
    cluster had been seen: with two clusters held out, no rate is sure."""
    if y.size == 0:
        return 0.5
    per = np.bincount(gidx, weights=y.astype(float), minlength=n_units)
    size = np.bincount(gidx, minlength=n_units)
    seen = size > 0
    g = int(seen.sum())
    return float((np.sum(per[seen] / size[seen]) + 1.0) / (g + 2.0))


def _unknown_mass(f: np.ndarray, y: np.ndarray) -> float:
    """Below this log label mass, a held-out item was wrong more often than right."""
    if not y.size or y.all():
        return -np.inf
    right = f[y, 3]
    if not right.size:
        return np.inf
    return float(np.quantile(right, 0.05))


def _bounded(x: np.ndarray) -> np.ndarray:
    """A fitted factor's probability, kept within ``CAL_BOUNDS``: a few dozen held-out
    clusters never justify certainty, and one confident miss costs a log loss of 10."""
    return np.clip(expit(x), CAL_BOUNDS[0], CAL_BOUNDS[1])


def fallback_calibrator(n_features: int = len(FEATURES)) -> Calibrator:
    """With no held-out check possible (labels in fewer than two clusters): a coin flip,
    with a bootstrap spread as wide as the unit interval allows."""
    return Calibrator("constant", np.zeros(n_features), np.ones(n_features),
                      np.zeros(n_features + 1), 0.5, np.linspace(0.05, 0.95, 19),
                      {"n": 0, "groups": 0, "hit_rate": None})
