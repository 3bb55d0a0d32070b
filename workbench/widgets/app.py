"""The workbench in a notebook: map, gallery and controls over one session.

:class:`WorkbenchApp` is a view. The session owns items, labels and predictions; the
view-model (:class:`~workbench.widgets._view_model.AppViewModel`) encodes them for the
widgets, the controller (:class:`~workbench.widgets._controls.AppControls`) turns clicks
and key presses into session calls, and the app applies the session's events, which may
arrive on a worker thread and are handed to the kernel's main thread before any widget is
touched. Everything a click does is also a method here, so a notebook cell can do it too.
The main thread only applies results: what fits a model (the review colours, the
suspected-errors queue, the rules' analysis) runs in a worker thread and is handed back.

One error policy, by who asked:

* a method called from Python raises, saying why;
* an action a person asked for (a panel click, a key, a gallery card) clears the panel's
  error line and shows its failure there; a click's failure stops there (logged), a widget
  message's is raised on to the widget, which logs it and answers the browser ``error``;
* what the app applies unasked (session events, background results) is logged, never
  raised (a background failure is also shown on the error line): a view must never take
  the kernel down.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import ipywidgets as w
import numpy as np

from .._config import GALLERY_PAGE_SIZE, MAP_HEIGHT
from ._app_verbs import AppVerbs
from ._contract import SessionEvent, SessionView
from ._controls import AppControls
from ._threads import OffMainThread, call_on_main
from ._view_model import AppViewModel
from .charts import FilterCharts
from .gallery import Gallery
from .panel import ControlPanel
from .rules_panel import RulesPanel
from .scatter import ScatterMap, normalize_coords
from .selections_panel import SelectionsPanel

__all__ = ["WorkbenchApp"]

log = logging.getLogger("workbench.widgets")


class WorkbenchApp(AppVerbs, w.VBox):
    """Map, gallery and control panel of a :class:`~workbench.session.Workbench`.

    Parameters
    ----------
    session : the Workbench (``Workbench.demo(...)``, ``Workbench.open(...)``); the app
        uses only what :class:`~workbench.widgets._contract.SessionView` lists.
    height : map height in pixels (default ``MAP_HEIGHT``).
    page_size : gallery cards per page (default ``GALLERY_PAGE_SIZE``).
    loop : the main thread's event loop (anything with ``add_callback``), where results
        from other threads are applied; default the IPython kernel's. Without one (plain
        Python) results are applied on the thread that produced them.

    Attributes
    ----------
    map : :class:`ScatterMap`; gallery : :class:`Gallery`; panel : :class:`ControlPanel`;
    rules : :class:`~workbench.widgets.rules_panel.RulesPanel`.
    view : the view-model (:class:`~workbench.widgets._view_model.AppViewModel`).
    """

    def __init__(
        self,
        session: SessionView,
        *,
        height: int = MAP_HEIGHT,
        page_size: int = GALLERY_PAGE_SIZE,
        loop: Any | None = None,
    ) -> None:
        self.session: SessionView = session
        self.view = AppViewModel(session)
        self.slots = self.view.slots
        self._loop = loop
        self._events: list[str] = []
        self._events_lock = threading.Lock()
        self.panel = ControlPanel()
        self.controls = AppControls(self)
        self.map = ScatterMap(session.coords, height=height, thumbnail=self.view.thumbnail,
                              on_action=self.controls.run)
        self.gallery = Gallery(describe=self.view.describe, thumbnail=self.view.thumbnail,
                               on_action=self.controls.run, page_size=page_size, n=session.n)
        self.rules = RulesPanel(self)
        self.filters = FilterCharts(self)
        self.selections = SelectionsPanel(self)
        super().__init__([self.panel, self.rules, self.selections, self.filters.beside(self.map),
                          self.gallery])
        self.add_class("workbench-app")
        self._review = OffMainThread(self.view.mode_codes, self._apply_review, loop=loop,
                                     on_error=self._job_failed("colours"),
                                     name="workbench-review")
        self._errors_queue = OffMainThread(
            self.view.error_queue, self._apply_errors, loop=loop,
            on_error=self._job_failed("suspected errors"), name="workbench-errors-queue")
        self.controls.connect()
        self.map.observe(self._on_selection, names="selection")
        self.map.observe(self._on_color_by, names="color_by")
        self._refresh_labels()
        self._refresh_clusters()
        self._refresh_status()
        self.gallery.show([], title="Selection")
        self._unsubscribe = session.subscribe(self._on_session_event)

    # -- reading and setting from Python --------------------------------------------------

    @property
    def selection(self) -> np.ndarray:
        """(K,) int64 positions of the selected items; assign positions, item ids or an
        (N,) boolean mask to select (checked as in :meth:`label`)."""
        return self.map.selected

    @selection.setter
    def selection(self, items: Any) -> None:
        self.map.select(self.view.positions(items))

    @property
    def labels(self) -> np.ndarray:
        """(N,) object array: each item's label name (human, else accepted machine label;
        predictions are not labels) or None."""
        return self.view.label_names()

    @property
    def status(self) -> str:
        """The status line, current: on the main thread, session results still waiting for
        the loop are applied first (so ``wb.wait(); app.status`` shows them)."""
        if threading.current_thread() is threading.main_thread():
            self.refresh()
        return self.panel.status.value

    @property
    def predictions(self) -> Any:
        """The session's latest predictions (``.label``, ``.confidence``) or None."""
        return self.session.predictions

    color_by = property(lambda self: self.map.color_by,
                        lambda self, mode: setattr(self.map, "color_by", mode),
                        doc="The map's colour mode (one of ``COLOR_MODES``).")

    def label(self, name: str, items: Any = None) -> None:
        """Label ``items`` (default the selection) with class ``name`` (created if new).

        ``items``: positions (ints, or whole floats), item ids, or an (N,) boolean mask;
        anything else (a mask of another length, 2.5, -1, N) is refused with a ValueError
        or IndexError, never truncated.
        """
        idx = self._items_or_selection(items)
        if idx.size == 0:
            raise ValueError("nothing to label: select items first (lasso on the map)")
        self.controls.label(idx, name)  # from the disagreements queue: an adjudication

    def remove_labels(self, items: Any = None) -> None:
        """Remove the human labels of ``items`` (default the selection)."""
        idx = self._items_or_selection(items)
        if idx.size == 0:
            raise ValueError("nothing to unlabel: select items first")
        self.session.remove_labels(idx)

    def label_key(self, key: int) -> None:
        """What pressing number ``key`` does: label the selection with the key's class.

        A key one past the last class creates a class (named as typed in the palette, or
        ``"class <key>"``).
        """
        classes = list(self.session.labels.classes.items())
        if 1 <= key <= len(classes):
            name = classes[key - 1][1]
        elif key == len(classes) + 1:
            name = self.panel.class_name.value.strip() or f"class {key}"
        else:
            raise ValueError(
                f"no class on key {key}: there are {len(classes)} classes; "
                f"create one first (type a name, then 'new class')"
            )
        self.label(name)

    def refresh(self) -> None:
        """Apply session events and background results that wait for the main loop (main
        thread; a notebook's loop does this by itself after the cell)."""
        self._apply_events()
        self._review.flush()
        self._errors_queue.flush()

    def wait(self, timeout: float | None = 120.0) -> None:
        """Block until the session's retraining and this widget's background work are done
        and shown (scripts, tests; interactive use never needs this)."""
        self.session.wait(timeout)
        if threading.current_thread() is threading.main_thread():
            self.refresh()  # predictions may ask for a new review
        self._review.wait(timeout)
        self._errors_queue.wait(timeout)
        if threading.current_thread() is threading.main_thread():
            self._refresh_status()

    def close(self) -> None:
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
        for part in (getattr(self, "_review", None), getattr(self, "_errors_queue", None),
                     getattr(self, "rules", None), getattr(self, "filters", None),
                     getattr(getattr(self, "controls", None), "names", None)):
            if part is not None:
                part.close()
        super().close()

    # -- what the widgets show --------------------------------------------------------------

    def thumbnail(self, index: int) -> dict[str, Any]:
        """Hover/gallery preview of one item: image bytes, or its text."""
        return self.view.thumbnail(index)

    def describe(self, indices: np.ndarray) -> list[dict[str, Any]]:
        """Gallery cards for ``indices``: label and its source from the effective labels."""
        return self.view.describe(indices)

    def _items_or_selection(self, items: Any) -> np.ndarray:
        """``items`` as positions; by default the selection less what the filter charts
        hide (a key labels what the person sees, never a faded point)."""
        if items is not None:
            return self.view.positions(items)
        return self.filters.keep(self.selection)

    def _say(self, message: str) -> None:
        """Show ``message`` on the status line (until the next action)."""
        self.view.message = message
        self._refresh_status()

    # -- widget changes -------------------------------------------------------------------

    def _on_selection(self, change: dict[str, Any]) -> None:
        # A queue or a search names what it selected; a lasso or a click is "Selection".
        self.gallery.show(self.map.selected, title=self.view.take_title())
        self._refresh_status()

    def _on_color_by(self, change: dict[str, Any]) -> None:
        if self.view.recolour(self.map.color_by):
            self._request_review()

    # -- session events (any thread) -> widgets (main thread) -------------------------------

    def _on_session_event(self, event: str) -> None:
        if event == SessionEvent.PREDICTIONS:
            # On the thread that publishes them (the retrain worker when in the background).
            self.view.estimate = self.view.read_estimate()
        with self._events_lock:
            scheduled = bool(self._events)
            if event not in self._events:
                self._events.append(event)
        if not scheduled or threading.current_thread() is threading.main_thread():
            call_on_main(self._apply_events, loop=self._loop)

    def _apply_events(self) -> None:
        with self._events_lock:
            events, self._events = self._events, []
        if not events:
            return
        try:
            if SessionEvent.LABELS in events or SessionEvent.PREDICTIONS in events:
                self._refresh_labels()
            if self.view.recolour(self.map.color_by, events):
                self._request_review()
            if SessionEvent.LAYOUT in events:
                self.map.coords = normalize_coords(self.session.coords).tobytes()
            self._refresh_status()  # every event, SessionEvent.STATUS included
        except Exception:  # a view must never take the kernel down
            log.exception("workbench: refreshing the widgets after %s failed", events)

    def _refresh_labels(self) -> None:
        """Map codes, legend, label buttons and cards from the effective labels."""
        fields, palette = self.view.encode_labels()
        # Codes before the palette: the map redraws once with both.
        self.map.update(**fields)
        self.map.classes = palette
        self.gallery.classes = [{"slot": c["slot"], "name": c["name"]} for c in palette]
        self.panel.set_classes(palette)
        self.gallery.refresh()

    def _refresh_clusters(self) -> None:
        codes, options = self.view.cluster_codes()
        self.map.n_clusters = len(options)
        self.map.update(cluster=codes)
        self.panel.set_clusters(options)

    def _refresh_status(self) -> None:
        running = [name for name, job in ((f"{self.map.color_by} colours", self._review),
                                          ("suspected errors", self._errors_queue))
                   if job.busy]
        self.panel.status.value = self.view.status_line(
            selected=int(self.map.selected.size), running=running)

    # -- work off the main thread --------------------------------------------------------------

    def _request_review(self) -> None:
        """Compute the codes of a computed colour mode (review, agreement) off the thread."""
        self._review.submit(self.map.color_by)
        self._refresh_status()

    def _apply_review(self, fields: dict[str, np.ndarray]) -> None:
        self.map.update(**fields)
        self._refresh_status()

    def _apply_errors(self, items: np.ndarray) -> None:
        self.view.title = "Suspected label errors"
        self.selection = items
        self._refresh_status()

    def _job_failed(self, what: str) -> Any:
        def report(e: BaseException) -> None:
            log.error("workbench: %s failed: %s", what, e, exc_info=e)
            self.panel.show_error(f"{what} failed: {e}")
            self._refresh_status()
        return report
