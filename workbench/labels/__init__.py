"""Labels: the durable event log and the state derived from it."""

from .state import LabelState, LabelStore
from .store import ACTION_KINDS, Action, EventLog

__all__ = ["ACTION_KINDS", "Action", "EventLog", "LabelState", "LabelStore"]
