"""A project is a folder: items, the label log, vectors and caches.

Layout::

    PROJECT/
      workbench.json     format version, creation time, item kinds (human-readable)
      items.parquet      the item table, row order = the order of every array
      labels.sqlite      the label event log (WAL)
      skipped.json       items left out at load time, with the reason
      vectors.npy        precomputed vectors, when the items came as vectors
      cache/             embeddings, index, graph, layout, thumbnails (safe to delete)

Everything is written atomically (temporary file, then rename), so a crash leaves the
previous version, never half a file. Opening the folder again restores everything.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._config import PROJECT_FILE, PROJECT_FORMAT_VERSION
from .items import ItemError, LoadReport, as_vectors, check_images, validate_items
from .labels import LabelStore

__all__ = ["Project", "ProjectError"]

IMPORT_ANNOTATOR = "import"


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
    """

    def __init__(self, path: str | os.PathLike[str], *, annotator: str | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        meta_file = self.path / PROJECT_FILE
        if not meta_file.is_file():
            raise ProjectError(
                f"{str(self.path)!r} is not a workbench project (no {PROJECT_FILE}); "
                "create one with Project.create(folder, items)"
            )
        self.meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        version = self.meta.get("format_version")
        if version != PROJECT_FORMAT_VERSION:
            raise ProjectError(
                f"project {str(self.path)!r} has format version {version}; this workbench "
                f"reads version {PROJECT_FORMAT_VERSION}"
            )
        self.items = pl.read_parquet(self.path / "items.parquet")
        skipped_file = self.path / "skipped.json"
        self.skipped = LoadReport(
            json.loads(skipped_file.read_text(encoding="utf-8")) if skipped_file.exists() else {}
        )
        self.labels = LabelStore(
            self.path / "labels.sqlite", self.items["id"].to_list(), annotator=annotator
        )

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
        vectors : optional (N, D) precomputed vectors aligned with ``items``.
        check : decode every image and leave out those that fail (listed in ``skipped``).
        skipped : items already left out by the caller (e.g. by embedding), with reasons.
        meta : extra JSON-able settings stored in ``workbench.json`` (e.g. the embedder).

        Refuses a folder that already holds a project (open it instead) so that nothing
        already saved is overwritten.
        """
        root = Path(path).expanduser().resolve()
        if (root / PROJECT_FILE).exists():
            raise ProjectError(
                f"{str(root)!r} already holds a project; open it with Project.open(path) "
                "or choose another folder"
            )
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
        root.mkdir(parents=True, exist_ok=True)
        (root / "cache").mkdir(exist_ok=True)
        labels = items["label"] if "label" in items.columns else None
        if labels is not None:
            items = items.rename({"label": "imported_label"})
        _atomic_write(root / "items.parquet", lambda p: items.write_parquet(p))
        _atomic_write(
            root / "skipped.json",
            lambda p: Path(p).write_text(json.dumps(report.skipped, indent=1), encoding="utf-8"),
        )
        if arr is not None:
            _atomic_write(root / "vectors.npy", lambda p: _save_npy(p, arr))
        kinds = sorted(set(items["kind"].to_list()))
        meta = {
            "format_version": PROJECT_FORMAT_VERSION,
            "created": time.time(),
            "kinds": kinds,
            "n_items": items.height,
            **(meta or {}),
        }
        # The marker file goes last: a folder without it is not a project, so a crash
        # during creation leaves something `create` can simply be run on again.
        store = LabelStore(root / "labels.sqlite", items["id"].to_list())
        try:
            if labels is not None:
                _import_labels(store, items["id"].to_list(), labels.to_list())
        finally:
            store.close()
        _atomic_write(
            root / PROJECT_FILE,
            lambda p: Path(p).write_text(json.dumps(meta, indent=1), encoding="utf-8"),
        )
        project = cls(root, annotator=annotator)
        project.skipped = report
        return project

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, annotator: str | None = None) -> Project:
        """Open an existing project folder."""
        return cls(path, annotator=annotator)

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
        """Folder for derived data (embeddings, index, graph, layout, thumbnails)."""
        d = self.path / "cache"
        d.mkdir(exist_ok=True)
        return d

    @property
    def n(self) -> int:
        return self.items.height

    def vectors(self, *, mmap: bool = True) -> np.ndarray | None:
        """The precomputed vectors (memory-mapped), or None when the items had none."""
        f = self.path / "vectors.npy"
        if not f.exists():
            return None
        return np.load(f, mmap_mode="r" if mmap else None)

    def close(self) -> None:
        self.labels.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Project({str(self.path)!r}, items={self.n}, classes={len(self.labels.classes)})"
        )


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


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy"
        np.save(f, arr)


def _atomic_write(target: Path, write: Any) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
