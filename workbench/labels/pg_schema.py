"""The PostgreSQL label store's tables, the query that reads them, and its URLs: what
:mod:`workbench.labels.postgres` (the log itself) builds on, as :mod:`.schema` is for SQLite.

A store is named by ``postgresql://user@host:5432/db?schema=NAME``: ``schema`` (the one
parameter that is ours, not libpq's) is the PostgreSQL schema holding one project's tables.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from .schema import Action, LabelLogError

__all__ = ["TABLES", "is_postgres_url", "load_psycopg", "public_url", "select_actions",
           "split_url"]

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
URL_SCHEMES = ("postgresql://", "postgres://")

TABLES = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.actions (
    id        BIGINT PRIMARY KEY,
    time      DOUBLE PRECISION NOT NULL,
    annotator TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    source    TEXT   NOT NULL DEFAULT 'human',
    class_id  BIGINT,
    name      TEXT,
    target    BIGINT,
    batch     BIGINT,
    token     TEXT UNIQUE
)""",
    """CREATE TABLE IF NOT EXISTS {s}.items (
    action_id  BIGINT NOT NULL REFERENCES {s}.actions(id),
    seq        INTEGER NOT NULL,
    item_id    TEXT   NOT NULL,
    confidence DOUBLE PRECISION
)""",
    "CREATE INDEX IF NOT EXISTS items_by_action ON {s}.items(action_id, seq)",
    """CREATE TABLE IF NOT EXISTS {s}.merged (
    action_id BIGINT NOT NULL REFERENCES {s}.actions(id),
    class_id  BIGINT NOT NULL
)""",
)


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL label store (a ``postgresql://`` URL)."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def split_url(url: str) -> tuple[str, str]:
    """``(libpq URL without our ``schema`` parameter, schema name)``; ValueError when the
    schema is missing or not a plain lower-case identifier."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = [v for k, v in query if k == "schema"]
    if not schema:
        raise ValueError(
            f"the label store URL {public_url(url)!r} names no schema: add ?schema=NAME (one "
            "schema per project; Workbench.open(folder, labels=URL) adds one for you)"
        )
    if not SCHEMA_NAME.match(schema[-1]):
        raise ValueError(
            f"schema {schema[-1]!r} in the label store URL is not a plain name: use lower-case "
            "letters, digits and _ (at most 63), starting with a letter or _"
        )
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), schema[-1]


def public_url(url: str) -> str:
    """The URL without its password: safe to show, log and store in the project."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{urllib.parse.quote(parts.username or '', safe='')}@" if parts.username
              else "") + host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def load_psycopg() -> Any:
    """The psycopg module, or LabelLogError saying which extra to install."""
    try:
        import psycopg
    except ImportError as e:  # an optional extra
        raise LabelLogError(
            "a PostgreSQL label store needs psycopg: pip install 'workbench[postgres]'"
        ) from e
    return psycopg


def select_actions(con: Any, s: str, after: int) -> list[Action]:
    """The actions with ``id > after`` in schema ``s`` (quoted), oldest first, with their
    items and merges (one snapshot: the caller's transaction)."""
    rows = con.execute(
        f"SELECT id, time, annotator, kind, source, class_id, name, target, batch "
        f"FROM {s}.actions WHERE id > %s ORDER BY id", (after,)).fetchall()
    if not rows:
        return []
    last = rows[-1][0]
    items: dict[int, tuple[list[str], list[float | None]]] = {}
    for aid, item, conf in con.execute(
            f"SELECT action_id, item_id, confidence FROM {s}.items WHERE action_id > %s "
            "AND action_id <= %s ORDER BY action_id, seq", (after, last)):
        ids, confs = items.setdefault(aid, ([], []))
        ids.append(item)
        confs.append(conf)
    merged: dict[int, list[int]] = {}
    for aid, cid in con.execute(
            f"SELECT action_id, class_id FROM {s}.merged WHERE action_id > %s "
            "AND action_id <= %s", (after, last)):
        merged.setdefault(aid, []).append(int(cid))
    out = []
    for aid, t, who, kind, source, cid, name, target, batch in rows:
        ids, confs = items.get(aid, ([], []))
        out.append(Action(
            id=aid, time=t, annotator=who, kind=kind, source=source, class_id=cid,
            name=name, target=target, items=tuple(ids), confidences=tuple(confs),
            merged=tuple(merged.get(aid, ())), batch=aid if batch is None else batch,
        ))
    return out
