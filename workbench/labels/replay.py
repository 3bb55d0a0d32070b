"""Replaying the label log: which batches are applied, the undo and redo stacks, the fold.

A :class:`Replay` reads the log's actions in order (:meth:`Replay.feed`) and keeps what
the derivation rule below needs: the batches and their owners, the batches undone, each
annotator's applied batches and redo stack, and the
:class:`~workbench.labels.fold.LabelState` they fold to.

Derivation rule (the model that the property tests check against):

* the log is a sequence of *batches* (one user action each: one or more steps written in
  one transaction). Each batch belongs to the annotator who wrote it.
* ``undo`` and ``redo`` rows name their target batch; replay applies exactly that target
  (never "the newest"), so a log replays as it was lived, on reopen and in other
  processes. An ``undo`` takes its target out of the fold and puts it on the redo stack of
  the annotator who undid it; a ``redo`` puts it back. An undo of a batch that is not
  applied (or a redo of one that is not undone) changes nothing.
* a new batch by an annotator empties that annotator's redo stack only.
* :meth:`LabelStore.undo` writes an undo of the newest applied batch of the store's own
  annotator; :meth:`LabelStore.redo` a redo of the newest batch that annotator undid.
* the state is the fold, in log order, of every step whose batch is applied (an undone
  batch is simply left out; later actions of others on the same items stay), over two
  layers per item: a *human* label and a *machine* label (with a confidence and its
  source). A machine action writes only the machine layer, so it can never overwrite a
  human label. A step whose class does not exist at that point of the fold (deleted, or
  its creation undone) changes nothing. An adjudication (source "adjudicated") writes the
  human layer too, and is final: while it stands, the item's human label is the
  adjudicated one, whatever annotators write after it.
* the *current* label of an item is its human label if it has one, else its machine label.
* rule actions (``add_rule``, ``edit_rule``, ``remove_rule``) fold into the live rules by the
  same rule: undoing an add removes the rule, undoing an edit brings back the spec before
  it, undoing a remove brings the rule back. Rule ids are never reused
  (:attr:`Replay.rule_id_max`), and rules are not annotations.

Old logs (written before batches) have one batch per row and their undo/redo targets are
the rows they undid, so they replay as they were written.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import numpy as np

from .fold import CLASS_KINDS, RULE_ACTIONS, LabelState
from .schema import Action

__all__ = ["Replay"]


class Replay:
    """The log as replayed so far, for the items ``ids``.

    Parameters
    ----------
    ids, pos : the store's item ids in row order and ``{id: position}``; shared with the
        store, which extends both when items are added.
    """

    def __init__(self, ids: list[str], pos: dict[str, int]) -> None:
        self.ids = ids
        self.pos = pos
        self.actions: dict[int, Action] = {}          # non undo/redo actions, log order
        self.idx: dict[int, np.ndarray] = {}          # their item positions
        self.owner: dict[int, str] = {}               # batch id -> annotator
        self.members: dict[int, list[int]] = {}       # batch id -> its action ids
        self.undone: set[int] = set()                 # batch ids currently undone
        self.done: dict[str, list[int]] = {}          # annotator -> applied batches, sorted
        self.redo: dict[str, list[int]] = {}          # annotator -> batches it undid
        self.last = 0
        self.rule_id_max = 0  # the largest rule id ever logged (added, undone or not)
        self.state = LabelState(len(ids))

    def feed(self, new: Sequence[Action]) -> None:
        """Replay ``new``, the actions appended since :attr:`last`, oldest first."""
        rebuild = False
        for action in new:
            self.last = action.id
            if action.kind == "undo":
                rebuild |= self._replay_undo(action)
            elif action.kind == "redo":
                members = self._replay_redo(action)
                if not members or rebuild:
                    continue
                if self._newest_applied(outside=members[0]) < members[0]:
                    for aid in members:  # the batch is the newest: fold it on top
                        self.state.apply(self.actions[aid], self.idx[aid])
                else:
                    rebuild = True
            else:
                self._add(action)
                if not rebuild:
                    self.state.apply(action, self.idx[action.id])
        if rebuild:
            self._rebuild()

    def _add(self, action: Action) -> None:
        aid, batch = action.id, action.batch
        self.actions[aid] = action
        self.idx[aid] = self._positions_of_logged(action.items)
        if action.kind == "add_rule" and action.target is not None:
            self.rule_id_max = max(self.rule_id_max, action.target)
        if batch in self.members:
            self.members[batch].append(aid)
            return
        who = action.annotator
        self.members[batch] = [aid]
        self.owner[batch] = who
        self.done.setdefault(who, []).append(batch)  # ids grow: the list stays sorted
        self.redo.pop(who, None)  # a new action of an annotator ends its redo chain

    def _replay_undo(self, undo: Action) -> bool:
        """Leave the target batch out of the fold; True when the state must be rebuilt."""
        target = self._batch_of(undo.target)
        if target is None or target in self.undone:
            return False  # nothing to undo there (kept for logs written by older versions)
        self.undone.add(target)
        done = self.done.get(self.owner[target], [])
        if target in done:
            done.remove(target)
        self.redo.setdefault(undo.annotator, []).append(target)
        return True

    def _replay_redo(self, redo: Action) -> list[int]:
        """Put the target batch back into the fold; its action ids, [] when nothing to do."""
        target = self._batch_of(redo.target)
        if target is None or target not in self.undone:
            return []
        self.undone.discard(target)
        for stack in self.redo.values():
            if target in stack:
                stack.remove(target)
        bisect.insort(self.done.setdefault(self.owner[target], []), target)
        return self.members[target]

    def _batch_of(self, target: int | None) -> int | None:
        action = self.actions.get(target) if target is not None else None
        return None if action is None else action.batch

    def _newest_applied(self, *, outside: int | None) -> int:
        """Id of the newest action in the fold that is not in batch ``outside`` (0: none)."""
        for aid in reversed(self.actions):
            batch = self.actions[aid].batch
            if batch != outside and batch not in self.undone:
                return aid
        return 0

    def _rebuild(self) -> None:
        """The state as the fold, in log order, of every action not in an undone batch."""
        state = LabelState(len(self.ids))
        undone = self.undone
        for aid, action in self.actions.items():
            if action.batch not in undone:
                state.apply(action, self.idx[aid])
        self.state = state

    def annotations(self) -> tuple[list[str], np.ndarray]:
        """Each annotator's own human labels: (names, (N, A) int64 class ids, -1: none).

        Annotator ``a``'s labels are the fold of the applied actions that ``a`` wrote on
        items, together with everyone's class actions (a merge or delete moves every
        annotator's labels): what ``a`` would see labelling alone. Adjudications (source
        "adjudicated") are decisions, not annotations: they are left out, and so are rules.
        """
        names, labels, _ = self.annotation_actions()
        return names, labels

    def annotation_actions(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """:meth:`annotations` and, (N, A) int64, the id of the action behind each one."""
        names = sorted({a.annotator for aid, a in self.actions.items()
                        if a.kind in ("assign", "remove") and a.source == "human"
                        and a.batch not in self.undone})
        if len(names) <= 1:  # one annotator's labels are the annotated layer itself
            st = self.state
            return (names, st.annotated.copy()[:, None][:, :len(names)],
                    st.annotated_action.copy()[:, None][:, :len(names)])
        out = np.full((len(self.ids), len(names)), -1, np.int64)
        act = np.zeros((len(self.ids), len(names)), np.int64)
        for j, name in enumerate(names):
            state = LabelState(len(self.ids))
            for aid, action in self.actions.items():
                if action.batch not in self.undone and action.kind not in RULE_ACTIONS and (
                        action.kind in CLASS_KINDS or action.annotator == name):
                    state.apply(action, self.idx[aid])
            out[:, j], act[:, j] = state.annotated, state.annotated_action
        return names, out, act

    def _positions_of_logged(self, ids: Sequence[str]) -> np.ndarray:
        pos = self.pos
        # Ids unknown here (items added by another process we have not reloaded) are skipped.
        return np.fromiter((pos[i] for i in ids if i in pos), np.int64)

    def check_unique_names(self, undone: set[int], kind: str) -> None:
        """Refuse an undo/redo that would leave two live classes of one name.

        Undoing one's own action can bring back a class whose name another annotator has
        given to another class since (or a redo can). Names are unique at every write,
        so the state stays free of such pairs. ``undone`` is the set of undone batches the
        ``kind`` ("undo" or "redo") would leave.
        """
        classes = LabelState(0)
        empty = np.zeros(0, np.int64)
        for action in self.actions.values():
            if action.batch not in undone and action.kind in CLASS_KINDS:
                classes.apply(action, empty)
        before = _repeated(self.state.classes.values())
        for name in _repeated(classes.classes.values()) - before:
            raise ValueError(
                f"cannot {kind}: it would bring back a second class named {name!r} (the name "
                "was given to another class since); rename that class first, then retry"
            )


def _repeated(names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    return {n for n in names if n in seen or seen.add(n)}
