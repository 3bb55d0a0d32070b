"""The one rule for an item's label: human, else accepted machine label, else prediction.

Every reader (widget colours and legend, ``Workbench.current_labels``, exports, the command
line, ``workbench info``) asks :func:`effective_labels` rather than combining the layers
itself, so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .._config import ADJUDICATED, LABEL_SOURCES

__all__ = ["LAYERS", "EffectiveLabels", "effective_labels"]

#: ``EffectiveLabels.layer`` codes, in order of precedence after "none".
LAYERS = ("none", "human", "accepted", "predicted")
NONE, HUMAN, ACCEPTED, PREDICTED = range(4)


@dataclass(frozen=True)
class EffectiveLabels:
    """The label every item has now, and where it comes from.

    Attributes
    ----------
    label : (N,) int64 class id, -1 where the item has no label of any kind.
    layer : (N,) int8 index into :data:`LAYERS` (none, human, accepted, predicted).
    source_code : (N,) int8 index into ``source_names`` (0 = no label).
    source_names : ``(None, *LABEL_SOURCES, <the prediction's source>)``.
    confidence : (N,) float64: 1.0 for a human label, the recorded confidence of an
        accepted machine label, the prediction's (calibrated) confidence; NaN for none.
    action : (N,) int64 the log action that set the label (0 for predictions and none).
    """

    label: np.ndarray
    layer: np.ndarray
    source_code: np.ndarray
    source_names: tuple[str | None, ...]
    confidence: np.ndarray
    action: np.ndarray

    @cached_property
    def source(self) -> np.ndarray:
        """(N,) object: ``"human"`` (``"adjudicated"`` where an adjudicator decided it), the
        accepted machine label's source (propagated / probe / zeroshot), the prediction's
        source, or None. Built on first use: the
        integer ``source_code`` is what hot paths should read."""
        return np.array(self.source_names, dtype=object)[self.source_code]

    @property
    def is_machine(self) -> np.ndarray:
        """(N,) bool: accepted machine labels and live predictions."""
        return self.layer >= ACCEPTED


def effective_labels(state: Any, predictions: Any = None) -> EffectiveLabels:
    """Combine a :class:`~workbench.labels.LabelState` with optional live predictions.

    Parameters
    ----------
    state : the label state (``human``, ``machine``, ``machine_confidence``,
        ``machine_source``, ``human_action``, ``machine_action``, ``classes``).
    predictions : optional object with ``label`` (N,) class ids (-1 = nothing known),
        ``confidence`` (N,) and ``source`` (str); used only where an item has neither a
        human nor an accepted machine label, and only for classes that still exist.
    """
    n = state.human.shape[0]
    live = np.fromiter(state.classes, np.int64, count=len(state.classes))
    is_h = state.human >= 0
    is_a = ~is_h & (state.machine >= 0) & np.isin(state.machine, live)
    label = np.where(is_h, state.human, np.where(is_a, state.machine, -1)).astype(np.int64)
    layer = np.where(is_h, HUMAN, np.where(is_a, ACCEPTED, NONE)).astype(np.int8)
    confidence = np.where(is_h, 1.0, np.where(is_a, state.machine_confidence, np.nan))
    action = np.where(is_h, state.human_action, np.where(is_a, state.machine_action, 0))
    # Codes: 0 = none, 1 + i = LABEL_SOURCES[i] ("human" is LABEL_SOURCES[0]).
    names: tuple[str | None, ...] = (None, *LABEL_SOURCES)
    adjudicated = getattr(state, "adjudicated", None)  # a human label an adjudicator decided
    human_code = (1 if adjudicated is None
                  else np.where(adjudicated >= 0, 1 + LABEL_SOURCES.index(ADJUDICATED), 1))
    code = np.where(is_h, human_code, np.where(is_a, 1 + state.machine_source, 0)).astype(np.int8)
    if predictions is not None:
        pred = np.asarray(predictions.label, np.int64)
        if pred.shape != (n,):
            raise ValueError(
                f"predictions cover {pred.shape[0]} items but there are {n}; retrain first"
            )
        is_p = (layer == NONE) & (pred >= 0) & np.isin(pred, live)
        label = np.where(is_p, pred, label)
        layer = np.where(is_p, PREDICTED, layer).astype(np.int8)
        confidence = np.where(is_p, np.asarray(predictions.confidence, np.float64), confidence)
        names = (*names, str(getattr(predictions, "source", "probe")))
        code = np.where(is_p, len(names) - 1, code).astype(np.int8)
    return EffectiveLabels(label=label, layer=layer, source_code=code, source_names=names,
                           confidence=confidence.astype(np.float64),
                           action=action.astype(np.int64))
