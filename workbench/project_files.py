"""The files of a project folder: their names, and reading and checking each one when a
project opens.

Every reader raises :class:`ProjectError` naming the file and what to do (restore it from a
backup, copy it from the original), rather than letting a missing or damaged file pass for
an empty one; only the list of skipped items, a report and nothing more, is ignored when
damaged.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import polars as pl

from ._config import PROJECT_FORMAT_VERSION

__all__ = [
    "ITEMS_FILE",
    "LABELS_FILE",
    "LOG_COMPANIONS",
    "SKIPPED_FILE",
    "VECTORS_FILE",
    "ProjectError",
    "check_label_log",
    "mirror",
    "read_items",
    "read_project_file",
    "read_skipped",
    "writable",
]

log = logging.getLogger(__name__)

LABELS_FILE = "labels.sqlite"
ITEMS_FILE = "items.parquet"
SKIPPED_FILE = "skipped.json"
VECTORS_FILE = "vectors.npy"
#: The label log's WAL companions (SQLite's write-ahead log and its shared-memory index).
LOG_COMPANIONS = (f"{LABELS_FILE}-wal", f"{LABELS_FILE}-shm")
_SQLITE_MAGIC = b"SQLite format 3\x00"


class ProjectError(RuntimeError):
    """A folder that is not (or not yet, or no longer) a usable project."""


def read_project_file(meta_file: Path) -> dict[str, Any]:
    """The settings in ``workbench.json`` (a JSON object), or ProjectError."""
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"expected a JSON object, found {type(meta).__name__}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ProjectError(
            f"{meta_file} is damaged ({e}). Restore it from a backup (`workbench backup`), or "
            f'replace it with {{"format_version": {PROJECT_FORMAT_VERSION}}}: the items, '
            "labels and vectors are in the other files and are not affected"
        ) from e
    return meta


def read_items(f: Path) -> pl.DataFrame:
    """The item table (with an ``id`` column), or ProjectError."""
    try:
        items = pl.read_parquet(f)
    except Exception as e:  # polars raises several types for missing or malformed files
        raise ProjectError(
            f"the item table {f} is missing or damaged ({e}); restore it from a backup "
            "(`workbench backup`): without it the labels cannot be matched to items"
        ) from e
    if "id" not in items.columns:
        raise ProjectError(f"the item table {f} has no 'id' column; restore it from a backup")
    return items


def read_skipped(f: Path) -> dict[str, str]:
    """The items left out at creation, with reasons; empty when missing or damaged."""
    if not f.exists():
        return {}
    try:
        skipped = json.loads(f.read_text(encoding="utf-8"))
        if isinstance(skipped, dict):
            return skipped
        raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError, OSError) as e:
        # Only a report of what was left out at creation: losing it loses nothing else.
        log.warning("ignoring the damaged list of skipped items %s (%s)", f, e)
        return {}


def check_label_log(f: Path) -> None:
    """ProjectError unless ``f`` is a non-empty SQLite file (checked before SQLite, which
    would silently start an empty log in place of a missing one)."""
    restore = (
        "every label of the project lives in it. If this folder is a copy, copy "
        f"{LABELS_FILE} from the original too (`workbench backup` copies a project "
        "safely, even while it is open); else restore it from a backup. The other files "
        "are intact: do not recreate the project over them"
    )
    if not f.exists():
        raise ProjectError(f"the label log {f} is missing: {restore}")
    if not f.is_file():
        raise ProjectError(f"the label log {f} is not a file: {restore}")
    with open(f, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if not head:
        raise ProjectError(f"the label log {f} is empty (zero bytes): {restore}")
    if head != _SQLITE_MAGIC:
        raise ProjectError(f"the label log {f} is not an SQLite database: {restore}")


def mirror(source: Path, target: Path) -> None:
    """Recreate ``source``'s folders under ``target`` with symbolic links to its files.

    Writers replace a file by renaming over its name, which replaces the link, never the
    linked file; thumbnails (many, cheap to remake) are left out.
    """
    if not source.is_dir():
        return
    for entry in source.iterdir():
        if ".sqlite" in entry.name:  # SQLite would write through a link: left to rebuild
            continue
        try:
            if entry.is_dir():
                if entry.name != "thumbnails":
                    (target / entry.name).mkdir()
                    mirror(entry, target / entry.name)
            else:
                (target / entry.name).symlink_to(entry)
        except OSError:  # no links here (some file systems): that entry is rebuilt instead
            continue


def writable(root: Path) -> bool:
    """Whether this process may write the folder and the label log (and its companions)."""
    files = [root / LABELS_FILE, *(root / c for c in LOG_COMPANIONS)]
    return os.access(root, os.W_OK) and all(os.access(f, os.W_OK) for f in files if f.exists())
