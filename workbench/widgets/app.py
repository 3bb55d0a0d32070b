"""The workbench in a notebook: map, gallery and controls over one session.

:class:`WorkbenchApp` is a view. The session owns items, labels and predictions; the app
encodes them for the map (class ids to colour slots), turns clicks and key presses into
session calls, and listens to the session's events, which may arrive on a worker thread
and are handed to the kernel's main thread before any widget is touched.

Everything a click does is also a method here, so a notebook cell can do it too.

Labels: every colour, legend count, card and hover text comes from
:func:`~workbench.labels.effective_labels` (human, else accepted machine label, else live
prediction), never from the layers combined here.

The main thread only applies results: what fits a model (the review colours, the
suspected-errors queue) runs in a worker thread and is handed back like session events.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np

from .._config import GALLERY_PAGE_SIZE, MAP_HEIGHT
from ..labels.effective import ACCEPTED, HUMAN, PREDICTED, EffectiveLabels, effective_labels
from ..thumbnails import ThumbnailCache
from ._palette import ClassSlots
from ._positions import as_positions
from ._threads import OffMainThread, call_on_main
from .gallery import Gallery
from .panel import ControlPanel, format_status
from .scatter import ScatterMap, normalize_coords

__all__ = ["WorkbenchApp"]

log = logging.getLogger("workbench.widgets")

#: Characters of an item's text shown on a card or in the hover preview.
TEXT_PREVIEW_CHARS = 400
#: How a card names where its label comes from, by ``EffectiveLabels.layer``.
CARD_SOURCES = {HUMAN: "human", ACCEPTED: "machine", PREDICTED: "predicted"}


class WorkbenchApp(w.VBox):
    """Map, gallery and control panel of a :class:`~workbench.session.Workbench`.

    Parameters
    ----------
    session : the Workbench (``Workbench.demo(...)``, ``Workbench.open(...)``).
    height : map height in pixels (default ``MAP_HEIGHT``).
    page_size : gallery cards per page (default ``GALLERY_PAGE_SIZE``).
    loop : the main thread's event loop (anything with ``add_callback``), where results
        from other threads are applied; default the IPython kernel's. Without one (plain
        Python) results are applied on the thread that produced them.

    Attributes
    ----------
    map : :class:`ScatterMap`; gallery : :class:`Gallery`; panel : :class:`ControlPanel`.
    """

    def __init__(
        self,
        session: Any,
        *,
        height: int = MAP_HEIGHT,
        page_size: int = GALLERY_PAGE_SIZE,
        loop: Any | None = None,
    ) -> None:
        self.session = session
        self.slots = ClassSlots()
        self._loop = loop
        self._title = "Selection"
        self._message = ""
        self._effective: EffectiveLabels | None = None
        self._layers: dict[str, int] = {}
        self._events: list[str] = []
        self._events_lock = threading.Lock()
        self._thumbs = ThumbnailCache(Path(session.project.cache_dir))
        items = session.items
        self._ids = items["id"].to_list()
        self._id_pos: dict[str, int] | None = None
        self._kinds = items["kind"].to_list()
        self._sources = items["source"].to_list()
        self.map = ScatterMap(session.coords, height=height, thumbnail=self.thumbnail,
                              on_action=self._on_action)
        self.gallery = Gallery(describe=self.describe, thumbnail=self.thumbnail,
                               on_action=self._on_action, page_size=page_size, n=session.n)
        self.panel = ControlPanel()
        super().__init__([self.panel, self.map, self.gallery])
        self.add_class("workbench-app")
        self._review = OffMainThread(self._compute_review, self._apply_review, loop=loop,
                                     on_error=self._job_failed("review"),
                                     name="workbench-review")
        self._errors_queue = OffMainThread(
            self._compute_errors, self._apply_errors, loop=loop,
            on_error=self._job_failed("suspected errors"), name="workbench-errors-queue")
        self._estimate = self._read_estimate() if session.predictions is not None else None
        self._wire()
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
        self.map.select(self._positions(items))

    @property
    def labels(self) -> np.ndarray:
        """(N,) object array: each item's label name (human, else accepted machine label;
        predictions are not labels) or None."""
        names = self.session.labels.classes
        eff = effective_labels(self.session.labels.state)
        return np.array([names.get(int(c)) for c in eff.label], dtype=object)

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

    @property
    def color_by(self) -> str:
        return self.map.color_by

    @color_by.setter
    def color_by(self, mode: str) -> None:
        self.map.color_by = mode

    def label(self, name: str, items: Any = None) -> None:
        """Label ``items`` (default the selection) with class ``name`` (created if new).

        ``items``: positions (ints, or whole floats), item ids, or an (N,) boolean mask;
        anything else (a mask of another length, 2.5, -1, N) is refused with a ValueError
        or IndexError, never truncated.
        """
        idx = self._positions(items) if items is not None else self.selection
        if idx.size == 0:
            raise ValueError("nothing to label: select items first (lasso on the map)")
        self.session.label(idx, name)

    def remove_labels(self, items: Any = None) -> None:
        """Remove the human labels of ``items`` (default the selection)."""
        idx = self._positions(items) if items is not None else self.selection
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

    def accept_predictions(self, items: Any = None, *, min_confidence: float = 0.0) -> int:
        """Record the predictions of ``items`` (default the selection) as machine labels,
        in one session call (one action to undo); returns how many were recorded."""
        idx = self._positions(items) if items is not None else self.selection
        if idx.size == 0:
            raise ValueError("nothing to accept: select items first")
        count = int(self.session.accept_predictions(idx, min_confidence=min_confidence))
        self._message = f"accepted {count} predictions"
        self._refresh_status()
        return count

    def export(self, path: str | Path | None = None, **options: Any) -> Path:
        """Export the labels with ``Workbench.export`` (``options`` go to it); the status
        line says where, or why it failed.

        Default ``path``: ``<project>-labels.parquet`` beside the project folder (exports
        never go inside it), replaced by each export from the button.
        """
        if path is None:
            folder = Path(self.session.project.path)
            target = folder.parent / f"{folder.name}-labels.parquet"
            if target.exists() and not target.is_file():
                # Only our own file is replaced: a folder in the way is the person's.
                self._message = (f"export failed: {target} exists and is not a file; move "
                                 "it or export elsewhere (app.export(path))")
                self._refresh_status()
                raise FileExistsError(self._message)
            options.setdefault("overwrite", True)
        else:
            target = Path(path)
        try:
            out = Path(self.session.export(target, **options))
        except Exception as e:
            self._message = f"export failed: {e}"
            self._refresh_status()
            raise
        self._message = f"exported to {out}"
        self._refresh_status()
        return out

    def select_cluster(self, index: int, *, core: bool = False) -> None:
        """Select the members of proposed cluster ``index`` (with ``core``, only its most
        typical half: where clusters mix is the outskirts)."""
        clusters = self.session.clusters or []
        if not 0 <= index < len(clusters):
            raise IndexError(f"cluster {index} does not exist; there are {len(clusters)}")
        c = clusters[index]
        self.selection = np.asarray(c.core() if core else c.members)

    def label_cluster(self, index: int, name: str) -> None:
        """Label every member of proposed cluster ``index`` with ``name``."""
        self.select_cluster(index)
        self.label(name)

    def more_like_this(self, k: int = 50) -> None:
        """Select the items most like the current selection."""
        if self.selection.size == 0:
            raise ValueError("select an item first, then ask for more like it")
        self.selection = self.session.more_like_this(self.selection, k=k)

    def search(self, query: str, k: int = 100) -> None:
        """Select the items that best match a text query (CLIP text tower)."""
        if not query.strip():
            raise ValueError("type something to search for")
        self._title = f"Search: {query}"
        self.selection = self.session.text_search(query, k=k)

    def show_queue(self, which: str, n: int = GALLERY_PAGE_SIZE) -> None:
        """Select and review a queue: ``"next"`` (label next) or ``"errors"``.

        "next" selects the typical core of the cluster worth labelling as a whole
        (``Workbench.next_cluster``, also picked in the cluster list; a number key names
        the selection), or, when single items are worth more, a page of suggestions.
        "errors" ranks the human labels with an out-of-fold probe: that fit runs in a
        worker thread and the selection follows when it is done (:meth:`wait` blocks).
        """
        if which == "next":
            cluster = self.session.next_cluster()
            if cluster is not None:
                items = cluster.core()
                title = (f"Label next: cluster {cluster.id + 1}, its {items.size} most "
                         "typical items")
                self.panel.cluster_pick.value = cluster.id
            else:
                items, title = self.session.suggestions(n=n), "Label next"
        elif which == "errors":
            self._errors_queue.submit(n)
            self._refresh_status()
            return
        else:
            raise ValueError(f"queue must be 'next' or 'errors', not {which!r}")
        self._title = title
        self.selection = items

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
        for job in (getattr(self, "_review", None), getattr(self, "_errors_queue", None)):
            if job is not None:
                job.close()
        super().close()

    # -- what the widgets show --------------------------------------------------------------

    def thumbnail(self, index: int) -> dict[str, Any]:
        """Hover/gallery preview of one item: image bytes, or its text."""
        kind = self._kinds[index]
        out: dict[str, Any] = {"kind": kind, "label": self._label_text(index)}
        if kind == "image":
            out["data"] = self._thumbs.get(self._ids[index], self._sources[index])
            out["mime"] = self._thumbs.mime
            out["text"] = self._ids[index]
        else:
            out["text"] = self.session.item_text(index)[:TEXT_PREVIEW_CHARS]
        return out

    def describe(self, indices: np.ndarray) -> list[dict[str, Any]]:
        """Gallery cards for ``indices``: label and its source from the effective labels."""
        eff = self._labels_now()
        names = self.session.labels.classes
        cards = []
        for i in np.asarray(indices, dtype=np.int64).tolist():
            source = CARD_SOURCES.get(int(eff.layer[i]), "")
            label = names.get(int(eff.label[i]), "") if source else ""
            kind = self._kinds[i]
            text = (self._ids[i] if kind == "image"
                    else self.session.item_text(i)[:TEXT_PREVIEW_CHARS])
            cards.append({"index": i, "kind": kind, "text": text, "label": label,
                          "source": source if label else ""})
        return cards

    def _label_text(self, i: int) -> str:
        eff = self._labels_now()
        name = self.session.labels.classes.get(int(eff.label[i]))
        if name is None:
            return "unlabelled"
        return name if eff.layer[i] == HUMAN else f"{name} (machine)"

    def _labels_now(self) -> EffectiveLabels:
        """The effective labels as last shown (computed once per refresh, not per card)."""
        if self._effective is None:
            self._effective = effective_labels(self.session.labels.state,
                                               self.session.predictions)
        return self._effective

    # -- wiring ---------------------------------------------------------------------------

    def _wire(self) -> None:
        p = self.panel

        def guarded(fn: Any) -> Any:
            def run(*_: Any) -> None:
                p.show_error("")
                self._message = ""
                try:
                    fn()
                except Exception as e:  # the person sees why; the kernel keeps running
                    log.info("workbench action failed: %s", e)
                    p.show_error(str(e))
            return run

        def typed_name() -> str:
            name = p.class_name.value.strip()
            if not name:
                raise ValueError("type a class name first")
            return name

        p.create.on_click(guarded(lambda: self.session.create_class(typed_name())))
        p.label_picked.on_click(guarded(lambda: self.label(self._picked_name())))
        p.rename.on_click(guarded(lambda: self.session.rename_class(
            self._picked_name(), typed_name())))
        p.merge.on_click(guarded(lambda: self.session.merge_classes(
            [self._picked_name()], typed_name())))
        p.delete.on_click(guarded(lambda: self.session.delete_class(self._picked_name())))
        p.unlabel.on_click(guarded(lambda: self.remove_labels()))
        p.undo.on_click(guarded(lambda: self.session.undo()))
        p.redo.on_click(guarded(lambda: self.session.redo()))
        p.on_label(lambda k: guarded(lambda: self.label_key(k))())
        p.search.on_click(guarded(lambda: self.search(p.query.value)))
        p.query.continuous_update = False
        p.more_like_this.on_click(guarded(lambda: self.more_like_this()))
        p.select_cluster.on_click(guarded(lambda: self.select_cluster(self._picked_cluster())))
        p.label_cluster.on_click(guarded(lambda: self.label_cluster(
            self._picked_cluster(), typed_name())))
        p.queue_next.on_click(guarded(lambda: self.show_queue("next")))
        p.queue_errors.on_click(guarded(lambda: self.show_queue("errors")))
        p.clear.on_click(guarded(lambda: setattr(self, "selection", [])))
        p.export.on_click(guarded(self.export))
        p.accept.on_click(guarded(lambda: self.accept_predictions()))
        self._guarded = guarded
        self.map.observe(self._on_selection, names="selection")
        self.map.observe(lambda _c: self.map.color_by == "review" and self._request_review(),
                         names="color_by")

    def _picked_name(self) -> str:
        cid = self.panel.class_pick.value
        if cid is None:
            raise ValueError("pick a class first")
        return self.session.labels.classes[cid]

    def _picked_cluster(self) -> int:
        if self.panel.cluster_pick.value is None:
            raise ValueError("no clusters proposed yet")
        return int(self.panel.cluster_pick.value)

    def _on_selection(self, change: dict[str, Any]) -> None:
        # A queue or a search names what it selected; a lasso or a click is "Selection".
        title, self._title = self._title, "Selection"
        self.gallery.show(self.map.selected, title=title)
        self._refresh_status()

    def _on_action(self, action: dict[str, Any]) -> None:
        """Key presses and gallery clicks; errors reach the person via the panel."""
        kind = action["type"]
        self.panel.show_error("")
        self._message = ""
        try:
            if kind == "label_key":
                self.label_key(action["key"])
            elif kind == "remove_labels":
                self.remove_labels()
            elif kind == "undo":
                self.session.undo()
            elif kind == "redo":
                self.session.redo()
            elif kind == "drop":
                sel = self.selection
                self.selection = sel[sel != action["index"]]
            elif kind == "relabel":
                slot = action["slot"]
                if slot == 0:
                    self.session.remove_labels([action["index"]])
                else:
                    cid = self.slots.class_of_slot(slot)
                    if cid is None:
                        raise ValueError(f"no class in colour slot {slot}")
                    self.session.label([action["index"]],
                                       self.session.labels.classes[cid])
        except Exception as e:
            self.panel.show_error(str(e))
            raise

    def _positions(self, items: Any) -> np.ndarray:
        if self._id_pos is None:
            self._id_pos = {i: p for p, i in enumerate(self._ids)}
        return as_positions(items, self.session.n, ids=self._id_pos)

    # -- session events (any thread) -> widgets (main thread) -------------------------------

    def _on_session_event(self, event: str) -> None:
        if event == "predictions":
            # On the thread that publishes them (the retrain worker when in the background).
            self._estimate = self._read_estimate()
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
            if "labels" in events or "predictions" in events:
                self._refresh_labels()
            if "predictions" in events and self.map.color_by == "review":
                self._request_review()
            if "layout" in events:
                self.map.coords = normalize_coords(self.session.coords).tobytes()
            if "clusters" in events:
                self._refresh_clusters()
            self._refresh_status()
        except Exception:  # a view must never take the kernel down
            log.exception("workbench: refreshing the widgets after %s failed", events)

    def _read_estimate(self) -> Any:
        """``Workbench.estimate()`` when the session has one and it answers, else None."""
        estimate = getattr(self.session, "estimate", None)
        if not callable(estimate):
            return None
        try:
            return estimate()
        except Exception as e:  # no figure beats a wrong one
            log.info("workbench: no accuracy estimate: %s", e)
            return None

    def _refresh_labels(self) -> None:
        """Map codes, legend, label buttons and cards from the effective labels."""
        store = self.session.labels
        pred = self.session.predictions
        eff = effective_labels(store.state, pred)
        self._effective = eff
        self._layers = {"human": int((eff.layer == HUMAN).sum()),
                        "accepted": int((eff.layer == ACCEPTED).sum()),
                        "predicted": int((eff.layer == PREDICTED).sum())}
        self.slots.sync(store.classes)
        human = self.slots.encode(np.where(eff.layer == HUMAN, eff.label, -1))
        machine = self.slots.encode(np.where(eff.is_machine, eff.label, -1))
        fields: dict[str, np.ndarray] = {"human": human, "machine": machine}
        if pred is not None:
            # The predicted and confidence modes show the model itself, accepted or not.
            fields["predicted"] = self.slots.encode(np.asarray(pred.label, dtype=np.int64))
            conf = np.nan_to_num(np.asarray(pred.confidence, dtype=np.float32), nan=-1.0)
            fields["confidence"] = np.where(
                conf >= 0, 1 + np.round(np.clip(conf, 0, 1) * 254), 0
            ).astype(np.uint8)
        # Codes before the palette: the map redraws once with both.
        self.map.update(**fields)
        self._refresh_palette(human, machine)
        self.gallery.refresh()

    def _refresh_palette(self, human: np.ndarray, machine: np.ndarray) -> None:
        """Legend, label buttons and gallery choices, with human and machine counts."""
        classes = self.session.labels.classes
        slots = self.slots.sync(classes)
        size = max(slots.values(), default=0) + 1
        counts_h = np.bincount(human, minlength=size)
        counts_m = np.bincount(machine, minlength=size)
        palette = []
        for k, (cid, name) in enumerate(classes.items(), start=1):
            s = slots[cid]
            palette.append({"id": cid, "slot": s, "name": name, "color": self.slots.color(s),
                            "key": k if k <= 9 else None, "human": int(counts_h[s]),
                            "machine": int(counts_m[s])})
        self.map.classes = palette
        self.gallery.classes = [{"slot": c["slot"], "name": c["name"]} for c in palette]
        self.panel.set_classes(palette)

    # -- work off the main thread --------------------------------------------------------------

    def _request_review(self) -> None:
        self._review.submit()
        self._refresh_status()

    def _compute_review(self) -> np.ndarray:
        """(N,) uint8 review codes, 1 = suggested next, 2 = suspected error (worker thread:
        ranking label issues refits a probe out of fold)."""
        review = np.zeros(self.session.n, np.uint8)
        try:
            review[np.asarray(self.session.suggestions(n=GALLERY_PAGE_SIZE), np.int64)] = 1
            review[np.asarray(self.session.suspected_errors(n=GALLERY_PAGE_SIZE), np.int64)] = 2
        except Exception as e:  # queues need predictions; before those there is no review
            log.debug("review queues not available yet: %s", e)
        return review

    def _apply_review(self, review: np.ndarray) -> None:
        self.map.update(review=review)
        self._refresh_status()

    def _compute_errors(self, n: int) -> np.ndarray:
        return np.asarray(self.session.suspected_errors(n=n), np.int64)

    def _apply_errors(self, items: np.ndarray) -> None:
        self._title = "Suspected label errors"
        self.selection = items
        self._refresh_status()

    def _job_failed(self, what: str) -> Any:
        def report(e: BaseException) -> None:
            log.error("workbench: %s failed: %s", what, e, exc_info=e)
            self.panel.show_error(f"{what} failed: {e}")
            self._refresh_status()
        return report

    def _refresh_clusters(self) -> None:
        clusters = self.session.clusters or []
        codes = np.zeros(self.session.n, np.uint16)
        options = []
        for k, c in enumerate(clusters):
            codes[np.asarray(c.members, dtype=np.int64)] = min(k + 1, 65535)
            options.append((f"cluster {k + 1} ({c.size} items)", k))
        self.map.n_clusters = len(clusters)
        self.map.update(cluster=codes)
        self.panel.set_clusters(options)

    def _refresh_status(self) -> None:
        running = [name for name, job in (("review", self._review),
                                          ("suspected errors", self._errors_queue))
                   if job.busy]
        self.panel.status.value = format_status(
            self.session.status, selected=int(self.map.selected.size),
            estimate=self._estimate, layers=self._layers, running=running,
            message=self._message,
        )
