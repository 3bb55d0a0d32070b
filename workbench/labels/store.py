"""The label event log: an append-only SQLite database, one transaction per user action.

Nothing here is ever updated or deleted. Undo and redo are actions too. The current labels
are derived from the log by :mod:`workbench.labels.state`.

One user action is one *batch*: one or more rows written in one ``BEGIN IMMEDIATE``
transaction ("name a new class for these items" is a ``create_class`` and an ``assign``),
undone and redone as a whole.

The tables, their upgrade and the :class:`Action` rows are :mod:`workbench.labels.schema`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._config import SQLITE_BUSY_TIMEOUT_MS
from .._files import atomic_write, on_network_filesystem
from .schema import (
    ACTION_KINDS,
    RESTORE_HINT,
    WRITE_FAILURES,
    Action,
    Batch,
    LabelLogError,
    action_columns,
    check_action,
    create_or_upgrade,
    default_annotator,
    has_actions,
    next_class_id,
    rollback,
    select_actions,
    sqlite_code,
)

__all__ = ["ACTION_KINDS", "Action", "Batch", "EventLog", "LabelLogError"]


class EventLog:
    """Append-only, crash-safe store of label actions in one SQLite file.

    Every batch (one ``append``, or the steps written inside one ``with log.batch()``) is one
    ``BEGIN IMMEDIATE`` transaction committed before it returns, with ``synchronous=FULL``
    in WAL mode: an action that returned survives a SIGKILL of the process and, on a
    journaling file system, a power cut. A batch that failed left nothing behind. Several
    processes may append at once; SQLite serialises them. One ``EventLog`` may be shared by
    threads: every use of its connection holds one re-entrant lock (:attr:`lock`).

    Parameters
    ----------
    path : path of the database file.
    annotator : name recorded on every action; default :func:`default_annotator`.
    create : create the file with its schema if missing (default). With ``False``, a
        missing, empty or damaged file raises :class:`LabelLogError`: use it for a project
        that already exists, whose log must not silently start over.
    read_only : open with SQLite's ``mode=ro``: the database file is never created or
        written (SQLite may still add its ``-wal``/``-shm`` side files beside an existing
        WAL database); every write raises :class:`LabelLogError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        annotator: str | None = None,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.annotator = annotator or default_annotator()
        self.read_only = bool(read_only)
        self.lock = threading.RLock()
        self._batch: Batch | None = None
        self._data_version = None
        if self.path.is_dir():
            raise LabelLogError(f"the label log {self.path} is a folder, not a file; "
                                f"{RESTORE_HINT}")
        if (read_only or not create) and not self.path.exists():
            raise LabelLogError(f"the label log {self.path} is missing; {RESTORE_HINT}")
        if (read_only or not create) and self.path.stat().st_size == 0:
            raise LabelLogError(
                f"the label log {self.path} is empty (0 bytes): it was truncated or never "
                f"written; {RESTORE_HINT}"
            )
        if on_network_filesystem(self.path.parent):
            warnings.warn(f"the label log {self.path} is on a network file system, where "
                          "SQLite's locks are unreliable: two writers can corrupt it. For a "
                          "team, keep the labels on PostgreSQL (Workbench.open(folder, labels="
                          "'postgresql://...')); else keep the project on a local disk.",
                          UserWarning, stacklevel=2)
        if read_only or not create:
            # A URI with mode=ro / mode=rw never creates the file, even if it vanishes
            # between the check above and here.
            url = urllib.request.pathname2url(str(self.path.absolute()))
            target: str | Path = f"file:{url}?mode={'ro' if read_only else 'rw'}"
        else:
            target = self.path
        try:
            self._con = sqlite3.connect(
                target, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False, uri=isinstance(target, str),
            )
        except sqlite3.Error as exc:
            raise LabelLogError(f"cannot open the label log {self.path} ({exc}); "
                                f"{RESTORE_HINT}") from exc
        try:
            self._setup(create=create and not read_only)
        except BaseException:
            self._con.close()
            raise

    def _setup(self, *, create: bool) -> None:
        con = self._con
        try:
            con.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if self.read_only:
                con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            else:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=FULL")
                con.execute("PRAGMA foreign_keys=ON")
                create_or_upgrade(con, create=create)
        except sqlite3.DatabaseError as exc:
            if sqlite_code(exc) in WRITE_FAILURES and not self.read_only:
                raise self._write_error(exc) from exc
            if sqlite_code(exc) in WRITE_FAILURES:
                raise LabelLogError(
                    f"cannot read the label log {self.path} read-only ({exc}): SQLite needs "
                    "its -shm file beside a WAL database; copy the project folder to a place "
                    "you may write, or open it from there"
                ) from exc
            raise LabelLogError(
                f"the label log {self.path} is damaged or not a label log ({exc}); "
                f"{RESTORE_HINT}"
            ) from exc
        if not has_actions(self._con):
            raise LabelLogError(
                f"the label log {self.path} is an SQLite file without label tables; "
                f"{RESTORE_HINT}"
            )
        self._has_batch = "batch" in action_columns(self._con)

    def close(self) -> None:
        """Close the connection; the file stays consistent whether or not this is called."""
        with self.lock:
            self._con.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """One write transaction: ``with log.batch() as b: b.append(...); b.append(...)``.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock at the start, so what is read inside
        the block (:meth:`read` sees the latest committed actions of every process, and this
        batch's own rows) cannot be changed by another writer before the commit: check
        inside, then append. Every row is tagged with the batch's first id; all commit
        together when the block ends, or none if it raises. A ``batch`` opened inside an
        open one (same thread) joins it. Holds :attr:`lock` for the whole block.
        """
        with self.lock:
            if self._batch is not None:
                yield self._batch
                return
            if self.read_only:
                raise LabelLogError(
                    f"the project is opened read-only: the label log {self.path} cannot be "
                    "written; reopen it without read_only to label"
                )
            con = self._con
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            self._batch = batch = Batch(self)
            try:
                yield batch
                con.execute("COMMIT")
            except BaseException as exc:
                rollback(self._con)
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc) from exc
                raise
            finally:
                self._batch = None

    def append(
        self,
        kind: str,
        *,
        source: str = "human",
        class_id: int | None = None,
        name: str | None = None,
        target: int | None = None,
        items: Sequence[str] = (),
        confidences: Sequence[float | None] | None = None,
        merged: Iterable[int] = (),
        annotator: str | None = None,
    ) -> int:
        """Append one action as a batch of its own (one transaction) and return its id.

        Inside an open :meth:`batch` it joins that batch instead. The caller
        (:class:`workbench.labels.LabelStore`) validates meaning; this checks only the
        shape so that nothing malformed is ever written. A ``create_class`` without a
        ``class_id`` gets a fresh one, allocated inside the transaction.
        """
        with self.batch() as b:
            return b.append(
                kind, source=source, class_id=class_id, name=name, target=target,
                items=items, confidences=confidences, merged=merged, annotator=annotator,
            )

    def _insert(
        self,
        kind: str,
        *,
        batch: int | None,
        source: str = "human",
        class_id: int | None = None,
        name: str | None = None,
        target: int | None = None,
        items: Sequence[str] = (),
        confidences: Sequence[float | None] | None = None,
        merged: Iterable[int] = (),
        annotator: str | None = None,
        at: Action | None = None,
    ) -> int:
        items = check_action(kind, source, items, confidences)
        con = self._con
        if kind == "create_class" and class_id is None:
            # Allocated inside the write transaction so two writers never share an id.
            class_id = next_class_id(con)
        cur = con.execute(
            "INSERT INTO actions(id, time, annotator, kind, source, class_id, name, target,"
            " batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (None if at is None else at.id, time.time() if at is None else at.time,
             annotator or self.annotator, kind, source, class_id, name, target, batch),
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
        return action_id

    def _translate(self, exc: sqlite3.Error) -> Exception:
        return self._write_error(exc) if sqlite_code(exc) in WRITE_FAILURES else exc

    def _write_error(self, exc: sqlite3.Error) -> LabelLogError:
        return LabelLogError(
            f"could not write to the label log {self.path}: the disk is full or the file is "
            f"not writable ({exc}). Free space (or fix the permissions) and retry; nothing "
            "after the last completed action was lost."
        )

    def import_actions(self, actions: Sequence[Action]) -> None:
        """Write ``actions`` (read from another log) with their ids, times and annotators,
        in one transaction, into this log, which must be empty (a backup of a PostgreSQL
        store, or labels moving back from one)."""
        with self.batch() as b:
            if self.last_id():
                raise LabelLogError(f"the label log {self.path} already holds actions; "
                                    "import only into an empty one")
            for a in actions:
                b.copy(a)

    def single_file(self) -> None:
        """Fold the ``-wal`` file in and leave one self-contained file (a copy that travels
        as it is)."""
        with self.lock:
            self._con.execute("PRAGMA journal_mode=DELETE")

    # -- reading ---------------------------------------------------------------------------

    def wait_for_change(self, timeout: float) -> bool:
        """Sleep ``timeout`` s, then say whether another connection committed since the last
        look: SQLite's change counter (``PRAGMA data_version``), no query of the tables."""
        time.sleep(timeout)
        with self.lock:
            version = self._con.execute("PRAGMA data_version").fetchone()[0]
        changed, self._data_version = version != self._data_version, version
        return changed

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection (use it inside :meth:`batch`, holding the lock)."""
        return self._con

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """The rows of one read-only query."""
        with self.lock:
            return self._con.execute(sql, params).fetchall()

    def last_id(self) -> int:
        """Id of the newest action, 0 for an empty log."""
        with self.lock:
            row = self._con.execute("SELECT COALESCE(MAX(id), 0) FROM actions").fetchone()
        return int(row[0])

    def read(self, after: int = 0) -> list[Action]:
        """All actions with ``id > after``, oldest first, with their items.

        Inside an open :meth:`batch` this includes the batch's own uncommitted rows.
        """
        with self.lock:
            con = self._con
            # One read transaction so that the three selects see the same snapshot even
            # while another process appends (inside a batch we are in one already).
            own = not con.in_transaction
            if own:
                con.execute("BEGIN")
            try:
                rows, items, merged = self._select(after)
            finally:
                if own and con.in_transaction:
                    con.execute("COMMIT")
        out = []
        for aid, t, who, kind, source, cid, name, target, batch in rows:
            ids, confs = items.get(aid, ([], []))
            out.append(
                Action(
                    id=aid, time=t, annotator=who, kind=kind, source=source, class_id=cid,
                    name=name, target=target, items=tuple(ids), confidences=tuple(confs),
                    merged=tuple(merged.get(aid, ())), batch=aid if batch is None else batch,
                )
            )
        return out

    def _select(self, after: int) -> tuple[list, dict, dict]:
        if not self._has_batch:  # an old file may be upgraded by another process meanwhile
            self._has_batch = "batch" in action_columns(self._con)
        return select_actions(self._con, after, has_batch=self._has_batch)

    # -- backup ----------------------------------------------------------------------------

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Write a consistent copy of the log to ``dest`` and return its path.

        Uses SQLite's online backup API from a read snapshot, so the copy holds every action
        committed when it started, including those still only in the ``-wal`` file, and is
        safe while other processes keep appending (they are not blocked; their later
        actions are simply not in the copy). The copy is written beside ``dest`` and renamed
        into place, so ``dest`` is never half-written. ``dest`` may be a folder, in which
        case the copy takes this log's file name. The copy is one self-contained file that
        :class:`EventLog` opens as it is.
        """
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / self.path.name
        if dest.exists() and self.path.exists() and dest.resolve() == self.path.resolve():
            raise ValueError(f"the backup of {self.path} cannot overwrite the log itself")

        def write(tmp: Path) -> None:
            out = sqlite3.connect(tmp, isolation_level=None)
            try:
                with self.lock:
                    if self._con.in_transaction:
                        raise RuntimeError("cannot back up the label log inside an open batch")
                    self._con.backup(out)
                # One file, no -wal beside it: a copy that travels as it is.
                out.execute("PRAGMA journal_mode=DELETE")
            finally:
                out.close()

        atomic_write(dest, write)  # durable: the copy is flushed to disk before the rename
        return dest
