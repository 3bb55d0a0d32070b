"""Exporting labels as datasets other tools read.

Formats: Parquet, CSV, JSONL (one row per item), an ImageFolder tree (copy or link, with an
optional seeded train/val split) and a Hugging Face ``datasets.Dataset`` with a
``ClassLabel`` feature.

What to include: ``include="human"`` (default) exports human labels only;
``include="all"`` adds machine labels (accepted machine labels, and live predictions when
given) whose confidence is at least ``min_confidence``.

Label names are data and may hold any character. They are written verbatim into table
cells; as folder names they go through :func:`safe_folder_name`, and every path is checked
to stay inside the export folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._config import SPLIT_SEED

__all__ = [
    "ExportError",
    "export_imagefolder",
    "export_table",
    "labelled_table",
    "safe_folder_name",
    "to_hf_dataset",
]

TABLE_COLUMNS = ("id", "source", "label", "label_source", "confidence", "annotator", "time")
_FORMATS = ("parquet", "csv", "jsonl")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 200


class ExportError(ValueError):
    """An export that cannot be written as asked; the message says what to change."""


def labelled_table(
    project: Any,
    *,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
) -> pl.DataFrame:
    """The rows an export writes: one per labelled item, columns :data:`TABLE_COLUMNS`.

    Parameters
    ----------
    project : a :class:`~workbench.project.Project`.
    include : ``"human"`` (human labels only) or ``"all"`` (plus machine labels).
    min_confidence : with ``include="all"``, machine labels below it are left out.
    predictions : optional live predictions (``.label`` (N,) class ids, ``.confidence``
        (N,) float32, ``.source`` str) used, with ``include="all"``, for items that have
        neither a human nor an accepted machine label.
    """
    if include not in ("human", "all"):
        raise ExportError(f"include must be 'human' or 'all', not {include!r}")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ExportError(f"min_confidence must be between 0 and 1, not {min_confidence}")
    project.labels.refresh()
    table = project.labels.table().with_columns(project.items["source"])
    if predictions is not None and include == "all":
        classes = project.labels.classes
        pred = np.asarray(predictions.label)
        conf = np.asarray(predictions.confidence, np.float64)
        if pred.shape != (table.height,) or conf.shape != (table.height,):
            raise ExportError(
                f"predictions cover {pred.shape[0]} items but the project has {table.height}"
            )
        live = pl.DataFrame(
            {
                "p_label": [classes.get(int(c)) for c in pred],
                "p_conf": conf,
            }
        )
        fill = table["label"].is_null() & live["p_label"].is_not_null()
        table = table.with_columns(
            pl.when(fill).then(live["p_label"]).otherwise(pl.col("label")).alias("label"),
            pl.when(fill).then(pl.lit(getattr(predictions, "source", "probe")))
            .otherwise(pl.col("label_source")).alias("label_source"),
            pl.when(fill).then(live["p_conf"]).otherwise(pl.col("confidence"))
            .alias("confidence"),
        )
    keep = pl.col("label").is_not_null()
    if include == "human":
        keep = keep & (pl.col("label_source") == "human")
        table = table.with_columns(
            pl.when(pl.col("human_label").is_not_null()).then(pl.col("human_label"))
            .otherwise(None).alias("label"),
            pl.when(pl.col("human_label").is_not_null()).then(pl.lit("human"))
            .otherwise(None).alias("label_source"),
        )
    else:
        keep = keep & ((pl.col("label_source") == "human")
                       | (pl.col("confidence") >= float(min_confidence)))
    return table.filter(keep).select(TABLE_COLUMNS)


def export_table(
    project: Any,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
) -> Path:
    """Write the labelled items as Parquet, CSV or JSONL; return the path written.

    ``format`` defaults to the file suffix. The file is written atomically.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in _FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {_FORMATS}")
    table = labelled_table(project, include=include, min_confidence=min_confidence,
                           predictions=predictions)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        table.write_parquet(tmp)
    elif fmt == "csv":
        table.with_columns(pl.col("time").dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ")).write_csv(tmp)
    else:
        table.with_columns(pl.col("time").dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ")).write_ndjson(tmp)
    os.replace(tmp, path)
    return path


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


def export_imagefolder(
    project: Any,
    folder: str | os.PathLike[str],
    *,
    mode: str = "copy",
    split: float | None = None,
    seed: int = SPLIT_SEED,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
) -> Path:
    """Write ``folder/[train|val/]<label>/<file>`` for every labelled image item.

    Parameters
    ----------
    mode : ``"copy"`` (default), ``"symlink"`` or ``"hardlink"``.
    split : fraction of each class put in ``val/`` (stratified, seeded); None for no split.
    seed : seed of the split; default ``SPLIT_SEED``.

    Label names become folder names through :func:`safe_folder_name`; two labels that map
    to the same folder get distinct suffixes. ``labels.json`` maps each folder to the exact
    label name, and ``labels.csv`` lists every file with its label.
    """
    if mode not in ("copy", "symlink", "hardlink"):
        raise ExportError(f"mode must be 'copy', 'symlink' or 'hardlink', not {mode!r}")
    if split is not None and not 0.0 < split < 1.0:
        raise ExportError(f"split must be a fraction between 0 and 1, not {split}")
    table = labelled_table(project, include=include, min_confidence=min_confidence,
                           predictions=predictions)
    kinds = dict(zip(project.items["id"].to_list(), project.items["kind"].to_list()))
    not_images = [i for i in table["id"].to_list() if kinds.get(i) != "image"]
    if not_images:
        raise ExportError(
            f"item {not_images[0]!r} is not an image ({len(not_images)} such items); "
            "ImageFolder exports need image items: use export_table for texts or vectors"
        )
    root = Path(folder).resolve()
    if root.exists() and any(root.iterdir()):
        raise ExportError(
            f"export folder {str(root)!r} is not empty; choose a new folder so nothing is "
            "overwritten"
        )
    root.mkdir(parents=True, exist_ok=True)
    folders = _label_folders(sorted(set(table["label"].to_list())))
    subset = _split(table["label"].to_list(), split, seed)
    rows = []
    used: set[Path] = set()
    for (item_id, source, label), part in zip(
        table.select("id", "source", "label").iter_rows(), subset
    ):
        base = root / part if part else root
        src = Path(source)
        name = safe_folder_name(src.name) or "item"
        dest = base / folders[label] / name
        n = 1
        while dest in used:
            dest = dest.with_name(f"{src.stem}_{n}{src.suffix}")
            n += 1
        used.add(dest)
        if not dest.resolve().is_relative_to(root):  # defence in depth
            raise ExportError(f"refusing to write {str(dest)!r} outside {str(root)!r}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not src.is_file():
            raise ExportError(f"image {str(src)!r} of item {item_id!r} no longer exists")
        if mode == "copy":
            shutil.copy2(src, dest)
        elif mode == "symlink":
            dest.symlink_to(src.resolve())
        else:
            os.link(src, dest)
        rows.append((item_id, label, str(dest.relative_to(root).as_posix())))
    (root / "labels.json").write_text(
        json.dumps({f: lab for lab, f in folders.items()}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    pl.DataFrame(rows, schema=["id", "label", "file"], orient="row").write_csv(
        root / "labels.csv"
    )
    return root


def to_hf_dataset(
    project: Any,
    *,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
    images: bool = True,
) -> Any:
    """A Hugging Face ``datasets.Dataset`` with a ``ClassLabel`` ``label`` feature.

    Image items get an ``image`` column of type ``datasets.Image`` (when ``images``),
    text items a ``text`` column. Needs the optional ``datasets`` package.
    """
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            "exporting to Hugging Face datasets needs the 'datasets' package: "
            "pip install 'workbench[hf]' (or pip install datasets)"
        ) from e
    table = labelled_table(project, include=include, min_confidence=min_confidence,
                           predictions=predictions)
    names = [n for n in project.labels.classes.values() if n in set(table["label"].to_list())]
    kinds = dict(zip(project.items["id"].to_list(), project.items["kind"].to_list()))
    data: dict[str, list[Any]] = {
        "id": table["id"].to_list(),
        "label": [names.index(lab) for lab in table["label"].to_list()],
        "label_source": table["label_source"].to_list(),
        "confidence": table["confidence"].to_list(),
    }
    features: dict[str, Any] = {
        "id": datasets.Value("string"),
        "label": datasets.ClassLabel(names=names),
        "label_source": datasets.Value("string"),
        "confidence": datasets.Value("float64"),
    }
    all_images = all(kinds[i] == "image" for i in data["id"])
    if images and all_images:
        data["image"] = table["source"].to_list()
        features["image"] = datasets.Image()
    else:
        key = "text" if all(kinds[i] == "text" for i in data["id"]) else "source"
        data[key] = table["source"].to_list()
        features[key] = datasets.Value("string")
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def _label_folders(labels: list[str]) -> dict[str, str]:
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
