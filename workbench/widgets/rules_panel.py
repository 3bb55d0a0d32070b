"""The rules panel: rules as labellers (weak supervision) in the notebook app.

Type a rule (keywords, a regular expression, a text prompt, or an SQL condition over the
item table's columns) and the class it votes for; it is added as one action (undone by the
usual undo) and its row shows at once: how many items it votes on, how often it disagrees
with other rules, and its accuracy on the human labels with a 90% interval, updated as
labels come. Pick a rule to colour the map by its votes, to see where it contradicts a
human label (in the gallery), to switch it off or on, or to remove it.

What it reads and calls on the session is listed in
:class:`~workbench.widgets._contract.SessionView`; the analysis runs in a worker thread and
only its result is applied on the main thread.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as w

from ._contract import SessionEvent
from ._threads import OffMainThread

__all__ = ["RULE_KINDS", "RulesPanel", "rule_fields"]

log = logging.getLogger("workbench.widgets")

#: The rule kinds the panel adds, with what its text field holds.
RULE_KINDS = {
    "keywords": "words, comma-separated (any of them votes)",
    "regex": "a regular expression",
    "prompt": "text prompts, ';'-separated (similar items vote)",
    "expression": "an SQL condition over the item columns, e.g. folder = 'cats'",
}


def rule_fields(kind: str, text: str, column: str = "", threshold: float = 0.25
                ) -> dict[str, Any]:
    """The keyword arguments of ``Workbench.add_rule`` for what was typed in the panel."""
    text = text.strip()
    if not text:
        raise ValueError(f"type the rule first: {RULE_KINDS.get(kind, kind)}")
    col = {"column": column.strip()} if column.strip() else {}
    if kind == "keywords":
        return {"words": [t.strip() for t in text.split(",") if t.strip()], **col}
    if kind == "regex":
        return {"pattern": text, **col}
    if kind == "prompt":
        return {"prompts": [t.strip() for t in text.split(";") if t.strip()],
                "threshold": float(threshold)}
    if kind == "expression":
        import polars as pl

        return {"expr": pl.sql_expr(text)}
    raise ValueError(f"unknown rule kind {kind!r}; one of {list(RULE_KINDS)}")


def _button(text: str, tip: str) -> w.Button:
    return w.Button(description=text, tooltip=tip, layout=w.Layout(width="auto"))


class RulesPanel(w.VBox):
    """Rules of ``app``'s session: add, list with their analysis, pick one to colour the
    map by, show its conflicts, enable/disable, remove.

    Attributes (for tests and notebooks): ``kind`` (Dropdown), ``text``, ``column``,
    ``label`` (Text), ``threshold`` (FloatSlider), ``add``, ``toggle``, ``remove``,
    ``show``, ``conflicts`` (Buttons), ``pick`` (Dropdown of rules), ``table`` (HTML),
    ``summary`` (Label).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.session = app.session
        self.kind = w.Dropdown(options=list(RULE_KINDS), value="keywords", description="rule",
                               layout=w.Layout(width="200px"))
        self.text = w.Text(placeholder=RULE_KINDS["keywords"], layout=w.Layout(width="300px"))
        self.column = w.Text(placeholder="column (default: the text)",
                             layout=w.Layout(width="170px"))
        self.label = w.Text(placeholder="votes for class", layout=w.Layout(width="150px"))
        self.threshold = w.FloatSlider(value=0.25, min=0.0, max=1.0, step=0.01,
                                       description="similarity", layout=w.Layout(width="260px"))
        self.add = _button("add rule", "add the typed rule (one action: undo takes it back)")
        self.pick = w.Dropdown(options=[], description="rules", layout=w.Layout(width="260px"))
        self.show = _button("colour map", "colour the map by the picked rule's votes")
        self.conflicts = _button("conflicts", "items where the picked rule contradicts a "
                                              "human label, in the gallery")
        self.toggle = _button("on/off", "switch the picked rule off (or back on)")
        self.remove = _button("remove", "remove the picked rule (undo brings it back)")
        self.table = w.HTML()
        self.summary = w.Label()
        super().__init__([
            w.HBox([self.kind, self.text, self.column, self.label, self.threshold, self.add]),
            w.HBox([self.pick, self.show, self.conflicts, self.toggle, self.remove,
                    self.summary]),
            self.table,
        ])
        self.add_class("wb-rules")
        self.kind.observe(self._on_kind, names="value")
        self._on_kind()
        for button, action in ((self.add, self.add_typed), (self.show, self.colour_map),
                               (self.conflicts, self.show_conflicts),
                               (self.toggle, self.toggle_picked),
                               (self.remove, self.remove_picked)):
            button.on_click(lambda _b, act=action: self._attempt(act))
        self._job = OffMainThread(self.session.rule_analysis, self._show_analysis,
                                  on_error=self._failed, loop=getattr(app, "_loop", None),
                                  name="workbench-rules")
        self._unsubscribe = self.session.subscribe(self._on_event)
        self.refresh()

    # -- actions (each also callable from a notebook cell) ----------------------------------

    def add_typed(self) -> int:
        """Add the rule typed in the panel; returns its id."""
        name = self.label.value.strip()
        if not name:
            raise ValueError("name the class the rule votes for")
        fields = rule_fields(self.kind.value, self.text.value, self.column.value,
                             self.threshold.value)
        rule_id = self.session.add_rule(self.kind.value, name, **fields)
        self.text.value = ""
        self.app.view.shown_rule = int(rule_id)
        self.refresh()
        return int(rule_id)

    def colour_map(self) -> None:
        """Colour the map by the picked rule's votes (grey where it abstains)."""
        if self.pick.value is None:
            raise ValueError("no rule yet: add one first")
        self.app.view.shown_rule = int(self.pick.value)
        if self.app.map.color_by == "rule":
            self.app._request_review()  # the same mode, another rule: recompute its codes
        else:
            self.app.map.color_by = "rule"

    def show_conflicts(self) -> None:
        """Select, and show in the gallery, where the picked rule contradicts a human."""
        if self.pick.value is None:
            raise ValueError("no rule yet: add one first")
        items = self.session.rule_conflicts(int(self.pick.value))
        self.app.view.title = f"Conflicts of rule {self.pick.label}: {len(items)} items"
        self.app.selection = items

    def toggle_picked(self) -> None:
        """Switch the picked rule off, or back on."""
        rules = self.session.rules
        row = rules.filter(rules["id"] == int(self.pick.value))
        if not row.height:
            raise ValueError("pick a rule first")
        self.session.enable_rule(int(self.pick.value), not bool(row["enabled"][0]))
        self.refresh()

    def remove_picked(self) -> None:
        if self.pick.value is None:
            raise ValueError("pick a rule first")
        self.session.remove_rule(int(self.pick.value))
        self.refresh()

    def refresh(self) -> None:
        """List the rules now; their analysis follows from a worker thread."""
        rules = self.session.rules
        keep = self.pick.value
        self.pick.options = [(f"{r['id']}: {r['name'] or r['kind']} → {r['label']}"
                              + ("" if r["enabled"] else " (off)"), int(r["id"]))
                             for r in rules.iter_rows(named=True)]
        if keep in [o[1] for o in self.pick.options]:
            self.pick.value = keep
        elif self.app.view.shown_rule in [o[1] for o in self.pick.options]:
            self.pick.value = self.app.view.shown_rule
        self._job.submit()

    def close(self) -> None:
        self._unsubscribe()
        self._job.close()
        super().close()

    # -- internals ------------------------------------------------------------------------

    def _attempt(self, action: Any) -> None:
        """A click: its failure is shown on the app's error line, never raised."""
        self.app.panel.show_error("")
        try:
            action()
        except Exception as e:  # the person sees why; the kernel keeps running
            self.app.panel.show_error(str(e))
            log.info("rules action failed: %s", e)

    def _on_kind(self, *_: Any) -> None:
        self.text.placeholder = RULE_KINDS[self.kind.value]
        prompt = self.kind.value == "prompt"
        self.threshold.layout.display = None if prompt else "none"
        self.column.layout.display = "none" if prompt or self.kind.value == "expression" \
            else None

    def _on_event(self, event: str) -> None:
        if event in (SessionEvent.LABELS, SessionEvent.PREDICTIONS):
            self._job.submit()  # any thread: the job hands its result to the main thread

    def _failed(self, e: BaseException) -> None:
        self.summary.value = f"rule analysis failed: {e}"

    def _show_analysis(self, table: Any) -> None:
        """The analysis as an HTML table (names are data: escaped)."""
        if table is None or not table.height:
            self.table.value = ""
            self.summary.value = "no rules yet"
            return
        head = ("<tr><th>rule</th><th>votes for</th><th>on</th><th>coverage</th>"
                "<th>conflicts</th><th>accuracy on human labels (90%)</th><th></th></tr>")
        rows, n = [], self.session.n
        for r in table.iter_rows(named=True):
            acc = ("–" if r["accuracy"] is None else
                   f"{r['accuracy']:.0%} ({r['accuracy_low']:.0%}–{r['accuracy_high']:.0%}) "
                   f"of {r['labelled']}")
            rows.append(
                f"<tr><td>{html.escape(str(r['name'] or r['kind']))}</td>"
                f"<td>{html.escape(str(r['label']))}</td>"
                f"<td>{'yes' if r['enabled'] else 'off'}</td>"
                f"<td class='wb-coverage'>{round(r['coverage'] * n):,} ({r['coverage']:.1%})</td>"
                f"<td>{r['conflicts']:.1%}</td><td>{acc}</td>"
                f"<td>{'⚠ hurts' if r['flagged'] else ''}</td></tr>")
        self.table.value = (f"<table class='wb-rules-table'>{head}{''.join(rows)}</table>")
        on = table.filter(table["enabled"])
        self.summary.value = f"{on.height} of {table.height} rules on"
