"""Exporting labels as datasets other tools read.

One path for every caller: :meth:`Workbench.export <workbench.session.Workbench.export>`
and ``workbench export`` both end in :func:`export_project`, which takes its rows from
:func:`labelled_table` (itself :func:`~workbench.labels.effective_labels`: human, else
accepted machine label, else live prediction).

Formats
-------
``parquet``, ``csv``, ``tsv``, ``jsonl`` (one row per item, columns :data:`TABLE_COLUMNS`),
``imagefolder`` (``folder/[train|val/]<class>/<file>``, copies or links) and ``hf`` (a
Hugging Face dataset saved with ``save_to_disk``, ``label`` a ``ClassLabel``). A table's
format follows the file suffix (``.parquet``/``.pq``, ``.csv``, ``.tsv``, ``.jsonl``/
``.ndjson``) unless ``format`` says otherwise; folders need ``format``.

Guarantees
----------
* Nothing is written inside a project folder (any folder holding ``workbench.json``, the
  exported project's included; symlinks resolved), so an export can never overwrite the
  label log.
* An existing file or non-empty folder is refused unless ``overwrite=True``; a non-empty
  folder is replaced only if it is itself a workbench export.
* Everything is written under a temporary name unique to the writer (pid + random) in the
  target's folder and renamed into place at the end; a failed export leaves nothing.
* One class order: classes sorted by name (Python ``sorted`` on the strings); ``label_id``,
  the ImageFolder indices (torchvision's ``class_to_idx``) and the ``ClassLabel`` names
  all follow it, and the mapping is written alongside.
* Metadata beside every export: ``out.csv.meta.json`` next to a table (the whole file name
  plus :data:`~workbench._config.EXPORT_META_SUFFIX`), ``workbench-export.json`` inside a
  folder (and the ``hf`` dataset's description): project, UTC export time, options,
  counts per layer, classes, and the session's accuracy estimate when it has one.
* Times are UTC: Parquet ``timestamp[us, UTC]``, ISO-8601 strings ending in ``Z`` elsewhere.
* CSV/TSV cells (and ImageFolder's ``labels.csv``) starting with ``= + - @``, tab or CR get
  a leading ``'`` so a spreadsheet never runs them as formulas (``csv_safe=False`` to
  keep them verbatim). Parquet and JSONL are never altered.

Label names are data and may hold any character; as folder names they go through
:func:`safe_folder_name`, and every path is checked to stay inside the export folder.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import unicodedata
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._config import (
    EXPORT_CSV_SAFE,
    EXPORT_FOLDER_META,
    EXPORT_META_SUFFIX,
    PROJECT_FILE,
    SPLIT_SEED,
)
from .labels.effective import ACCEPTED, HUMAN, LAYERS, effective_labels

__all__ = [
    "FORMATS",
    "TABLE_COLUMNS",
    "ExportError",
    "ExportWarning",
    "class_order",
    "export_imagefolder",
    "export_project",
    "export_table",
    "format_for",
    "labelled_table",
    "safe_folder_name",
    "to_hf_dataset",
]

TABLE_COLUMNS = ("id", "source", "label", "label_id", "label_source", "layer", "confidence",
                 "annotator", "time")
TABLE_FORMATS = ("parquet", "csv", "tsv", "jsonl")
FOLDER_FORMATS = ("imagefolder", "hf")
FORMATS = TABLE_FORMATS + FOLDER_FORMATS
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
             ".jsonl": "jsonl", ".ndjson": "jsonl"}
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
_FORMULA = r"^[=+\-@\t\r]"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 200


class ExportError(ValueError):
    """An export that cannot be written as asked; the message says what to change."""


class ExportWarning(UserWarning):
    """An option that does nothing in this combination (it is ignored, not an error)."""


# -- rows ----------------------------------------------------------------------------------------


def labelled_table(
    project: Any,
    *,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
) -> pl.DataFrame:
    """The rows an export writes: one per labelled item, in item order.

    Parameters
    ----------
    project : a :class:`~workbench.project.Project`.
    include : ``"human"`` (default: human labels only) or ``"all"`` (plus accepted machine
        labels and live predictions).
    min_confidence : with ``include="all"``, machine labels (accepted or predicted) below it
        are left out; human labels are always kept. Default 0.
    predictions : optional live predictions (``.label`` (N,) class ids, ``.confidence``
        (N,), ``.source`` str), used with ``include="all"`` for items with neither a human
        nor an accepted machine label.

    Returns
    -------
    polars DataFrame with columns :data:`TABLE_COLUMNS`: ``label_id`` numbers the classes
    present, sorted by name; ``layer`` is ``human``, ``accepted`` or ``predicted``;
    ``confidence`` is 1.0 for human labels; ``annotator`` and ``time`` (UTC) are those of
    the action that set the label (null for live predictions).
    """
    _check_include(include, min_confidence)
    store = project.labels
    store.refresh()
    try:
        eff = effective_labels(store.state, predictions if include == "all" else None)
    except ValueError as e:
        raise ExportError(str(e)) from e
    keep = eff.layer == HUMAN
    if include == "all":
        keep |= (eff.layer >= ACCEPTED) & (eff.confidence >= float(min_confidence))
    idx = np.flatnonzero(keep)
    labels = pl.Series(eff.label[idx], dtype=pl.Int64).replace_strict(
        dict(store.state.classes), return_dtype=pl.String).cast(pl.String)  # 0 classes
    order = {name: i for i, name in enumerate(sorted(labels.unique().to_list()))}
    actions = store.table().select("annotator", "time")[idx]
    rows = pl.Series(idx, dtype=pl.UInt32)
    # Live predictions were never logged: no annotator, no time.
    logged = pl.Series(eff.layer[idx] <= ACCEPTED)
    return pl.DataFrame(
        {
            "id": project.items["id"].gather(rows),
            "source": project.items["source"].gather(rows),
            "label": labels,
            "label_id": labels.replace_strict(order, return_dtype=pl.Int64).cast(pl.Int64),
            "label_source": pl.Series(eff.source[idx].tolist(), dtype=pl.String),
            "layer": pl.Series(eff.layer[idx], dtype=pl.Int64).replace_strict(
                dict(enumerate(LAYERS)), return_dtype=pl.String),
            "confidence": pl.Series(eff.confidence[idx], dtype=pl.Float64),
            "annotator": actions["annotator"],
            "time": actions["time"].dt.replace_time_zone("UTC"),
            "logged": logged,
        }
    ).with_columns(
        pl.when(pl.col("logged")).then(pl.col(c)).otherwise(None).alias(c)
        for c in ("annotator", "time")
    ).select(TABLE_COLUMNS)


def class_order(rows: pl.DataFrame) -> list[str]:
    """The classes of ``rows`` in export order: sorted by name (``label_id`` = position)."""
    return sorted(set(rows["label"].to_list()))


# -- the one export path ------------------------------------------------------------------------


def format_for(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The export format for ``path``: ``format`` if given, else from the file suffix.

    A folder target (no suffix) needs ``format="imagefolder"`` or ``"hf"``.
    """
    if format is not None:
        fmt = str(format).lower()
        if fmt not in FORMATS:
            raise ExportError(f"unknown export format {format!r}; choose one of {FORMATS}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if not suffix:
        raise ExportError(
            f"{str(path)!r} has no file suffix, so it would be a folder: say which kind with "
            "format='imagefolder' or format='hf' (--format imagefolder|hf), or name a file "
            "ending in .parquet, .csv, .tsv or .jsonl"
        )
    raise ExportError(
        f"cannot tell the export format from the suffix {suffix!r} of {str(path)!r}: use "
        f"one of {sorted(_SUFFIXES)} or pass format= (--format) one of {FORMATS}"
    )


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

    Options that do nothing in the chosen combination raise an :class:`ExportWarning`.
    """
    fmt = format_for(path, format)
    _check_include(include, min_confidence)
    _warn_unused(fmt, include=include, min_confidence=min_confidence, predictions=predictions,
                 csv_safe=csv_safe, mode=mode, split=split, seed=seed)
    if fmt == "imagefolder":
        mode = mode or "copy"
        if mode not in ("copy", "symlink", "hardlink"):
            raise ExportError(f"mode must be 'copy', 'symlink' or 'hardlink', not {mode!r}")
        if split is not None and not 0.0 < float(split) < 1.0:
            raise ExportError(f"split must be a fraction between 0 and 1, not {split}")
    target = _check_target(path, project, fmt, overwrite=overwrite)
    rows = labelled_table(project, include=include, min_confidence=min_confidence,
                          predictions=predictions)
    meta = _metadata(project, rows, fmt=fmt, include=include, min_confidence=min_confidence,
                     predictions=predictions, estimate=estimate)
    if fmt in TABLE_FORMATS:
        meta["csv_safe"] = bool(csv_safe) if fmt in ("csv", "tsv") else None
        return _write_table(rows, target, fmt, meta, overwrite=overwrite, csv_safe=csv_safe)
    if fmt == "imagefolder":
        return _write_imagefolder(project, rows, target, meta, overwrite=overwrite,
                                  mode=mode, split=split,
                                  seed=SPLIT_SEED if seed is None else int(seed),
                                  csv_safe=csv_safe)
    return _write_hf(project, rows, target, meta, overwrite=overwrite)


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
    return _hf_dataset(project, rows, images=images)


# -- validation ----------------------------------------------------------------------------------


def _check_include(include: str, min_confidence: float) -> None:
    if include not in ("human", "all"):
        raise ExportError(f"include must be 'human' or 'all', not {include!r}")
    try:
        ok = 0.0 <= float(min_confidence) <= 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ExportError(f"min_confidence must be between 0 and 1, not {min_confidence!r}")


def _warn_unused(fmt: str, *, include: str, min_confidence: float, predictions: Any,
                 csv_safe: bool, mode: str | None, split: float | None,
                 seed: int | None) -> None:
    def warn(message: str) -> None:
        warnings.warn(message, ExportWarning, stacklevel=4)

    if include == "human" and float(min_confidence) != 0.0:
        warn("min_confidence applies to machine labels only; with include='human' it "
             "does nothing (use include='all')")
    if include == "all" and predictions is None:
        warn("no live predictions yet (label a few items of two classes, then wait for "
             "the retrain): include='all' exports human and accepted machine labels only")
    if fmt != "imagefolder":
        given = [n for n, v in (("mode", mode), ("split", split), ("seed", seed))
                 if v is not None]
        if given:
            warn(f"{', '.join(given)}: options of ImageFolder exports only, ignored for {fmt}")
    elif seed is not None and split is None:
        warn("seed chooses the train/val split; without split it does nothing")
    if not csv_safe and fmt in ("parquet", "jsonl", "hf"):
        warn(f"csv_safe applies to CSV/TSV cells only; {fmt} cells are never altered")


def _check_target(path: str | os.PathLike[str], project: Any, fmt: str, *,
                  overwrite: bool) -> Path:
    """The resolved target, after refusing a project folder and an existing export."""
    target = Path(path).expanduser().resolve()
    project_root = Path(project.path).expanduser().resolve()
    checks = [target]
    if fmt in TABLE_FORMATS:
        checks.append(_sidecar(target).resolve())
    for p in checks:
        for folder in (p, *p.parents):
            if folder == project_root or (folder / PROJECT_FILE).is_file():
                raise ExportError(
                    f"refusing to export to {str(path)!r}: {str(p)!r} is inside the project "
                    f"folder {str(folder)!r}, and an export must never replace a project's "
                    "files; choose a path outside it"
                )
    if project_root.is_relative_to(target):
        raise ExportError(
            f"refusing to export to {str(path)!r}: it contains the project "
            f"{str(project_root)!r}; choose a path outside it"
        )
    if fmt in TABLE_FORMATS:
        for p in (target, _sidecar(target)):
            if p.is_dir():
                raise ExportError(f"{str(p)!r} is a folder; a {fmt} export is a file")
            if (p.exists() or p.is_symlink()) and not overwrite:
                raise ExportError(
                    f"{str(p)!r} already exists; pass overwrite=True (--overwrite) to "
                    "replace it, or choose another name"
                )
    elif target.exists():
        if not target.is_dir():
            raise ExportError(f"{str(target)!r} is a file; a {fmt} export is a folder")
        if any(target.iterdir()):
            if not overwrite:
                raise ExportError(
                    f"export folder {str(target)!r} is not empty; pass overwrite=True "
                    "(--overwrite) to replace an earlier export, or choose a new folder"
                )
            if not (target / EXPORT_FOLDER_META).is_file():
                raise ExportError(
                    f"export folder {str(target)!r} is not empty and is not a workbench "
                    f"export (no {EXPORT_FOLDER_META}); overwrite only replaces earlier "
                    "exports: empty it yourself or choose a new folder"
                )
    return target


# -- metadata ------------------------------------------------------------------------------------


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + EXPORT_META_SUFFIX)


def _metadata(project: Any, rows: pl.DataFrame, *, fmt: str, include: str,
              min_confidence: float, predictions: Any, estimate: Any) -> dict[str, Any]:
    from . import __version__

    layers = rows["layer"].to_list()
    return {
        "workbench_version": __version__,
        "project": str(Path(project.path).resolve()),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "format": fmt,
        "include": include,
        "min_confidence": float(min_confidence),
        "predictions": None if predictions is None or include == "human"
        else getattr(predictions, "source", None),
        "rows": rows.height,
        "counts": {layer: layers.count(layer) for layer in ("human", "accepted", "predicted")},
        "class_order": "sorted by name; id = position",
        "classes": [{"id": i, "name": n} for i, n in enumerate(class_order(rows))],
        "estimate": _json_safe(estimate),
    }


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays unwrapped, NaN/inf as null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [_json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray)
                                        else value)]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _json_safe(getattr(value, k)) for k in value.__dataclass_fields__}
    return str(value)


def _json_text(meta: dict[str, Any]) -> str:
    return json.dumps(meta, ensure_ascii=False, indent=1) + "\n"


# -- writing -------------------------------------------------------------------------------------


def _temp_name(target: Path, kind: str = "tmp") -> Path:
    """A name beside ``target`` that no other writer (process or thread) uses."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


def _publish_file(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move ``tmp`` to ``target``; without ``overwrite`` never replace a file that appeared
    meanwhile (a hard link fails on an existing name, atomically)."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise ExportError(
            f"{str(target)!r} appeared while exporting; pass overwrite=True to replace it"
        ) from None
    except OSError:  # no hard links on this file system
        if target.exists():
            raise ExportError(f"{str(target)!r} already exists") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def _publish_dir(tmp: Path, target: Path) -> None:
    """Rename the finished folder ``tmp`` to ``target``, replacing an empty folder or an
    earlier export (checked by :func:`_check_target`)."""
    old = None
    if target.exists():
        if any(target.iterdir()):
            old = _temp_name(target, "old")
            os.rename(target, old)
        else:
            target.rmdir()
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _atomic(target: Path, write: Callable[[Path], None], *, folder: bool) -> Path:
    """Run ``write(tmp)`` on a fresh temporary path beside ``target`` and return it; on
    any failure remove whatever was written there and re-raise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(target)
    try:
        if folder:
            tmp.mkdir()
        write(tmp)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _for_text(rows: pl.DataFrame, *, csv_safe: bool) -> pl.DataFrame:
    """Rows for CSV/TSV: times as ISO-8601 UTC strings, formulas neutralised."""
    rows = rows.with_columns(pl.col("time").dt.to_string(_TIME_FORMAT))
    return _neutralise(rows) if csv_safe else rows


def _neutralise(rows: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula (OWASP)."""
    text = [c for c, t in rows.schema.items() if t == pl.String]
    return rows.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA)).then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c)).alias(c)
        for c in text
    )


def _write_table(rows: pl.DataFrame, target: Path, fmt: str, meta: dict[str, Any], *,
                 overwrite: bool, csv_safe: bool) -> Path:
    def write_rows(tmp: Path) -> None:
        if fmt == "parquet":
            rows.write_parquet(tmp)
        elif fmt in ("csv", "tsv"):
            _for_text(rows, csv_safe=csv_safe).write_csv(
                tmp, separator="," if fmt == "csv" else "\t")
        else:
            rows.with_columns(pl.col("time").dt.to_string(_TIME_FORMAT)).write_ndjson(tmp)
        _fsync(tmp)

    sidecar = _sidecar(target)
    meta["file"] = target.name
    tmps: list[Path] = []
    try:
        tmps.append(_atomic(sidecar, lambda p: p.write_text(_json_text(meta), "utf-8"),
                            folder=False))
        tmps.append(_atomic(target, write_rows, folder=False))
        # The sidecar first: a data file is never there without its metadata.
        _publish_file(tmps[0], sidecar, overwrite=overwrite)
        _publish_file(tmps[1], target, overwrite=overwrite)
    finally:
        for tmp in tmps:
            _remove(tmp)
    return target


def _write_imagefolder(project: Any, rows: pl.DataFrame, root: Path, meta: dict[str, Any], *,
                       overwrite: bool, mode: str, split: float | None, seed: int,
                       csv_safe: bool) -> Path:
    kinds = dict(zip(project.items["id"].to_list(), project.items["kind"].to_list()))
    not_images = [i for i in rows["id"].to_list() if kinds.get(i) != "image"]
    if not_images:
        raise ExportError(
            f"item {not_images[0]!r} is not an image ({len(not_images)} such items); "
            "ImageFolder exports need image items: export a table for texts or vectors"
        )
    classes = class_order(rows)
    folders = _label_folders(classes)
    parts = ["train", "val"] if split is not None else [""]
    subset = _split(rows["label"].to_list(), split, seed)
    meta["classes"] = [{"id": i, "name": n, "folder": folders[n]} for i, n in enumerate(classes)]
    meta.update(mode=mode, split=split, seed=seed if split is not None else None,
                csv_safe=bool(csv_safe),
                parts={p or ".": subset.count(p) for p in parts})

    def write(tmp: Path) -> None:
        for part in parts:  # every class in every part, so class_to_idx agree
            for name in classes:
                (tmp / part / folders[name]).mkdir(parents=True, exist_ok=True)
        files = []
        used: set[Path] = set()
        for (item_id, source, label, label_id), part in zip(
            rows.select("id", "source", "label", "label_id").iter_rows(), subset
        ):
            src = Path(source)
            name = safe_folder_name(src.name) or "item"
            dest = tmp / part / folders[label] / name
            n = 1
            while dest in used:
                dest = dest.with_name(f"{Path(name).stem}_{n}{Path(name).suffix}")
                n += 1
            used.add(dest)
            if not dest.resolve().is_relative_to(tmp.resolve()):  # defence in depth
                raise ExportError(f"refusing to write {str(dest)!r} outside the export")
            if not src.is_file():
                raise ExportError(
                    f"image {str(src)!r} of item {item_id!r} no longer exists; restore it "
                    "or remove the item's label, then export again"
                )
            if mode == "copy":
                shutil.copy2(src, dest)
            elif mode == "symlink":
                dest.symlink_to(src.resolve())
            else:
                os.link(src, dest)
            files.append((item_id, label, label_id, dest.relative_to(tmp).as_posix()))
        (tmp / "labels.json").write_text(
            json.dumps({"classes": meta["classes"]}, ensure_ascii=False, indent=1) + "\n",
            encoding="utf-8")
        table = pl.DataFrame(files, schema={"id": pl.String, "label": pl.String,
                                            "label_id": pl.Int64, "file": pl.String},
                             orient="row")
        (_neutralise(table) if csv_safe else table).write_csv(tmp / "labels.csv")
        (tmp / EXPORT_FOLDER_META).write_text(_json_text(meta), encoding="utf-8")
        _publish_dir(tmp, root)

    _atomic(root, write, folder=True)
    return root


def _hf_dataset(project: Any, rows: pl.DataFrame, *, images: bool = True,
                description: str = "") -> Any:
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            "exporting to Hugging Face datasets needs the 'datasets' package: "
            "pip install 'workbench[hf]' (or pip install datasets)"
        ) from e
    kinds = dict(zip(project.items["id"].to_list(), project.items["kind"].to_list()))
    data: dict[str, list[Any]] = {
        "id": rows["id"].to_list(),
        "label": rows["label_id"].to_list(),
        "label_source": rows["label_source"].to_list(),
        "layer": rows["layer"].to_list(),
        "confidence": rows["confidence"].to_list(),
    }
    features: dict[str, Any] = {
        "id": datasets.Value("string"),
        "label": datasets.ClassLabel(names=class_order(rows)),
        "label_source": datasets.Value("string"),
        "layer": datasets.Value("string"),
        "confidence": datasets.Value("float64"),
    }
    if images and all(kinds[i] == "image" for i in data["id"]):
        data["image"] = [str(s) for s in rows["source"].to_list()]
        features["image"] = datasets.Image()
    else:
        key = "text" if all(kinds[i] == "text" for i in data["id"]) else "source"
        data[key] = [None if s is None else str(s) for s in rows["source"].to_list()]
        features[key] = datasets.Value("string")
    features = datasets.Features(features)
    info = datasets.DatasetInfo(description=description, features=features)
    return datasets.Dataset.from_dict(data, features=features, info=info)


def _write_hf(project: Any, rows: pl.DataFrame, root: Path, meta: dict[str, Any], *,
              overwrite: bool) -> Path:
    ds = _hf_dataset(project, rows, description=json.dumps(meta, ensure_ascii=False))

    def write(tmp: Path) -> None:
        ds.save_to_disk(str(tmp))
        (tmp / EXPORT_FOLDER_META).write_text(_json_text(meta), encoding="utf-8")
        _publish_dir(tmp, root)

    _atomic(root, write, folder=False)  # save_to_disk makes the folder itself
    return root


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


# -- names and splits ----------------------------------------------------------------------------


def safe_folder_name(label: str) -> str:
    """A folder name for ``label`` that cannot leave its parent or break a file system.

    Path separators, control characters (NUL included) and characters Windows forbids become
    ``_``; leading dots are dropped (so ``..`` and hidden names are impossible); reserved
    device names get a trailing ``_``; the result is at most 200 UTF-8 bytes. The name is
    NFC-normalised so the same label always maps to the same folder.
    """
    name = unicodedata.normalize("NFC", str(label))
    name = _UNSAFE.sub("_", name).strip().lstrip(".").rstrip(". ")
    if not name:
        name = "_"
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name += "_"
    encoded = name.encode("utf-8")[:_MAX_NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore") or "_"


def _label_folders(labels: list[str]) -> dict[str, str]:
    """Folder per label (``labels`` in class order), distinct even on case-insensitive file
    systems, and sorting in class order (torchvision numbers sorted folder names)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for lab in labels:
        base = safe_folder_name(lab)
        name, n = base, 1
        while name.casefold() in taken:  # case-insensitive file systems (macOS, Windows)
            n += 1
            name = f"{base}_{n}"
        taken.add(name.casefold())
        out[lab] = name
    names = [out[lab] for lab in labels]
    if names != sorted(names):
        width = len(str(len(labels) - 1))
        out = {lab: f"{i:0{width}d}-{out[lab]}".encode()[:_MAX_NAME_BYTES]
               .decode("utf-8", errors="ignore") for i, lab in enumerate(labels)}
    return out


def _split(labels: list[str], split: float | None, seed: int) -> list[str]:
    if split is None:
        return [""] * len(labels)
    rng = np.random.default_rng(seed)
    parts = ["train"] * len(labels)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    for idx in by_label.values():
        idx = np.array(idx)
        rng.shuffle(idx)
        n_val = round(len(idx) * split)
        if len(idx) > 1:
            n_val = min(max(n_val, 1), len(idx) - 1)
        for i in idx[:n_val]:
            parts[i] = "val"
    return parts
