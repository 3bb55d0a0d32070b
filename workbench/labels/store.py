"""The label event log: an append-only SQLite database, one transaction per user action.

Nothing here is ever updated or deleted. Undo and redo are actions too. The current labels
are derived from the log by :mod:`workbench.labels.state`.

Tables
------
``actions``
    one row per user action: ``id`` (monotonic), ``time`` (Unix seconds), ``annotator``,
    ``kind`` (one of :data:`ACTION_KINDS`), ``source`` (human / propagated / probe /
    zeroshot), ``class_id``, ``name`` (class name for create/rename), ``target`` (merge
    destination, or the action an undo/redo refers to).
``items``
    ``(action_id, item_id, confidence)``: the items an assign/remove touched.
``merged``
    ``(action_id, class_id)``: the classes a merge folded into ``actions.target``.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._config import (
    ANNOTATOR_ENV,
    DEFAULT_ANNOTATOR,
    LABEL_SOURCES,
    SQLITE_BUSY_TIMEOUT_MS,
)

__all__ = ["ACTION_KINDS", "Action", "EventLog"]

ACTION_KINDS = (
    "assign",
    "remove",
    "create_class",
    "rename_class",
    "merge_classes",
    "delete_class",
    "undo",
    "redo",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      REAL    NOT NULL,
    annotator TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    source    TEXT    NOT NULL DEFAULT 'human',
    class_id  INTEGER,
    name      TEXT,
    target    INTEGER
);
CREATE TABLE IF NOT EXISTS items (
    action_id  INTEGER NOT NULL REFERENCES actions(id),
    item_id    TEXT    NOT NULL,
    confidence REAL
);
CREATE INDEX IF NOT EXISTS items_by_action ON items(action_id);
CREATE TABLE IF NOT EXISTS merged (
    action_id INTEGER NOT NULL REFERENCES actions(id),
    class_id  INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Action:
    """One row of the log, with the items or merged classes it names.

    ``items`` holds item ids (str); ``confidences`` is aligned with it (``None`` for human
    labels); ``merged`` holds the class ids a merge folded into ``target``.
    """

    id: int
    time: float
    annotator: str
    kind: str
    source: str = "human"
    class_id: int | None = None
    name: str | None = None
    target: int | None = None
    items: tuple[str, ...] = ()
    confidences: tuple[float | None, ...] = ()
    merged: tuple[int, ...] = ()


def default_annotator() -> str:
    """The annotator name used when none is given: ``$WORKBENCH_ANNOTATOR`` or the OS user."""
    name = os.environ.get(ANNOTATOR_ENV)
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return DEFAULT_ANNOTATOR


class EventLog:
    """Append-only, crash-safe store of label actions in one SQLite file.

    Every ``append`` is one ``BEGIN IMMEDIATE`` transaction committed before it returns,
    with ``synchronous=FULL`` in WAL mode: an action that returned survives a SIGKILL of
    the process and, on a journaling file system, a power cut. Several processes may
    append at once; SQLite serialises them.

    Parameters
    ----------
    path : path of the database file; created with its schema if missing.
    annotator : name recorded on every action; default :func:`default_annotator`.
    """

    def __init__(self, path: str | os.PathLike[str], *, annotator: str | None = None) -> None:
        self.path = Path(path)
        self.annotator = annotator or default_annotator()
        self._con = sqlite3.connect(
            self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")
        self._con.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        self._con.execute("PRAGMA foreign_keys=ON")
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection; the file stays consistent whether or not this is called."""
        self._con.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        *,
        source: str = "human",
        class_id: int | None = None,
        name: str | None = None,
        target: int | None = None,
        items: Sequence[str] = (),
        confidences: Sequence[float] | None = None,
        merged: Iterable[int] = (),
        annotator: str | None = None,
    ) -> int:
        """Append one action in one transaction and return its id.

        The caller (:class:`workbench.labels.LabelStore`) validates meaning; this checks
        only the shape so that nothing malformed is ever written.
        """
        if kind not in ACTION_KINDS:
            raise ValueError(f"unknown action kind {kind!r}; expected one of {ACTION_KINDS}")
        if source not in LABEL_SOURCES:
            raise ValueError(f"unknown label source {source!r}; expected one of {LABEL_SOURCES}")
        items = [str(i) for i in items]
        if confidences is not None and len(confidences) != len(items):
            raise ValueError(
                f"{len(confidences)} confidences for {len(items)} items; give one per item"
            )
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            if kind == "create_class" and class_id is None:
                # Allocated inside the write transaction so two writers never share an id.
                class_id = self._next_class_id()
            cur = con.execute(
                "INSERT INTO actions(time, annotator, kind, source, class_id, name, target)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), annotator or self.annotator, kind, source, class_id, name, target),
            )
            action_id = int(cur.lastrowid)
            if items:
                confs = confidences if confidences is not None else [None] * len(items)
                con.executemany(
                    "INSERT INTO items(action_id, item_id, confidence) VALUES (?, ?, ?)",
                    ((action_id, i, None if c is None else float(c)) for i, c in zip(items, confs)),
                )
            merged = list(merged)
            if merged:
                con.executemany(
                    "INSERT INTO merged(action_id, class_id) VALUES (?, ?)",
                    ((action_id, int(c)) for c in merged),
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return action_id

    # -- reading ---------------------------------------------------------------------------

    def last_id(self) -> int:
        """Id of the newest action, 0 for an empty log."""
        row = self._con.execute("SELECT COALESCE(MAX(id), 0) FROM actions").fetchone()
        return int(row[0])

    def read(self, after: int = 0) -> list[Action]:
        """All actions with ``id > after``, oldest first, with their items."""
        con = self._con
        # One read transaction so that the three selects see the same snapshot even while
        # another process appends.
        con.execute("BEGIN")
        try:
            rows = con.execute(
                "SELECT id, time, annotator, kind, source, class_id, name, target"
                " FROM actions WHERE id > ? ORDER BY id",
                (after,),
            ).fetchall()
            if not rows:
                return []
            last = rows[-1][0]
            items: dict[int, tuple[list[str], list[float | None]]] = {}
            for aid, item, conf in con.execute(
                "SELECT action_id, item_id, confidence FROM items"
                " WHERE action_id > ? AND action_id <= ? ORDER BY rowid",
                (after, last),
            ):
                ids, confs = items.setdefault(aid, ([], []))
                ids.append(item)
                confs.append(conf)
            merged: dict[int, list[int]] = {}
            for aid, cid in con.execute(
                "SELECT action_id, class_id FROM merged WHERE action_id > ? AND action_id <= ?",
                (after, last),
            ):
                merged.setdefault(aid, []).append(cid)
        finally:
            con.execute("COMMIT")
        out = []
        for aid, t, who, kind, source, cid, name, target in rows:
            ids, confs = items.get(aid, ([], []))
            out.append(
                Action(
                    id=aid, time=t, annotator=who, kind=kind, source=source, class_id=cid,
                    name=name, target=target, items=tuple(ids), confidences=tuple(confs),
                    merged=tuple(merged.get(aid, ())),
                )
            )
        return out

    def _next_class_id(self) -> int:
        """A class id never used before in this log (ids are never reused)."""
        row = self._con.execute(
            "SELECT COALESCE(MAX(class_id), -1) FROM actions WHERE kind = 'create_class'"
        ).fetchone()
        return int(row[0]) + 1
