"""The long table of a team's labels, written beside a table export on request: one row per
annotation (every annotator's own current label of an item) and one per adjudication, as
``<stem>.annotations.<suffix>`` (:func:`annotations_path`), with columns
:data:`ANNOTATION_COLUMNS`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .._config import ADJUDICATED
from ..labels.replay import Replay

__all__ = ["ANNOTATION_COLUMNS", "annotation_table", "annotations_path"]

ANNOTATION_COLUMNS = ("id", "annotator", "label", "source", "time")


def annotations_path(target: Path) -> Path:
    """Where the long table of the table export ``target`` goes: ``out.csv`` ->
    ``out.annotations.csv``."""
    return target.with_name(f"{target.stem}.annotations{target.suffix}")


def annotation_table(project: Any) -> pl.DataFrame:
    """Every annotator's current label of every item they labelled (``source`` "human",
    the rows of ``Workbench.annotations()``), then each item's adjudication (``source``
    "adjudicated", ``annotator`` the adjudicator): one row each, in item order, annotators
    sorted by name within an item, its adjudication last. ``time`` (UTC) is that of the
    action that set the label.

    The log is replayed here (not the session's replay): an export is a snapshot.
    """
    store = project.labels
    ids = store.item_ids
    replay = Replay(ids, {i: p for p, i in enumerate(ids)})
    replay.feed(store.log.read())
    names, labels, actions = replay.annotation_actions()
    state = replay.state
    rows, cols = np.nonzero(labels >= 0)
    adj = np.flatnonzero(state.adjudicated >= 0)
    pos = np.concatenate([rows, adj])
    order = np.concatenate([cols, np.full(adj.size, len(names))])  # adjudication last
    cls = np.concatenate([labels[rows, cols], state.adjudicated[adj]])
    act = np.concatenate([actions[rows, cols], state.adjudicated_action[adj]])
    keep = np.lexsort((order, pos))
    pos, order, cls, act = pos[keep], order[keep], cls[keep], act[keep]
    logged = replay.actions
    classes = state.classes
    return pl.DataFrame({
        "id": pl.Series([ids[p] for p in pos.tolist()], dtype=pl.String),
        "annotator": pl.Series([logged[a].annotator for a in act.tolist()], dtype=pl.String),
        "label": pl.Series([classes[c] for c in cls.tolist()], dtype=pl.String),
        "source": pl.Series(np.where(order < len(names), "human", ADJUDICATED).tolist(),
                            dtype=pl.String),
        "time": pl.Series([logged[a].time for a in act.tolist()], dtype=pl.Float64),
    }).with_columns(
        pl.from_epoch(pl.col("time"), time_unit="s").dt.replace_time_zone("UTC")
    ).select(ANNOTATION_COLUMNS)
