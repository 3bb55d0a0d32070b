"""A project is a folder: items, the label log, vectors and caches.

Layout::

    PROJECT/
      workbench.json     format version, creation time, item kinds (human-readable)
      items.parquet      the item table, row order = the order of every array
      labels.sqlite      the label event log (WAL: recent labels may sit in labels.sqlite-wal)
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
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._config import PROJECT_FILE, PROJECT_FORMAT_VERSION, STAGING_PREFIX
from ._files import atomic_write, fsync_dir, save_npy
from .items import (
    ItemError,
    LoadReport,
    as_vectors,
    check_images,
    check_nonzero_rows,
    demo_digits,
    digits_pixels,
    validate_items,
)
from .labels import LabelStore
from .labels.store import LabelLogError

__all__ = ["Project", "ProjectError", "demo_project"]

log = logging.getLogger(__name__)

IMPORT_ANNOTATOR = "import"
LABELS_FILE = "labels.sqlite"
ITEMS_FILE = "items.parquet"
SKIPPED_FILE = "skipped.json"
VECTORS_FILE = "vectors.npy"
#: The files a create writes besides workbench.json; with the log's WAL companions, the
#: files an interrupted create may have left in the folder.
_PARTS = (ITEMS_FILE, SKIPPED_FILE, VECTORS_FILE, LABELS_FILE)
_LOG_COMPANIONS = (f"{LABELS_FILE}-wal", f"{LABELS_FILE}-shm")
_SQLITE_MAGIC = b"SQLite format 3\x00"


class ProjectError(RuntimeError):
    """A folder that is not (or not yet, or no longer) a usable project."""


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
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        meta_file = self.path / PROJECT_FILE
        if not meta_file.is_file():
            raise ProjectError(
                f"{str(self.path)!r} is not a workbench project (no {PROJECT_FILE}); "
                "create one with Project.create(folder, items)"
            )
        self.meta: dict[str, Any] = _read_project_file(meta_file)
        version = self.meta.get("format_version")
        if version != PROJECT_FORMAT_VERSION:
            raise ProjectError(
                f"project {str(self.path)!r} has format version {version}; this workbench "
                f"reads version {PROJECT_FORMAT_VERSION}"
            )
        self.read_only = not _writable(self.path) if read_only is None else bool(read_only)
        self.items = _read_items(self.path / ITEMS_FILE)
        self.skipped = LoadReport(_read_skipped(self.path / SKIPPED_FILE))
        self._snapshot: tempfile.TemporaryDirectory[str] | None = None
        self._shadow_cache: tempfile.TemporaryDirectory[str] | None = None
        self.labels = self._open_labels(annotator)
        if not self.read_only:
            # A create killed after writing workbench.json, before removing its (by then
            # empty) staging folder: the project is complete, the folder is clutter.
            for stage in self.path.glob(f"{STAGING_PREFIX}*"):
                shutil.rmtree(stage, ignore_errors=True)

    def _open_labels(self, annotator: str | None) -> LabelStore:
        log_file = self.path / LABELS_FILE
        _check_label_log(log_file)
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
    ) -> Project:
        """Open an existing project folder.

        Parameters
        ----------
        annotator : name recorded on label actions; default ``$WORKBENCH_ANNOTATOR`` or
            the OS user.
        read_only : True opens without creating or changing any file (inspection,
            export); False opens for labelling; None (default) opens read-only exactly
            when the folder or its label log is not writable by this process.

        Raises
        ------
        ProjectError : not a project, or a file it needs is missing or damaged (the
            message names the file and what to do).
        """
        return cls(path, annotator=annotator, read_only=read_only)

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
            _mirror(d, Path(self._shadow_cache.name))
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


# -- opening ---------------------------------------------------------------------------------


def _read_project_file(meta_file: Path) -> dict[str, Any]:
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


def _read_items(f: Path) -> pl.DataFrame:
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


def _read_skipped(f: Path) -> dict[str, str]:
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


def _check_label_log(f: Path) -> None:
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


def _mirror(source: Path, target: Path) -> None:
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
                    _mirror(entry, target / entry.name)
            else:
                (target / entry.name).symlink_to(entry)
        except OSError:  # no links here (some file systems): that entry is rebuilt instead
            continue


def _writable(root: Path) -> bool:
    """Whether this process may write the folder and the label log (and its companions)."""
    files = [root / LABELS_FILE, *(root / c for c in _LOG_COMPANIONS)]
    return os.access(root, os.W_OK) and all(os.access(f, os.W_OK) for f in files if f.exists())


# -- creating --------------------------------------------------------------------------------


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
            if not any((root / p).exists() for p in (*_PARTS, *_LOG_COMPANIONS)):
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
    leftovers = [root / p for p in (*_PARTS, *_LOG_COMPANIONS) if (root / p).exists()]
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
    order = [*_LOG_COMPANIONS, ITEMS_FILE, SKIPPED_FILE, VECTORS_FILE, LABELS_FILE]
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
