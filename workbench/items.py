"""Loading items: folders of images, path lists, tables, DataFrames, vectors, the demo set.

Every loader returns a polars DataFrame with at least:

``id`` (str, unique, stable across reloads), ``source`` (str: a file path or the text
itself), ``kind`` (``"image"``, ``"text"`` or ``"vector"``), and, where the input had them,
``label`` (str, existing labels) and any metadata columns. Every later array of a
project (embeddings, graph, layout, labels) is aligned to this row order.

Opening and checking image files is :mod:`workbench._images`; the demo set is
:mod:`workbench.digits`. Both are re-exported here (``image_problem``,
``not_regular_file``, ``demo_digits``, ``digits_pixels``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._arrays import ItemError, as_vectors, check_nonzero_rows
from ._config import IMAGE_EXTENSIONS
from ._images import image_problem as image_problem
from ._images import not_regular_file as not_regular_file
from .digits import demo_digits
from .digits import digits_pixels as digits_pixels

__all__ = [
    "ItemError",
    "LoadReport",
    "check_images",
    "check_nonzero_rows",
    "demo_digits",
    "from_dataframe",
    "from_folder",
    "from_paths",
    "from_table",
    "from_vectors",
    "validate_items",
]

REQUIRED_COLUMNS = ("id", "source", "kind")


@dataclass
class LoadReport:
    """What a loader or :func:`check_images` left out, and why (``{id_or_path: reason}``)."""

    skipped: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.skipped)

    def __str__(self) -> str:
        if not self.skipped:
            return "all items readable"
        lines = [f"{len(self.skipped)} item(s) skipped:"]
        lines += [f"  {k}: {v}" for k, v in list(self.skipped.items())[:20]]
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


# -- images --------------------------------------------------------------------------------


def from_folder(
    folder: str | os.PathLike[str],
    *,
    labels_from_subfolders: bool = False,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> pl.DataFrame:
    """All images under ``folder``, recursively, sorted by relative path.

    Parameters
    ----------
    folder : the root folder.
    labels_from_subfolders : when True, the first-level sub-folder of each image is read as
        its existing ``label`` (the ImageFolder convention); images directly in the root get
        no label.
    extensions : file suffixes read as images (case-insensitive); others are ignored.

    Returns
    -------
    DataFrame with ``id`` (the relative POSIX path, stable across machines), ``source``
    (absolute path), ``kind`` = "image", and ``label`` when asked.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise ItemError(f"folder {str(root)!r} does not exist; check the path")
    if not root.is_dir():
        raise ItemError(f"{str(root)!r} is a file, not a folder; use from_paths for files")
    exts = {e.lower() for e in extensions}
    paths = sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in exts and p.is_file() and not _hidden(p.relative_to(root))
    )
    if not paths:
        raise ItemError(
            f"folder {str(root)!r} holds no images (looked for {', '.join(sorted(exts))}, "
            "recursively)"
        )
    rel = [p.relative_to(root).as_posix() for p in paths]
    data: dict[str, Any] = {
        "id": rel,
        "source": [str(p.resolve()) for p in paths],
        "kind": ["image"] * len(paths),
    }
    if labels_from_subfolders:
        data["label"] = [r.split("/")[0] if "/" in r else None for r in rel]
    return pl.DataFrame(data, schema_overrides={"label": pl.String} if "label" in data else None)


def from_paths(paths: Sequence[str | os.PathLike[str]]) -> pl.DataFrame:
    """Images from an explicit list of files; ``id`` is the path as given."""
    if len(paths) == 0:
        raise ItemError("the list of paths is empty; give at least one image file")
    missing = [str(p) for p in paths if not Path(p).expanduser().is_file()]
    if missing:
        raise ItemError(
            f"image file {missing[0]!r} does not exist ({len(missing)} missing); "
            "fix the path or remove it from the list"
        )
    ids = [str(p) for p in paths]
    _check_unique(ids, "path")
    return pl.DataFrame(
        {
            "id": ids,
            "source": [str(Path(p).expanduser().resolve()) for p in paths],
            "kind": ["image"] * len(ids),
        }
    )


def check_images(items: pl.DataFrame) -> tuple[pl.DataFrame, LoadReport]:
    """Open every image item and keep only those that decode.

    Zero-byte, truncated, non-image and decompression-bomb files are dropped and listed in
    the report with the reason; nothing raises. Non-image rows pass through untouched.
    """
    report = LoadReport()
    keep = []
    for item_id, source, kind in items.select("id", "source", "kind").iter_rows():
        if kind != "image":
            keep.append(True)
            continue
        reason = image_problem(source)
        if reason:
            report.skipped[item_id] = reason
        keep.append(reason is None)
    return items.filter(pl.Series(keep)), report


# -- tables --------------------------------------------------------------------------------


def from_table(
    path: str | os.PathLike[str],
    *,
    source_column: str | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    kind: str | None = None,
) -> pl.DataFrame:
    """Items from a Parquet or CSV file; see :func:`from_dataframe` for the columns."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ItemError(f"table {str(p)!r} does not exist; check the path")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pl.read_parquet(p)
        elif suffix in (".csv", ".tsv"):
            df = pl.read_csv(p, separator="\t" if suffix == ".tsv" else ",",
                             infer_schema_length=10_000)
        else:
            raise ItemError(f"{str(p)!r}: expected a .parquet, .csv or .tsv file")
    except ItemError:
        raise
    except Exception as e:  # polars raises several types for malformed files
        raise ItemError(f"cannot read table {str(p)!r}: {e}") from e
    base = p.parent
    return from_dataframe(
        df, source_column=source_column, id_column=id_column, label_column=label_column,
        kind=kind, base_dir=base,
    )


def from_dataframe(
    df: Any,
    *,
    source_column: str | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    kind: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Items from a polars or pandas DataFrame.

    Parameters
    ----------
    source_column : column with image paths or texts; default the first of ``source``,
        ``path``, ``image``, ``file``, ``text``, ``sentence`` that exists.
    id_column : column of unique ids; default ``id`` when present, else the row number.
    label_column : column of existing labels; default ``label`` when present.
    kind : ``"image"`` or ``"text"``; default: "image" when the column name says path/image
        or its values name existing image files, else "text".
    base_dir : relative image paths are resolved against it (the table's folder).

    Other columns are kept as metadata.
    """
    df = _to_polars(df)
    if df.height == 0:
        raise ItemError("the table has no rows")
    source_column = source_column or _first_present(
        df, ("source", "path", "image", "file", "filepath", "text", "sentence")
    )
    if source_column is None or source_column not in df.columns:
        raise ItemError(
            f"no source column (looked for {source_column or 'source/path/image/text'}); "
            f"columns are {df.columns}; pass source_column="
        )
    if id_column is None and "id" in df.columns:
        id_column = "id"
    if id_column is not None and id_column not in df.columns:
        raise ItemError(f"id column {id_column!r} not in the table; columns are {df.columns}")
    if label_column is None and "label" in df.columns:
        label_column = "label"
    if label_column is not None and label_column not in df.columns:
        raise ItemError(
            f"label column {label_column!r} not in the table; columns are {df.columns}"
        )
    nulls = df[source_column].is_null()
    if nulls.any():
        row = int(nulls.arg_true()[0])
        raise ItemError(f"row {row} has an empty {source_column!r}; fill or drop it")
    source = df[source_column].cast(pl.String)
    if kind is None:
        kind = _guess_kind(source_column, source, base_dir)
    if kind not in ("image", "text"):
        raise ItemError(f"kind must be 'image' or 'text', not {kind!r}")
    if kind == "image":
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        source = pl.Series(
            [str((base / s).expanduser().resolve()) if not Path(s).is_absolute() else s
             for s in source]
        )
    ids = (
        df[id_column].cast(pl.String).to_list()
        if id_column
        else [f"row-{i}" for i in range(df.height)]
    )
    if None in ids:
        raise ItemError(f"row {ids.index(None)} has an empty id; every item needs an id")
    _check_unique(ids, "id")
    out = pl.DataFrame({"id": ids, "source": source, "kind": [kind] * df.height})
    if label_column:
        out = out.with_columns(df[label_column].cast(pl.String).alias("label"))
    used = {source_column, id_column, label_column}
    meta = [c for c in df.columns if c not in used and c not in out.columns]
    return pl.concat([out, df.select(meta)], how="horizontal") if meta else out


def from_vectors(
    vectors: Any,
    *,
    ids: Sequence[str] | None = None,
    labels: Sequence[Any] | None = None,
    texts: Sequence[str] | None = None,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Items for precomputed vectors.

    Parameters
    ----------
    vectors : (N, D) array-like of finite numbers, or a sequence of N equal-length vectors
        (for example a list column).
    ids : N unique ids; default ``"0" .. "N-1"``.
    labels : optional N existing labels (None for unlabelled).
    texts : optional N strings shown for each item; default the id.

    Returns
    -------
    (items, vectors) where vectors is (N, D) float32, C-contiguous.

    Raises :class:`ItemError` for a row of all zeros (see :func:`check_nonzero_rows`).
    """
    arr = as_vectors(vectors)
    n = arr.shape[0]
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    if len(ids) != n:
        raise ItemError(f"{len(ids)} ids for {n} vectors; give one id per vector")
    _check_unique(ids, "id")
    check_nonzero_rows(arr, ids)
    data: dict[str, Any] = {
        "id": ids,
        "source": [str(t) for t in texts] if texts is not None else ids,
        "kind": ["vector"] * n,
    }
    if texts is not None and len(texts) != n:
        raise ItemError(f"{len(texts)} texts for {n} vectors; give one per vector")
    if labels is not None:
        if len(labels) != n:
            raise ItemError(f"{len(labels)} labels for {n} vectors; give one per vector")
        data["label"] = [None if v is None else str(v) for v in labels]
    return pl.DataFrame(data, schema_overrides={"label": pl.String}), arr


# -- validation ----------------------------------------------------------------------------


def validate_items(items: pl.DataFrame) -> pl.DataFrame:
    """Check the item-table contract (columns, unique non-empty string ids)."""
    if not isinstance(items, pl.DataFrame):
        items = _to_polars(items)
    missing = [c for c in REQUIRED_COLUMNS if c not in items.columns]
    if missing:
        raise ItemError(f"items table lacks column(s) {missing}; use a workbench loader")
    if items.height == 0:
        raise ItemError("there are no items")
    ids = items["id"].cast(pl.String)
    if ids.null_count():
        raise ItemError(f"row {int(ids.is_null().arg_true()[0])} has no id")
    _check_unique(ids.to_list(), "id")
    return items.with_columns(ids.alias("id"))


def _check_unique(ids: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            n = sum(1 for j in ids if j == i)
            raise ItemError(f"duplicate {what} {i!r} ({n} times); each item needs its own")
        seen.add(i)


def _to_polars(df: Any) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(df, pd.DataFrame):
        return pl.from_pandas(df.reset_index(drop=True))
    raise ItemError(f"expected a polars or pandas DataFrame, got {type(df).__name__}")


def _first_present(df: pl.DataFrame, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in df.columns), None)


def _guess_kind(column: str, source: pl.Series, base_dir: Any) -> str:
    if column.lower() in ("path", "image", "file", "filepath"):
        return "image"
    sample = [s for s in source.head(20).to_list() if s]
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    looks_like_images = sample and all(
        Path(s).suffix.lower() in IMAGE_EXTENSIONS and (base / s).expanduser().exists()
        for s in sample
    )
    return "image" if looks_like_images else "text"


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)
