"""Labels: the durable event log and the state derived from it."""

from .effective import EffectiveLabels, effective_labels
from .state import LabelState, LabelStore
from .store import ACTION_KINDS, Action, EventLog, LabelLogError

__all__ = [
    "ACTION_KINDS",
    "Action",
    "EffectiveLabels",
    "EventLog",
    "LabelLogError",
    "LabelState",
    "LabelStore",
    "effective_labels",
]
