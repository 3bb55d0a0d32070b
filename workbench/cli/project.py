"""The commands on a project as a whole: ``info`` (a summary, read-only), ``demo`` (create or
open the digits demo), ``backup`` (a consistent copy, labels through SQLite's backup API) and
``labels`` (where the labels live: the project's SQLite file or a team's PostgreSQL store).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["CommandError", "add_backup_parser", "add_demo_parser", "add_info_parser",
           "add_labels_parser", "backup_project"]

#: Files of a project copied as they are by ``backup`` (each is replaced atomically, never
#: edited in place); the label log goes through SQLite's backup API instead.
_PROJECT_FILES = ("workbench.json", "items.parquet", "skipped.json", "vectors.npy")


class CommandError(RuntimeError):
    """A command that cannot run as asked; printed as one line."""


# -- info ----------------------------------------------------------------------------------------


def _cmd_info(args: argparse.Namespace) -> int:
    from ..labels import effective_labels
    from ..labels.effective import ACCEPTED, HUMAN
    from ..project import Project

    # Read-write but never written: SQLite removes its -wal/-shm on close (a mode=ro open
    # leaves them behind), so info creates no file in the project.
    with Project.open(args.project) as p:
        t = p.labels.table()
        eff = effective_labels(p.labels.state)
        print(p)
        print(f"  kinds: {', '.join(p.meta.get('kinds', []))}")
        embedder = (p.meta.get("embedder") or {}).get("name")
        if embedder:
            print(f"  embedder: {embedder}")
        print(f"  vectors: {'yes' if (p.path / 'vectors.npy').is_file() else 'none yet'}")
        print(f"  labelled (human): {int((eff.layer == HUMAN).sum())}")
        print(f"  accepted machine labels: {int((eff.layer == ACCEPTED).sum())}")
        for name, count in t.group_by("label").len().sort("label").iter_rows():
            if name is not None:
                print(f"  {name!r}: {count}")
        if p.skipped:
            print(f"  {p.skipped}")
    return 0


def add_info_parser(sub: Any) -> None:
    """Register ``info`` on an ``argparse`` subparsers object."""
    p = sub.add_parser("info", help="summarise a project folder (read-only)")
    p.add_argument("project", help="the project folder")
    p.set_defaults(func=_cmd_info)


# -- demo ----------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..project import demo_project

    p = demo_project(Path(args.folder))  # the same project Workbench.demo makes and opens
    print(p)
    p.close()
    return 0


def add_demo_parser(sub: Any) -> None:
    """Register ``demo`` on an ``argparse`` subparsers object."""
    p = sub.add_parser("demo", help="create (or open) the offline digits demo project")
    p.add_argument("folder", help="folder of the demo project (created if missing)")
    p.set_defaults(func=_cmd_demo)


# -- backup --------------------------------------------------------------------------------------


def backup_project(project: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy a project folder consistently to ``dest`` (new or empty; outside any project).

    The item table, metadata, skipped list and vectors are copied as files (each is only
    ever replaced atomically); the label log is copied with SQLite's online backup API, so
    labels written meanwhile are either wholly in the copy or not at all. The cache is
    left out (derived data, rebuilt on open). Written to a temporary folder beside
    ``dest`` and renamed at the end. Returns the resolved ``dest``.
    """
    from .._config import PROJECT_FILE

    src = Path(project).expanduser().resolve()
    if not (src / PROJECT_FILE).is_file():
        raise CommandError(f"{str(src)!r} is not a workbench project (no {PROJECT_FILE})")
    target = Path(dest).expanduser().resolve()
    for folder in (target, *target.parents):
        if folder == src or (folder / PROJECT_FILE).is_file():
            raise CommandError(
                f"refusing to back up into {str(target)!r}: it is inside the project "
                f"{str(folder)!r}; choose a folder outside any project"
            )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CommandError(
            f"{str(target)!r} already exists and is not an empty folder; choose a new folder"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # A folder renamed into place whole: atomic_write writes single files only.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        tmp.mkdir()
        for name in _PROJECT_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        team = _backup_team_labels(src, tmp)
        if not team:
            _backup_sqlite(src / "labels.sqlite", tmp / "labels.sqlite")
        (tmp / "cache").mkdir()
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _backup_team_labels(src: Path, tmp: Path) -> bool:
    """A project whose labels live on PostgreSQL: its copy gets every label in its own
    ``labels.sqlite`` and no URL, so it opens on its own, as it was. False otherwise."""
    import json

    from .._config import PROJECT_FILE
    from ..labels.postgres import PostgresLog
    from ..project_labels import LABELS_SETTING

    meta = json.loads((tmp / PROJECT_FILE).read_text(encoding="utf-8"))
    url = meta.pop(LABELS_SETTING, None)
    if not url:
        return False
    with PostgresLog(url, create=False, read_only=True) as log:
        log.backup(tmp / "labels.sqlite")
    (tmp / PROJECT_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return True


def _backup_sqlite(src: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API)."""
    try:
        from ..labels.store import EventLog

        backup = getattr(EventLog, "backup", None)
    except ImportError:  # pragma: no cover
        backup = None
    if backup is not None:
        log = EventLog(src, create=False)  # a missing log is an error, never a new file
        try:
            log.backup(dest)
        finally:
            log.close()
        return
    source = sqlite3.connect(src)
    try:
        copy = sqlite3.connect(dest)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()


def _cmd_backup(args: argparse.Namespace) -> int:
    out = backup_project(args.project, args.dest)
    print(f"backed up {args.project} to {out}")
    return 0


def add_backup_parser(sub: Any) -> None:
    """Register ``backup`` on an ``argparse`` subparsers object."""
    p = sub.add_parser("backup", help="copy a project consistently (labels via SQLite backup)")
    p.add_argument("project", help="the project folder")
    p.add_argument("dest", help="new or empty folder outside any project")
    p.set_defaults(func=_cmd_backup)


# -- labels --------------------------------------------------------------------------------------


def _cmd_labels(args: argparse.Namespace) -> int:
    from ..project import Project

    with Project.open(args.project, labels=args.url, read_only=False if args.url else None) as p:
        where = p.labels.log.path
        n = int((p.labels.state.human >= 0).sum())
        moved = "now live in" if args.url else "live in"
        print(f"the labels of {p.path} ({n:,} labelled items) {moved} {where}")
    return 0


def add_labels_parser(sub: Any) -> None:
    """Register ``labels`` on an ``argparse`` subparsers object."""
    p = sub.add_parser(
        "labels", help="say where a project's labels live, or move them to a team's "
                       "PostgreSQL store (postgresql://user@host/db[?schema=NAME])")
    p.add_argument("project", help="the project folder")
    p.add_argument("url", nargs="?", help="a postgresql:// URL: keep the labels there from now "
                   "on (the labels so far are copied in when the store is empty)")
    p.set_defaults(func=_cmd_labels)
