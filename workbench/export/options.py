"""What an export may be asked: its errors, the formats, and the checks of its options.

:func:`format_for` picks the format (``format=`` or the file suffix); :func:`check_include`
refuses rows no export can select; :func:`warn_unused` warns of options that do nothing in
the chosen combination (an :class:`ExportWarning`, never an error).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "FOLDER_FORMATS",
    "FORMATS",
    "SUFFIXES",
    "TABLE_FORMATS",
    "ExportError",
    "ExportWarning",
    "check_include",
    "format_for",
    "warn_unused",
]

TABLE_FORMATS = ("parquet", "csv", "tsv", "jsonl")
FOLDER_FORMATS = ("imagefolder", "hf")
FORMATS = TABLE_FORMATS + FOLDER_FORMATS
SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
            ".jsonl": "jsonl", ".ndjson": "jsonl"}


class ExportError(ValueError):
    """An export that cannot be written as asked; the message says what to change."""


class ExportWarning(UserWarning):
    """An option that does nothing in this combination (it is ignored, not an error)."""


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
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if not suffix:
        raise ExportError(
            f"{str(path)!r} has no file suffix, so it would be a folder: say which kind with "
            "format='imagefolder' or format='hf' (--format imagefolder|hf), or name a file "
            "ending in .parquet, .csv, .tsv or .jsonl"
        )
    raise ExportError(
        f"cannot tell the export format from the suffix {suffix!r} of {str(path)!r}: use "
        f"one of {sorted(SUFFIXES)} or pass format= (--format) one of {FORMATS}"
    )


def check_include(include: str, min_confidence: float) -> None:
    """ExportError unless ``include`` is ``"human"`` or ``"all"`` and ``min_confidence``
    a number between 0 and 1."""
    if include not in ("human", "all"):
        raise ExportError(f"include must be 'human' or 'all', not {include!r}")
    try:
        ok = 0.0 <= float(min_confidence) <= 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ExportError(f"min_confidence must be between 0 and 1, not {min_confidence!r}")


def warn_unused(fmt: str, *, include: str, min_confidence: float, predictions: Any,
                csv_safe: bool, mode: str | None, split: float | None,
                seed: int | None) -> None:
    """An :class:`ExportWarning` per option that does nothing for ``fmt`` (called by
    :func:`~workbench.export.export_project`, so the warning names its caller's line)."""
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
