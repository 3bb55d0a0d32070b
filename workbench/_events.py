"""What a session tells its views: the :class:`Event` names and the :class:`EventBus` that
calls every subscriber (from whichever thread the change happened on)."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable

__all__ = ["Event", "EventBus"]

log = logging.getLogger("workbench.session")


class Event(str, enum.Enum):
    """A change a view may redraw for. A ``str``: subscribers compare with plain names."""

    LABELS = "labels"  # human labels or classes changed
    PREDICTIONS = "predictions"  # a retrain finished: predictions and confidence are new
    LAYOUT = "layout"  # the map's coordinates changed (the UMAP map arrived)
    STATUS = "status"  # a background job started or stopped, or the message changed

    def __str__(self) -> str:
        return self.value


class EventBus:
    """Subscribers called with the event's name on every change; a broken view is logged
    and never breaks labelling."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Add ``callback(event)``; returns the function that removes it again."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: Event | str) -> None:
        """Call every subscriber with the event's name (a plain ``str``)."""
        name = Event(event).value
        with self._lock:
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(name)
            except Exception as e:  # a broken view must not break labelling
                log.error("subscriber %r failed on %r: %s", cb, name, e, exc_info=e)
