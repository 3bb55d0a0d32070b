"""Labelling rules kept in the label log: :class:`RuleLog`, the ``add_rule``, ``edit_rule``,
``remove_rule`` and ``rules`` of a :class:`~workbench.labels.LabelStore`.

Each is one action (one transaction, one undo), logged with the rule id in ``target`` and
the spec (:mod:`workbench.rules.spec`) as JSON in ``name``, so a team shares its rules and
undoes them like labels. The fold is :meth:`~workbench.labels.fold.LabelState.apply`.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from ..rules.spec import check_spec, rule_title, spec_json

__all__ = ["RuleLog"]


class RuleLog:
    """The rule methods of :class:`~workbench.labels.LabelStore` (mixed in); needs its
    ``batch``, ``state``, ``_lock``, ``_stage``, ``_class_for`` and ``_replay``."""

    @property
    def rules(self) -> dict[int, dict[str, Any]]:
        """``{rule_id: spec}`` of the live rules, by id. Each spec holds ``class_id`` (the
        class it votes for) and ``label``, that class's current name."""
        with self._lock:
            return {rid: dict(spec) for rid, spec in sorted(self.state.rules.items())}

    def add_rule(self, spec: Mapping[str, Any]) -> int:
        """Log a new rule and return its id (ids are never reused, whoever adds).

        ``spec`` is checked first (:func:`~workbench.rules.spec.check_spec`: a ``python``
        rule is refused, it is never logged); an error writes nothing. A ``label`` naming
        no class creates it in the same action: one :meth:`undo` takes both back.
        """
        spec = check_spec(spec)
        with self.batch():  # the log is read under the write lock: the id is free
            spec = self._with_class(spec)
            rid = self._replay.rule_id_max + 1
            self._stage("add_rule", target=rid, name=spec_json(spec))
            return rid

    def edit_rule(self, rule_id: int, spec: Mapping[str, Any]) -> None:
        """Replace the spec of rule ``rule_id`` (one action; :meth:`undo` brings back the
        spec before). ``KeyError`` naming the id when there is no such live rule."""
        rule_id = _rule_id(rule_id)
        with self.batch():
            old = self._live_rule(rule_id)
            spec = check_spec({**dict(spec), "kind": spec.get("kind", old["kind"])},
                              rule_id=rule_id)
            if spec["kind"] != old["kind"]:
                raise ValueError(
                    f"{rule_title(old, rule_id)}: a rule keeps its kind (not {spec['kind']!r});"
                    " add a new rule and remove this one"
                )
            self._stage("edit_rule", target=rule_id, name=spec_json(self._with_class(spec)))

    def remove_rule(self, rule_id: int) -> None:
        """Remove rule ``rule_id`` (one action; :meth:`undo` brings it back)."""
        rule_id = _rule_id(rule_id)
        with self.batch():
            self._live_rule(rule_id)
            self._stage("remove_rule", target=rule_id)

    def _live_rule(self, rule_id: int) -> dict[str, Any]:
        rule = self.state.rules.get(rule_id)
        if rule is None:
            live = ", ".join(map(str, sorted(self.state.rules))) or "none"
            raise KeyError(f"no rule {rule_id} (removed, or never added); live rules: {live}")
        return rule

    def _with_class(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``spec`` with the class it votes for (created if new) as ``class_id`` and
        ``label`` its name. Inside the batch: a concurrent delete cannot slip in."""
        cid = self._class_for(spec["label"], True)
        return {**spec, "label": self.state.classes[cid], "class_id": cid}


def _rule_id(rule_id: Any) -> int:
    try:
        if isinstance(rule_id, bool):
            raise TypeError
        return operator.index(rule_id)
    except TypeError:
        raise TypeError(
            f"a rule id is a whole number (from add_rule or .rules), not {rule_id!r}"
        ) from None
