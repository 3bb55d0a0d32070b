"""Mixing the models' predictions: :func:`mix` (a weighted average item by item, sharpened
by a temperature), :class:`Mixing` (the weights, temperature and calibrator chosen on held-out
labels), :func:`choose_weights`, :func:`fit_temperature`, and :func:`calibrated`, which turns
the mix's top probability into the chance of being right (see :mod:`.calibrate`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .._config import MIX_BLOCK_ROWS, MIX_WEIGHT_STEP, TEMPERATURE_GRID
from ._common import Predictions

if TYPE_CHECKING:
    from .calibrate import Calibrator

__all__ = [
    "Combined",
    "Mixing",
    "calibrated",
    "choose_weights",
    "fit_temperature",
    "lay_out_columns",
    "mix",
    "sharpen",
]


@dataclass(frozen=True)
class Combined(Predictions):
    """:class:`~workbench.learn.Predictions` merged from both models.

    Attributes
    ----------
    origin : (N,) str per item: ``"both"``, ``"probe"``, ``"propagated"`` (which models
        informed the prediction) or ``""`` where neither knew anything.
    disagree : (N,) bool, True where both models had an opinion and their labels differ.
    unknown : (N,) bool, True where the item lies far from every label and its label is
        more likely wrong than right: probably "none of the known classes" (set by
        :func:`calibrated`; all False from :func:`mix`). ``label`` stays the best known
        class; ``confidence`` is then low.

    After :func:`calibrated`, ``confidence`` is the calibrated chance that ``label`` is
    right, no longer ``proba``'s top value.
    """

    origin: np.ndarray
    disagree: np.ndarray
    unknown: np.ndarray | None = None

    def disagreements(self) -> np.ndarray:
        """Positions where the models disagree, most confident combined prediction last
        (least confident first: those are the ones worth a look)."""
        idx = np.flatnonzero(self.disagree)
        return idx[np.argsort(self.confidence[idx], kind="stable")]


def mix(models: Mapping[str, Predictions | None], weights: Mapping[str, float], *,
        temperature: float = 1.0) -> Combined:
    """Weighted average of several models' probabilities, item by item.

    Parameters
    ----------
    models : name -> :class:`Predictions` over the same N items, or None for a model that
        has not run. At least one is needed.
    weights : name -> weight >= 0 (missing names weigh 0). For each item the weights of
        the models that know it (label >= 0) are renormalised; an item known only to
        models of weight 0 takes their plain average, so no item loses its prediction.
    temperature : the mixed probabilities are raised to ``1 / temperature`` and
        renormalised (from :func:`held_out_weights`: above 1 flattens overconfident
        mixes, below 1 sharpens flat ones), so confidence reads as a probability of being
        right.

    Returns
    -------
    :class:`Combined` with classes = the union of the models' classes; ``origin`` is the
    one model that knew an item, ``"both"`` where several did.
    """
    given = {k: p for k, p in models.items() if p is not None}
    if not given:
        raise ValueError("mix needs at least one model's predictions")
    sizes = {p.n for p in given.values()}
    if len(sizes) != 1:
        raise ValueError(f"predictions for different numbers of items: {sorted(sizes)}")
    bad = {k: w for k, w in weights.items() if not (np.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"weights must be finite and >= 0, got {bad}")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    classes = np.unique(np.concatenate([p.classes for p in given.values()])).astype(np.int64)
    n = sizes.pop()
    names = list(given)
    known = np.stack([given[k].label >= 0 for k in names])  # (M, N)
    w = np.array([float(weights.get(k, 0.0)) for k in names])[:, None] * known
    fallback = (w.sum(axis=0) == 0) & known.any(axis=0)
    w[:, fallback] = known[:, fallback]
    total = w.sum(axis=0)
    anyone = total > 0
    cols = {k: np.searchsorted(classes, given[k].classes) for k in names}
    whole = {k: cols[k].size == classes.size for k in names}  # all columns, in order
    proba = np.empty((n, classes.size), np.float32)
    # Row blocks: the float64 work arrays stay MIX_BLOCK_ROWS x C whatever N is (one
    # (N, C) float64 table is 800 MB at 100k items x 1,000 classes).
    for start in range(0, n, MIX_BLOCK_ROWS):
        rows = slice(start, min(start + MIX_BLOCK_ROWS, n))
        acc = np.zeros((rows.stop - start, classes.size), np.float64)
        for j, k in enumerate(names):
            if not w[j, rows].any():
                continue
            part = given[k].proba[rows] * w[j, rows][:, None]
            if whole[k]:
                acc += part
            else:
                acc[:, cols[k]] += part
        ok = anyone[rows]
        block = proba[rows]
        if ok.all():  # in place: no more (rows, C) float64 copies
            acc /= total[rows][:, None]
            block[:] = sharpen(acc, temperature, in_place=True)
        else:
            block[:] = 1.0 / classes.size
            block[ok] = sharpen(acc[ok] / total[rows][ok, None], temperature)
    base = Predictions.from_proba(classes, proba, "combined", known=anyone)
    count = known.sum(axis=0)
    first = np.array(names, dtype=object)[known.argmax(axis=0)]
    origin = np.where(count >= 2, "both", np.where(count == 1, first, "")).astype(str)
    labels = np.stack([given[k].label for k in names])
    lo = np.where(known, labels, np.iinfo(np.int64).max).min(axis=0)
    hi = np.where(known, labels, -1).max(axis=0)
    disagree = (count >= 2) & (lo != hi)
    return Combined(base.classes, base.proba, base.label, base.confidence, base.source,
                    origin=origin, disagree=disagree, unknown=np.zeros(n, bool))


@dataclass(frozen=True)
class Mixing:
    """How to mix the models: ``weights`` (name -> weight) and ``temperature`` for
    :func:`mix`, both chosen on held-out human labels, and the ``calibrator`` that turns
    the mix's features into the chance of being right (None: not fitted)."""

    weights: dict[str, float]
    temperature: float = 1.0
    calibrator: Calibrator | None = None


def choose_weights(held_out: Mapping[str, np.ndarray], truth: np.ndarray, *,
                   step: float = MIX_WEIGHT_STEP) -> dict[str, float]:
    """Mixing weights that predict held-out human labels best.

    Parameters
    ----------
    held_out : name -> (H, C) probabilities of the H held-out labelled items, from a model
        that did not see their labels (columns aligned across models).
    truth : (H,) int column index of each held-out item's human label.
    step : grid spacing on the simplex of weights (default ``MIX_WEIGHT_STEP``).

    Returns
    -------
    name -> weight (summing to 1). Mixes within one standard error of the best held-out
    accuracy count as equal (a model with nearly flat probabilities changes few argmaxes,
    and a few lucky ones are noise); among them the mix leaning most on the models that
    are more accurate alone wins, then the lower log loss, then the more even mix.
    """
    names = list(held_out)
    if not names:
        raise ValueError("choose_weights needs at least one model")
    truth = np.asarray(truth, np.int64)
    probs = [np.asarray(held_out[k], np.float64) for k in names]
    if any(p.shape != probs[0].shape or p.shape[0] != truth.size for p in probs):
        raise ValueError("held-out probabilities must all be (H, C) with H = len(truth)")
    steps = max(1, round(1.0 / step))

    def scores(p: np.ndarray) -> tuple[float, float]:
        if not truth.size:
            return 0.0, 0.0
        acc = float((p.argmax(axis=1) == truth).mean())
        ll = float(np.log(np.clip(p[np.arange(truth.size), truth], 1e-6, None)).mean())
        return acc, ll

    alone = np.array([scores(p)[0] for p in probs])
    tried = []
    for combo in _simplex(len(names), steps):
        w = np.asarray(combo, np.float64) / steps
        acc, ll = scores(sum(wi * pi for wi, pi in zip(w, probs, strict=True)))
        tried.append((acc, ll, w))
    top = max(t[0] for t in tried)
    # Mixes within one standard error of the best accuracy are equally good on this
    # evidence; among those, lean on the models that are more accurate alone.
    slack = float(np.sqrt(top * (1.0 - top) / max(truth.size, 1)))
    near = [t for t in tried if t[0] >= top - slack - 1e-12]
    best = max(near, key=lambda t: (round(float(t[2] @ alone), 9), round(t[1], 9),
                                    -float(np.abs(t[2] - 1.0 / len(names)).sum())))[2]
    return {k: float(v) for k, v in zip(names, best, strict=True)}


def calibrated(combined: Combined, models: Mapping[str, Predictions | None], mixing: Mixing,
               *, log_mass: np.ndarray, distance: np.ndarray) -> tuple[Combined, np.ndarray]:
    """``combined`` with ``confidence`` = the calibrated chance of being right and
    ``unknown`` set; and the (N, F) features (for :func:`~workbench.learn.calibrate.
    estimate_accuracy` later). Without a calibrator, the features only."""
    from .calibrate import confidence_features, model_vote

    given = {k: p for k, p in models.items() if p is not None}
    names = list(given)
    w = np.array([float(mixing.weights.get(k, 0.0)) for k in names])
    votes = []
    for k in names:  # each model's vote in the combined columns, row blocks (no (N, C) copy)
        p = given[k]
        pos = np.searchsorted(combined.classes, p.classes)
        col, knows = model_vote(p.proba, missing=p.classes.size < combined.classes.size)
        votes.append((pos[col] if pos.size else col, knows & (p.label >= 0)))
    feats = confidence_features(combined.proba, votes, w, log_mass, distance)
    if mixing.calibrator is None:
        return combined, feats
    conf = mixing.calibrator.predict(feats)
    conf = np.where(combined.label >= 0, conf, 0.0).astype(np.float32)
    unknown = mixing.calibrator.unknown(feats, conf) & (combined.label >= 0)
    return replace(combined, confidence=conf, unknown=unknown), feats


def lay_out_columns(proba: np.ndarray, have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``proba`` with columns ``have`` laid out as columns ``want`` (missing ones 0)."""
    out = np.zeros((proba.shape[0], want.size), np.float64)
    pos = np.searchsorted(want, have)
    ok = (pos < want.size) & (want[np.minimum(pos, want.size - 1)] == have)
    out[:, pos[ok]] = np.asarray(proba, np.float64)[:, ok]
    return out


def fit_temperature(proba: np.ndarray, truth: np.ndarray) -> float:
    """The temperature (see :func:`mix`) that minimises the log loss of ``proba`` (H, C) on
    the column indices ``truth`` (H,): a one-parameter calibration, as for neural nets
    (Guo et al., 2017), searched on a log grid from 1/4 to 4. The grid is bounded: held-out
    items a mix cannot get right pushed it to its top (50 on the old grid), flattening
    every probability alike (issue 12); the chance of being right is the calibrator's job
    (:mod:`~workbench.learn.calibrate`), this only keeps the probabilities' shape sane."""
    truth = np.asarray(truth, np.int64)
    if truth.size == 0:
        return 1.0
    grid = np.geomspace(*TEMPERATURE_GRID)
    losses = []
    for t in grid:
        p = sharpen(proba, t)
        losses.append(-np.log(np.clip(p[np.arange(truth.size), truth], 1e-9, None)).mean())
    return float(grid[int(np.argmin(losses))])


def sharpen(proba: np.ndarray, temperature: float, *, in_place: bool = False) -> np.ndarray:
    """``proba`` raised to ``1 / temperature``, rows renormalised (in float64);
    ``in_place`` works over ``proba`` itself (a float64 array the caller owns)."""
    if temperature == 1.0:
        return proba
    if in_place and proba.dtype == np.float64:
        logp = np.clip(proba, 1e-12, None, out=proba)
        np.log(logp, out=logp)
    else:
        logp = np.log(np.clip(np.asarray(proba, np.float64), 1e-12, None))
    logp /= temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp, out=logp)
    e /= e.sum(axis=1, keepdims=True)
    return e


def _simplex(m: int, steps: int):
    """All m-tuples of non-negative integers summing to ``steps``."""
    if m == 1:
        yield (steps,)
        return
    for first in range(steps + 1):
        for rest in _simplex(m - 1, steps - first):
            yield (first, *rest)
