"""What the machine said of each spot-checked item when it was served (see
:mod:`workbench.learn.spot_checks`): ``(item, class, confidence, served)`` in a
``spot_checks`` table beside the label log (SQLite or PostgreSQL), so every session and
annotator of the project learns from all checks, and a reopened project keeps them.

Like the claims, it is not part of the event log: an undo does not take a check back (the
item simply has no label, so the check has no outcome until it gets one). Serving an item
again replaces its record while it still has no human label: the person answers what the
latest page showed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .claims import store_sql

__all__ = ["read_spot_checks", "record_spot_checks"]

SQLITE_TABLE = ("CREATE TABLE IF NOT EXISTS spot_checks (item_id TEXT PRIMARY KEY, "
                "class_id INTEGER NOT NULL, confidence REAL NOT NULL, served REAL NOT NULL)")
PG_TABLE = ("CREATE TABLE IF NOT EXISTS {s}.spot_checks (item_id TEXT PRIMARY KEY, "
            "class_id BIGINT NOT NULL, confidence DOUBLE PRECISION NOT NULL, "
            "served DOUBLE PRECISION NOT NULL)")


def record_spot_checks(log: Any, rows: Sequence[tuple[str, int, float]]) -> None:
    """Record ``(item_id, class_id, confidence)`` of items just served, replacing earlier
    records of the same items."""
    if not rows or getattr(log, "read_only", False):
        return
    now = time.time()
    table = PG_TABLE if getattr(log, "schema", None) else SQLITE_TABLE
    con = log.connection
    with log.batch():
        con.execute(store_sql(log, table))
        con.cursor().executemany(
            store_sql(log, "DELETE FROM {s}.spot_checks WHERE item_id = ?"),
            [(r[0],) for r in rows])
        con.cursor().executemany(
            store_sql(log, "INSERT INTO {s}.spot_checks(item_id, class_id, confidence, served) "
                      "VALUES (?, ?, ?, ?)"),
            [(str(i), int(c), float(p), now + k * 1e-6) for k, (i, c, p) in enumerate(rows)])


def read_spot_checks(log: Any) -> list[tuple[str, int, float, float]]:
    """Every record ``(item_id, class_id, confidence, served)``, oldest first (none before
    the first check)."""
    try:
        rows = log.query(store_sql(log, "SELECT item_id, class_id, confidence, served "
                                   "FROM {s}.spot_checks ORDER BY served"))
    except Exception:  # no table yet: nothing was checked
        return []
    return [(str(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]
