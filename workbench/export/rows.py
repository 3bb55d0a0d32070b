"""The rows an export writes: :func:`labelled_table`, one per labelled item, and their one
class order (:func:`class_order`: classes sorted by name, ``label_id`` = position)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import polars as pl

from ..labels.effective import ACCEPTED, HUMAN, LAYERS, effective_labels
from .options import ExportError, check_include

__all__ = ["TABLE_COLUMNS", "class_order", "labelled_table"]

TABLE_COLUMNS = ("id", "source", "label", "label_id", "label_source", "layer", "confidence",
                 "annotator", "time")


def labelled_table(
    project: Any,
    *,
    include: str = "human",
    min_confidence: float = 0.0,
    predictions: Any = None,
    items: Collection[str] | None = None,
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
    items : optional item ids: only these items' rows (a subset: a saved selection, a
        lasso); ``label_id`` then numbers the classes present in the subset.

    Returns
    -------
    polars DataFrame with columns :data:`TABLE_COLUMNS`: ``label_id`` numbers the classes
    present, sorted by name; ``layer`` is ``human``, ``accepted`` or ``predicted``;
    ``confidence`` is 1.0 for human labels; ``annotator`` and ``time`` (UTC) are those of
    the action that set the label (null for live predictions).
    """
    check_include(include, min_confidence)
    store = project.labels
    store.refresh()
    try:
        eff = effective_labels(store.state, predictions if include == "all" else None)
    except ValueError as e:
        raise ExportError(str(e)) from e
    keep = eff.layer == HUMAN
    if include == "all":
        keep |= (eff.layer >= ACCEPTED) & (eff.confidence >= float(min_confidence))
    if items is not None:
        keep &= project.items["id"].is_in(list(items)).to_numpy()
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
