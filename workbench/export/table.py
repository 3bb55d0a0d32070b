"""Table exports: Parquet, CSV, TSV and JSONL, with their metadata sidecar.

Times are UTC (Parquet ``timestamp[us, UTC]``, ISO-8601 strings ending in ``Z`` elsewhere);
CSV/TSV cells a spreadsheet would run as formulas get a leading ``'``
(:func:`neutralise`) unless ``csv_safe=False``. Parquet and JSONL are never altered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from .metadata import json_text, sidecar_path
from .publish import fsync_file, publish_file, remove, write_temp

__all__ = ["neutralise", "write_table"]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
_FORMULA = r"^[=+\-@\t\r]"


def _for_text(rows: pl.DataFrame, *, csv_safe: bool) -> pl.DataFrame:
    """Rows for CSV/TSV: times as ISO-8601 UTC strings, formulas neutralised."""
    rows = rows.with_columns(pl.col("time").dt.to_string(_TIME_FORMAT))
    return neutralise(rows) if csv_safe else rows


def neutralise(rows: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula (OWASP)."""
    text = [c for c, t in rows.schema.items() if t == pl.String]
    return rows.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA)).then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c)).alias(c)
        for c in text
    )


def write_table(rows: pl.DataFrame, target: Path, fmt: str, meta: dict[str, Any], *,
                overwrite: bool, csv_safe: bool,
                beside: dict[Path, pl.DataFrame] | None = None) -> Path:
    """Write ``rows`` to ``target`` as ``fmt`` and ``meta`` to its sidecar, and each table
    of ``beside`` (path -> rows, with a ``time`` column) to its path as ``fmt``: all or
    none (the sidecar is published first, ``target`` last)."""
    def writer(table: pl.DataFrame) -> Any:
        def write_rows(tmp: Path) -> None:
            if fmt == "parquet":
                table.write_parquet(tmp)
            elif fmt in ("csv", "tsv"):
                _for_text(table, csv_safe=csv_safe).write_csv(
                    tmp, separator="," if fmt == "csv" else "\t")
            else:
                table.with_columns(pl.col("time").dt.to_string(_TIME_FORMAT)).write_ndjson(tmp)
            fsync_file(tmp)
        return write_rows

    sidecar = sidecar_path(target)
    meta["file"] = target.name
    # The sidecar first: a data file is never there without its metadata.
    files = [(sidecar, lambda p: p.write_text(json_text(meta), "utf-8")),
             *((path, writer(table)) for path, table in (beside or {}).items()),
             (target, writer(rows))]
    tmps: list[Path] = []
    try:
        for path, write in files:
            tmps.append(write_temp(path, write, folder=False))
        for tmp, (path, _) in zip(tmps, files, strict=True):
            publish_file(tmp, path, overwrite=overwrite)
    finally:
        for tmp in tmps:
            remove(tmp)
    return target
