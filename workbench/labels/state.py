"""Current labels, derived from the event log; the public :class:`LabelStore`.

Derivation rule (the model that the property tests check against):

* the log is read oldest first; ``undo`` moves the newest applied action to a redo stack,
  ``redo`` moves it back, and any other action is applied and empties the redo stack;
* the state is the fold of the applied actions, in order, over two layers per item:
  a *human* label and a *machine* label (with a confidence and its source). A machine
  action writes only the machine layer, so it can never overwrite a human label.
* the *current* label of an item is its human label if it has one, else its machine label.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .._config import LABEL_SOURCES, MACHINE_SOURCES
from .store import Action, EventLog

__all__ = ["LabelState", "LabelStore"]

NO_LABEL = -1
_SOURCE_CODE = {s: i for i, s in enumerate(LABEL_SOURCES)}


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

    Items may be given to every method as ids (str) or as positions (int).
    Classes may be given by name or by class id.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        item_ids: Sequence[str],
        *,
        annotator: str | None = None,
    ) -> None:
        self.log = EventLog(path, annotator=annotator)
        self._ids: list[str] = [str(i) for i in item_ids]
        self._pos: dict[str, int] = {i: p for p, i in enumerate(self._ids)}
        self._actions: dict[int, Action] = {}
        self._idx: dict[int, np.ndarray] = {}
        self._applied: list[int] = []
        self._redo: list[int] = []
        self._last = 0
        self.state = LabelState(len(self._ids))
        self.refresh()

    # -- reading ---------------------------------------------------------------------------

    @property
    def annotator(self) -> str:
        return self.log.annotator

    @property
    def item_ids(self) -> list[str]:
        return list(self._ids)

    @property
    def classes(self) -> dict[int, str]:
        """``{class_id: name}`` of the live classes, in creation order."""
        return dict(self.state.classes)

    @property
    def class_names(self) -> list[str]:
        return list(self.state.classes.values())

    @property
    def can_undo(self) -> bool:
        return bool(self._applied)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def refresh(self) -> bool:
        """Read actions appended since the last look (by this or another process).

        Returns True when anything changed.
        """
        new = self.log.read(after=self._last)
        if not new:
            return False
        rebuild = False
        for action in new:
            self._last = action.id
            if action.kind == "undo":
                if self._applied:
                    self._redo.append(self._applied.pop())
                    rebuild = True
            elif action.kind == "redo":
                if self._redo:
                    aid = self._redo.pop()
                    self._applied.append(aid)
                    if not rebuild:
                        self.state.apply(self._actions[aid], self._idx[aid])
            else:
                self._actions[action.id] = action
                self._idx[action.id] = self._positions_of_logged(action.items)
                self._applied.append(action.id)
                self._redo.clear()
                if not rebuild:
                    self.state.apply(action, self._idx[action.id])
        if rebuild:
            self.state = LabelState(len(self._ids))
            for aid in self._applied:
                self.state.apply(self._actions[aid], self._idx[aid])
        return True

    def class_id(self, label: str | int) -> int:
        """The id of a live class given by name or id; ``KeyError`` naming it if unknown."""
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if int(label) in self.state.classes:
                return int(label)
            raise KeyError(f"no class with id {int(label)}; live classes: {self.class_names}")
        for cid, name in self.state.classes.items():
            if name == label:
                return cid
        raise KeyError(
            f"no class named {label!r}; create it first (create_class) or pick one of "
            f"{self.class_names}"
        )

    def table(self) -> pl.DataFrame:
        """One row per item: id, label, label_source, confidence, annotator, time.

        ``label`` is the current label (human first, else accepted machine label), null when
        unlabelled; ``human_label`` and ``machine_label`` give both layers.
        """
        s = self.state
        names = dict(s.classes)
        human = [names.get(int(c)) for c in s.human]
        machine = [names.get(int(c)) for c in s.machine]
        is_h = s.human >= 0
        is_m = ~is_h & (s.machine >= 0)
        source = np.where(is_h, "human", np.array(LABEL_SOURCES, dtype=object)[s.machine_source])
        source = np.where(is_h | is_m, source, None)
        act = np.where(is_h, s.human_action, np.where(is_m, s.machine_action, 0))
        who = {a.id: (a.annotator, a.time) for a in self._actions.values()}
        annot = [who[int(a)][0] if a else None for a in act]
        when = [who[int(a)][1] if a else None for a in act]
        conf = np.where(is_h, 1.0, np.where(is_m, s.machine_confidence, np.nan))
        return pl.DataFrame(
            {
                "id": self._ids,
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

    def create_class(self, name: str) -> int:
        """Create a class and return its id. Names are data: any non-empty Unicode string."""
        self.refresh()
        name = _check_name(name)
        if name in self.state.classes.values():
            raise ValueError(f"a class named {name!r} already exists")
        aid = self._append("create_class", name=name)
        return self._actions[aid].class_id

    def rename_class(self, label: str | int, new_name: str) -> None:
        self.refresh()
        cid = self.class_id(label)
        new_name = _check_name(new_name)
        if new_name in self.state.classes.values() and self.state.classes[cid] != new_name:
            raise ValueError(f"a class named {new_name!r} already exists; merge instead")
        self._append("rename_class", class_id=cid, name=new_name)

    def merge_classes(self, sources: Iterable[str | int], into: str | int) -> None:
        """Fold ``sources`` into ``into``: their items take its label; they disappear."""
        self.refresh()
        dst = self.class_id(into)
        src = [self.class_id(s) for s in sources]
        src = [s for s in src if s != dst]
        if not src:
            raise ValueError("merge needs at least one class other than the destination")
        self._append("merge_classes", target=dst, merged=src)

    def delete_class(self, label: str | int) -> None:
        """Delete a class; its items become unlabelled (undo brings them back)."""
        self.refresh()
        self._append("delete_class", class_id=self.class_id(label))

    def assign(
        self,
        items: Iterable[str | int] | np.ndarray,
        label: str | int,
        *,
        source: str = "human",
        confidence: Sequence[float] | np.ndarray | None = None,
        create: bool = True,
    ) -> int:
        """Label ``items`` with ``label`` in one action; return the action id.

        With ``create=True`` (default) an unknown label name creates the class first, so
        "lasso and name it" is one call. ``source`` is ``"human"`` or a machine source
        (propagated, probe, zeroshot); machine labels need a ``confidence`` per item and
        never replace a human label.
        """
        self.refresh()
        ids = self._resolve(items)
        if source not in LABEL_SOURCES:
            raise ValueError(f"source must be one of {LABEL_SOURCES}, not {source!r}")
        if source in MACHINE_SOURCES:
            if confidence is None:
                raise ValueError(f"machine labels ({source}) need a confidence per item")
            confidence = np.asarray(confidence, np.float64).ravel()
            if confidence.shape != (len(ids),) or not np.all(np.isfinite(confidence)):
                raise ValueError(
                    f"confidence must be {len(ids)} finite numbers, one per item"
                )
            confidence = confidence.tolist()
        elif confidence is not None:
            raise ValueError("human labels carry no confidence")
        try:
            cid = self.class_id(label)
        except KeyError:
            if not create or not isinstance(label, str):
                raise
            cid = self.create_class(label)
        return self._append("assign", class_id=cid, source=source, items=ids,
                            confidences=confidence)

    def remove(self, items: Iterable[str | int] | np.ndarray, *, source: str = "human") -> int:
        """Take the label off ``items`` (the human layer, or a machine ``source``)."""
        self.refresh()
        ids = self._resolve(items)
        if source not in LABEL_SOURCES:
            raise ValueError(f"source must be one of {LABEL_SOURCES}, not {source!r}")
        return self._append("remove", source=source, items=ids)

    def undo(self) -> bool:
        """Undo the newest applied action (of anyone). False when there is nothing to undo."""
        self.refresh()
        if not self._applied:
            return False
        self._append("undo", target=self._applied[-1])
        return True

    def redo(self) -> bool:
        """Redo the newest undone action. False when there is nothing to redo."""
        self.refresh()
        if not self._redo:
            return False
        self._append("redo", target=self._redo[-1])
        return True

    def close(self) -> None:
        self.log.close()

    def add_items(self, item_ids: Sequence[str]) -> None:
        """Extend the item list (new items come unlabelled)."""
        for i in item_ids:
            i = str(i)
            if i in self._pos:
                raise ValueError(f"item id {i!r} already exists")
            self._pos[i] = len(self._ids)
            self._ids.append(i)
        self.state.grow(len(self._ids))

    # -- helpers ---------------------------------------------------------------------------

    def _append(self, kind: str, **kw: object) -> int:
        aid = self.log.append(kind, **kw)
        self.refresh()
        return aid

    def _positions_of_logged(self, ids: Sequence[str]) -> np.ndarray:
        pos = self._pos
        # Ids unknown here (items added by another process we have not reloaded) are skipped.
        return np.fromiter((pos[i] for i in ids if i in pos), np.int64)

    def _resolve(self, items: Iterable[str | int] | np.ndarray) -> list[str]:
        arr = np.asarray(list(items) if not isinstance(items, np.ndarray) else items)
        if arr.ndim != 1:
            arr = arr.ravel()
        if arr.size == 0:
            raise ValueError("no items given; select at least one item")
        if arr.dtype.kind in "iu":
            bad = arr[(arr < 0) | (arr >= len(self._ids))]
            if bad.size:
                raise IndexError(
                    f"item position {int(bad[0])} is out of range for {len(self._ids)} items"
                )
            return [self._ids[i] for i in np.unique(arr)]
        if arr.dtype.kind in "US" or arr.dtype == object:
            ids = [str(i) for i in dict.fromkeys(arr.tolist())]
            missing = [i for i in ids if i not in self._pos]
            if missing:
                raise KeyError(
                    f"unknown item id {missing[0]!r} ({len(missing)} unknown); "
                    "ids must come from the project's items"
                )
            return ids
        raise TypeError(f"items must be ids (str) or positions (int), not {arr.dtype}")


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a class name must be a string, not {type(name).__name__}")
    if not name.strip():
        raise ValueError("a class name cannot be empty or only whitespace")
    return name
