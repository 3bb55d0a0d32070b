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


def format_status(
    status: dict[str, Any] | None,
    *,
    selected: int = 0,
    estimate: Any = None,
    layers: dict[str, int] | None = None,
    running: Sequence[str] = (),
    message: str = "",
) -> str:
    """One line: what runs, on which device, the estimated accuracy, label counts, the
    selection, the latest messages.

    Parameters
    ----------
    status : ``Workbench.status`` (``running``, ``device``, ``annotator``, ``message``); its probe
        accuracy is never shown (it is measured on the human labels, not on the items).
    estimate : ``Workbench.estimate()``: ``{"accuracy", "low", "high"}`` fractions, or None
        (then no accuracy figure at all).
    layers : items per label layer, ``{"human": h, "accepted": a, "predicted": p}``.
    running : the widget's own background work, shown beside the session's.
    message : the widget's latest message (an export), after the session's.
    """
    s = status or {}
    jobs = [*map(str, s.get("running") or []), *running]
    parts = [f"running: {', '.join(jobs)}" if jobs else "idle"]
    parts.append(f"device: {s.get('device', 'cpu')}")
    if s.get("annotator"):
        parts.append(f"annotator: {s['annotator']}")
    accuracy = _accuracy_text(estimate)
    if accuracy:
        parts.append(accuracy)
    if layers:
        counts = [f"{layers[k]:,} {k}" for k in ("human", "accepted", "predicted")
                  if layers.get(k)]
        parts.append(f"labels: {', '.join(counts)}" if counts else "no labels yet")
    parts.append(f"{selected} selected")
    for m in (s.get("message"), message):
        if m:
            parts.append(str(m))
    return " · ".join(parts)


def _accuracy_text(estimate: Any) -> str:
    """``accuracy ≈ 87% (82-91%)`` from an estimate dict; "" when it is not one."""
    if not isinstance(estimate, dict):
        return ""
    values = [estimate.get(k) for k in ("accuracy", "low", "high")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
               for v in values):
        return ""
    acc, low, high = values
    return f"accuracy ≈ {acc:.0%} ({low:.0%}–{high:.0%})"


def _button(text: str, tip: str = "", **kw: Any) -> w.Button:
    return w.Button(description=text, tooltip=tip or text,
                    layout=w.Layout(width="auto"), **kw)


class ControlPanel(w.VBox):
    """Controls of the workbench, grouped in rows.

    Attributes (the controls the app wires): ``class_name`` (Text), ``class_pick``
    (Dropdown of classes), ``label_picked``, ``create``, ``rename``, ``merge``, ``delete``, ``unlabel``,
    ``undo``, ``redo``, ``label_buttons`` (HBox, one button per class), ``query``,
    ``search``, ``more_like_this``, ``cluster_pick``, ``select_cluster``,
    ``label_cluster``, ``queue_next``, ``queue_errors``, ``queue_disagreements``, ``clear``,
    ``accept``, ``export``, ``annotator`` (Text: who labels, settable),
    ``status`` (Label), ``error`` (Label).
    """

    def __init__(self) -> None:
        self.class_name = w.Text(placeholder="class name", layout=w.Layout(width="180px"))
        self.class_pick = w.Dropdown(options=[], description="class",
                                     layout=w.Layout(width="220px"))
        self.create = _button("new class", "create a class named as typed")
        self.label_picked = _button(
            "label as picked", "label the selection with the picked class (any class, also "
            "those past key 9)")
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
        self.queue_disagreements = _button(
            "disagreements", "items the annotators disagree on, least sure consensus first")
        self.clear = _button("clear selection")
        self.export = _button("export", "write <project>-labels.parquet beside the project folder")
        self.accept = _button("accept predictions",
                              "record the selection's predictions as machine labels")
        self.annotator = w.Text(description="annotator", continuous_update=False,
                                layout=w.Layout(width="220px"),
                                tooltip="who labels in this session (your undo is yours)")
        self.status = w.Label(value="idle")
        self.error = w.Label(value="", style={"text_color": "#b00020"})
        self._on_label: Callable[[int], None] | None = None
        super().__init__(
            [
                w.HBox([self.class_name, self.create, self.class_pick, self.label_picked,
                        self.rename, self.merge, self.delete]),
                w.HBox([self.label_buttons, self.unlabel, self.undo, self.redo]),
                w.HBox([self.query, self.search, self.more_like_this, self.cluster_pick,
                        self.select_cluster, self.label_cluster]),
                w.HBox([self.queue_next, self.queue_errors, self.queue_disagreements,
                        self.clear, self.accept, self.export, self.annotator]),
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
        """Show proposed clusters as ``(text, index)`` options (the picked one stays)."""
        keep = self.cluster_pick.value
        self.cluster_pick.options = list(clusters)
        if keep in [k for _, k in clusters]:
            self.cluster_pick.value = keep

    def show_error(self, message: str) -> None:
        self.error.value = message
