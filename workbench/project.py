"""A project is a folder: items, the label log, vectors and caches.

Layout::

    PROJECT/
      workbench.json     format version, creation time, item kinds (human-readable)
      items.parquet      the item table, row order = the order of every array
      labels.sqlite      the label event log (WAL: recent labels may sit in labels.sqlite-wal)
                         or, for a team, a PostgreSQL store named in workbench.json
                         (:mod:`workbench.project_labels`)
      skipped.json       items left out at load time, with the reason
      vectors.npy        precomputed vectors, when the items came as vectors
      cache/             embeddings, index, graph, layout, thumbnails (safe to delete)

Everything is written atomically (temporary file, then rename), so a crash leaves the
previous version, never half a file. Opening the folder again restores everything.

Creating is all or nothing: the files are built in a hidden staging folder inside the
project folder and moved into place, ``workbench.json`` last. A folder without
``workbench.json`` is not a project; a create that was interrupted leaves its staging folder
behind, and the next create removes what it left before starting again.

Copying a project: ``labels.sqlite`` alone, copied while a kernel has the project open, can
miss every recent label (they wait in ``labels.sqlite-wal`` until SQLite folds them in).
Copy with ``workbench backup``, which takes a consistent snapshot; a copy without its label
log does not open (:class:`ProjectError` says which file is missing and what to do).

Here: :class:`Project` (the open folder) and :func:`demo_project`. The files' names and
their checks on opening are in :mod:`workbench.project_files`, the all-or-nothing create in
:mod:`workbench.project_create`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._config import PROJECT_FILE, PROJECT_FORMAT_VERSION, STAGING_PREFIX
from ._files import atomic_write, save_npy
from .items import LoadReport, demo_digits, digits_pixels
from .labels import LabelStore
from .labels.store import LabelLogError
from .project_create import IMPORT_ANNOTATOR as IMPORT_ANNOTATOR  # public names, as before
from .project_create import create_project_files
from .project_files import ITEMS_FILE as ITEMS_FILE
from .project_files import (
    LABELS_FILE,
    VECTORS_FILE,
    ProjectError,
    check_label_log,
    mirror,
    read_items,
    read_project_file,
    read_skipped,
    writable,
)
from .project_files import SKIPPED_FILE as SKIPPED_FILE
from .project_labels import LABELS_SETTING, open_team_labels

__all__ = ["Project", "ProjectError", "demo_project"]

log = logging.getLogger(__name__)


class Project:
    """An open project folder. Create one with :meth:`create`, reopen with :meth:`open`.

    Attributes
    ----------
    path : the folder.
    items : polars DataFrame of the items (id, source, kind, metadata).
    labels : :class:`~workbench.labels.LabelStore` over the items.
    skipped : :class:`~workbench.items.LoadReport` of items left out when created.
    read_only : True when opened read-only: nothing in the folder is created or changed,
        and a label change raises :class:`~workbench.labels.store.LabelLogError`.

    Opening checks every file it needs and raises :class:`ProjectError` naming the file and
    what to do, rather than starting an empty label log in place of a missing or damaged one.
    To copy a project, use ``workbench backup`` (see the module docstring).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        annotator: str | None = None,
        read_only: bool | None = None,
        labels: str | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        meta_file = self.path / PROJECT_FILE
        if not meta_file.is_file():
            raise ProjectError(
                f"{str(self.path)!r} is not a workbench project (no {PROJECT_FILE}); "
                "create one with Project.create(folder, items)"
            )
        self.meta: dict[str, Any] = read_project_file(meta_file)
        version = self.meta.get("format_version")
        if version != PROJECT_FORMAT_VERSION:
            raise ProjectError(
                f"project {str(self.path)!r} has format version {version}; this workbench "
                f"reads version {PROJECT_FORMAT_VERSION}"
            )
        self.read_only = not writable(self.path) if read_only is None else bool(read_only)
        self.items = read_items(self.path / ITEMS_FILE)
        self.skipped = LoadReport(read_skipped(self.path / SKIPPED_FILE))
        self._snapshot: tempfile.TemporaryDirectory[str] | None = None
        self._shadow_cache: tempfile.TemporaryDirectory[str] | None = None
        team = labels or self.meta.get(LABELS_SETTING)
        self.labels = (open_team_labels(self, team, self.items["id"].to_list(), annotator)
                       if team else self._open_labels(annotator))
        if not self.read_only:
            # A create killed after writing workbench.json, before removing its (by then
            # empty) staging folder: the project is complete, the folder is clutter.
            for stage in self.path.glob(f"{STAGING_PREFIX}*"):
                shutil.rmtree(stage, ignore_errors=True)

    def _open_labels(self, annotator: str | None) -> LabelStore:
        log_file = self.path / LABELS_FILE
        check_label_log(log_file)
        ids = self.items["id"].to_list()
        try:
            try:
                return LabelStore(log_file, ids, annotator=annotator, create=False,
                                  read_only=self.read_only)
            except LabelLogError:
                # SQLite reads a WAL database only beside its shared-memory file, which it
                # cannot create in a folder nobody may write (read-only media, a mount):
                # read a snapshot copy instead. Nothing can write there meanwhile.
                shm = self.path / f"{LABELS_FILE}-shm"
                if not self.read_only or os.access(self.path, os.W_OK) or shm.exists():
                    raise
                self._snapshot = tempfile.TemporaryDirectory(prefix="workbench-read-only-")
                copy = Path(self._snapshot.name) / LABELS_FILE
                for name in (f"{LABELS_FILE}-wal", LABELS_FILE):
                    if (self.path / name).exists():
                        shutil.copyfile(self.path / name, copy.with_name(name))
                return LabelStore(copy, ids, annotator=annotator, create=False, read_only=True)
        except (LabelLogError, sqlite3.DatabaseError, OSError) as e:
            raise ProjectError(
                f"cannot open the label log of project {str(self.path)!r}: {e}"
            ) from e

    # -- creating ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        items: pl.DataFrame,
        *,
        vectors: Any = None,
        check: bool = True,
        skipped: dict[str, str] | None = None,
        meta: dict[str, Any] | None = None,
        annotator: str | None = None,
    ) -> Project:
        """Make ``path`` a project holding ``items`` (from a loader in :mod:`workbench.items`).

        Parameters
        ----------
        items : item table; a ``label`` column is imported once into the label log as
            human labels by annotator "import" (kept as ``imported_label`` in the table).
        vectors : optional (N, D) precomputed vectors aligned with ``items``; finite, and
            no row all zeros (a zero vector has no direction: no neighbours, no map place).
        check : decode every image and leave out those that fail (listed in ``skipped``).
        skipped : items already left out by the caller (e.g. by embedding), with reasons.
        meta : extra JSON-able settings stored in ``workbench.json`` (e.g. the embedder).

        Refuses a folder that already holds a project (open it instead) so that nothing
        already saved is overwritten, and a folder holding project files without
        ``workbench.json`` that no create of ours left (an incomplete copy). All or
        nothing: killed at any point, the folder is not a project, and creating again
        starts afresh (nothing of the interrupted attempt is kept, labels included).
        """
        root = Path(path).expanduser().resolve()
        report = create_project_files(root, items, vectors=vectors, check=check,
                                      skipped=skipped, meta=meta)
        project = cls(root, annotator=annotator, read_only=False)
        project.skipped = report
        return project

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        annotator: str | None = None,
        read_only: bool | None = None,
        labels: str | None = None,
    ) -> Project:
        """Open an existing project folder.

        Parameters
        ----------
        annotator : name recorded on label actions; default ``$WORKBENCH_ANNOTATOR`` or
            the OS user.
        read_only : True opens without creating or changing any file (inspection,
            export); False opens for labelling; None (default) opens read-only exactly
            when the folder or its label log is not writable by this process.
        labels : a ``postgresql://`` URL: keep the labels there, for a team on several
            machines (see :mod:`workbench.project_labels`); remembered by the project.

        Raises
        ------
        ProjectError : not a project, or a file it needs is missing or damaged (the
            message names the file and what to do).
        """
        return cls(path, annotator=annotator, read_only=read_only, labels=labels)

    @classmethod
    def open_or_create(
        cls, path: str | os.PathLike[str], items: Any = None, **kw: Any
    ) -> Project:
        """Open ``path`` if it is a project, else create it from ``items`` (a table or a
        callable returning one, called only when needed)."""
        if (Path(path).expanduser() / PROJECT_FILE).exists():
            return cls(path, annotator=kw.get("annotator"))
        if items is None:
            raise ProjectError(f"{str(path)!r} is not a project and no items were given")
        return cls.create(path, items() if callable(items) else items, **kw)

    # -- contents ------------------------------------------------------------------------------

    @property
    def cache_dir(self) -> Path:
        """Folder for derived data (embeddings, index, graph, layout, thumbnails).

        ``PROJECT/cache``, created on first use. In a read-only project, a private temporary
        folder mirroring it instead (its files linked, so cached entries are reused): what
        is computed meanwhile goes there and vanishes on :meth:`close`.
        """
        d = self.path / "cache"
        if not self.read_only:
            d.mkdir(exist_ok=True)
            return d
        if self._shadow_cache is None:
            self._shadow_cache = tempfile.TemporaryDirectory(prefix="workbench-cache-")
            mirror(d, Path(self._shadow_cache.name))
        return Path(self._shadow_cache.name)

    @property
    def n(self) -> int:
        return self.items.height

    def vectors(self, *, mmap: bool = True) -> np.ndarray | None:
        """The precomputed (N, D) vectors (memory-mapped), or None when the items had none.

        Raises :class:`ProjectError` when ``vectors.npy`` is damaged or does not match the
        items, saying how to get the vectors back.
        """
        f = self.path / VECTORS_FILE
        if not f.exists():
            return None
        try:
            arr = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ProjectError(f"{f} is damaged ({e}); {self._vectors_hint()}") from e
        if arr.ndim != 2 or arr.shape[0] != self.n or not np.issubdtype(arr.dtype, np.number):
            raise ProjectError(
                f"{f} holds an array of shape {arr.shape} ({arr.dtype}) for {self.n} items; "
                f"{self._vectors_hint()}"
            )
        return arr

    def _vectors_hint(self) -> str:
        if "vector" in self.meta.get("kinds", []):
            return ("the vectors came from you: pass them again with "
                    "Workbench.open(PROJECT, vectors=...)")
        spec = (self.meta.get("embedder") or {}).get("spec") or "MODEL"
        return (
            f"re-embed the items with `workbench embed {self.path} --model {spec}`, which "
            "writes vectors.npy again (vectors already computed come from the cache)"
        )

    def set_setting(self, key: str, value: Any) -> None:
        """Store one JSON-able setting in ``workbench.json`` (rewritten whole, atomically)."""
        if self.read_only:
            raise ProjectError(f"project {str(self.path)!r} is open read-only")
        meta = {**read_project_file(self.path / PROJECT_FILE), key: value}
        atomic_write(self.path / PROJECT_FILE,
                     lambda p: Path(p).write_text(json.dumps(meta, indent=1) + "\n"))
        self.meta = meta

    def close(self) -> None:
        self.labels.close()
        for tmp in (self._snapshot, self._shadow_cache):
            if tmp is not None:
                tmp.cleanup()
        self._snapshot = self._shadow_cache = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Project({str(self.path)!r}, items={self.n}, classes={len(self.labels.classes)})"
        )


def demo_project(
    folder: str | os.PathLike[str], *, annotator: str | None = None
) -> Project:
    """Open, or create, the offline digits demo project in ``folder``.

    The one definition of the demo, used by ``Workbench.demo`` and ``workbench demo``:
    scikit-learn's 1,797 digits as PNGs under ``folder/data`` (true digit in ``truth``),
    with their pixels as vectors. A demo made before both agreed (no vectors) gets them.
    """
    folder = Path(folder).expanduser()
    if not (folder / PROJECT_FILE).exists():
        project = Project.create(
            folder, demo_digits(folder / "data"), vectors=digits_pixels(),
            meta={"demo": "digits"}, annotator=annotator,
        )
        return project
    project = Project.open(folder, annotator=annotator)
    if (
        not (project.path / VECTORS_FILE).exists()
        and not project.read_only
        and project.items["id"].to_list() == [f"digits/{i:04d}.png" for i in range(project.n)]
    ):
        pixels = digits_pixels()
        if pixels.shape[0] == project.n:
            log.info("adding the digits' pixel vectors to the demo project %s", project.path)
            save_npy(project.path / VECTORS_FILE, pixels)
    return project
