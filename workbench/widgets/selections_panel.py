"""The selections panel: audit a lasso, the duplicates and outliers queues, combine and save
selections, and search above a similarity threshold.

* **combine** (replace / union / intersect / subtract): how the *next* lasso, search or
  queue selection meets the current one; it applies once, then goes back to replace. The
  map's own Ctrl (add) and Alt (subtract) lasso keys still work. A gallery "drop" or
  "clear selection" is never combined.
* **audit**: after each selection the panel says how many members are probably not like
  the rest and how many outside items probably belong (read off the full kNN graph, which
  the 2-D map distorts); "audit" shows both in the gallery, suspects first, and "drop
  suspects" / "add missed" fix the selection in one click, before the label is given.
* **duplicates**: near-duplicate groups one after another ("next group"); a number key
  labels a whole group as usual; "mark copies" (clicked twice: it asks first) gives every
  copy but the first card the class ``DUPLICATE_CLASS``. **outliers**: the most isolated
  items, most isolated first.
* **saved selections**: save the selection under a name, restore it (combined as above),
  make it a region rule for the class typed in the main panel, export it, or forget it.
* **similarity**: score every item against the typed text or the selection, move the
  threshold, see how many items are at or above it, select them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np

from .._config import DUPLICATE_CLASS, SEARCH_THRESHOLD
from .._selections import combine

__all__ = ["COMBINE_CHOICES", "SelectionsPanel"]

log = logging.getLogger("workbench.widgets")

#: The combine dropdown: what it shows and the mode of :func:`workbench._selections.combine`.
COMBINE_CHOICES = [("replace", "replace"), ("union", "union"), ("intersect", "intersection"),
                   ("subtract", "difference")]


def _button(text: str, tip: str, **kw: Any) -> w.Button:
    return w.Button(description=text, tooltip=tip, layout=w.Layout(width="auto"), **kw)


class SelectionsPanel(w.VBox):
    """Selections of ``app`` (a :class:`~workbench.widgets.app.WorkbenchApp`).

    Attributes (for tests and notebooks): ``combine`` (Dropdown), ``audit``,
    ``drop_suspects``, ``add_missed``, ``duplicates``, ``next_group``, ``mark_copies``,
    ``outliers`` (Buttons), ``name`` (Text), ``save``, ``restore``, ``rule``, ``export``,
    ``forget`` (Buttons), ``saved`` (Dropdown), ``score_text``, ``score_selection``,
    ``select_above`` (Buttons), ``threshold`` (FloatSlider), ``count`` and ``info`` (Labels).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.session = app.session
        self.combine = w.Dropdown(options=COMBINE_CHOICES, value="replace",
                                  description="combine", layout=w.Layout(width="200px"))
        self.audit = _button("audit", "show the members probably not like the rest and the "
                             "outside items that probably belong")
        self.drop_suspects = _button("drop suspects", "take the suspects out of the selection")
        self.add_missed = _button("add missed", "add the missed items to the selection")
        self.duplicates = _button("duplicates", "near-duplicate groups, one after another")
        self.next_group = _button("next group", "the next group of near-duplicates")
        self.mark_copies = _button("mark copies", f"label all but the first card "
                                   f"'{DUPLICATE_CLASS}' (asks first)")
        self.outliers = _button("outliers", "the most isolated items")
        self.name = w.Text(placeholder="selection name", layout=w.Layout(width="160px"))
        self.save = _button("save selection", "save the selection under the typed name")
        self.saved = w.Dropdown(options=[], description="saved", layout=w.Layout(width="220px"))
        self.restore = _button("restore", "select the saved selection (combined as set)")
        self.rule = _button("make rule", "a region rule: the saved selection votes for the "
                            "class typed in the panel above")
        self.export = _button("export it", "export the labels of the saved selection only")
        self.forget = _button("forget", "delete the saved selection")
        self.score_text = _button("similar to text", "score every item against the search text")
        self.score_selection = _button("similar to selection",
                                       "score every item against the selection")
        self.threshold = w.FloatSlider(value=SEARCH_THRESHOLD, min=-1.0, max=1.0, step=0.01,
                                       description="similarity ≥", continuous_update=True,
                                       readout_format=".2f", layout=w.Layout(width="320px"))
        self.count = w.Label("")
        self.select_above = _button("select ≥ threshold", "select the items at or above it")
        self.info = w.Label("")
        super().__init__([
            w.HBox([self.combine, self.audit, self.drop_suspects, self.add_missed,
                    self.duplicates, self.next_group, self.mark_copies, self.outliers]),
            w.HBox([self.name, self.save, self.saved, self.restore, self.rule, self.export,
                    self.forget]),
            w.HBox([self.score_text, self.score_selection, self.threshold, self.count,
                    self.select_above]),
            self.info,
        ])
        self.add_class("wb-selections")
        self._plain = False  # True while the panel sets the selection itself
        self._audit: Any = None
        self._audit_view = False
        self._groups: list[np.ndarray] | None = None
        self._group = -1
        self._confirm: int | None = None
        self._scores: np.ndarray | None = None
        self._scored = ""
        self._connect()
        self._refresh_saved()
        if not hasattr(app, "select"):  # app.select(items, mode=...): see :meth:`select`
            app.select = self.select

    # -- wiring ---------------------------------------------------------------------------

    def _connect(self) -> None:
        actions: dict[str, Callable[[dict[str, Any]], None]] = {
            "audit": self.show_audit, "drop_suspects": self.fix_suspects,
            "add_missed": self.fix_missed, "duplicates": self.show_duplicates,
            "next_group": self.show_next_group, "mark_copies": self.mark_duplicate_copies,
            "outliers": self.show_outliers, "save": self.save_selection,
            "restore": self.restore_selection, "rule": self.rule_from_selection,
            "export": self.export_selection, "forget": self.forget_selection,
            "score_text": self.score_against_text,
            "score_selection": self.score_against_selection,
            "select_above": self.select_threshold,
        }
        controls = self.app.controls
        for kind, handler in actions.items():
            controls.handlers[f"selections_{kind}"] = handler
            getattr(self, kind).on_click(
                lambda _b, k=kind: controls.attempt({"type": f"selections_{k}"}))
        # A gallery drop or "clear selection" is never combined.
        for kind in ("drop", "clear_selection"):
            controls.handlers[kind] = self._plainly(controls.handlers[kind])
        self.app.map.observe(self._on_selection, names="selection")
        self.threshold.observe(lambda _c: self._recount(), names="value")

    def _plainly(self, handler: Callable[[dict[str, Any]], None]
                 ) -> Callable[[dict[str, Any]], None]:
        def run(action: dict[str, Any]) -> None:
            audit_view = self._audit_view
            self._plain = True
            try:
                handler(action)
            finally:
                self._plain = False
            if audit_view and action["type"] == "drop" and self._audit is not None:
                self.show_audit({})  # the audit stays in view, less the dropped card
        return run

    # -- selecting ------------------------------------------------------------------------

    def select(self, items: Any, mode: str = "replace") -> np.ndarray:
        """Select ``items`` (positions, ids or a mask) combined with the current selection
        by ``mode`` (``"replace"``, ``"union"``, ``"intersection"``, ``"difference"``);
        returns the new selection."""
        new = combine(self.app.selection, self.app.view.positions(items), mode)
        self._set(new)
        return self.app.selection

    def _set(self, items: np.ndarray) -> None:
        self._plain = True
        try:
            self.app.selection = items
        finally:
            self._plain = False

    def _on_selection(self, change: dict[str, Any]) -> None:
        """Combine a lasso, search or queue selection with the one before (once)."""
        self._audit_view = False
        mode = self.combine.value
        new = np.frombuffer(change["new"], np.uint32)
        if not self._plain and mode != "replace" and new.size:
            self.combine.value = "replace"  # the next selection replaces again
            combined = combine(np.frombuffer(change["old"], np.uint32), new, mode)
            if not np.array_equal(combined, new):
                view = self.app.view
                shown = {mode: text for text, mode in COMBINE_CHOICES}[mode]
                view.title = f"{view.title} ({shown} with the selection before)"
                self._set(combined)
                # the app's own handler of this (outer) change shows the same again
                view.title, view.next_queue = self.app.gallery.title, view.queue
        self._describe_audit()

    def _describe_audit(self) -> None:
        sel = self.app.selection
        self._audit = None
        if sel.size == 0:
            self.info.value = ""
            return
        try:
            audit = self.session.audit_selection(sel)
        except Exception as e:  # a view must never take the kernel down (or a lasso)
            log.exception("workbench: auditing the selection failed")
            self.info.value = f"audit failed: {e}"
            return
        self._audit = audit
        self.info.value = (f"audit: {audit.suspects.size} of {sel.size} selected probably not "
                           f"like the rest, {audit.missed.size} outside probably belong")

    def _show(self, ordered: np.ndarray, title: str) -> None:
        self.app.gallery.show(np.asarray(ordered, np.int64), title=title)

    # -- audit ----------------------------------------------------------------------------

    def show_audit(self, action: dict[str, Any]) -> None:
        if self.app.selection.size == 0:
            raise ValueError("select items first (lasso on the map), then audit them")
        self._describe_audit()
        a = self._audit
        self._show(np.concatenate([a.suspects, a.missed]),
                   f"Audit: {a.suspects.size} selected probably not like the rest (first), "
                   f"{a.missed.size} outside probably belong (after)")
        self._audit_view = True

    def fix_suspects(self, action: dict[str, Any]) -> None:
        if self._audit is None or self._audit.suspects.size == 0:
            raise ValueError("no suspects: audit a selection first")
        self.select(self._audit.suspects, "difference")

    def fix_missed(self, action: dict[str, Any]) -> None:
        if self._audit is None or self._audit.missed.size == 0:
            raise ValueError("no missed items: audit a selection first")
        self.select(self._audit.missed, "union")

    # -- duplicates and outliers ------------------------------------------------------------

    def show_duplicates(self, action: dict[str, Any]) -> None:
        self._groups = self.session.duplicates()
        self._group = -1
        self.show_next_group(action)

    def show_next_group(self, action: dict[str, Any]) -> None:
        if self._groups is None:
            raise ValueError("show the duplicates first")
        self._confirm = None
        self.mark_copies.description = "mark copies"
        if not self._groups:
            self.info.value = "duplicates: none"
            self._show(np.zeros(0, np.int64), "Duplicates: none")
            return
        self._group = (self._group + 1) % len(self._groups)
        group = self._groups[self._group]
        title = (f"Duplicates: group {self._group + 1} of {len(self._groups)}, {group.size} "
                 "items; a key labels all, 'mark copies' keeps the first")
        self.app.view.title = title
        self._set(group)
        self._show(group, title)

    def mark_duplicate_copies(self, action: dict[str, Any]) -> None:
        if self._groups is None or not self._groups or self._group < 0:
            raise ValueError("show the duplicates first")
        copies = self._groups[self._group][1:]
        if self._confirm != self._group:  # ask first
            self._confirm = self._group
            self.mark_copies.description = f"confirm: mark {copies.size}"
            self.info.value = (f"click again to label {copies.size} copies "
                               f"'{DUPLICATE_CLASS}' (the first card is kept)")
            return
        self.session.label(copies, DUPLICATE_CLASS)
        self.show_next_group(action)

    def show_outliers(self, action: dict[str, Any]) -> None:
        ranked = self.session.outliers()
        title = f"Outliers: the {ranked.size} most isolated items, most isolated first"
        self.app.view.title = title
        self.app.selection = ranked  # combined as set
        self._show(_ranked_first(self.app.selection, ranked), title)

    # -- saved selections --------------------------------------------------------------------

    def _picked(self) -> str:
        if not self.saved.value:
            raise ValueError("no saved selection picked: save one first")
        return str(self.saved.value)

    def _refresh_saved(self) -> None:
        try:
            names = self.session.saved_selections["name"].to_list()
        except ValueError as e:  # a damaged selections.json: said, not raised
            self.info.value = str(e)
            names = []
        keep = self.saved.value
        self.saved.options = names
        self.saved.value = keep if keep in names else (names[-1] if names else None)

    def save_selection(self, action: dict[str, Any]) -> None:
        name = self.name.value.strip()
        count = self.session.save_selection(name, self.app.selection)
        self._refresh_saved()
        self.saved.value = name
        self.info.value = f"saved {count} items as {name!r}"

    def restore_selection(self, action: dict[str, Any]) -> None:
        name = self._picked()
        self.app.view.title = f"Saved selection {name!r}"
        self.app.selection = self.session.saved_selection(name)  # combined as set

    def rule_from_selection(self, action: dict[str, Any]) -> None:
        name = self._picked()
        label = self.app.controls.typed_name()
        self.session.add_rule("region", label, name=f"selection {name}",
                              items=self.session.saved_selection(name))
        self.info.value = f"added a region rule: {name!r} votes {label!r}"

    def export_selection(self, action: dict[str, Any]) -> None:
        name = self._picked()
        out = self.app.export(selection=name)
        self.info.value = f"exported {name!r} to {out}"

    def forget_selection(self, action: dict[str, Any]) -> None:
        name = self._picked()
        self.session.delete_selection(name)
        self._refresh_saved()
        self.info.value = f"forgot {name!r}"

    # -- similarity above a threshold ----------------------------------------------------------

    def score_against_text(self, action: dict[str, Any]) -> None:
        query = self.app.panel.query.value
        self._scores = self.session.similarity(query=query)
        self._scored = f"similar to {query.strip()!r}"
        self._recount()

    def score_against_selection(self, action: dict[str, Any]) -> None:
        self._scores = self.session.similarity(items=self.app.selection)
        self._scored = f"similar to the {self.app.selection.size} selected"
        self._recount()

    def above(self) -> np.ndarray:
        """(K,) positions at or above the threshold, most similar first."""
        if self._scores is None:
            raise ValueError("score the items first: 'similar to text' or 'similar to "
                             "selection'")
        hit = np.flatnonzero(self._scores >= self.threshold.value)
        return hit[np.lexsort((hit, -self._scores[hit]))]

    def _recount(self) -> None:
        if self._scores is not None:
            self.count.value = f"{self.above().size:,} items"

    def select_threshold(self, action: dict[str, Any]) -> None:
        ranked = self.above()
        title = f"{self._scored}: {ranked.size} items ≥ {self.threshold.value:.2f}"
        self.app.view.title = title
        self.app.selection = ranked  # combined as set
        self._show(_ranked_first(self.app.selection, ranked), title)


def _ranked_first(selection: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """``selection`` with the members of ``ranked`` first, in its order."""
    first = ranked[np.isin(ranked, selection)]
    return np.concatenate([first, selection[~np.isin(selection, first)]])
