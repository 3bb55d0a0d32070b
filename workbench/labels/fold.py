"""The state a label log folds to: two layers of labels per item and the live classes.

:class:`LabelState` holds, for ``N`` items, a *human* label and a *machine* label (with a
confidence and its source), and :meth:`LabelState.apply` folds one action into it. It also
folds the live labelling rules (``add_rule``, ``edit_rule``, ``remove_rule``; their specs
are :mod:`workbench.rules.spec`). The order and the choice of actions folded (undo, redo,
batches) is :mod:`workbench.labels.replay`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._config import ADJUDICATED, LABEL_SOURCES
from .schema import Action

__all__ = ["CLASS_KINDS", "NO_LABEL", "RULE_ACTIONS", "SOURCE_CODE", "LabelState"]

NO_LABEL = -1
#: ``LabelState.machine_source`` code of each label source.
SOURCE_CODE = {s: i for i, s in enumerate(LABEL_SOURCES)}
#: The action kinds that change the classes (not the labels of items).
CLASS_KINDS = ("create_class", "rename_class", "merge_classes", "delete_class")
#: The action kinds that change the rules: ``target`` is the rule id, ``name`` its spec JSON.
RULE_ACTIONS = ("add_rule", "edit_rule", "remove_rule")


@dataclass
class LabelState:
    """Labels of ``N`` items, as class ids (``-1`` = none).

    Attributes
    ----------
    human : (N,) int64 class id of the human label: the adjudicated label where there is
        one (an adjudicator's decision is final), else the annotators' latest.
    human_action : (N,) int64 id of the action that set it (0 = never).
    adjudicated : (N,) int64 class id of the adjudicated label (source "adjudicated").
    adjudicated_action : (N,) int64 id of the action that set it.
    annotated : (N,) int64 class id of the annotators' latest label (source "human"),
        adjudicated or not; ``annotated_action`` the id of its action.
    machine : (N,) int64 class id of the accepted machine label.
    machine_confidence : (N,) float32, NaN where there is none.
    machine_source : (N,) int8 index into ``LABEL_SOURCES``.
    machine_action : (N,) int64.
    classes : ``{class_id: name}`` of the live classes, in creation order.
    rules : ``{rule_id: spec}`` of the live rules, in the order added; each spec holds the
        ``class_id`` it votes for and ``label``, that class's current name (a rename or a
        merge carries the rule along; a deleted class leaves its rules voting nowhere).
    """

    n: int
    human: np.ndarray = field(init=False)
    human_action: np.ndarray = field(init=False)
    adjudicated: np.ndarray = field(init=False)
    adjudicated_action: np.ndarray = field(init=False)
    annotated: np.ndarray = field(init=False)
    annotated_action: np.ndarray = field(init=False)
    machine: np.ndarray = field(init=False)
    machine_confidence: np.ndarray = field(init=False)
    machine_source: np.ndarray = field(init=False)
    machine_action: np.ndarray = field(init=False)
    classes: dict[int, str] = field(default_factory=dict)
    rules: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.human = np.full(self.n, NO_LABEL, np.int64)
        self.human_action = np.zeros(self.n, np.int64)
        self.adjudicated = np.full(self.n, NO_LABEL, np.int64)
        self.adjudicated_action = np.zeros(self.n, np.int64)
        self.annotated = np.full(self.n, NO_LABEL, np.int64)
        self.annotated_action = np.zeros(self.n, np.int64)
        self.machine = np.full(self.n, NO_LABEL, np.int64)
        self.machine_confidence = np.full(self.n, np.nan, np.float32)
        self.machine_source = np.zeros(self.n, np.int8)
        self.machine_action = np.zeros(self.n, np.int64)

    def grow(self, n: int) -> None:
        """Extend the arrays to ``n`` items (new items are unlabelled)."""
        extra = n - self.n
        if extra <= 0:
            return
        for name in ("human", "adjudicated", "annotated", "machine"):
            label = getattr(self, name)
            setattr(self, name, np.concatenate([label, np.full(extra, NO_LABEL, np.int64)]))
        for name in ("human_action", "adjudicated_action", "annotated_action"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra, np.int64)]))
        self.machine_confidence = np.concatenate(
            [self.machine_confidence, np.full(extra, np.nan, np.float32)]
        )
        self.machine_source = np.concatenate([self.machine_source, np.zeros(extra, np.int8)])
        self.machine_action = np.concatenate([self.machine_action, np.zeros(extra, np.int64)])
        self.n = n

    @property
    def current(self) -> np.ndarray:
        """(N,) int64 class id: the human label where there is one, else the machine label."""
        return np.where(self.human >= 0, self.human, self.machine)

    def apply(self, action: Action, idx: np.ndarray) -> None:
        """Fold one (non undo/redo) action into the state; ``idx`` are its item positions."""
        kind = action.kind
        if kind == "create_class":
            self.classes[action.class_id] = action.name
        elif kind in RULE_ACTIONS:
            self._apply_rule(action)
        elif kind == "rename_class":
            if action.class_id in self.classes:
                self.classes[action.class_id] = action.name
                self._relabel_rules(action.class_id, action.class_id)
        elif kind in ("merge_classes", "delete_class"):
            sources = action.merged if kind == "merge_classes" else (action.class_id,)
            into = action.target if kind == "merge_classes" else NO_LABEL
            if kind == "merge_classes" and into not in self.classes:
                return
            for src in sources:
                if src == into or src not in self.classes:
                    continue
                for layer in (self.human, self.adjudicated, self.annotated, self.machine):
                    layer[layer == src] = into
                del self.classes[src]
                if into != NO_LABEL:
                    self._relabel_rules(src, into)
        elif kind == "assign":
            if action.class_id not in self.classes:
                return  # the class was deleted by a concurrent writer: nothing to label
            if action.source == "human":
                self.annotated[idx] = action.class_id
                self.annotated_action[idx] = action.id
                self._human_of(idx)
            elif action.source == ADJUDICATED:
                self.adjudicated[idx] = action.class_id
                self.adjudicated_action[idx] = action.id
                self._human_of(idx)
            else:
                self.machine[idx] = action.class_id
                self.machine_source[idx] = SOURCE_CODE[action.source]
                self.machine_action[idx] = action.id
                conf = np.array(
                    [np.nan if c is None else c for c in action.confidences], np.float32
                )
                self.machine_confidence[idx] = conf[: len(idx)] if len(conf) else np.nan
        elif kind == "remove":
            if action.source == "human":
                self.annotated[idx] = NO_LABEL
                self.annotated_action[idx] = action.id
                self._human_of(idx)
            elif action.source == ADJUDICATED:
                self.adjudicated[idx] = NO_LABEL
                self.adjudicated_action[idx] = action.id
                self._human_of(idx)
            else:
                self.machine[idx] = NO_LABEL
                self.machine_confidence[idx] = np.nan
                self.machine_action[idx] = action.id

    def _human_of(self, idx: np.ndarray) -> None:
        """The human layer of ``idx`` from its two sources: adjudicated, else annotated."""
        adj = self.adjudicated[idx] >= 0
        self.human[idx] = np.where(adj, self.adjudicated[idx], self.annotated[idx])
        self.human_action[idx] = np.where(adj, self.adjudicated_action[idx],
                                          self.annotated_action[idx])

    def _apply_rule(self, action: Action) -> None:
        """Fold a rule action: add (or replace) the spec of rule ``target``, or drop it."""
        rid = action.target
        if rid is None:
            return
        if action.kind == "remove_rule":
            self.rules.pop(rid, None)
            return
        if action.kind == "edit_rule" and rid not in self.rules:
            return  # removed meanwhile by another annotator: an edit does not bring it back
        try:
            spec = json.loads(action.name or "")
        except ValueError:
            return  # not written by this code; nothing to apply
        if isinstance(spec, dict):
            self.rules[rid] = spec

    def _relabel_rules(self, old: int, new: int) -> None:
        """Rules voting for class ``old`` now vote for ``new`` (a merge), by its name."""
        for rid, spec in self.rules.items():
            if spec.get("class_id") == old:
                self.rules[rid] = {**spec, "class_id": new, "label": self.classes[new]}
