"""The workbench in a notebook: map, gallery and controls over one session.

:class:`WorkbenchApp` is a view. The session owns items, labels and predictions; the app
encodes them for the map (class ids to colour slots), turns clicks and key presses into
session calls, and listens to the session's events, which may arrive on a worker thread
and are handed to the kernel's main thread before any widget is touched.

Everything a click does is also a method here, so a notebook cell can do it too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np

from .._config import GALLERY_PAGE_SIZE, MAP_HEIGHT
from ..thumbnails import ThumbnailCache
from ._palette import ClassSlots
from ._threads import call_on_main
from .gallery import Gallery
from .panel import ControlPanel, format_status
from .scatter import ScatterMap, normalize_coords

__all__ = ["WorkbenchApp"]

log = logging.getLogger("workbench.widgets")

#: Characters of an item's text shown on a card or in the hover preview.
TEXT_PREVIEW_CHARS = 400


class WorkbenchApp(w.VBox):
    """Map, gallery and control panel of a :class:`~workbench.session.Workbench`.

    Parameters
    ----------
    session : the Workbench (``Workbench.demo(...)``, ``Workbench.open(...)``).
    height : map height in pixels (default ``MAP_HEIGHT``).
    page_size : gallery cards per page (default ``GALLERY_PAGE_SIZE``).

    Attributes
    ----------
    map : :class:`ScatterMap`; gallery : :class:`Gallery`; panel : :class:`ControlPanel`.
    """

    def __init__(
        self, session: Any, *, height: int = MAP_HEIGHT, page_size: int = GALLERY_PAGE_SIZE
    ) -> None:
        self.session = session
        self.slots = ClassSlots()
        self._title = "Selection"
        self._thumbs = ThumbnailCache(Path(session.project.cache_dir))
        items = session.items
        self._ids = items["id"].to_list()
        self._kinds = items["kind"].to_list()
        self._sources = items["source"].to_list()
        self.map = ScatterMap(session.coords, height=height, thumbnail=self.thumbnail,
                              on_action=self._on_action)
        self.gallery = Gallery(describe=self.describe, thumbnail=self.thumbnail,
                               on_action=self._on_action, page_size=page_size)
        self.panel = ControlPanel()
        super().__init__([self.panel, self.map, self.gallery])
        self.add_class("workbench-app")
        self._wire()
        self._refresh_labels()
        self._refresh_predictions()
        self._refresh_clusters()
        self._refresh_status()
        self.gallery.show([], title="Selection")
        self._unsubscribe = session.subscribe(self._on_session_event)

    # -- reading and setting from Python --------------------------------------------------

    @property
    def selection(self) -> np.ndarray:
        """(K,) int64 positions of the selected items; assign positions to select."""
        return self.map.selected

    @selection.setter
    def selection(self, items: Any) -> None:
        self.map.select(self._positions(items))

    @property
    def labels(self) -> np.ndarray:
        """(N,) object array: each item's current label name (human, else machine) or None."""
        names = self.session.labels.classes
        cur = self.session.labels.state.current
        return np.array([names.get(int(c)) for c in cur], dtype=object)

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
        """Label ``items`` (default the selection) with class ``name`` (created if new)."""
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
            items, title = self.session.suspected_errors(n=n), "Suspected label errors"
        else:
            raise ValueError(f"queue must be 'next' or 'errors', not {which!r}")
        self._title = title
        self.selection = items

    def close(self) -> None:
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
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
        """Gallery cards for ``indices``."""
        st = self.session.labels.state
        names = self.session.labels.classes
        pred = self.session.predictions
        cards = []
        for i in np.asarray(indices, dtype=np.int64).tolist():
            h, m = int(st.human[i]), int(st.machine[i])
            if h >= 0:
                label, source = names.get(h, ""), "human"
            elif m >= 0:
                label, source = names.get(m, ""), "machine"
            elif pred is not None and int(pred.label[i]) >= 0:
                label, source = names.get(int(pred.label[i]), ""), "predicted"
            else:
                label, source = "", ""
            kind = self._kinds[i]
            text = (self._ids[i] if kind == "image"
                    else self.session.item_text(i)[:TEXT_PREVIEW_CHARS])
            cards.append({"index": i, "kind": kind, "text": text, "label": label,
                          "source": source})
        return cards

    def _label_text(self, i: int) -> str:
        st = self.session.labels.state
        names = self.session.labels.classes
        h, m = int(st.human[i]), int(st.machine[i])
        if h >= 0:
            return names.get(h, "")
        pred = self.session.predictions
        if m < 0 and pred is not None:
            m = int(pred.label[i])
        if m >= 0:
            return f"{names.get(m, '')} (machine)"
        return "unlabelled"

    # -- wiring ---------------------------------------------------------------------------

    def _wire(self) -> None:
        p = self.panel

        def guarded(fn: Any) -> Any:
            def run(*_: Any) -> None:
                p.show_error("")
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
        p.export.on_click(guarded(self._export))
        self._guarded = guarded
        self.map.observe(self._on_selection, names="selection")
        self.map.observe(lambda _c: self.map.color_by == "review" and self._refresh_review(),
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

    def _export(self) -> None:
        path = Path(self.session.project.path) / "labels.parquet"
        self.session.export(path)
        self.panel.show_error("")
        self.session.status["message"] = f"exported to {path}"
        self._refresh_status()

    def _on_selection(self, change: dict[str, Any]) -> None:
        # A queue or a search names what it selected; a lasso or a click is "Selection".
        title, self._title = self._title, "Selection"
        self.gallery.show(self.map.selected, title=title)
        self._refresh_status()

    def _on_action(self, action: dict[str, Any]) -> None:
        """Key presses and gallery clicks; errors reach the person via the panel."""
        kind = action["type"]
        self.panel.show_error("")
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
        arr = np.asarray(items if items is not None else [])
        if arr.size == 0:
            return np.zeros(0, np.int64)
        if arr.dtype.kind in "US" or arr.dtype == object:
            pos = {i: p for p, i in enumerate(self._ids)}
            missing = [str(x) for x in arr.ravel() if str(x) not in pos]
            if missing:
                raise KeyError(f"unknown item id {missing[0]!r} ({len(missing)} unknown)")
            return np.array([pos[str(x)] for x in arr.ravel()], dtype=np.int64)
        return arr.astype(np.int64).ravel()

    # -- session events (any thread) -> widgets (main thread) -------------------------------

    def _on_session_event(self, event: str) -> None:
        call_on_main(lambda: self._apply_event(event))

    def _apply_event(self, event: str) -> None:
        try:
            if event == "labels":
                self._refresh_labels()
            elif event == "predictions":
                self._refresh_predictions()
            elif event == "layout":
                self.map.coords = normalize_coords(self.session.coords).tobytes()
            elif event == "clusters":
                self._refresh_clusters()
            self._refresh_status()
        except Exception:  # a view must never take the kernel down
            log.exception("workbench: refreshing the widgets after %r failed", event)

    def _refresh_labels(self) -> None:
        store = self.session.labels
        self.slots.sync(store.classes)
        human = self.slots.encode(store.state.human)
        machine = self._machine_codes()
        # Codes before the palette: the map redraws once with both.
        self.map.update(human=human, machine=machine)
        self._refresh_palette(human, machine)
        self.gallery.refresh()

    def _refresh_palette(self, human: np.ndarray, machine: np.ndarray) -> None:
        """Legend, label buttons and gallery choices, with human and machine counts."""
        classes = self.session.labels.classes
        slots = self.slots.sync(classes)
        size = max(slots.values(), default=0) + 1
        counts_h = np.bincount(human, minlength=size)
        counts_m = np.bincount(np.where(human > 0, 0, machine), minlength=size)
        palette = []
        for k, (cid, name) in enumerate(classes.items(), start=1):
            s = slots[cid]
            palette.append({"id": cid, "slot": s, "name": name, "color": self.slots.color(s),
                            "key": k if k <= 9 else None, "human": int(counts_h[s]),
                            "machine": int(counts_m[s])})
        self.map.classes = palette
        self.gallery.classes = [{"slot": c["slot"], "name": c["name"]} for c in palette]
        self.panel.set_classes(palette)

    def _machine_codes(self) -> np.ndarray:
        st = self.session.labels.state
        machine = st.machine
        pred = self.session.predictions
        if pred is not None:
            machine = np.where(machine >= 0, machine, np.asarray(pred.label, dtype=np.int64))
        return self.slots.encode(machine)

    def _refresh_predictions(self) -> None:
        pred = self.session.predictions
        fields: dict[str, np.ndarray] = {"machine": self._machine_codes()}
        if pred is not None:
            fields["predicted"] = self.slots.encode(np.asarray(pred.label, dtype=np.int64))
            conf = np.nan_to_num(np.asarray(pred.confidence, dtype=np.float32), nan=-1.0)
            fields["confidence"] = np.where(
                conf >= 0, 1 + np.round(np.clip(conf, 0, 1) * 254), 0
            ).astype(np.uint8)
        self.map.update(**fields)
        self._refresh_palette(self.map.codes("human"), fields["machine"])
        if self.map.color_by == "review":
            self._refresh_review()
        self.gallery.refresh()

    def _refresh_review(self) -> None:
        # Ranking label issues refits a probe out of fold: only worth it when shown.
        review = np.zeros(self.session.n, np.uint8)
        try:
            review[np.asarray(self.session.suggestions(n=GALLERY_PAGE_SIZE), np.int64)] = 1
            review[np.asarray(self.session.suspected_errors(n=GALLERY_PAGE_SIZE), np.int64)] = 2
        except Exception as e:  # queues need predictions; before those there is no review
            log.debug("review queues not available yet: %s", e)
        self.map.update(review=review)

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
        self.panel.status.value = format_status(
            self.session.status, selected=int(self.map.selected.size)
        )
