"""The label event log on PostgreSQL: the same append-only log as :mod:`.store`, for a team
whose kernels run on several machines (JupyterHub, lab servers), where one SQLite file
cannot be shared safely. Its tables and URL (``postgresql://user@host/db?schema=NAME``) are
:mod:`.pg_schema`; the password comes from ``PGPASSWORD`` or ``~/.pgpass`` (one written in
the URL works but is never stored in the project).

Guarantees, as on SQLite: a batch is one transaction, writers are serialised (an advisory
lock per schema, taken at ``BEGIN``, so what a batch reads inside cannot change before its
commit), ids grow in commit order, an action that returned is committed. A connection that
drops is reopened: between actions without the caller noticing; inside an action, that
action raises :class:`LabelLogError` saying it was not saved (or returns, when the batch's
``token`` shows its commit went through). Every commit sends a ``NOTIFY``, which
:meth:`PostgresLog.wait_for_change` listens for: other kernels see new labels at once.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .._config import (
    POSTGRES_CONNECT_TIMEOUT_S,
    POSTGRES_RECONNECT_S,
    SQLITE_BUSY_TIMEOUT_MS,
)
from .pg_schema import (
    TABLES,
    is_postgres_url,
    load_psycopg,
    public_url,
    select_actions,
    split_url,
)
from .schema import Action, Batch, LabelLogError, check_action, default_annotator

# The URL helpers live in pg_schema; importable from here too.
__all__ = ["PostgresLog", "is_postgres_url", "public_url", "split_url"]


class PostgresLog:
    """Append-only store of label actions in one PostgreSQL schema; the interface of
    :class:`~workbench.labels.store.EventLog` (``batch``, ``append``, ``read``, ``last_id``,
    ``backup``, ``wait_for_change``), so :class:`~workbench.labels.LabelStore` works on
    either.

    Parameters
    ----------
    url : ``postgresql://[user[:password]@]host[:port]/database?schema=NAME``.
    annotator, create, read_only : as for ``EventLog``. ``create=False``: a schema without
        the label tables raises :class:`LabelLogError` instead of starting an empty log.
    """

    def __init__(self, url: str, *, annotator: str | None = None, create: bool = True,
                 read_only: bool = False) -> None:
        self.psycopg = load_psycopg()
        self.conninfo, self.schema = split_url(url)
        self.path = public_url(url)  # what messages name
        self.annotator = annotator or default_annotator()
        self.read_only = bool(read_only)
        self.lock = threading.RLock()
        self._batch: Batch | None = None
        self._token: str | None = None
        self._token_used = False
        self._next_id = 0
        self._s = f'"{self.schema}"'
        self._channel = f"workbench_{self.schema}"[:63]
        self._listen: Any = None
        self._con = self._connect(retry=False)
        try:
            self._setup(create=create and not read_only)
        except BaseException:
            self._con.close()
            raise

    # -- connections -----------------------------------------------------------------------

    def _connect(self, *, retry: bool = True) -> Any:
        """A new autocommit connection; with ``retry``, keeps trying for
        ``POSTGRES_RECONNECT_S`` (a server restarting, a network blip)."""
        pg = self.psycopg
        deadline = time.monotonic() + (POSTGRES_RECONNECT_S if retry else 0)
        wait = 0.05
        while True:
            try:
                con = pg.connect(self.conninfo, autocommit=True,
                                 connect_timeout=POSTGRES_CONNECT_TIMEOUT_S)
                con.execute(f"SET lock_timeout = {int(SQLITE_BUSY_TIMEOUT_MS)}")
                return con
            except pg.OperationalError as e:
                if time.monotonic() + wait > deadline:
                    raise LabelLogError(
                        f"cannot reach the PostgreSQL label store {self.path} ({e}). Check "
                        "that the server runs and the URL, user and password (PGPASSWORD or "
                        "~/.pgpass) are right; every label saved so far is kept there."
                    ) from e
                time.sleep(wait)
                wait = min(wait * 2, 1.0)

    def _lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is gone (then it is reopened lazily)."""
        pg = self.psycopg
        return isinstance(exc, pg.OperationalError) and (self._con.closed or self._con.broken)

    def _reconnect(self) -> None:
        with suppress(Exception):
            self._con.close()
        self._con = self._connect()

    def _setup(self, *, create: bool) -> None:
        con, s = self._con, self._s
        try:
            exists = con.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND "
                "table_name = 'actions'", (self.schema,)).fetchone() is not None
            if not exists and create:
                with con.transaction():
                    con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._channel,))
                    for sql in TABLES:
                        con.execute(sql.format(s=s))
                exists = True
        except self.psycopg.Error as e:
            raise LabelLogError(
                f"cannot set up the label tables in schema {self.schema!r} of "
                f"{self.path} ({e}); the user needs CREATE rights on the database"
            ) from e
        if not exists:
            raise LabelLogError(
                f"no label log in schema {self.schema!r} of {self.path}: check the schema "
                "name, or open the project for labelling (not read-only) to create it"
            )

    def close(self) -> None:
        """Close the connections; every committed action stays in the database."""
        with self.lock:
            self._con.close()
            if self._listen is not None:
                with suppress(Exception):
                    self._listen.close()

    def __enter__(self) -> PostgresLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def _begin(self) -> None:
        """Open the write transaction and take the writers' lock; reconnects and retries
        when the connection dropped since the last action (nothing is written yet)."""
        for attempt in range(2):
            try:
                self._con.execute("BEGIN")
                self._con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                                  (self._channel,))
                row = self._con.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self._s}.actions")
                self._next_id = int(row.fetchone()[0]) + 1
                return
            except self.psycopg.Error as e:
                if self._lost(e) and attempt == 0:
                    self._reconnect()
                    continue
                self._rollback()
                raise self._error(e) from e

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """One write transaction, as :meth:`EventLog.batch <workbench.labels.store.EventLog
        .batch>`: the writers' lock is held from the start, so reads inside see the latest
        committed actions and nobody appends before the commit."""
        with self.lock:
            if self._batch is not None:
                yield self._batch
                return
            if self.read_only:
                raise LabelLogError(
                    f"the project is opened read-only: the label log {self.path} cannot be "
                    "written; reopen it without read_only to label"
                )
            self._begin()
            self._batch = batch = Batch(self)
            self._token, self._token_used = uuid.uuid4().hex, False
            try:
                yield batch
                if batch.id is not None:
                    self._con.execute("SELECT pg_notify(%s, %s)",
                                      (self._channel, str(self._next_id - 1)))
                self._commit()
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, self.psycopg.Error):
                    raise self._error(exc, during=True) from exc
                raise
            finally:
                self._batch, self._token = None, None

    def _unused_token(self) -> str | None:
        """The batch's token on its first row only (tokens are unique)."""
        token, self._token_used = (None if self._token_used else self._token), True
        return token

    def _commit(self) -> None:
        try:
            self._con.execute("COMMIT")
        except self.psycopg.Error as e:
            if not self._lost(e):
                raise
            # The COMMIT may or may not have reached the server: the batch's token says.
            token = self._token
            self._reconnect()
            row = self._con.execute(f"SELECT 1 FROM {self._s}.actions WHERE token = %s",
                                    (token,)).fetchone()
            if row is None:
                raise LabelLogError(
                    f"the connection to the label store {self.path} dropped while saving "
                    "this action: it was NOT saved. The connection is back; do it again."
                ) from e

    def _rollback(self) -> None:
        if self._con.closed or self._con.broken:
            with suppress(LabelLogError):
                self._reconnect()  # the server rolled back what was open
            return
        with suppress(self.psycopg.Error):
            self._con.execute("ROLLBACK")

    def _error(self, exc: BaseException, *, during: bool = False) -> LabelLogError:
        if isinstance(exc, self.psycopg.errors.LockNotAvailable):
            return LabelLogError(
                f"another writer held the label store {self.path} for "
                f"{SQLITE_BUSY_TIMEOUT_MS / 1000:.0f} s; nothing was saved, try again"
            )
        return LabelLogError(
            f"the label store {self.path} failed {'during' if during else 'before'} this "
            f"action ({exc}): it was NOT saved; every earlier action is kept. Do it again."
        )

    def append(self, kind: str, **kw: Any) -> int:
        """Append one action as a batch of its own (as ``EventLog.append``); its id."""
        with self.batch() as b:
            return b.append(kind, **kw)

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
        for text in (name, annotator, *items):
            if text is not None and "\x00" in text:
                raise ValueError(
                    f"{text!r} holds the NUL character (\\x00), which PostgreSQL text cannot "
                    "store: remove it (rename the class or the item) and retry"
                )
        con, s = self._con, self._s
        if kind == "create_class" and class_id is None:
            row = con.execute(f"SELECT COALESCE(MAX(class_id), -1) FROM {s}.actions "
                              "WHERE kind = 'create_class'").fetchone()
            class_id = int(row[0]) + 1
        action_id = self._next_id if at is None else at.id
        con.execute(
            f"INSERT INTO {s}.actions(id, time, annotator, kind, source, class_id, name, "
            "target, batch, token) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (action_id, time.time() if at is None else at.time, annotator or self.annotator, kind,
             source, class_id, name, target, batch, self._unused_token()),
        )
        self._next_id = action_id + 1
        if items:
            confs = confidences if confidences is not None else [None] * len(items)
            with con.cursor().copy(
                    f"COPY {s}.items(action_id, seq, item_id, confidence) FROM STDIN") as copy:
                for k, (i, c) in enumerate(zip(items, confs)):
                    copy.write_row((action_id, k, i, None if c is None else float(c)))
        merged = [int(c) for c in merged]
        if merged:
            con.cursor().executemany(
                f"INSERT INTO {s}.merged(action_id, class_id) VALUES (%s, %s)",
                [(action_id, c) for c in merged],
            )
        return action_id

    # -- reading ---------------------------------------------------------------------------

    def _reading(self, fn: Any) -> Any:
        """Run ``fn(con)`` in one snapshot (inside an open batch: in it); outside a batch a
        dropped connection is reopened and ``fn`` run again."""
        with self.lock:
            if self._batch is not None:
                return fn(self._con)
            for attempt in range(2):
                try:
                    with self._con.transaction():
                        self._con.execute(
                            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        return fn(self._con)
                except self.psycopg.Error as e:
                    if self._lost(e) and attempt == 0:
                        self._reconnect()
                        continue
                    raise LabelLogError(f"cannot read the label store {self.path} ({e})") from e
        raise AssertionError("unreachable")

    @property
    def connection(self) -> Any:
        """The psycopg connection (use it inside :meth:`batch`, holding the lock)."""
        return self._con

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """The rows of one read-only query, in a snapshot (reconnecting once if dropped)."""
        return self._reading(lambda con: con.execute(sql, params).fetchall())

    def last_id(self) -> int:
        """Id of the newest action, 0 for an empty log."""
        return self._reading(lambda con: int(con.execute(
            f"SELECT COALESCE(MAX(id), 0) FROM {self._s}.actions").fetchone()[0]))

    def read(self, after: int = 0) -> list[Action]:
        """All actions with ``id > after``, oldest first, with their items."""
        return self._reading(lambda con: select_actions(con, self._s, after))

    def wait_for_change(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a commit by anyone (``LISTEN``); True when
        one came (or the listening connection had to be reopened: look anyway)."""
        try:
            if self._listen is None:
                self._listen = self.psycopg.connect(
                    self.conninfo, autocommit=True, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S)
                self._listen.execute(f'LISTEN "{self._channel}"')
                return True  # something may have been committed while nobody listened
            return any(True for _ in self._listen.notifies(timeout=timeout, stop_after=1))
        except self.psycopg.Error:
            listen, self._listen = self._listen, None
            if listen is not None:
                with suppress(Exception):
                    listen.close()
            time.sleep(timeout)
            return True

    # -- copies ----------------------------------------------------------------------------

    def import_actions(self, actions: Sequence[Action]) -> None:
        """Write ``actions`` (read from another log) with their ids, times and annotators,
        in one transaction, into this log, which must be empty: moving a project's labels
        here from its SQLite file."""
        with self.batch() as b:
            if self._next_id != 1:
                raise LabelLogError(f"the label store {self.path} (schema {self.schema!r}) "
                                    "already holds actions; import only into an empty one")
            for a in actions:
                b.copy(a)

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Write every committed action to an SQLite label log at ``dest`` (one file that
        :class:`~workbench.labels.store.EventLog` opens as it is, e.g. to work offline) and
        return its path. ``dest`` may be a folder (the file is then ``labels.sqlite``)."""
        from .._files import atomic_write
        from .store import EventLog

        dest = Path(dest)
        if dest.is_dir():
            dest = dest / "labels.sqlite"  # the name of the log in a project folder
        actions = self.read()

        def write(tmp: Path) -> None:
            with EventLog(tmp, annotator=self.annotator) as copy:
                copy.import_actions(actions)
                copy.single_file()

        atomic_write(dest, write)
        return dest
