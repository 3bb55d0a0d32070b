"""Current labels, derived from the event log; the public :class:`LabelStore`.

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
  its creation undone) changes nothing.
* the *current* label of an item is its human label if it has one, else its machine label.

Old logs (written before batches) have one batch per row and their undo/redo targets are
the rows they undid, so they replay as they were written.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from .._config import LABEL_SOURCES, MACHINE_SOURCES
from .store import Action, EventLog

__all__ = ["LabelState", "LabelStore"]

NO_LABEL = -1
_SOURCE_CODE = {s: i for i, s in enumerate(LABEL_SOURCES)}
_CLASS_KINDS = ("create_class", "rename_class", "merge_classes", "delete_class")


@dataclass
class LabelState:
    """Labels of ``N`` items, as class ids (``-1`` = none).

    Attributes
    ----------
    human : (N,) int64 class id of the human label.
    human_action : (N,) int64 id of the action that set it (0 = never).
    machine : (N,) int64 class id of the accepted machine label.
    machine_confidence : (N,) float32, NaN where there is none.
    machine_source : (N,) int8 index into ``LABEL_SOURCES``.
    machine_action : (N,) int64.
    classes : ``{class_id: name}`` of the live classes, in creation order.
    """

    n: int
    human: np.ndarray = field(init=False)
    human_action: np.ndarray = field(init=False)
    machine: np.ndarray = field(init=False)
    machine_confidence: np.ndarray = field(init=False)
    machine_source: np.ndarray = field(init=False)
    machine_action: np.ndarray = field(init=False)
    classes: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.human = np.full(self.n, NO_LABEL, np.int64)
        self.human_action = np.zeros(self.n, np.int64)
        self.machine = np.full(self.n, NO_LABEL, np.int64)
        self.machine_confidence = np.full(self.n, np.nan, np.float32)
        self.machine_source = np.zeros(self.n, np.int8)
        self.machine_action = np.zeros(self.n, np.int64)

    def grow(self, n: int) -> None:
        """Extend the arrays to ``n`` items (new items are unlabelled)."""
        extra = n - self.n
        if extra <= 0:
            return
        self.human = np.concatenate([self.human, np.full(extra, NO_LABEL, np.int64)])
        self.human_action = np.concatenate([self.human_action, np.zeros(extra, np.int64)])
        self.machine = np.concatenate([self.machine, np.full(extra, NO_LABEL, np.int64)])
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
        elif kind == "rename_class":
            if action.class_id in self.classes:
                self.classes[action.class_id] = action.name
        elif kind in ("merge_classes", "delete_class"):
            sources = action.merged if kind == "merge_classes" else (action.class_id,)
            into = action.target if kind == "merge_classes" else NO_LABEL
            if kind == "merge_classes" and into not in self.classes:
                return
            for src in sources:
                if src == into or src not in self.classes:
                    continue
                self.human[self.human == src] = into
                self.machine[self.machine == src] = into
                del self.classes[src]
        elif kind == "assign":
            if action.class_id not in self.classes:
                return  # the class was deleted by a concurrent writer: nothing to label
            if action.source == "human":
                self.human[idx] = action.class_id
                self.human_action[idx] = action.id
            else:
                self.machine[idx] = action.class_id
                self.machine_source[idx] = _SOURCE_CODE[action.source]
                self.machine_action[idx] = action.id
                conf = np.array(
                    [np.nan if c is None else c for c in action.confidences], np.float32
                )
                self.machine_confidence[idx] = conf[: len(idx)] if len(conf) else np.nan
        elif kind == "remove":
            if action.source == "human":
                self.human[idx] = NO_LABEL
                self.human_action[idx] = action.id
            else:
                self.machine[idx] = NO_LABEL
                self.machine_confidence[idx] = np.nan
                self.machine_action[idx] = action.id


class LabelStore:
    """Labels of a fixed, growing list of items, backed by a durable :class:`EventLog`.

    Parameters
    ----------
    path : the SQLite file of the log.
    item_ids : the ids of the items, in row order; positions in this list are the item
        indices that every array of the project is aligned to.
    annotator : recorded on each action; default ``$WORKBENCH_ANNOTATOR`` or the OS user.
        :meth:`undo` and :meth:`redo` act on this annotator's own actions only.
    create, read_only : passed to :class:`EventLog` (``create=False``: a missing or damaged
        log raises :class:`LabelLogError` instead of starting empty; ``read_only=True``:
        nothing is ever written, every change raises :class:`LabelLogError`).

    Items may be given to every method as ids (str) or as positions (int).
    Classes may be given by name or by class id.

    Every change is one batch: validated against the latest state of the file *inside* its
    write transaction (so two processes can never both create a class of one name), and
    undone by one :meth:`undo`. One store may be shared by threads: every public method
    holds the log's re-entrant lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        item_ids: Sequence[str],
        *,
        annotator: str | None = None,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.log = EventLog(path, annotator=annotator, create=create, read_only=read_only)
        self._lock = self.log.lock
        self._ids: list[str] = [str(i) for i in item_ids]
        self._pos: dict[str, int] = {i: p for p, i in enumerate(self._ids)}
        self._depth = 0          # nesting of open batch() blocks (owning thread only)
        self._staged = False     # rows of the open batch already folded into the state
        self._reset()
        try:
            self.refresh()
        except BaseException:
            self.log.close()
            raise

    def _reset(self) -> None:
        """Forget everything derived; the next refresh replays the log from the start."""
        self._actions: dict[int, Action] = {}          # non undo/redo actions, log order
        self._idx: dict[int, np.ndarray] = {}          # their item positions
        self._owner: dict[int, str] = {}               # batch id -> annotator
        self._members: dict[int, list[int]] = {}       # batch id -> its action ids
        self._undone: set[int] = set()                 # batch ids currently undone
        self._done: dict[str, list[int]] = {}          # annotator -> applied batches, sorted
        self._redo: dict[str, list[int]] = {}          # annotator -> batches it undid
        self._last = 0
        self.state = LabelState(len(self._ids))

    # -- reading ---------------------------------------------------------------------------

    @property
    def annotator(self) -> str:
        return self.log.annotator

    @property
    def read_only(self) -> bool:
        return self.log.read_only

    @property
    def item_ids(self) -> list[str]:
        with self._lock:
            return list(self._ids)

    @property
    def classes(self) -> dict[int, str]:
        """``{class_id: name}`` of the live classes, in creation order."""
        with self._lock:
            return dict(self.state.classes)

    @property
    def class_names(self) -> list[str]:
        with self._lock:
            return list(self.state.classes.values())

    @property
    def can_undo(self) -> bool:
        """Whether this store's annotator has an action to undo (as of the last refresh)."""
        with self._lock:
            return bool(self._done.get(self.annotator))

    @property
    def can_redo(self) -> bool:
        with self._lock:
            return bool(self._redo.get(self.annotator))

    def refresh(self) -> bool:
        """Read actions appended since the last look (by this or another process).

        Returns True when anything changed.
        """
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        new = self.log.read(after=self._last)
        if not new:
            return False
        rebuild = False
        for action in new:
            self._last = action.id
            if action.kind == "undo":
                rebuild |= self._replay_undo(action)
            elif action.kind == "redo":
                members = self._replay_redo(action)
                if not members or rebuild:
                    continue
                if self._newest_applied(outside=members[0]) < members[0]:
                    for aid in members:  # the batch is the newest: fold it on top
                        self.state.apply(self._actions[aid], self._idx[aid])
                else:
                    rebuild = True
            else:
                self._add(action)
                if not rebuild:
                    self.state.apply(action, self._idx[action.id])
        if rebuild:
            self._rebuild()
        return True

    def _add(self, action: Action) -> None:
        aid, batch = action.id, action.batch
        self._actions[aid] = action
        self._idx[aid] = self._positions_of_logged(action.items)
        if batch in self._members:
            self._members[batch].append(aid)
            return
        who = action.annotator
        self._members[batch] = [aid]
        self._owner[batch] = who
        self._done.setdefault(who, []).append(batch)  # ids grow: the list stays sorted
        self._redo.pop(who, None)  # a new action of an annotator ends its redo chain

    def _replay_undo(self, undo: Action) -> bool:
        """Leave the target batch out of the fold; True when the state must be rebuilt."""
        target = self._batch_of(undo.target)
        if target is None or target in self._undone:
            return False  # nothing to undo there (kept for logs written by older versions)
        self._undone.add(target)
        done = self._done.get(self._owner[target], [])
        if target in done:
            done.remove(target)
        self._redo.setdefault(undo.annotator, []).append(target)
        return True

    def _replay_redo(self, redo: Action) -> list[int]:
        """Put the target batch back into the fold; its action ids, [] when nothing to do."""
        target = self._batch_of(redo.target)
        if target is None or target not in self._undone:
            return []
        self._undone.discard(target)
        for stack in self._redo.values():
            if target in stack:
                stack.remove(target)
        bisect.insort(self._done.setdefault(self._owner[target], []), target)
        return self._members[target]

    def _batch_of(self, target: int | None) -> int | None:
        action = self._actions.get(target) if target is not None else None
        return None if action is None else action.batch

    def _newest_applied(self, *, outside: int | None) -> int:
        """Id of the newest action in the fold that is not in batch ``outside`` (0: none)."""
        for aid in reversed(self._actions):
            batch = self._actions[aid].batch
            if batch != outside and batch not in self._undone:
                return aid
        return 0

    def _rebuild(self) -> None:
        """The state as the fold, in log order, of every action not in an undone batch."""
        state = LabelState(len(self._ids))
        undone = self._undone
        for aid, action in self._actions.items():
            if action.batch not in undone:
                state.apply(action, self._idx[aid])
        self.state = state

    def class_id(self, label: str | int) -> int:
        """The id of a live class given by name or id; ``KeyError`` naming it if unknown."""
        with self._lock:
            classes = self.state.classes
            if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
                if int(label) in classes:
                    return int(label)
                raise KeyError(
                    f"no class with id {int(label)}; live classes: {list(classes.values())}"
                )
            for cid, name in classes.items():
                if name == label:
                    return cid
            raise KeyError(
                f"no class named {label!r}; create it first (create_class) or pick one of "
                f"{list(classes.values())}"
            )

    def table(self) -> pl.DataFrame:
        """One row per item: id, label, label_source, confidence, annotator, time.

        ``label`` is the current label (human first, else accepted machine label), null when
        unlabelled; ``human_label`` and ``machine_label`` give both layers.
        """
        with self._lock:
            return self._table()

    def _table(self) -> pl.DataFrame:
        s = self.state
        names = dict(s.classes)
        who = {a.id: (a.annotator, a.time) for a in self._actions.values()}
        ids = list(self._ids)
        human = [names.get(int(c)) for c in s.human]
        machine = [names.get(int(c)) for c in s.machine]
        is_h = s.human >= 0
        is_m = ~is_h & (s.machine >= 0)
        source = np.where(is_h, "human", np.array(LABEL_SOURCES, dtype=object)[s.machine_source])
        source = np.where(is_h | is_m, source, None)
        act = np.where(is_h, s.human_action, np.where(is_m, s.machine_action, 0))
        annot = [who[int(a)][0] if a else None for a in act]
        when = [who[int(a)][1] if a else None for a in act]
        conf = np.where(is_h, 1.0, np.where(is_m, s.machine_confidence, np.nan))
        return pl.DataFrame(
            {
                "id": ids,
                "label": [h if h is not None else m for h, m in zip(human, machine)],
                "label_source": list(source),
                "confidence": pl.Series(conf, dtype=pl.Float64).fill_nan(None),
                "annotator": annot,
                "time": pl.Series(when, dtype=pl.Float64),
                "human_label": human,
                "machine_label": machine,
            },
            schema_overrides={"label": pl.String, "label_source": pl.String,
                              "annotator": pl.String, "human_label": pl.String,
                              "machine_label": pl.String},
        ).with_columns(pl.from_epoch(pl.col("time"), time_unit="s").alias("time"))

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every change inside the block one user action: one transaction, one undo.

        ``with store.batch(): store.assign(a, "cat"); store.remove(b)`` commits both at the
        end of the block, or neither if it raises (the whole batch is then cancelled, even
        if the error was caught inside the block after a step). The block holds SQLite's
        write lock and this store's lock, so other writers wait: keep it short. Each step
        is checked against the latest state of the file, including this batch's earlier
        steps. :meth:`undo` and :meth:`redo` cannot run inside a batch.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth, self._staged = 1, False
            try:
                with self.log.batch():
                    self._refresh()  # under the write lock: nobody can append meanwhile
                    yield
            except BaseException:
                if self._staged:  # the state holds rows that were rolled back
                    self._reset()
                    self._refresh()
                raise
            finally:
                self._depth, self._staged = 0, False

    def _stage(self, kind: str, **kw: object) -> int:
        """Append one step to the open batch and fold it into the state."""
        aid = self.log.append(kind, **kw)  # joins the open batch
        self._staged = True
        self._refresh()
        return aid

    def create_class(self, name: str) -> int:
        """Create a class and return its id. Names are data: any non-empty Unicode string."""
        name = _check_name(name)
        with self.batch():
            return self._create(name)

    def _create(self, name: str) -> int:
        if name in self.state.classes.values():
            raise ValueError(f"a class named {name!r} already exists")
        aid = self._stage("create_class", name=name)
        return int(self._actions[aid].class_id)

    def rename_class(self, label: str | int, new_name: str) -> None:
        new_name = _check_name(new_name)
        with self.batch():
            cid = self.class_id(label)
            classes = self.state.classes
            if new_name in classes.values() and classes[cid] != new_name:
                raise ValueError(f"a class named {new_name!r} already exists; merge instead")
            self._stage("rename_class", class_id=cid, name=new_name)

    def merge_classes(self, sources: Iterable[str | int], into: str | int) -> None:
        """Fold ``sources`` into ``into``: their items take its label; they disappear.

        One action: one :meth:`undo` brings every source class and its labels back.
        """
        sources = list(sources)
        with self.batch():
            dst = self.class_id(into)
            src = [self.class_id(s) for s in sources]
            src = [s for s in dict.fromkeys(src) if s != dst]
            if not src:
                raise ValueError("merge needs at least one class other than the destination")
            self._stage("merge_classes", target=dst, merged=src)

    def delete_class(self, label: str | int) -> None:
        """Delete a class; its items become unlabelled (one :meth:`undo` brings them back)."""
        with self.batch():
            self._stage("delete_class", class_id=self.class_id(label))

    def assign(
        self,
        items: Iterable[str | int] | np.ndarray,
        label: str | int,
        *,
        source: str = "human",
        confidence: Sequence[float] | np.ndarray | None = None,
        create: bool = True,
    ) -> int:
        """Label ``items`` with ``label`` in one action; return the id of the assign step.

        With ``create=True`` (default) an unknown label name creates the class first, in
        the same action, so "lasso and name it" is one call and one undo. ``source`` is
        ``"human"`` or a machine source (propagated, probe, zeroshot); machine labels need a
        ``confidence`` per item and never replace a human label.
        """
        ids, conf = self._check_group(items, source, confidence)
        with self.batch():
            cid = self._class_for(label, create)
            return self._stage("assign", class_id=cid, source=source, items=ids,
                               confidences=conf)

    def assign_many(
        self,
        groups: Iterable[tuple],
        *,
        source: str = "human",
        create: bool = True,
    ) -> int | None:
        """Several labels at once as ONE action (one transaction, one undo).

        Parameters
        ----------
        groups : ``(items, label)`` or ``(items, label, confidence)`` tuples, one per class:
            items as ids or positions, the label by name or id, for a machine ``source``
            one confidence per item. Groups without items are skipped; an item named in
            two groups takes the later one.
        source : ``"human"`` (default) or a machine source, for every group.
        create : create unknown class names (in the same action), default True.

        Returns
        -------
        The batch id (id of its first step), or ``None`` when no group had items. Every
        group is checked before anything is kept: any error writes nothing.
        """
        checked = []
        for group in groups:
            if len(group) not in (2, 3):
                raise ValueError(
                    f"each group is (items, label) or (items, label, confidence), not "
                    f"{len(group)} values"
                )
            items, label = group[0], group[1]
            if len(items) == 0:
                continue
            ids, conf = self._check_group(items, source, group[2] if len(group) == 3 else None)
            checked.append((ids, label, conf))
        if not checked:
            return None
        with self.batch():
            first = None
            for ids, label, conf in checked:
                cid = self._class_for(label, create)
                aid = self._stage("assign", class_id=cid, source=source, items=ids,
                                  confidences=conf)
                first = first or self._actions[aid].batch
            return first

    def remove(self, items: Iterable[str | int] | np.ndarray, *, source: str = "human") -> int:
        """Take the label off ``items`` (the human layer, or a machine ``source``)."""
        ids = self._resolve(items)
        if source not in LABEL_SOURCES:
            raise ValueError(f"source must be one of {LABEL_SOURCES}, not {source!r}")
        with self.batch():
            return self._stage("remove", source=source, items=ids)

    def undo(self) -> bool:
        """Undo this annotator's newest applied action (a whole batch), whoever acted since.

        Others' later actions stay; the state is the fold of every action still applied.
        False when this annotator has nothing to undo.
        """
        return self._undo_redo("undo")

    def redo(self) -> bool:
        """Redo this annotator's newest undone action. False when there is nothing to redo.

        A new action of this annotator ends its redo chain; other annotators' do not.
        """
        return self._undo_redo("redo")

    def _undo_redo(self, kind: str) -> bool:
        with self._lock:
            if self._depth:
                raise RuntimeError(f"{kind} cannot run inside a batch; end the batch first")
            with self.batch():
                stack = (self._done if kind == "undo" else self._redo).get(self.annotator)
                if not stack:
                    return False
                target = stack[-1]
                self._check_unique_names(
                    self._undone | {target} if kind == "undo" else self._undone - {target}, kind
                )
                self._stage(kind, target=target)
                return True

    def _check_unique_names(self, undone: set[int], kind: str) -> None:
        """Refuse an undo/redo that would leave two live classes of one name.

        Undoing one's own action can bring back a class whose name another annotator has
        given to another class since (or a redo can). Names are unique at every write,
        so the state stays free of such pairs.
        """
        classes = LabelState(0)
        empty = np.zeros(0, np.int64)
        for action in self._actions.values():
            if action.batch not in undone and action.kind in _CLASS_KINDS:
                classes.apply(action, empty)
        before = _repeated(self.state.classes.values())
        for name in _repeated(classes.classes.values()) - before:
            raise ValueError(
                f"cannot {kind}: it would bring back a second class named {name!r} (the name "
                "was given to another class since); rename that class first, then retry"
            )

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Consistent copy of the label log; see :meth:`EventLog.backup`."""
        return self.log.backup(dest)

    def close(self) -> None:
        self.log.close()

    def add_items(self, item_ids: Sequence[str]) -> None:
        """Extend the item list (new items come unlabelled)."""
        with self._lock:
            new = [str(i) for i in item_ids]
            known = set(self._pos)
            for i in new:
                if i in known:
                    raise ValueError(f"item id {i!r} already exists")
                known.add(i)
            for i in new:
                self._pos[i] = len(self._ids)
                self._ids.append(i)
            self.state.grow(len(self._ids))

    # -- helpers ---------------------------------------------------------------------------

    def _class_for(self, label: str | int, create: bool) -> int:
        try:
            return self.class_id(label)
        except KeyError:
            if not create or not isinstance(label, str):
                raise
            return self._create(_check_name(label))

    def _check_group(
        self,
        items: Iterable[str | int] | np.ndarray,
        source: str,
        confidence: Sequence[float] | np.ndarray | None,
    ) -> tuple[list[str], list[float] | None]:
        ids, first, n_given = self._resolve_with_index(items)
        if source not in LABEL_SOURCES:
            raise ValueError(f"source must be one of {LABEL_SOURCES}, not {source!r}")
        if source in MACHINE_SOURCES:
            if confidence is None:
                raise ValueError(f"machine labels ({source}) need a confidence per item")
            conf = np.asarray(confidence, np.float64).ravel()
            if conf.shape != (n_given,) or not np.all(np.isfinite(conf)):
                raise ValueError(
                    f"confidence must be {n_given} finite numbers, one per item given"
                )
            # Aligned with the items as given; the ids come back sorted and deduplicated.
            return ids, conf[first].tolist()
        if confidence is not None:
            raise ValueError("human labels carry no confidence")
        return ids, None

    def _positions_of_logged(self, ids: Sequence[str]) -> np.ndarray:
        pos = self._pos
        # Ids unknown here (items added by another process we have not reloaded) are skipped.
        return np.fromiter((pos[i] for i in ids if i in pos), np.int64)

    def _resolve(self, items: Iterable[str | int] | np.ndarray) -> list[str]:
        return self._resolve_with_index(items)[0]

    def _resolve_with_index(
        self, items: Iterable[str | int] | np.ndarray
    ) -> tuple[list[str], np.ndarray, int]:
        """(ids without repeats, where each was first given, how many were given)."""
        arr = np.asarray(list(items) if not isinstance(items, np.ndarray) else items)
        if arr.ndim != 1:
            arr = arr.ravel()
        if arr.size == 0:
            raise ValueError("no items given; select at least one item")
        with self._lock:
            ids, pos = self._ids, self._pos
            if arr.dtype.kind in "iu":
                bad = arr[(arr < 0) | (arr >= len(ids))]
                if bad.size:
                    raise IndexError(
                        f"item position {int(bad[0])} is out of range for {len(ids)} items"
                    )
                uniq, first = np.unique(arr, return_index=True)
                return [ids[i] for i in uniq], first, arr.size
            if arr.dtype.kind in "US" or arr.dtype == object:
                seen: dict[str, int] = {}
                for k, i in enumerate(arr.tolist()):
                    seen.setdefault(str(i), k)
                missing = [i for i in seen if i not in pos]
                if missing:
                    raise KeyError(
                        f"unknown item id {missing[0]!r} ({len(missing)} unknown); "
                        "ids must come from the project's items"
                    )
                return list(seen), np.fromiter(seen.values(), np.int64), arr.size
        raise TypeError(f"items must be ids (str) or positions (int), not {arr.dtype}")


def _repeated(names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    return {n for n in names if n in seen or seen.add(n)}


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a class name must be a string, not {type(name).__name__}")
    if not name.strip():
        raise ValueError("a class name cannot be empty or only whitespace")
    return name
