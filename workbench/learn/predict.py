"""One prediction per item from several models (propagation over the vectors' graph and over
the map's, the probe), mixed with weights chosen on held-out human labels, where the
models disagree, and (via :mod:`~workbench.learn.calibrate`) how likely each is right."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .._config import (
    HELD_OUT_PROPAGATION_TOL,
    MANY_CLASSES,
    MIX_BLOCK_ROWS,
    MIX_FOLDS,
    MIX_HOLDOUT_FRACTION,
    MIX_WEIGHT_STEP,
)
from ..neighbors import KnnGraph
from ._common import NotEnoughLabels, Predictions, check_labels, side_by_side

if TYPE_CHECKING:
    from .calibrate import Calibrator

__all__ = [
    "Combined",
    "HeldOut",
    "Mixing",
    "best_labels",
    "calibrated",
    "choose_weights",
    "combine",
    "fit_temperature",
    "held_out_predictions",
    "held_out_weights",
    "mix",
    "mixing_from_held_out",
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
    return mix({"propagated": propagation, "probe": probe},
               {"propagated": 1.0 - probe_weight, "probe": probe_weight})


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
            block[:] = _sharpen(acc, temperature, in_place=True)
        else:
            block[:] = 1.0 / classes.size
            block[ok] = _sharpen(acc[ok] / total[rows][ok, None], temperature)
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


def held_out_predictions(
    human: np.ndarray,
    graphs: Mapping[str, KnnGraph],
    probe: Any = None,
    *,
    vectors: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    folds: int = MIX_FOLDS,
    seed: int = 0,
    fitted: Mapping[str, Any] | None = None,
) -> HeldOut | None:
    """Hide the labelled items fold by fold and predict them from the rest (see
    :func:`held_out_weights` for the parameters); None when fewer than 2 blocks of labels
    can be hidden.

    ``fitted`` (optional): name -> the :class:`~workbench.learn.Propagation` of all of
    ``human`` over ``graphs[name]`` (other entries are ignored). Above ``MANY_CLASSES``
    classes each fold then solves only the columns of classes that lost a label, started
    from these, to ``HELD_OUT_PROPAGATION_TOL``
    (:func:`~workbench.learn.propagate.fold_propagation`), and refits the probe
    once with its L2 and temperature (:meth:`~workbench.learn.LinearProbe.refit`). At or
    below ``MANY_CLASSES`` nothing changes: cold propagations and two-fold probe refits.
    Above ``MANY_CLASSES``, ``folds`` is 1 whatever is asked (one split is hidden).
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
    names = [*graphs, *(["probe"] if probe is not None else [])]
    rows: list[dict[str, Any]] = []
    first = next(iter(graphs), None)
    radius = (neighbour_radius(graphs[first])
              if first is not None and isinstance(graphs[first], KnnGraph) else None)
    for f in range(parts if folds >= 2 else 1):
        whole = fold == f
        hide = whole | (item_fold == f)
        if not hide.any():
            continue
        pos = lab[hide]
        train = human.copy()
        train[pos] = -1
        row: dict[str, Any] = {
            "at": np.flatnonzero(hide), "fold": np.full(pos.size, f),
            "within": ~whole[hide], "present": np.isin(human[pos], train[train >= 0]),
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
            row[name] = _columns(proba, got, classes)
            if name == first:
                row["log_mass"] = log_mass(mass)
        if probe_out is not None:
            row["probe"] = _columns(probe_out[1], probe_out[0], classes)
        rows.append(row)
    if not rows:
        return None

    def cat(key: str) -> np.ndarray:
        return np.concatenate([r[key] for r in rows])

    at = cat("at")
    return HeldOut(lab[at], classes.astype(np.int64), np.searchsorted(classes, human[lab[at]]),
                   {k: cat(k) for k in names}, cat("present"), cat("fold").astype(np.int64),
                   block[at].astype(np.int64), cat("log_mass"), cat("distance"),
                   cat("within"))


def held_out_weights(
    human: np.ndarray,
    graphs: Mapping[str, KnnGraph],
    probe: Any = None,
    *,
    vectors: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    folds: int = MIX_FOLDS,
    seed: int = 0,
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


def mixing_from_held_out(held: HeldOut, *, calibrate: bool = True) -> Mixing | None:
    """:class:`Mixing` chosen on :func:`held_out_predictions` (see :func:`held_out_weights`)."""
    from .calibrate import confidence_features, fit_calibrator

    names = list(held.proba)
    keep = np.ones(held.truth.size, bool)
    for k in names:
        keep &= np.isfinite(held.proba[k]).all(axis=1)
    if keep.sum() < 2:
        return None
    # Weights are scored on whole hidden clusters (the items a workbench must predict lie
    # away from the labels), and only where the class kept labels elsewhere.
    score = keep & held.present & ~held.within
    if score.sum() < 2:
        score = keep & held.present
    if score.sum() >= 2:
        weights = choose_weights({k: held.proba[k][score] for k in names}, held.truth[score])
        mixed = sum(weights[k] * held.proba[k][score] for k in names)
        temperature = fit_temperature(mixed, held.truth[score])
    else:  # every fold hid its classes: nothing says how to mix
        weights, temperature = {k: 1.0 / len(names) for k in names}, 1.0
    if not calibrate:
        return Mixing(weights, temperature)
    models = [held.proba[k][keep] for k in names]
    w = np.array([weights[k] for k in names])
    mixed = _sharpen(sum(wi * p for wi, p in zip(w, models, strict=True)) / max(w.sum(), 1e-12),
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
    return Mixing(weights, temperature, calibrator)


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


def _columns(proba: np.ndarray, have: np.ndarray, want: np.ndarray) -> np.ndarray:
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
    grid = np.geomspace(0.25, 4.0, 41)
    losses = []
    for t in grid:
        p = _sharpen(proba, t)
        losses.append(-np.log(np.clip(p[np.arange(truth.size), truth], 1e-9, None)).mean())
    return float(grid[int(np.argmin(losses))])


def _sharpen(proba: np.ndarray, temperature: float, *, in_place: bool = False) -> np.ndarray:
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
