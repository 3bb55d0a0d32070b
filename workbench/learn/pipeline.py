"""One retrain, start to end: what a session's background thread runs after a label change.

:func:`fit_models` takes a snapshot of the human labels and the session's fixed pieces
(vectors, neighbour graphs and their spreaders, proposed clusters) and returns a
:class:`ModelState`: label propagation over the vectors' graph (and the 2-D map's, once it
exists), the linear probe, their held-out mix and the calibrated confidence. Arrays in,
arrays out: no session, store or widget.

With ``rules`` (the (N, R) votes of the enabled rules), the label model
(:mod:`.label_model`) joins as one more source: its probabilities as the model ``"rules"``,
and a probe fitted on the human labels plus the label model's confident labels of the items
no human labelled, as ``"rules_probe"`` (its L2 strength chosen on the human labels,
:func:`fit_rules_probe`); both are refitted per held-out fold without the hidden human
labels, so their weights (and the calibrated confidence) are chosen on labels they never
saw. The rules' models only add to the mix of the others, by the share the held-out labels
support (:func:`~workbench.learn.heldout.with_optional`); before any label can be held
out, the rules' probe stands alone for them. Human labels always win over the rules (they
are fixed in the label model, and never replaced in training).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._config import (
    MANY_CLASSES,
    MIX_FOLDS,
    MIX_FOLDS_MAX_ITEMS,
    PROBE_L2_GRID,
    PROBE_MIN_LABELS,
    RULES_MIN_CONFIDENCE,
)
from ._common import NotEnoughLabels, Predictions, side_by_side

__all__ = ["ModelState", "fit_models", "fit_probe", "fit_rules_probe"]


@dataclass
class ModelState:
    """The models of one retrain.

    Attributes
    ----------
    propagation, map_propagation : :class:`~workbench.learn.Propagation` over the vectors'
        graph and the map's (None: not run).
    probe : the probe's :class:`Predictions` (None: too few labels yet).
    model : the fitted :class:`~workbench.learn.LinearProbe` itself.
    accuracy : the probe's cross-validated accuracy (not the labels' accuracy).
    weights : model name -> mixing weight.
    message : why a model could not run yet ("" when all did).
    combined : the mixed, calibrated :class:`~workbench.learn.Combined` (None: no model ran).
    calibration : ``calibrator``, ``features`` (N, F) and ``predictions`` for estimates.
    issues_input : (human, probe labels, out-of-fold probabilities) of the probe's fit, so
        the suspected-errors queue ranks without fitting again.
    rules : the :class:`~workbench.learn.label_model.LabelModel` of the rules' votes (None:
        no rules given); ``rules_probe``: the probe fitted on human plus rule labels.
    """

    propagation: Any = None
    map_propagation: Any = None
    probe: Predictions | None = None
    model: Any = None
    accuracy: float | None = None
    weights: dict[str, float] = field(default_factory=dict)
    message: str = ""
    combined: Any = None
    calibration: dict[str, Any] | None = None
    issues_input: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    rules: Any = None
    rules_probe: Any = None


def fit_probe(human: np.ndarray, vectors: np.ndarray, device: str | None, *,
              l2_grid: tuple[float, ...] | None = None) -> ModelState:
    """The probe's part of a retrain (``probe``, ``model``, ``accuracy``, ``issues_input``,
    or a ``message`` saying what it waits for); ``l2_grid``: the L2 strengths it chooses
    from (default ``PROBE_L2_GRID``)."""
    from .probe import LinearProbe

    # The probe learns the classes with 2+ labels (its held-out choice of L2 needs them); a
    # class named by one item is left to propagation until its second label, rather than
    # holding the probe back for every class.
    classes, counts = np.unique(human[human >= 0], return_counts=True)
    probe_labels = np.where(np.isin(human, classes[counts < 2]), -1, human)
    n_probe = int((probe_labels >= 0).sum())
    if n_probe < PROBE_MIN_LABELS or int((counts >= 2).sum()) < 2:
        return ModelState(message=(f"the probe waits for {PROBE_MIN_LABELS} labels in 2+ "
                                   f"classes that have 2+ labels each; {n_probe} so far"))
    try:
        grid = {} if l2_grid is None else {"l2_grid": tuple(l2_grid)}
        probe = LinearProbe(device=device, **grid).fit(vectors, probe_labels)
    except NotEnoughLabels as e:
        return ModelState(message=str(e))
    return ModelState(probe=probe.predictions(vectors), model=probe,
                      accuracy=float(probe.cv_accuracy_),
                      issues_input=(human.copy(), probe_labels, probe.oof_proba_))


def fit_models(human: np.ndarray, *, vectors: np.ndarray, graph: Any, spreader: Any,
               map_models: Callable[[], tuple[Any, Any] | None] | None = None,
               groups: Any = None, device: str | None = None,
               rules: np.ndarray | None = None,
               spot_checks: np.ndarray | None = None) -> ModelState:
    """Propagation (over the vectors' graph and, when given, the map's), the probe, and
    their mix with calibrated confidence, on a snapshot ``human`` (N,) of the labels.

    ``spreader``: the session's :class:`~workbench.learn.LabelSpreader` over ``graph``
    (warm-started from its last fit); ``map_models``: a callable returning the map's
    (graph, spreader) once the map exists, else None (asked only at or below
    ``MANY_CLASSES`` classes); ``groups``: the (N,) proposed cluster of every item, or a
    callable returning it; ``rules``: (N, R) int class ids voted by the enabled rules (-1:
    abstains), or None (None or no columns: no rules, the models above alone). With rules,
    predictions come even before the first human label (the rules' models alone).
    ``spot_checks``: (N,) float, the weight of each random item a person labelled as a spot
    check (0: not one; :mod:`~workbench.learn.spot_checks`): held out on their own, they
    correct the calibrator.
    """
    from .calibrate import (
        fallback_calibrator,
        log_mass,
        nearest_labelled_distance,
        neighbour_radius,
    )
    from .heldout import held_out_predictions, mixing_from_held_out
    from .mixing import Mixing, calibrated, mix

    graphs = {"propagated": graph}
    # Above MANY_CLASSES the 2-D map's neighbours cannot keep hundreds of classes apart
    # (its held-out weight was 0 at 1,000 classes) and a second propagation would cost as
    # much as the first: the vectors' graph propagates alone.
    n_classes = np.unique(human[human >= 0]).size
    pair = map_models() if map_models is not None and n_classes <= MANY_CLASSES else None
    map_spreader = None
    if pair is not None:
        graphs["map"], map_spreader = pair

    def spread() -> None:
        spreader.fit(human)
        if map_spreader is not None:
            map_spreader.fit(human)

    with_rules = rules is not None and np.shape(rules)[1] > 0
    # Propagation and the probe are independent: they fit side by side (two cores).
    try:
        _, state = side_by_side(spread, lambda: fit_probe(human, vectors, device))
    except NotEnoughLabels as e:  # from propagation: nothing is labelled enough yet
        if not with_rules:
            return ModelState(message=str(e))
        graphs, state = {}, ModelState(message=str(e))  # the rules' models alone
    else:
        state.propagation = spreader.predictions_
        if map_spreader is not None:
            state.map_propagation = map_spreader.predictions_
    models = {"propagated": state.propagation, "map": state.map_propagation,
              "probe": state.probe}
    if with_rules:
        models.update(_fit_rules(state, human, rules, vectors, device))
    n = int(np.asarray(human).size)
    held = held_out_predictions(
        human, graphs, state.model, vectors=vectors,
        groups=groups() if callable(groups) else groups,
        folds=MIX_FOLDS if n <= MIX_FOLDS_MAX_ITEMS else 1, fitted=models, spot=spot_checks,
        **({"rules": rules, "rules_probe": state.rules_probe} if with_rules else {}))
    mixing = None if held is None else mixing_from_held_out(
        held, **({"optional": ("rules", "rules_probe")} if with_rules else {}))
    if mixing is None:  # too few labels to hold any out: an even mix, a coin flip
        # ... except that the rules' probe stands for the label model: it learnt the label
        # model's confident labels and reaches the items no rule votes on (subjectivity, no
        # human label: 0.877 of the items right alone, 0.868 in an even mix with it).
        skip = "rules" if with_rules and models.get("rules_probe") is not None else None
        mixing = Mixing({k: float(k != skip) for k, v in models.items() if v is not None},
                        calibrator=fallback_calibrator())
    state.weights = mixing.weights
    combined = mix(models, mixing.weights, temperature=mixing.temperature)
    # Calibrated confidence: the chance each machine label is right (learn/calibrate.py).
    mass = log_mass(state.propagation.mass if state.propagation is not None
                    else np.zeros(n))
    distance = nearest_labelled_distance(vectors, np.flatnonzero(human >= 0),
                                         radius=neighbour_radius(graph))
    combined, features = calibrated(combined, models, mixing, log_mass=mass,
                                    distance=distance)
    state.combined = combined
    state.calibration = {"calibrator": mixing.calibrator, "features": features,
                         "predictions": combined}
    return state


def fit_rules_probe(weak: np.ndarray, human: np.ndarray, vectors: np.ndarray,
                    device: str | None = None) -> ModelState:
    """The probe on the rules' labels: fitted on ``weak`` (human labels plus confident
    machine labels, -1 elsewhere), its L2 strength chosen on the human labels.

    The probe's own held-out choice of L2 would score it on the machine labels, which are
    mostly the rules' patterns: it then chose weak regularisation that copies the rules'
    mistakes (subjectivity, 25 actions: 0.8925 of all items right against 0.8986 with the
    L2 chosen here). Instead, as data programming uses a small labelled dev set, each L2
    strength of ``PROBE_L2_GRID`` is fitted on the machine labels alone (the human-labelled
    items left out) and scored on the human labels (accuracy, ties to lower log loss); the
    best is refitted on ``weak``. Without at least ``PROBE_MIN_LABELS`` human labels in 2+
    classes, the probe's own choice (:func:`fit_probe`).
    """
    from .probe import LinearProbe

    human = np.asarray(human)
    lab = np.flatnonzero(human >= 0)
    only = np.where(human >= 0, -1, weak)
    if (lab.size < PROBE_MIN_LABELS or np.unique(human[lab]).size < 2
            or np.unique(only[only >= 0]).size < 2):
        return fit_probe(weak, vectors, device)
    best: tuple[float, float] | None = None
    chosen = PROBE_L2_GRID[-1]
    for l2 in PROBE_L2_GRID:
        try:
            p = LinearProbe(l2_grid=(l2,), cv=2, device=device).fit(vectors, only)
        except NotEnoughLabels:
            return fit_probe(weak, vectors, device)
        proba = p.predict_proba(vectors[lab])
        col = np.searchsorted(p.classes_, human[lab])
        known = (col < p.classes_.size) & (p.classes_[np.minimum(col, p.classes_.size - 1)]
                                           == human[lab])
        hit = np.where(known, proba[np.arange(lab.size), np.minimum(col, proba.shape[1] - 1)],
                       0.0)
        score = (float((p.classes_[proba.argmax(axis=1)] == human[lab]).mean()),
                 float(np.log(np.clip(hit, 1e-9, None)).mean()))
        if best is None or score > best:
            best, chosen = score, l2
    return fit_probe(weak, vectors, device, l2_grid=(chosen,))


def _fit_rules(state: ModelState, human: np.ndarray, rules: np.ndarray, vectors: np.ndarray,
               device: str | None) -> dict[str, Any]:
    """The rules' models (``"rules"``, ``"rules_probe"``), recorded in ``state``."""
    from .label_model import fit_label_model, weak_labels

    state.rules = fit_label_model(rules, human)
    weak = weak_labels(state.rules, human, RULES_MIN_CONFIDENCE)
    fitted = fit_rules_probe(weak, human, vectors, device)
    state.rules_probe = fitted.model
    return {"rules": state.rules.predictions(), "rules_probe": fitted.probe}
