"""The entry points: :func:`export_project`, the one export path every caller ends in
(:meth:`Workbench.export <workbench.session.Workbench.export>`, ``workbench export``), and
the older one-format functions kept beside it (:func:`export_table`,
:func:`export_imagefolder`, :func:`to_hf_dataset`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any

import polars as pl

from .._config import EXPORT_CSV_SAFE, SPLIT_SEED
from .annotations import annotation_table, annotations_path
from .hf import hf_dataset, write_hf
from .imagefolder import write_imagefolder
from .metadata import metadata
from .options import (
    TABLE_FORMATS,
    ExportError,
    ExportWarning,
    check_include,
    format_for,
    warn_unused,
)
from .rows import labelled_table
from .table import write_table
from .target import check_target

__all__ = ["export_imagefolder", "export_project", "export_table", "to_hf_dataset"]


def export_project(
    project: Any,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
    estimate: Any = None,
    overwrite: bool = False,
    csv_safe: bool = EXPORT_CSV_SAFE,
    mode: str | None = None,
    split: float | None = None,
    seed: int | None = None,
    consensus: Any = None,
    annotations: bool = False,
    items: Collection[str] | None = None,
) -> Path:
    """Export the labels of ``project`` to ``path``; return the path written (resolved).

    Parameters
    ----------
    format : one of :data:`FORMATS`; default from the suffix (see :func:`format_for`).
    include, min_confidence, predictions : which rows, see :func:`labelled_table`.
    estimate : JSON-able accuracy estimate recorded in the metadata (None: ``null``).
    overwrite : replace an existing file, or an existing export folder. Default False.
    csv_safe : neutralise spreadsheet formulas in CSV/TSV cells. Default True.
    mode : ImageFolder only: ``"copy"`` (default), ``"symlink"`` or ``"hardlink"``.
    split : ImageFolder only: fraction of each class put in ``val/`` (stratified, seeded);
        None (default) for no split.
    seed : ImageFolder only: seed of the split; default ``SPLIT_SEED``.
    consensus : several annotators' consensus, one row per item (``Workbench.consensus()``:
        ``id``, ``consensus``, ``quality``, ``annotations``, ``agreement``); table formats
        gain the columns ``consensus``, ``consensus_quality``, ``annotations`` and
        ``agreement`` for each exported row.
    annotations : table formats: also write the long table of the team's labels beside it,
        ``<stem>.annotations.<suffix>`` in the same format, one row per annotation and per
        adjudication (columns ``id, annotator, label, source, time``; see
        :func:`~workbench.export.annotations.annotation_table`). Default False.
    items : optional item ids: export only these items' rows (a subset, e.g. a saved
        selection: ``Workbench.export(path, selection=name)``, ``workbench export
        --selection NAME``); the metadata's ``subset`` says how many ids were asked for.
        An id the project does not have is an :class:`ExportError`. Default None: all.

    Options that do nothing in the chosen combination raise an :class:`ExportWarning`.
    """
    fmt = format_for(path, format)
    check_include(include, min_confidence)
    warn_unused(fmt, include=include, min_confidence=min_confidence, predictions=predictions,
                csv_safe=csv_safe, mode=mode, split=split, seed=seed)
    if fmt == "imagefolder":
        mode = mode or "copy"
        if mode not in ("copy", "symlink", "hardlink"):
            raise ExportError(f"mode must be 'copy', 'symlink' or 'hardlink', not {mode!r}")
        if split is not None and not 0.0 < float(split) < 1.0:
            raise ExportError(f"split must be a fraction between 0 and 1, not {split}")
    if annotations and fmt not in TABLE_FORMATS:
        warnings.warn(f"the annotations table goes beside table exports only, not {fmt}",
                      ExportWarning, stacklevel=2)
    annotations = bool(annotations) and fmt in TABLE_FORMATS
    subset = None if items is None else _check_subset(project, items)
    target = check_target(path, project, fmt, overwrite=overwrite, annotations=annotations)
    rows = labelled_table(project, include=include, min_confidence=min_confidence,
                          predictions=predictions, items=subset)
    meta = metadata(project, rows, fmt=fmt, include=include, min_confidence=min_confidence,
                    predictions=predictions, estimate=estimate)
    if subset is not None:
        meta["subset"] = {"items": len(subset)}
    if consensus is not None and fmt not in TABLE_FORMATS:
        warnings.warn(f"consensus columns go into table exports only, not {fmt}",
                      ExportWarning, stacklevel=2)
    if fmt in TABLE_FORMATS:
        if consensus is not None:
            rows = rows.join(consensus.select(
                "id", "consensus", pl.col("quality").alias("consensus_quality"),
                "annotations", "agreement"), on="id", how="left")
        meta["csv_safe"] = bool(csv_safe) if fmt in ("csv", "tsv") else None
        beside = {}
        if annotations:
            long = annotation_table(project)
            if subset is not None:
                long = long.filter(pl.col("id").is_in(subset))
            beside[annotations_path(target)] = long
            meta["annotations"] = {"file": annotations_path(target).name, "rows": long.height}
        return write_table(rows, target, fmt, meta, overwrite=overwrite, csv_safe=csv_safe,
                           beside=beside)
    if fmt == "imagefolder":
        return write_imagefolder(project, rows, target, meta, overwrite=overwrite,
                                 mode=mode, split=split,
                                 seed=SPLIT_SEED if seed is None else int(seed),
                                 csv_safe=csv_safe)
    return write_hf(project, rows, target, meta, overwrite=overwrite)


def _check_subset(project: Any, items: Collection[str]) -> list[str]:
    """``items`` as a list of the project's item ids; ExportError naming an unknown one."""
    if isinstance(items, str):
        raise ExportError("items= takes a collection of item ids, not one string")
    ids = list(dict.fromkeys(str(i) for i in items))
    known = set(project.items["id"].to_list())
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ExportError(f"item id {unknown[0]!r} is not in the project ({len(unknown)} "
                          "unknown); export a subset of the project's own items")
    return ids


# -- the older entry points, kept: each is export_project with one format ----------------------


def export_table(
    project: Any,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
    overwrite: bool = False,
    csv_safe: bool = EXPORT_CSV_SAFE,
) -> Path:
    """Write the labelled items as Parquet, CSV, TSV or JSONL (``format`` default: the
    suffix); see :func:`export_project`."""
    fmt = format_for(path, format)
    if fmt not in TABLE_FORMATS:
        raise ExportError(f"export_table writes {TABLE_FORMATS}, not {fmt!r}")
    return export_project(project, path, format=fmt, include=include,
                          min_confidence=min_confidence, predictions=predictions,
                          overwrite=overwrite, csv_safe=csv_safe)


def export_imagefolder(
    project: Any,
    folder: str | os.PathLike[str],
    *,
    mode: str = "copy",
    split: float | None = None,
    seed: int | None = None,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
    overwrite: bool = False,
    csv_safe: bool = EXPORT_CSV_SAFE,
) -> Path:
    """Write ``folder/[train|val/]<class>/<file>`` for every labelled image item.

    Parameters
    ----------
    mode : ``"copy"`` (default), ``"symlink"`` or ``"hardlink"``.
    split : fraction of each class put in ``val/`` (stratified, seeded); None for no split.
    seed : seed of the split; default ``SPLIT_SEED``.

    Every class has a folder under ``train/`` and under ``val/``, empty ones included, so
    torchvision's ``ImageFolder(...).class_to_idx`` is the same for both (load a part
    with an empty class folder with ``allow_empty=True``). Folder names come from
    :func:`safe_folder_name`; if that would change their sorted order they are prefixed
    with the class id. ``labels.json`` lists ``{"id", "name", "folder"}`` per class,
    ``labels.csv`` every file with its label, ``workbench-export.json`` the metadata.
    """
    return export_project(project, folder, format="imagefolder", mode=mode, split=split,
                          seed=seed, include=include, min_confidence=min_confidence,
                          predictions=predictions, overwrite=overwrite, csv_safe=csv_safe)


def to_hf_dataset(
    project: Any,
    *,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
    images: bool = True,
) -> Any:
    """A Hugging Face ``datasets.Dataset`` (in memory) with a ``ClassLabel`` ``label``.

    ``ClassLabel`` names are the classes sorted by name. Image items get an ``image``
    column of type ``datasets.Image`` (when ``images``), text items a ``text`` column.
    Needs the optional ``datasets`` package. To write one to disk, use
    ``export_project(..., format="hf")``.
    """
    rows = labelled_table(project, include=include, min_confidence=min_confidence,
                          predictions=predictions)
    return hf_dataset(project, rows, images=images)
