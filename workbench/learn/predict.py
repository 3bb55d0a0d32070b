"""One prediction per item from propagation and the probe, and where the two disagree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import Predictions, check_labels

__all__ = ["Combined", "best_labels", "combine"]


@dataclass(frozen=True)
class Combined(Predictions):
    """:class:`~workbench.learn.Predictions` merged from both models.

    Attributes
    ----------
    origin : (N,) str per item: ``"both"``, ``"probe"``, ``"propagated"`` (which models
        informed the prediction) or ``""`` where neither knew anything.
    disagree : (N,) bool, True where both models had an opinion and their labels differ.
    """

    origin: np.ndarray
    disagree: np.ndarray

    def disagreements(self) -> np.ndarray:
        """Positions where the models disagree, most confident combined prediction last
        (least confident first: those are the ones worth a look)."""
        idx = np.flatnonzero(self.disagree)
        return idx[np.argsort(self.confidence[idx], kind="stable")]


def combine(
    propagation: Predictions | None,
    probe: Predictions | None,
    *,
    probe_weight: float = 0.5,
) -> Combined:
    """Average the two models' probabilities where both exist.

    Parameters
    ----------
    propagation, probe : :class:`Predictions` over the same N items, or None for a model
        that has not run (e.g. not enough labels yet). At least one is needed.
    probe_weight : weight of the probe in the average, in [0, 1] (default 0.5). Items the
        propagation could not reach (label -1) take the probe alone.

    Returns
    -------
    :class:`Combined` with classes = the union of both models' classes.
    """
    if not 0.0 <= probe_weight <= 1.0:
        raise ValueError(f"probe_weight must be in [0, 1], got {probe_weight}")
    given = [p for p in (propagation, probe) if p is not None]
    if not given:
        raise ValueError("combine needs at least one of propagation or probe predictions")
    if len(given) == 2 and propagation.n != probe.n:
        raise ValueError(f"predictions for different items: {propagation.n} vs {probe.n}")
    classes = np.unique(np.concatenate([p.classes for p in given])).astype(np.int64)
    n = given[0].n

    def aligned(p: Predictions | None) -> tuple[np.ndarray, np.ndarray]:
        if p is None:
            return np.zeros((n, classes.size), np.float32), np.zeros(n, bool)
        out = np.zeros((n, classes.size), np.float32)
        out[:, np.searchsorted(classes, p.classes)] = p.proba
        return out, p.label >= 0

    pp, kp = aligned(propagation)
    pr, kr = aligned(probe)
    wp = np.where(kp, 1.0 - probe_weight, 0.0)
    wr = np.where(kr, probe_weight, 0.0)
    both = kp & kr
    # An item known to one model only takes that model whole.
    wp = np.where(kp & ~kr, 1.0, wp)
    wr = np.where(kr & ~kp, 1.0, wr)
    total = wp + wr
    known = total > 0
    proba = np.full((n, classes.size), 1.0 / classes.size, np.float32)
    mix = (pp * wp[:, None] + pr * wr[:, None])[known] / total[known, None]
    proba[known] = mix.astype(np.float32)
    base = Predictions.from_proba(classes, proba, "combined", known=known)
    origin = np.where(both, "both", np.where(kp, "propagated", np.where(kr, "probe", "")))
    lab_p = propagation.label if propagation is not None else np.full(n, -1)
    lab_r = probe.label if probe is not None else np.full(n, -1)
    disagree = both & (lab_p != lab_r)
    return Combined(base.classes, base.proba, base.label, base.confidence, base.source,
                    origin=origin, disagree=disagree)


def best_labels(human: np.ndarray, predictions: Predictions | None) -> np.ndarray:
    """(N,) int64: the human label where there is one, else the predicted label (-1 = none).

    Human labels always win; this is what an export or a score of "the workbench's
    current labels" uses.
    """
    human = check_labels(human)
    if predictions is None:
        return human.copy()
    if predictions.n != human.size:
        raise ValueError(f"{predictions.n} predictions for {human.size} labels")
    return np.where(human >= 0, human, predictions.label).astype(np.int64)
