"""Held-out checks of the models: hide the labelled items fold by fold (whole proposed
clusters, and single items of the clusters kept), predict them from the rest
(:func:`held_out_predictions`), and choose the :class:`~workbench.learn.mixing.Mixing` on
what they got right (:func:`mixing_from_held_out`, :func:`held_out_weights`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._config import (
    HELD_OUT_PROPAGATION_TOL,
    HELD_OUT_SEED,
    MANY_CLASSES,
    MIX_FOLDS,
    MIX_HOLDOUT_FRACTION,
    RULES_MIN_CONFIDENCE,
    RULES_MIX_STEPS,
)
from ..neighbors import KnnGraph
from ._common import NotEnoughLabels, check_labels, side_by_side
from .mixing import Mixing, choose_weights, fit_temperature, lay_out_columns, sharpen
from .spot_checks import spot_check_folds, spot_checked_calibrator

__all__ = ["HeldOut", "held_out_predictions", "held_out_weights", "mixing_from_held_out",
           "with_optional"]


@dataclass(frozen=True)
class HeldOut:
    """Predictions of the H labelled items from models that did not see their labels.

    Attributes
    ----------
    positions : (H,) int64 item positions.
    classes : (C,) int64 the labelled classes (columns of ``proba``).
    truth : (H,) int64 column of each item's human label.
    proba : name -> (H, C) float64 held-out probabilities (NaN rows: the model could not
        run in that item's fold).
    present : (H,) bool, the item's class kept labels in its fold (False: the fold hid the
        class entirely, so no model could have named it).
    fold, group : (H,) int64 the item's fold and its hidden block (cluster, or item).
    log_mass : (H,) :func:`~workbench.learn.calibrate.label_mass` of the fold's propagation.
    distance : (H,) distance to the fold's nearest labelled item (log, over the item's
        neighbourhood radius in the first graph).
    within : (H,) bool, the row hides a single item of a cluster that kept other labels
        (rows are (item, fold) pairs: with clusters, an item can be hidden twice, once
        with its cluster and once alone).
    spot : (H,) float, the row's weight as a spot check (0: not from a spot-check fold,
        which hides only random items a person labelled, :mod:`~workbench.learn.spot_checks`).
    """

    positions: np.ndarray
    classes: np.ndarray
    truth: np.ndarray
    proba: dict[str, np.ndarray]
    present: np.ndarray
    fold: np.ndarray
    group: np.ndarray
    log_mass: np.ndarray
    distance: np.ndarray
    within: np.ndarray
    spot: np.ndarray | None = None


def held_out_predictions(
    human: np.ndarray,
    graphs: Mapping[str, KnnGraph],
    probe: Any = None,
    *,
    vectors: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    folds: int = MIX_FOLDS,
    seed: int = HELD_OUT_SEED,
    fitted: Mapping[str, Any] | None = None,
    rules: np.ndarray | None = None,
    rules_probe: Any = None,
    spot: np.ndarray | None = None,
) -> HeldOut | None:
    """Hide the labelled items fold by fold and predict them from the rest (see
    :func:`held_out_weights` for the parameters); None when fewer than 2 blocks of labels
    can be hidden.

    ``rules`` (optional, (N, R) votes): each fold also refits the label model on the rules
    with the fold's human labels hidden (model ``"rules"``) and, with ``rules_probe`` (the
    probe fitted on human plus confident rule labels), refits that probe with its L2 on the
    fold's labels (``"rules_probe"``): the hidden labels never reach the rules' models.

    ``fitted`` (optional): name -> the :class:`~workbench.learn.Propagation` of all of
    ``human`` over ``graphs[name]`` (other entries are ignored). Above ``MANY_CLASSES``
    classes each fold then solves only the columns of classes that lost a label, started
    from these, to ``HELD_OUT_PROPAGATION_TOL``
    (:func:`~workbench.learn.propagate.fold_propagation`), and refits the probe
    once with its L2 and temperature (:meth:`~workbench.learn.LinearProbe.refit`). At or
    below ``MANY_CLASSES`` nothing changes: cold propagations and two-fold probe refits.
    Above ``MANY_CLASSES``, ``folds`` is 1 whatever is asked (one split is hidden).

    ``spot`` (optional, (N,) float): weight of each spot-checked item (0: not one); extra
    folds hide only those (:func:`~workbench.learn.spot_checks.spot_check_folds`).
    """
    from .calibrate import log_mass, nearest_labelled_distance, neighbour_radius
    from .probe import LinearProbe
    from .propagate import Propagation, fold_propagation, propagate

    human = check_labels(human)
    if probe is not None and vectors is None:
        raise ValueError("held_out_weights needs the vectors to refit the probe per fold")
    lab = np.flatnonzero(human >= 0)
    classes = np.unique(human[lab])
    many = classes.size > MANY_CLASSES
    full = {k: p for k, p in (fitted or {}).items()
            if many and k in graphs and isinstance(p, Propagation)}
    if many:
        # Each fold costs about a retrain (100k items x 1,000 classes: five folds took 92
        # s of a 134 s retrain): one MIX_HOLDOUT_FRACTION split, as for very many items.
        folds = 1
    block = lab if groups is None else np.asarray(groups, np.int64)[lab]
    units = np.unique(block)
    if units.size < 2:
        return None
    parts = folds if folds >= 2 else round(1.0 / MIX_HOLDOUT_FRACTION)
    parts = min(parts, units.size)
    fold_of_unit = np.random.default_rng(seed).permutation(units.size) % parts
    fold = fold_of_unit[np.searchsorted(units, block)]
    # With clusters, each fold also hides a few single items of the clusters it keeps: the
    # calibrator needs examples of items near labels of their own class as well as of
    # items far from them (a fold hiding a class's only cluster has only the latter).
    item_fold = (np.random.default_rng(seed + 1).permutation(lab.size) % (2 * parts)
                 if groups is not None else np.full(lab.size, -1))
    names = [*graphs, *(["probe"] if probe is not None else []),
             *(["rules"] if rules is not None else []),
             *(["rules_probe"] if rules is not None and rules_probe is not None else [])]
    rows: list[dict[str, Any]] = []
    first = next(iter(graphs), None)
    radius = (neighbour_radius(graphs[first])
              if first is not None and isinstance(graphs[first], KnnGraph) else None)
    jobs = [(f, fold == f, item_fold == f, False) for f in range(parts if folds >= 2 else 1)]
    spots = spot_check_folds(spot, lab, seed, one=folds < 2, vectors=vectors)
    jobs += [(parts + j, np.zeros(lab.size, bool), m, True) for j, m in enumerate(spots)]
    for f, whole, alone, is_spot in jobs:
        hide = whole | alone
        if not hide.any():
            continue
        pos = lab[hide]
        train = human.copy()
        train[pos] = -1
        row: dict[str, Any] = {
            "at": np.flatnonzero(hide), "fold": np.full(pos.size, f),
            "within": ~whole[hide],
            "spot": np.asarray(spot, np.float64)[pos] if is_spot else np.zeros(pos.size),
            "present": np.isin(human[pos], train[train >= 0]),
            "log_mass": np.full(pos.size, np.log(1e-6)),
            "distance": (nearest_labelled_distance(vectors, np.flatnonzero(train >= 0), pos,
                                                   radius=radius)
                         if vectors is not None else np.zeros(pos.size)),
            **{k: np.full((pos.size, classes.size), np.nan) for k in names},
        }

        def spread(train=train, pos=pos) -> dict[str, tuple]:
            got_all = {}
            for name, graph in graphs.items():
                try:
                    if name in full:  # many classes: only the columns that lost a label
                        got_all[name] = fold_propagation(graph, human, pos, full[name],
                                                         tol=HELD_OUT_PROPAGATION_TOL)
                    else:
                        p = propagate(graph, train)
                        got_all[name] = (p.classes, p.proba[pos], p.mass[pos])
                        del p
                except NotEnoughLabels:
                    continue
            return got_all

        def refit(train=train, pos=pos) -> tuple | None:
            if probe is None:
                return None
            try:
                if many:
                    fp = probe.refit(vectors, train)
                else:
                    fp = LinearProbe(l2_grid=(probe.l2_,), cv=2, device=probe.device_)
                    fp.fit(vectors, train)
            except NotEnoughLabels:
                return None
            return fp.classes_, fp.predict_proba(vectors[pos])

        # The fold's propagations and its probe refit are independent: side by side.
        spread_out, probe_out = side_by_side(spread, refit)
        for name, (got, proba, mass) in spread_out.items():
            row[name] = lay_out_columns(proba, got, classes)
            if name == first:
                row["log_mass"] = log_mass(mass)
        if probe_out is not None:
            row["probe"] = lay_out_columns(probe_out[1], probe_out[0], classes)
        if rules is not None:
            row.update(_rules_fold(rules, rules_probe, train, pos, vectors, classes))
        rows.append(row)
    if not rows:
        return None

    def cat(key: str) -> np.ndarray:
        return np.concatenate([r[key] for r in rows])

    at = cat("at")
    return HeldOut(lab[at], classes.astype(np.int64), np.searchsorted(classes, human[lab[at]]),
                   {k: cat(k) for k in names}, cat("present"), cat("fold").astype(np.int64),
                   block[at].astype(np.int64), cat("log_mass"), cat("distance"),
                   cat("within"), cat("spot"))



def _rules_fold(rules: np.ndarray, rules_probe: Any, train: np.ndarray, pos: np.ndarray,
                vectors: np.ndarray | None, classes: np.ndarray) -> dict[str, np.ndarray]:
    """The rules' models of one fold at the hidden ``pos``, fitted on ``train`` only."""
    from .label_model import fit_label_model, weak_labels
    from .probe import LinearProbe

    lm = fit_label_model(rules, train)
    out = {"rules": _renormalised(lay_out_columns(lm.proba[pos], lm.classes, classes))}
    if rules_probe is not None and vectors is not None:
        try:
            fp = LinearProbe(l2_grid=(rules_probe.l2_,), cv=2, device=rules_probe.device_)
            fp.fit(vectors, weak_labels(lm, train, RULES_MIN_CONFIDENCE))
        except NotEnoughLabels:
            return out
        out["rules_probe"] = _renormalised(lay_out_columns(fp.predict_proba(vectors[pos]),
                                                           fp.classes_, classes))
    return out


def _renormalised(proba: np.ndarray) -> np.ndarray:
    """Rows summing to 1 (a row with no mass left on the labelled classes: uniform)."""
    total = proba.sum(axis=1, keepdims=True)
    return np.divide(proba, total, out=np.full_like(proba, 1.0 / proba.shape[1]),
                     where=total > 0)


def held_out_weights(
    human: np.ndarray,
    graphs: Mapping[str, KnnGraph],
    probe: Any = None,
    *,
    vectors: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    folds: int = MIX_FOLDS,
    seed: int = HELD_OUT_SEED,
    calibrate: bool = True,
    fitted: Mapping[str, Any] | None = None,
) -> Mixing | None:
    """Weights (a temperature, and a confidence calibrator) for :func:`mix` of the
    propagations over ``graphs`` and the probe, chosen on human labels hidden from them.

    The labelled items are split into ``folds`` folds; each fold's labels are hidden in
    turn, every graph propagates the rest, the probe is refitted on the rest, and
    :func:`choose_weights` picks the mix that predicts the hidden labels best. With
    ``groups`` (a cluster id per item) whole clusters are hidden together: the items a
    workbench must predict lie away from the labelled ones, and hiding single labels
    inside labelled clusters would favour whichever model copies its nearest neighbours
    (on MNIST it picks the vectors' graph alone, 88% on the unlabelled items, where the
    map's graph gets 92%; hiding whole clusters finds the latter). Pixels favour the
    graphs, good embeddings the probe, a UMAP map the map's graph: measured on the user's
    own labels, not assumed.

    Weights and temperature are scored only on hidden items whose class kept labels in
    their fold: a fold that hides a class's only cluster says nothing about how to mix
    (no model can name the class) and used to drive the temperature to its cap. The
    calibrator (:func:`~workbench.learn.calibrate.fit_calibrator`) learns from all hidden
    items, those of a hidden class counted wrong: the case of an item whose class has no
    label yet.

    Parameters
    ----------
    human : (N,) int64 human class ids, -1 = unlabelled.
    graphs : name -> the graph a propagation of that name runs on (the first one, the
        vectors' graph, gives the calibration features their label mass and
        neighbourhood radius).
    probe : a fitted :class:`~workbench.learn.LinearProbe` (refitted per fold with its
        chosen L2 strength), or None.
    vectors : (N, D) embeddings the probe was fitted on (needed with ``probe``; without,
        the distance feature of the calibrator is 0).
    groups : optional (N,) int cluster id per item; labels are hidden cluster by cluster.
    folds : number of folds (default ``MIX_FOLDS``); 1 hides a single
        ``MIX_HOLDOUT_FRACTION`` (for very large collections, where each propagation
        counts).
    seed : seed of the fold split.
    calibrate : also fit the calibrator (default True).
    fitted : name -> the propagation of all of ``human`` over that graph (see
        :func:`held_out_predictions`; used above ``MANY_CLASSES`` classes only).

    Returns
    -------
    :class:`Mixing`: name -> weight (the probe as ``"probe"``), the temperature that
    calibrates the mix's probabilities on the same hidden labels, and the calibrator;
    None when fewer than 2 labelled items or blocks can be hidden.
    """
    held = held_out_predictions(human, graphs, probe, vectors=vectors, groups=groups,
                                folds=folds, seed=seed, fitted=fitted)
    if held is None:
        return None
    return mixing_from_held_out(held, calibrate=calibrate)


def mixing_from_held_out(held: HeldOut, *, calibrate: bool = True,
                         optional: Sequence[str] = ()) -> Mixing | None:
    """:class:`Mixing` chosen on :func:`held_out_predictions` (see :func:`held_out_weights`).

    ``optional``: models (the rules' ``"rules"`` and ``"rules_probe"``) that only add to
    the mix of the others, by a share chosen on the held-out labels (:func:`with_optional`).
    """
    from .calibrate import confidence_features, fit_calibrator

    names = list(held.proba)
    spot = np.zeros(held.truth.size, bool) if held.spot is None else held.spot > 0
    keep = np.ones(held.truth.size, bool)
    for k in names:
        keep &= np.isfinite(held.proba[k]).all(axis=1)
    checked = keep & spot  # the spot-check folds: they correct the calibrator, below
    keep &= ~spot
    if keep.sum() < 2:
        return None
    # Weights are scored on whole hidden clusters (the items a workbench must predict lie
    # away from the labels), and only where the class kept labels elsewhere.
    score = keep & held.present & ~held.within
    if score.sum() < 2:
        score = keep & held.present
    if score.sum() >= 2:
        chosen = {k: held.proba[k][score] for k in names}
        weights = (with_optional(chosen, held.truth[score], optional)
                   if any(k in names for k in optional)
                   else choose_weights(chosen, held.truth[score]))
        mixed = sum(weights[k] * held.proba[k][score] for k in names)
        temperature = fit_temperature(mixed, held.truth[score])
    else:  # every fold hid its classes: nothing says how to mix
        weights, temperature = {k: 1.0 / len(names) for k in names}, 1.0
    if not calibrate:
        return Mixing(weights, temperature)
    models = [held.proba[k][keep] for k in names]
    w = np.array([weights[k] for k in names])
    mixed = sharpen(sum(wi * p for wi, p in zip(w, models, strict=True)) / max(w.sum(), 1e-12),
                     temperature)
    feats = confidence_features(mixed, models, w, held.log_mass[keep], held.distance[keep])
    correct = mixed.argmax(axis=1) == held.truth[keep]
    # Each hidden cluster (and each cluster's single hidden items) weighs the same in all.
    unit = np.unique(np.column_stack([held.group[keep], held.fold[keep], held.within[keep]]),
                     axis=0, return_inverse=True)[1].ravel()
    weight = 1.0 / np.bincount(unit)[unit]
    # One logistic model over all hidden items, an item of a class hidden entirely counted
    # wrong, each hidden unit weighing the same. (Two factors, P(class has labels) times
    # P(right | it has), each item weighing the same in the second, measured worse on
    # MNIST: 0.35 ECE at 10 actions against 0.05, and fewer right labels at 50.)
    correct &= held.present[keep]
    calibrator = fit_calibrator(feats, correct, held.group[keep], folds=held.fold[keep],
                                right_weight=weight)
    if checked.any():
        calibrator = spot_checked_calibrator(calibrator, held, checked, names, w,
                                             temperature)
    return Mixing(weights, temperature, calibrator)



def with_optional(held_out: Mapping[str, np.ndarray], truth: np.ndarray,
                  optional: Sequence[str], *, steps: int = RULES_MIX_STEPS) -> dict[str, float]:
    """Mixing weights in which the ``optional`` models (the rules') only add to the others.

    The other models get their mix (:func:`choose_weights`), the optional ones theirs; the
    two are blended with weight ``a`` on the optional part, ``a`` from 0 to 1 in ``steps``
    steps; ``a`` is the median of the shares from the smallest whose held-out accuracy is
    within one standard error of the best up to the best (the first best): shrunk from the
    best share towards the models without rules, as far as the labels cannot tell apart.

    Why: the held-out labels are the ones a person chose to label (hard items near the
    boundary), where the rules' probe, trained on thousands of machine labels, wins by more
    than on the rest. Choosing all weights at once put all the weight on it (subjectivity,
    25 actions: 0.9005 of the items right, below the 0.9055 without rules; a quarter of it
    gave 0.9124); the best share on the held-out labels was too large at 50 actions (0.9176
    against 0.9221 without rules), the median of all shares within one standard error too
    (0.9117). The smallest share within one standard error, at the other end, dropped the
    rules after the first page of 12 labels (0.877 of the items right to 0.625).
    """
    names = list(held_out)
    rest = [k for k in names if k not in optional]
    extra = [k for k in names if k in optional]
    truth = np.asarray(truth, np.int64)
    if not rest or not extra:
        return choose_weights(held_out, truth)
    base = choose_weights({k: held_out[k] for k in rest}, truth)
    add = choose_weights({k: held_out[k] for k in extra}, truth)
    p_base = sum(base[k] * held_out[k] for k in rest)
    p_add = sum(add[k] * held_out[k] for k in extra)
    share = np.arange(steps + 1) / steps
    acc = np.array([float((((1 - a) * p_base + a * p_add).argmax(axis=1) == truth).mean())
                    for a in share])
    top = float(acc.max())
    slack = float(np.sqrt(top * (1.0 - top) / max(truth.size, 1)))
    best = int(np.argmax(acc))
    a = float(np.median(share[:best + 1][acc[:best + 1] >= top - slack - 1e-12]))
    return {**{k: (1 - a) * base[k] for k in rest}, **{k: a * add[k] for k in extra}}
