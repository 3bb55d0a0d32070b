"""Where a project's labels live: its own SQLite file (the default, one machine), or a
PostgreSQL label store shared by a team on several machines.

``Workbench.open(folder, labels="postgresql://user@host/db")`` (or ``workbench labels FOLDER
URL``) moves a project to PostgreSQL: its labels so far are copied into the store when that
is empty, and the URL, without any password, is kept in ``workbench.json`` so that every
later open (the notebook, the CLI, another machine with a copy of the folder) finds it. Each
project gets its own schema in the database, named from the project (the same on every
copy), unless the URL names one (``?schema=NAME``).
"""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path
from typing import Any

from .labels import LabelStore
from .labels.postgres import is_postgres_url, public_url, split_url
from .labels.store import EventLog, LabelLogError
from .project_files import LABELS_FILE, ProjectError

__all__ = ["LABELS_SETTING", "open_team_labels", "team_url"]

#: The key of ``workbench.json`` that names a project's PostgreSQL label store.
LABELS_SETTING = "labels"


def team_url(url: str, meta: dict[str, Any]) -> str:
    """``url`` with a ``schema`` parameter: the one it names, else this project's own
    (``workbench_`` and a digest of the project's creation stamp, the same on every copy)."""
    try:
        split_url(url)
        return url
    except ValueError as e:
        if "names no schema" not in str(e):
            raise
    stamp = repr(meta.get("created", "")).encode()
    schema = f"workbench_{hashlib.sha1(stamp).hexdigest()[:12]}"
    parts = urllib.parse.urlsplit(url)
    query = f"{parts.query}&schema={schema}" if parts.query else f"schema={schema}"
    return urllib.parse.urlunsplit(parts._replace(query=query))


def open_team_labels(project: Any, url: str, ids: list[str], annotator: str | None
                     ) -> LabelStore:
    """The project's labels on the PostgreSQL store ``url``: created (and filled with the
    labels of the project's SQLite file) when the store is empty, remembered in
    ``workbench.json`` when the project is writable."""
    if not is_postgres_url(url):
        raise ProjectError(f"labels={url!r} is not a postgresql:// URL")
    try:
        url = team_url(url, project.meta)
        store = LabelStore(url, ids, annotator=annotator, create=not project.read_only,
                           read_only=project.read_only)
    except (LabelLogError, ValueError) as e:
        raise ProjectError(
            f"cannot open the label store of project {str(project.path)!r}: {e}") from e
    try:
        if not project.read_only:
            _move_local_labels(project.path / LABELS_FILE, store)
            if project.meta.get(LABELS_SETTING) != public_url(url):
                project.set_setting(LABELS_SETTING, public_url(url))
    except BaseException:
        store.close()
        raise
    return store


def _move_local_labels(local: Path, store: LabelStore) -> None:
    """Copy the labels of the project's SQLite log into an empty PostgreSQL store (the
    file stays as it was: a snapshot of the labels before the move)."""
    if not local.is_file() or store.log.last_id():
        return
    with EventLog(local, create=False, read_only=True) as old:
        actions = old.read()
    if actions:
        try:
            store.log.import_actions(actions)
        except LabelLogError:
            if not store.log.last_id():
                raise  # else another machine moved the same labels first
        store.refresh()
