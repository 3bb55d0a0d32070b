"""The control panel: class palette, label buttons, search, clusters, queues, status line.

Built from standard ipywidgets, whose labels, buttons and options show text as text (no
HTML), so class names and messages can be any string. The panel only holds controls;
:class:`~workbench.widgets.app.WorkbenchApp` connects them to a session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w

__all__ = ["ControlPanel", "format_status"]


def format_status(status: dict[str, Any] | None, *, selected: int = 0) -> str:
    """One line: what runs, on which device, the probe's accuracy, the latest message."""
    s = status or {}
    running = s.get("running") or []
    parts = [f"running: {', '.join(map(str, running))}" if running else "idle"]
    parts.append(f"device: {s.get('device', 'cpu')}")
    acc = s.get("probe_accuracy")
    parts.append(f"probe accuracy: {acc:.1%}" if isinstance(acc, (int, float)) else
                 "probe accuracy: n/a")
    parts.append(f"{selected} selected")
    if s.get("message"):
        parts.append(str(s["message"]))
    return " · ".join(parts)


def _button(text: str, tip: str = "", **kw: Any) -> w.Button:
    return w.Button(description=text, tooltip=tip or text,
                    layout=w.Layout(width="auto"), **kw)


class ControlPanel(w.VBox):
    """Controls of the workbench, grouped in rows.

    Attributes (the controls the app wires): ``class_name`` (Text), ``class_pick``
    (Dropdown of classes), ``create``, ``rename``, ``merge``, ``delete``, ``unlabel``,
    ``undo``, ``redo``, ``label_buttons`` (HBox, one button per class), ``query``,
    ``search``, ``more_like_this``, ``cluster_pick``, ``select_cluster``,
    ``label_cluster``, ``queue_next``, ``queue_errors``, ``clear``, ``export``,
    ``status`` (Label), ``error`` (Label).
    """

    def __init__(self) -> None:
        self.class_name = w.Text(placeholder="class name", layout=w.Layout(width="180px"))
        self.class_pick = w.Dropdown(options=[], description="class",
                                     layout=w.Layout(width="220px"))
        self.create = _button("new class", "create a class named as typed")
        self.rename = _button("rename", "rename the picked class to the typed name")
        self.merge = _button("merge into", "merge the picked class into the typed class")
        self.delete = _button("delete", "delete the picked class (its items become unlabelled)")
        self.unlabel = _button("0 unlabel", "remove the labels of the selection")
        self.undo = _button("undo", "Ctrl/Cmd+Z")
        self.redo = _button("redo", "Shift+Ctrl/Cmd+Z")
        self.label_buttons = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.query = w.Text(placeholder="search text (CLIP)", layout=w.Layout(width="220px"))
        self.search = _button("search", "select the items that best match the text")
        self.more_like_this = _button("more like this", "select items like the selected ones")
        self.cluster_pick = w.Dropdown(options=[], description="cluster",
                                       layout=w.Layout(width="240px"))
        self.select_cluster = _button("select cluster")
        self.label_cluster = _button("label this cluster", "label it with the typed name")
        self.queue_next = _button(
            "label next", "the cluster core, or the page of items, worth labelling next")
        self.queue_errors = _button("suspected errors", "human labels that look wrong")
        self.clear = _button("clear selection")
        self.export = _button("export", "write labels.parquet in the project folder")
        self.status = w.Label(value="idle")
        self.error = w.Label(value="", style={"text_color": "#b00020"})
        self._on_label: Callable[[int], None] | None = None
        super().__init__(
            [
                w.HBox([self.class_name, self.create, self.class_pick, self.rename,
                        self.merge, self.delete]),
                w.HBox([self.label_buttons, self.unlabel, self.undo, self.redo]),
                w.HBox([self.query, self.search, self.more_like_this, self.cluster_pick,
                        self.select_cluster, self.label_cluster]),
                w.HBox([self.queue_next, self.queue_errors, self.clear, self.export]),
                self.status,
                self.error,
            ]
        )
        self.add_class("wb-panel")

    def on_label(self, callback: Callable[[int], None]) -> None:
        """``callback(key)`` when a class button (key 1-9) is clicked."""
        self._on_label = callback

    def set_classes(self, classes: Sequence[dict[str, Any]]) -> None:
        """Show classes: dicts with ``id``, ``name``, ``key`` (1-9 or None), ``color``."""
        keep = self.class_pick.value
        self.class_pick.options = [(c["name"], c["id"]) for c in classes]
        if keep in [c["id"] for c in classes]:
            self.class_pick.value = keep
        buttons = []
        for c in classes:
            if not c.get("key"):
                continue
            b = _button(f"{c['key']} {c['name']}", f"label the selection (key {c['key']})")
            b.style.button_color = c["color"]
            b.on_click(lambda _b, k=c["key"]: self._on_label and self._on_label(k))
            buttons.append(b)
        self.label_buttons.children = buttons

    def set_clusters(self, clusters: Sequence[tuple[str, int]]) -> None:
        """Show proposed clusters as ``(text, index)`` options."""
        self.cluster_pick.options = list(clusters)

    def show_error(self, message: str) -> None:
        self.error.value = message
