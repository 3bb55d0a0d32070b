"""Who is looking at which items right now: short-lived claims that spread the "label next"
pages of several annotators, so two of them are never served the same item at the same time.

A claim is ``(item, annotator, until)`` in a ``claims`` table beside the label log (SQLite or
PostgreSQL). It is coordination, not history: never part of the event log, replaced whenever
its annotator takes a new page, ignored once ``until`` has passed (an annotator who walked
away blocks nothing for long). Taking a page is one write transaction of the log, so two
annotators asking at the same moment split the items between them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

__all__ = ["claim_page", "claimed_by_others", "store_sql"]

SQLITE_TABLE = ("CREATE TABLE IF NOT EXISTS claims (item_id TEXT PRIMARY KEY, "
                "annotator TEXT NOT NULL, until REAL NOT NULL)")
PG_TABLE = ("CREATE TABLE IF NOT EXISTS {s}.claims (item_id TEXT PRIMARY KEY, "
            "annotator TEXT NOT NULL, until DOUBLE PRECISION NOT NULL)")


def store_sql(log: Any, text: str) -> str:
    """``text`` for the log's database: ``?`` placeholders and an unqualified table on
    SQLite; ``%s`` and the project's schema on PostgreSQL."""
    schema = getattr(log, "schema", None)
    if schema is None:
        return text.replace("{s}.", "")
    return text.replace("?", "%s").replace("{s}", f'"{schema}"')


def claimed_by_others(log: Any, annotator: str) -> set[str]:
    """Ids of the items other annotators hold a live claim on (none before any claim)."""
    try:
        rows = log.query(store_sql(log, "SELECT item_id FROM {s}.claims WHERE annotator <> ? "
                                   "AND until > ?"), (annotator, time.time()))
    except Exception:  # no claims table yet: nobody has claimed anything
        return set()
    return {r[0] for r in rows}


def claim_page(log: Any, items: Sequence[str], annotator: str, seconds: float) -> list[str]:
    """Claim ``items`` for ``annotator`` for ``seconds`` and return those it got, in order:
    all but the ones another annotator claimed meanwhile. Its earlier claims are released."""
    now = time.time()
    con = log.connection
    table = PG_TABLE if getattr(log, "schema", None) else SQLITE_TABLE
    with log.batch():  # the log's write lock: one annotator at a time takes a page
        con.execute(store_sql(log, table))
        con.execute(store_sql(log, "DELETE FROM {s}.claims WHERE annotator = ? OR until <= ?"),
                    (annotator, now))
        taken = {r[0] for r in con.execute(
            store_sql(log, "SELECT item_id FROM {s}.claims"))}
        mine = [i for i in dict.fromkeys(items) if i not in taken]
        if mine:
            con.cursor().executemany(
                store_sql(log, "INSERT INTO {s}.claims(item_id, annotator, until) VALUES (?, ?, ?)"),
                [(i, annotator, now + seconds) for i in mine])
    return mine
