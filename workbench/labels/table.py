"""The labels of every item as one table: both layers, where the label came from, who, when."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from .._config import ADJUDICATED, LABEL_SOURCES
from .fold import LabelState
from .schema import Action

__all__ = ["label_table"]


def label_table(state: LabelState, actions: Iterable[Action], ids: Sequence[str]) -> pl.DataFrame:
    """One row per item of ``ids``: id, label, label_source, confidence, annotator, time.

    ``label_source`` of a human label is "adjudicated" where an adjudicator decided it (its
    annotator and time are the adjudicator's), else "human".

    ``actions`` are the logged actions the state's ``*_action`` ids refer to (for the
    annotator and time of each label).
    """
    s = state
    names = dict(s.classes)
    who = {a.id: (a.annotator, a.time) for a in actions}
    ids = list(ids)
    human = [names.get(int(c)) for c in s.human]
    machine = [names.get(int(c)) for c in s.machine]
    is_h = s.human >= 0
    is_m = ~is_h & (s.machine >= 0)
    human_source = np.where(s.adjudicated >= 0, ADJUDICATED, "human").astype(object)
    source = np.where(is_h, human_source, np.array(LABEL_SOURCES, dtype=object)[s.machine_source])
    source = np.where(is_h | is_m, source, None)
    act = np.where(is_h, s.human_action, np.where(is_m, s.machine_action, 0))
    annot = [who[int(a)][0] if a else None for a in act]
    when = [who[int(a)][1] if a else None for a in act]
    conf = np.where(is_h, 1.0, np.where(is_m, s.machine_confidence, np.nan))
    return pl.DataFrame(
        {
            "id": ids,
            "label": [h if h is not None else m for h, m in zip(human, machine)],
            "label_source": list(source),
            "confidence": pl.Series(conf, dtype=pl.Float64).fill_nan(None),
            "annotator": annot,
            "time": pl.Series(when, dtype=pl.Float64),
            "human_label": human,
            "machine_label": machine,
        },
        schema_overrides={"label": pl.String, "label_source": pl.String,
                          "annotator": pl.String, "human_label": pl.String,
                          "machine_label": pl.String},
    ).with_columns(pl.from_epoch(pl.col("time"), time_unit="s").alias("time"))
