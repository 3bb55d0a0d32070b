"""Current labels, derived from the event log; the public :class:`LabelStore`.

How the log makes the current labels (batches, undo and redo, the two layers) is the
derivation rule of :mod:`workbench.labels.replay`, which replays it; the state it folds to
is :mod:`workbench.labels.fold`, the checks of what callers give
:mod:`workbench.labels.checks`, and :meth:`LabelStore.table` :mod:`workbench.labels.table`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from .checks import (
    as_item_array,
    check_confidence,
    check_name,
    check_source,
    find_class,
    resolve_items,
)
from .fold import NO_LABEL as NO_LABEL  # re-exported: it was defined here
from .fold import LabelState
from .postgres import PostgresLog, is_postgres_url
from .replay import Replay
from .rules_log import RuleLog
from .store import EventLog
from .table import label_table

__all__ = ["LabelState", "LabelStore"]


class LabelStore(RuleLog):
    """Labels of a fixed, growing list of items, backed by a durable :class:`EventLog`.

    Parameters
    ----------
    path : the SQLite file of the log, or a ``postgresql://...?schema=NAME`` URL
        (:class:`~workbench.labels.postgres.PostgresLog`, a team on several machines).
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
    holds the log's re-entrant lock. Labelling rules are logged too (:class:`RuleLog`).
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
        log = PostgresLog if is_postgres_url(path) else EventLog
        self.log = log(path, annotator=annotator, create=create, read_only=read_only)
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
        self._replay = Replay(self._ids, self._pos)

    @property
    def state(self) -> LabelState:
        """The current :class:`LabelState` (replaced by a new one when the log is replayed)."""
        return self._replay.state

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
            return bool(self._replay.done.get(self.annotator))

    @property
    def can_redo(self) -> bool:
        with self._lock:
            return bool(self._replay.redo.get(self.annotator))

    def refresh(self) -> bool:
        """Read actions appended since the last look (by anyone); True when any came."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        new = self.log.read(after=self._replay.last)
        if not new:
            return False
        self._replay.feed(new)
        return True

    def class_id(self, label: str | int) -> int:
        """The id of a live class given by name or id; ``KeyError`` naming it if unknown."""
        with self._lock:
            return find_class(self.state.classes, label)

    def table(self) -> pl.DataFrame:
        """One row per item: id, label, label_source, confidence, annotator, time.

        ``label`` is the current label (human first, else accepted machine label), null when
        unlabelled; ``human_label`` and ``machine_label`` give both layers.
        """
        with self._lock:
            return label_table(self.state, self._replay.actions.values(), self._ids)

    def annotations(self) -> tuple[list[str], np.ndarray]:
        """Each annotator's own human labels: names, (N, A) class ids (-1: none)."""
        with self._lock:
            return self._replay.annotations()

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
        name = check_name(name)
        with self.batch():
            return self._create(name)

    def _create(self, name: str) -> int:
        if name in self.state.classes.values():
            raise ValueError(f"a class named {name!r} already exists")
        aid = self._stage("create_class", name=name)
        return int(self._replay.actions[aid].class_id)

    def rename_class(self, label: str | int, new_name: str) -> None:
        new_name = check_name(new_name)
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
            return self._stage("assign", class_id=cid, source=source, items=ids, confidences=conf)

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
                first = first or self._replay.actions[aid].batch
            return first

    def remove(self, items: Iterable[str | int] | np.ndarray, *, source: str = "human") -> int:
        """Take the label off ``items`` (the human layer, or a machine ``source``)."""
        ids = self._resolve(items)
        check_source(source)
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
                replay = self._replay
                stack = (replay.done if kind == "undo" else replay.redo).get(self.annotator)
                if not stack:
                    return False
                target = stack[-1]
                replay.check_unique_names(
                    replay.undone | {target} if kind == "undo" else replay.undone - {target},
                    kind,
                )
                self._stage(kind, target=target)
                return True

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
            return self._create(check_name(label))

    def _check_group(
        self,
        items: Iterable[str | int] | np.ndarray,
        source: str,
        confidence: Sequence[float] | np.ndarray | None,
    ) -> tuple[list[str], list[float] | None]:
        ids, first, n_given = self._resolve_with_index(items)
        check_source(source)
        return ids, check_confidence(first, n_given, source, confidence)

    def _resolve(self, items: Iterable[str | int] | np.ndarray) -> list[str]:
        return self._resolve_with_index(items)[0]

    def _resolve_with_index(
        self, items: Iterable[str | int] | np.ndarray
    ) -> tuple[list[str], np.ndarray, int]:
        """(ids without repeats, where each was first given, how many were given)."""
        arr = as_item_array(items)
        with self._lock:
            return resolve_items(arr, self._ids, self._pos)
