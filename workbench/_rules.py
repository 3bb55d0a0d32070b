"""Rules as labellers in a session: add, edit, enable and remove labelling rules (each one
undoable action on the label log, shared by a team), their votes on the items, and how good
each rule is against the human labels. The session mixes this in; the rules themselves are
:mod:`workbench.rules`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import polars as pl

from .labels.checks import as_item_array, resolve_items
from .rules import (
    DERIVED_COLUMNS,
    check_spec,
    class_coverage,
    describe,
    rule_mask,
    rule_stats,
    spec_json,
    vote_matrix,
)

__all__ = ["Rules"]

log = logging.getLogger("workbench.session")

#: Spec fields that do not change where a rule votes (its cached mask survives them).
_NOT_WHERE = ("label", "name", "enabled", "class_id")


class Rules:
    """``add_rule``, ``edit_rule``, ``enable_rule``, ``remove_rule``, ``rules``,
    ``rule_votes``, ``rule_analysis``, ``rule_class_coverage`` and ``rule_conflicts``.
    Needs ``labels``, ``items``, ``n``, ``vectors``, ``clusters``, ``text_encoder``,
    ``_text_encoder_from_project`` and ``_labels_changed`` of the session."""

    # -- changing the rules ----------------------------------------------------------------

    def add_rule(self, kind: str, label: str | int, *, name: str | None = None,
                 enabled: bool = True, **fields: Any) -> int:
        """Add a labelling rule that votes ``label`` (a class name, created if new, or id)
        for the items it matches; return its id. One action: :meth:`undo` takes it back.

        Kinds and their fields (:mod:`workbench.rules.spec`): ``keywords`` (``words``,
        ``column``, ``case``, ``whole_word``), ``regex`` (``pattern``, ``column``,
        ``case``), ``expression`` (``expr``: a polars expression over the items' columns
        and :data:`~workbench.rules.DERIVED_COLUMNS`), ``prompt`` (``prompts``,
        ``threshold``: cosine similarity to the session's text encoder's embedding),
        ``region`` (``items``: positions or ids, or ``cluster=k``: the members of
        ``clusters[k]`` now) and ``python`` (``fn``: ``items_table -> (N,) bool``).

        A ``python`` rule lives in this session only: it is never written to the log
        (others cannot run your code), it gets a negative id, :attr:`rules` shows it with
        ``stored=False``, and :meth:`undo` does not take it back (:meth:`remove_rule` does).

        The rule is checked and applied to the items before anything is written: a bad
        spec, an unknown column, a prompt rule without a text encoder raise ``ValueError``
        naming the rule and write nothing.
        """
        spec = {"kind": kind, "label": label, "name": name, "enabled": enabled,
                **self._rule_fields(kind, fields)}
        stored = kind != "python"
        spec = check_spec(spec, columns=self._rule_columns(), stored=stored)
        with self._rule_lock():
            self._rule_where(spec, None, raise_errors=True)
        if stored:
            rid = self.labels.add_rule(spec)
        else:
            cid = self._class_of(label)
            memory = self._rule_memory()
            rid = memory["next"]
            memory["next"] -= 1
            memory["session"][rid] = {**spec, "label": self.labels.classes[cid], "class_id": cid}
        self._labels_changed()
        return rid

    def edit_rule(self, rule_id: int, **changes: Any) -> None:
        """Change fields of rule ``rule_id`` (e.g. ``words=[...]``, ``threshold=0.3``,
        ``label="dog"``, ``name=...``, ``enabled=False``); its kind stays. One action:
        :meth:`undo` brings back the spec before. Checked like :meth:`add_rule`."""
        old = self._rule_spec(rule_id)
        if "kind" in changes and changes["kind"] != old["kind"]:
            raise ValueError(f"rule {rule_id}: a rule keeps its kind (not {changes['kind']!r}); "
                             "add a new rule and remove this one")
        changes = self._rule_fields(old["kind"], dict(changes))
        if "label" not in changes:  # the class it votes for, by id while that class lives
            live = old.get("class_id") in self.labels.classes
            changes["label"] = old["class_id"] if live else old["label"]
        spec = {k: v for k, v in old.items() if k != "class_id"}
        spec = check_spec({**spec, **changes}, rule_id=rule_id, columns=self._rule_columns(),
                          stored=rule_id >= 0)
        with self._rule_lock():
            self._rule_where(spec, rule_id, raise_errors=True)
        if rule_id >= 0:
            self.labels.edit_rule(rule_id, spec)
        else:
            cid = self._class_of(spec["label"])
            self._rule_memory()["session"][rule_id] = {
                **spec, "label": self.labels.classes[cid], "class_id": cid}
        self._labels_changed()

    def enable_rule(self, rule_id: int, enabled: bool = True) -> None:
        """Switch rule ``rule_id`` on (or off with ``enabled=False``): an edit, undoable.
        A disabled rule does not vote; :meth:`rule_analysis` still reports on it."""
        self.edit_rule(rule_id, enabled=enabled)

    def remove_rule(self, rule_id: int) -> None:
        """Remove rule ``rule_id`` (one action; :meth:`undo` brings it back, except for a
        session-only ``python`` rule, which is simply gone)."""
        self._rule_spec(rule_id)
        if rule_id >= 0:
            self.labels.remove_rule(rule_id)
        else:
            del self._rule_memory()["session"][rule_id]
        self._labels_changed()

    # -- reading them ----------------------------------------------------------------------

    @property
    def rules(self) -> pl.DataFrame:
        """One row per rule, by id (session-only rules last): ``id``, ``name`` (given, else
        a short description), ``kind``, ``label`` (its class's current name), ``enabled``,
        ``stored`` (False: a python rule, in this session only), ``spec`` (JSON, without
        the class id: what :meth:`add_rule` takes) and ``error`` (why it votes nowhere, e.g.
        no text encoder for a prompt rule; null when it applies)."""
        return self._rules_table(self._all_rules())

    def _rules_table(self, rows: list[tuple[int, dict[str, Any]]]) -> pl.DataFrame:
        with self._rule_lock():
            errors = self._rule_memory()["errors"]
            return pl.DataFrame({
                "id": [r for r, _ in rows],
                "name": [s.get("name") or describe(s) for _, s in rows],
                "kind": [s["kind"] for _, s in rows],
                "label": [s["label"] for _, s in rows],
                "enabled": [bool(s["enabled"]) for _, s in rows],
                "stored": [r >= 0 for r, _ in rows],
                "spec": [_portable(s) for _, s in rows],
                "error": [errors.get(self._where_key(s, r)) for r, s in rows],
            }, schema={"id": pl.Int64, "name": pl.String, "kind": pl.String,
                       "label": pl.String, "enabled": pl.Boolean, "stored": pl.Boolean,
                       "spec": pl.String, "error": pl.String})

    def rule_votes(self, enabled_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The rules' votes: ``(rule ids (R,), votes (N, R) int64)``, a class id where a
        rule votes and -1 where it abstains (a rule whose class was deleted, or that cannot
        apply, see ``rules["error"]``, votes nowhere).

        Rules are applied once and kept: the result is recomputed only when the rules,
        the classes or the items change (an edit of a name or a label reuses the match).
        The arrays are shared: read-only.
        """
        rows = [(r, s) for r, s in self._all_rules() if s["enabled"] or not enabled_only]
        ids, votes, _ = self._votes_of(rows, enabled_only)
        return ids, votes

    def _votes_of(self, rows: list[tuple[int, dict[str, Any]]], slot: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, votes, class of each rule: -1 where gone) of ``rows``, cached in ``slot``."""
        with self._rule_lock():
            memory = self._rule_memory()
            classes = self.labels.classes
            cids = [int(s["class_id"]) if s.get("class_id") in classes else -1 for _, s in rows]
            keys = [self._where_key(s, r) for r, s in rows]
            key = (tuple(keys), tuple(cids), self.n, id(self.items))
            cached = memory["votes"].get(slot)
            if cached is not None and cached[0] == key:
                return cached[1]
            masks = [self._rule_where(s, r) for r, s in rows]
            out = (np.array([r for r, _ in rows], np.int64), vote_matrix(masks, cids, self.n),
                   np.array(cids, np.int64))
            for arr in out:
                arr.setflags(write=False)
            memory["votes"][slot] = (key, out)
            live = {self._where_key(s, r) for r, s in self._all_rules()}
            for k in [k for k in memory["where"] if k not in live]:
                del memory["where"][k]  # the masks no live rule uses any more
            return out

    def rule_analysis(self) -> pl.DataFrame:
        """How good each rule is, one row per rule (like Snorkel's LFAnalysis): ``id``,
        ``name``, ``kind``, ``label``, ``enabled``, ``coverage``, ``overlaps``,
        ``conflicts``, ``labelled``, ``correct``, ``accuracy`` with its 90% Wilson interval
        ``accuracy_low``/``accuracy_high``, ``base_rate`` and ``flagged``: see
        :func:`workbench.rules.rule_stats`. The human labels are the human layer
        (adjudicated, else the latest annotator's); "another rule" is an enabled one."""
        rows = self._all_rules()  # one snapshot: the table and the votes agree
        table = self._rules_table(rows)
        _, votes, rule_class = self._votes_of(rows, False)
        stats = rule_stats(votes, table["enabled"].to_numpy(), rule_class,
                           self.labels.state.human.copy())
        return pl.concat([table.select("id", "name", "kind", "label", "enabled"), stats],
                         how="horizontal")

    def rule_class_coverage(self) -> pl.DataFrame:
        """Per live class: ``class``, ``rules`` (enabled rules voting for it), ``voted``
        (items any of them votes for it), ``rules_only`` (of those, items without a human
        label: what the rules add) and ``human`` (items with that human label)."""
        rows = [(r, s) for r, s in self._all_rules() if s["enabled"]]
        _, votes, rule_class = self._votes_of(rows, True)
        return class_coverage(votes, self.labels.state.human.copy(), self.labels.classes,
                              rule_class)

    def rule_conflicts(self, rule_id: int) -> np.ndarray:
        """Positions (ascending) of the human-labelled items where rule ``rule_id`` votes a
        class other than the human label: what to look at to fix the rule (or the label)."""
        ids, votes = self.rule_votes(enabled_only=False)
        where = np.flatnonzero(ids == rule_id)
        if where.size == 0:
            self._rule_spec(rule_id)  # raises KeyError naming the id
        vote = votes[:, int(where[0])]
        human = self.labels.state.human
        return np.flatnonzero((vote >= 0) & (human >= 0) & (vote != human))

    # -- internals -------------------------------------------------------------------------

    def _rule_memory(self) -> dict[str, Any]:
        """What the session keeps about rules: ``session`` (python rules by id), ``next``
        (the next session-only id), ``where`` (mask of each rule spec), ``errors``, ``votes``
        (the last result of each ``rule_votes``) and ``prompts`` (encoded prompts)."""
        return self.__dict__.setdefault("_rules_memory", {
            "session": {}, "next": -1, "where": {}, "errors": {}, "votes": {}, "prompts": {}})

    def _rule_lock(self) -> threading.RLock:
        return self.__dict__.setdefault("_rules_lock", threading.RLock())

    def _all_rules(self) -> list[tuple[int, dict[str, Any]]]:
        """(id, spec) of every rule: the logged ones by id, then this session's."""
        return [*self.labels.rules.items(), *self._rule_memory()["session"].items()]

    def _rule_spec(self, rule_id: int) -> dict[str, Any]:
        spec = dict(self._all_rules()).get(rule_id)
        if spec is None:
            live = ", ".join(str(r) for r, _ in self._all_rules()) or "none"
            raise KeyError(f"no rule {rule_id} (removed, or never added); rules: {live}")
        return spec

    def _rule_columns(self) -> list[str]:
        return [*self.items.columns, *(c for c in DERIVED_COLUMNS if c not in self.items.columns)]

    def _class_of(self, label: str | int) -> int:
        """The class id of ``label``, creating a class of that name (an action) if new."""
        try:
            return self.labels.class_id(label)
        except KeyError:
            if not isinstance(label, str):
                raise
            return self.labels.create_class(label)

    def _rule_fields(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A region's ``items`` (positions or ids) or ``cluster`` as item ids."""
        if kind != "region" or ("items" not in fields and "cluster" not in fields):
            return fields
        fields = dict(fields)
        if "cluster" in fields:
            if "items" in fields:
                raise ValueError("a region rule takes items= or cluster=, not both")
            k = fields.pop("cluster")
            found = [c for c in self.clusters if c.id == k]
            if not found:
                raise ValueError(f"no proposed cluster {k!r}; clusters are numbered "
                                 f"0 to {len(self.clusters) - 1} (wb.clusters)")
            fields["items"] = found[0].members
        ids = self.labels.item_ids
        arr = as_item_array(fields["items"])
        fields["items"] = resolve_items(arr, ids, {i: p for p, i in enumerate(ids)})[0]
        return fields

    def _where_key(self, spec: Mapping[str, Any], rule_id: int | None) -> tuple:
        """What a rule's match depends on: its kind's fields, the items, the vectors."""
        if spec["kind"] == "python":
            where: Any = ("python", rule_id, id(spec["fn"]))
        else:
            where = spec_json({k: v for k, v in spec.items() if k not in _NOT_WHERE})
        return (where, self.n, id(self.items), id(self.vectors))

    def _rule_where(self, spec: Mapping[str, Any], rule_id: int | None, *,
                    raise_errors: bool = False) -> np.ndarray:
        """(N,) bool where the rule votes, cached by :meth:`_where_key`; a rule that cannot
        apply votes nowhere (its error kept for :attr:`rules`) unless ``raise_errors``."""
        memory = self._rule_memory()
        key = self._where_key(spec, rule_id)
        if key in memory["where"]:
            return memory["where"][key]
        try:
            mask = rule_mask(spec, self.items, rule_id=rule_id, vectors=self.vectors,
                             encode_text=self._prompt_encoder())
            memory["errors"].pop(key, None)
        except ValueError as e:
            if raise_errors:
                raise
            log.warning("%s", e)
            memory["errors"][key] = str(e)
            mask = np.zeros(self.n, bool)
        memory["where"][key] = mask
        return mask

    def _prompt_encoder(self) -> Callable[[list[str]], np.ndarray] | None:
        """The session's text encoder (as for ``text_search``), its prompt vectors kept."""
        if self.text_encoder is None:
            self.text_encoder = self._text_encoder_from_project()
        encoder = self.text_encoder
        if encoder is None:
            return None
        cache = self._rule_memory()["prompts"]

        def encode(prompts: list[str]) -> np.ndarray:
            key = (id(encoder), tuple(prompts))
            if key not in cache:
                cache[key] = np.asarray(encoder(list(prompts)), np.float32)
            return cache[key].copy()

        return encode


def _portable(spec: Mapping[str, Any]) -> str:
    """A rule's spec as JSON for people and other projects: no class id; a function by name."""
    out = {k: v for k, v in spec.items() if k != "class_id"}
    if out["kind"] == "python":
        out["fn"] = getattr(out["fn"], "__qualname__", repr(out["fn"]))
    return spec_json(out)
