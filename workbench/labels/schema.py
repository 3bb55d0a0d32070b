"""The label log's SQLite schema, its upgrade, the queries that read it, and its rows.

Tables
------
``actions``
    one row per step: ``id`` (monotonic), ``time`` (Unix seconds), ``annotator``,
    ``kind`` (one of :data:`ACTION_KINDS`), ``source`` (human / propagated / probe /
    zeroshot), ``class_id``, ``name`` (class name for create/rename), ``target`` (merge
    destination, or the batch an undo/redo refers to), ``batch`` (id of the first row of
    the batch this row belongs to; NULL on the first row itself, and on every row of logs
    written before batches existed, so each old row is its own batch).
``items``
    ``(action_id, item_id, confidence)``: the items an assign/remove touched.
``merged``
    ``(action_id, class_id)``: the classes a merge folded into ``actions.target``.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from .._config import ANNOTATOR_ENV, DEFAULT_ANNOTATOR, LABEL_SOURCES

__all__ = [
    "ACTION_KINDS",
    "RESTORE_HINT",
    "TABLES",
    "WRITE_FAILURES",
    "Action",
    "Batch",
    "LabelLogError",
    "action_columns",
    "check_action",
    "create_or_upgrade",
    "default_annotator",
    "has_actions",
    "next_class_id",
    "rollback",
    "select_actions",
    "sqlite_code",
]

ACTION_KINDS = (
    "assign",
    "remove",
    "create_class",
    "rename_class",
    "merge_classes",
    "delete_class",
    "undo",
    "redo",
    # rules (workbench.rules): ``target`` the rule id, ``name`` its spec as JSON
    "add_rule",
    "edit_rule",
    "remove_rule",
)

TABLES = (
    """CREATE TABLE IF NOT EXISTS actions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      REAL    NOT NULL,
    annotator TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    source    TEXT    NOT NULL DEFAULT 'human',
    class_id  INTEGER,
    name      TEXT,
    target    INTEGER,
    batch     INTEGER
)""",
    """CREATE TABLE IF NOT EXISTS items (
    action_id  INTEGER NOT NULL REFERENCES actions(id),
    item_id    TEXT    NOT NULL,
    confidence REAL
)""",
    "CREATE INDEX IF NOT EXISTS items_by_action ON items(action_id)",
    """CREATE TABLE IF NOT EXISTS merged (
    action_id INTEGER NOT NULL REFERENCES actions(id),
    class_id  INTEGER NOT NULL
)""",
)

# SQLite primary result codes that mean "the file cannot be written": SQLITE_READONLY,
# SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
WRITE_FAILURES = {8, 10, 13, 14}

RESTORE_HINT = (
    "restore it from a backup (`workbench backup` makes one) and reopen; do not delete the "
    "project, its other files are intact"
)


class LabelLogError(RuntimeError):
    """The label log cannot be opened or written: missing, damaged, read-only or disk full.

    The message names the file and says what to do.
    """


@dataclass(frozen=True, slots=True)
class Action:
    """One row of the log, with the items or merged classes it names.

    ``items`` holds item ids (str); ``confidences`` is aligned with it (``None`` for human
    labels); ``merged`` holds the class ids a merge folded into ``target``. ``batch`` is the
    id of the first action of the user action this row belongs to (its own ``id`` when it
    is alone, and for every row written before batches existed).
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
    batch: int = 0


class Batch:
    """The open write transaction of a label log; made by its ``batch()`` (SQLite's
    :class:`~workbench.labels.store.EventLog` or :class:`~workbench.labels.postgres.PostgresLog`).

    ``id`` is the id of its first action (``None`` until something is appended).
    """

    def __init__(self, log: Any) -> None:
        self._log = log
        self.id: int | None = None

    def append(self, kind: str, **kw: object) -> int:
        """Append one step to this batch (the arguments of the log's ``append``)."""
        aid = self._log._insert(kind, batch=self.id, **kw)  # type: ignore[arg-type]
        if self.id is None:
            self.id = aid
        return aid

    def copy(self, a: Action) -> int:
        """Write ``a`` (read from another log) as it was: its id, time, annotator, batch."""
        return self._log._insert(
            a.kind, batch=None if a.batch == a.id else a.batch, source=a.source,
            class_id=a.class_id, name=a.name, target=a.target, items=a.items,
            confidences=list(a.confidences) if a.confidences else None, merged=a.merged,
            annotator=a.annotator, at=a)


def check_action(kind: str, source: str, items: Any, confidences: Any) -> list[str]:
    """The item ids of an action as text, after checking its shape (kind, source, one
    confidence per item), so that nothing malformed is ever written; ValueError else."""
    if kind not in ACTION_KINDS:
        raise ValueError(f"unknown action kind {kind!r}; expected one of {ACTION_KINDS}")
    if source not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {source!r}; expected one of {LABEL_SOURCES}")
    items = [str(i) for i in items]
    if confidences is not None and len(confidences) != len(items):
        raise ValueError(
            f"{len(confidences)} confidences for {len(items)} items; give one per item"
        )
    return items


def default_annotator() -> str:
    """The annotator name used when none is given: ``$WORKBENCH_ANNOTATOR`` or the OS user."""
    name = os.environ.get(ANNOTATOR_ENV)
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return DEFAULT_ANNOTATOR


def create_or_upgrade(con: sqlite3.Connection, *, create: bool) -> None:
    """Create the tables (with ``create``) and add the ``batch`` column to an old file.

    Schema and upgrade in one write transaction, so two processes opening an old file at
    once do not both add the column.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        if create:
            for sql in TABLES:
                con.execute(sql)
        if has_actions(con) and "batch" not in action_columns(con):
            con.execute("ALTER TABLE actions ADD COLUMN batch INTEGER")
        con.execute("COMMIT")
    finally:
        rollback(con)


def has_actions(con: sqlite3.Connection) -> bool:
    """Whether the database holds the ``actions`` table."""
    return con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'actions'"
    ).fetchone() is not None


def action_columns(con: sqlite3.Connection) -> set[str]:
    """The column names of the ``actions`` table."""
    return {row[1] for row in con.execute("PRAGMA table_info(actions)")}


def select_actions(
    con: sqlite3.Connection, after: int, *, has_batch: bool
) -> tuple[list, dict, dict]:
    """The rows of actions with ``id > after`` (oldest first), their items and merges.

    Returns ``(rows, {action_id: (item ids, confidences)}, {action_id: merged class ids})``;
    ``has_batch`` False reads a log written before batches (``batch`` read as NULL).
    """
    batch = "batch" if has_batch else "NULL"
    rows = con.execute(
        "SELECT id, time, annotator, kind, source, class_id, name, target, "
        f"{batch} FROM actions WHERE id > ? ORDER BY id",
        (after,),
    ).fetchall()
    items: dict[int, tuple[list[str], list[float | None]]] = {}
    merged: dict[int, list[int]] = {}
    if not rows:
        return rows, items, merged
    last = rows[-1][0]
    for aid, item, conf in con.execute(
        "SELECT action_id, item_id, confidence FROM items"
        " WHERE action_id > ? AND action_id <= ? ORDER BY rowid",
        (after, last),
    ):
        ids, confs = items.setdefault(aid, ([], []))
        ids.append(item)
        confs.append(conf)
    for aid, cid in con.execute(
        "SELECT action_id, class_id FROM merged WHERE action_id > ? AND action_id <= ?",
        (after, last),
    ):
        merged.setdefault(aid, []).append(cid)
    return rows, items, merged


def next_class_id(con: sqlite3.Connection) -> int:
    """A class id never used before in this log (ids are never reused)."""
    row = con.execute(
        "SELECT COALESCE(MAX(class_id), -1) FROM actions WHERE kind = 'create_class'"
    ).fetchone()
    return int(row[0]) + 1


def rollback(con: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open; never raise over the original error.

    SQLite rolls back by itself after some failures (disk full, I/O error), and a second
    ROLLBACK would then fail with "no transaction is active", hiding the real cause.
    """
    if con.in_transaction:
        with suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def sqlite_code(exc: BaseException) -> int:
    """SQLite primary result code of an error (0 when unknown)."""
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
