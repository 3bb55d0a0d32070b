"""Creating a project, all or nothing.

The files are built in a hidden staging folder inside the project folder and moved into
place, ``workbench.json`` last. A folder without ``workbench.json`` is not a project; a create
that was interrupted leaves its staging folder behind, and the next create removes what it
left before starting again. Two creates in one folder at once are refused (a lock).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._arrays import ItemError, as_vectors, check_nonzero_rows
from ._config import PROJECT_FILE, PROJECT_FORMAT_VERSION, STAGING_PREFIX
from ._files import atomic_write, fsync_dir, save_npy
from .items import LoadReport, check_images, validate_items
from .labels import LabelStore
from .project_files import (
    ITEMS_FILE,
    LABELS_FILE,
    LOG_COMPANIONS,
    SKIPPED_FILE,
    VECTORS_FILE,
    ProjectError,
)

__all__ = ["IMPORT_ANNOTATOR", "PARTS", "create_project_files"]

log = logging.getLogger(__name__)

IMPORT_ANNOTATOR = "import"
#: The files a create writes besides workbench.json; with the log's WAL companions, the
#: files an interrupted create may have left in the folder.
PARTS = (ITEMS_FILE, SKIPPED_FILE, VECTORS_FILE, LABELS_FILE)


def create_project_files(
    root: Path,
    items: pl.DataFrame,
    *,
    vectors: Any = None,
    check: bool = True,
    skipped: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
) -> LoadReport:
    """Write the files of a new project into the folder ``root`` (resolved), all or
    nothing; returns the report of the items left out. The checks and the parameters are
    those of :meth:`Project.create <workbench.project.Project.create>`, which opens the
    project this makes."""
    _refuse_existing(root)
    items = validate_items(items)
    arr = None
    if vectors is not None:
        arr = as_vectors(vectors)
        if arr.shape[0] != items.height:
            raise ItemError(
                f"{arr.shape[0]} vectors for {items.height} items; give one per item"
            )
    report = LoadReport(dict(skipped or {}))
    if check and (items["kind"] == "image").any():
        before = items["id"].to_list()
        items, found = check_images(items)
        report.skipped.update(found.skipped)
        if arr is not None and found:
            keep = np.isin(np.array(before, dtype=object),
                           np.array(items["id"].to_list(), dtype=object))
            arr = arr[keep]
        if items.height == 0:
            raise ItemError(f"no readable images among the items:\n{report}")
    if arr is not None:
        check_nonzero_rows(arr, items["id"].to_list())
    labels = items["label"] if "label" in items.columns else None
    if labels is not None:
        items = items.rename({"label": "imported_label"})
    meta = {
        "format_version": PROJECT_FORMAT_VERSION,
        "created": time.time(),
        "kinds": sorted(set(items["kind"].to_list())),
        "n_items": items.height,
        **(meta or {}),
    }
    root.mkdir(parents=True, exist_ok=True)
    with _creating(root) as stage:
        atomic_write(stage / ITEMS_FILE, lambda p: items.write_parquet(p))
        atomic_write(
            stage / SKIPPED_FILE,
            lambda p: Path(p).write_text(json.dumps(report.skipped, indent=1),
                                         encoding="utf-8"),
        )
        if arr is not None:
            save_npy(stage / VECTORS_FILE, arr)
        store = LabelStore(stage / LABELS_FILE, items["id"].to_list())
        try:
            if labels is not None:
                _import_labels(store, items["id"].to_list(), labels.to_list())
        finally:
            store.close()
        _move_into_place(stage, root)
        # The marker file goes last: until it exists the folder is not a project, and
        # the staging folder (removed after it) tells the next create what to clear.
        atomic_write(
            root / PROJECT_FILE,
            lambda p: Path(p).write_text(json.dumps(meta, indent=1), encoding="utf-8"),
        )
    (root / "cache").mkdir(exist_ok=True)
    return report


def _refuse_existing(root: Path) -> None:
    if (root / PROJECT_FILE).exists():
        raise ProjectError(
            f"{str(root)!r} already holds a project; open it with Project.open(path) "
            "or choose another folder"
        )


@contextmanager
def _creating(root: Path) -> Iterator[Path]:
    """A fresh staging folder inside ``root``, with ``root`` locked against other creates.

    Remains of an interrupted create (recognised by its staging folder) are removed first.
    On an exception the staging folder is removed, unless files were already moved out of
    it (it then marks them for the next create to clear).
    """
    with _create_lock(root):
        _refuse_existing(root)
        _clear_interrupted_create(root)
        stage = root / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        stage.mkdir()
        try:
            yield stage
        except BaseException:
            if not any((root / p).exists() for p in (*PARTS, *LOG_COMPANIONS)):
                shutil.rmtree(stage, ignore_errors=True)
            raise
        shutil.rmtree(stage, ignore_errors=True)
        fsync_dir(root)


@contextmanager
def _create_lock(root: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on folders; creates are rarely concurrent
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ProjectError(
                f"another process is creating a project in {str(root)!r}; wait for it to "
                "finish, then open the project"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _clear_interrupted_create(root: Path) -> None:
    stages = sorted(root.glob(f"{STAGING_PREFIX}*"))
    leftovers = [root / p for p in (*PARTS, *LOG_COMPANIONS) if (root / p).exists()]
    if not stages:
        if leftovers:
            names = ", ".join(f.name for f in leftovers)
            raise ProjectError(
                f"{str(root)!r} holds {names} but no {PROJECT_FILE}: an incomplete copy of a "
                "project, or the remains of a create interrupted by an older workbench. If it "
                "is a copy, copy the whole project again (`workbench backup` copies one "
                f"safely); otherwise these files are safe to delete: delete {names} and "
                "create the project again"
            )
        return
    for f in [*leftovers, *root.glob(f".{PROJECT_FILE}.*.tmp")]:
        f.unlink(missing_ok=True)
    for s in stages:
        shutil.rmtree(s, ignore_errors=True)
    log.warning(
        "removed the remains of an interrupted project creation in %s (%s); creating afresh",
        root, ", ".join(f.name for f in leftovers) or "staging folder only",
    )


def _move_into_place(stage: Path, root: Path) -> None:
    # The log's WAL companions (if SQLite left any) go before the log itself, so that the
    # log is never in place without the recent writes it depends on.
    order = [*LOG_COMPANIONS, ITEMS_FILE, SKIPPED_FILE, VECTORS_FILE, LABELS_FILE]
    for name in order:
        if (stage / name).exists():
            os.replace(stage / name, root / name)
    fsync_dir(root)


def _import_labels(store: LabelStore, ids: list[str], labels: list[str | None]) -> None:
    by_label: dict[str, list[str]] = {}
    for i, lab in zip(ids, labels):
        if lab is not None and lab != "":
            by_label.setdefault(lab, []).append(i)
    for lab in sorted(by_label):
        store.log.append("create_class", name=lab, annotator=IMPORT_ANNOTATOR)
        store.refresh()
        store.log.append(
            "assign", class_id=store.class_id(lab), items=by_label[lab],
            annotator=IMPORT_ANNOTATOR,
        )
    store.refresh()
