"""The metadata written beside every export: :func:`metadata` (project, UTC export time,
options, counts per layer, classes, accuracy estimate), where a table's sidecar goes
(:func:`sidecar_path`) and how it is written as JSON (:func:`json_text`)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .._config import EXPORT_META_SUFFIX
from .rows import class_order

__all__ = ["json_safe", "json_text", "metadata", "sidecar_path"]


def sidecar_path(target: Path) -> Path:
    """The metadata file beside the table ``target``: its whole name plus
    :data:`~workbench._config.EXPORT_META_SUFFIX`."""
    return target.with_name(target.name + EXPORT_META_SUFFIX)


def metadata(project: Any, rows: pl.DataFrame, *, fmt: str, include: str,
             min_confidence: float, predictions: Any, estimate: Any) -> dict[str, Any]:
    """The metadata of an export of ``rows`` (JSON-able); writers add their own keys."""
    from .. import __version__

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
        "estimate": json_safe(estimate),
    }


def json_safe(value: Any) -> Any:
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
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray)
                                       else value)]
    if hasattr(value, "__dataclass_fields__"):
        return {k: json_safe(getattr(value, k)) for k in value.__dataclass_fields__}
    return str(value)


def json_text(meta: dict[str, Any]) -> str:
    """``meta`` as the text of a metadata file (UTF-8 kept, indented, final newline)."""
    return json.dumps(meta, ensure_ascii=False, indent=1) + "\n"
