"""The columns the filter charts show, binned once, and the filter they make.

A :class:`ChartColumn` holds one value per item and each item's bin (a histogram's bin or
a bar's category), so counting a chart, over all items or over those a filter keeps, is one
``bincount``: no row ever travels to the browser. :func:`metadata_columns` reads the item
table (imported columns, and the folder and file size of image files), computed once;
:func:`derived_columns` reads the labels and predictions, computed again after each
change: prediction confidence, label source, annotator of the human label, predicted class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .._config import CHART_BINS, CHART_MAX_CATEGORIES
from ..labels.effective import LAYERS, effective_labels
from ..rules.votes import with_derived

__all__ = ["DERIVED", "ChartColumn", "bars", "derived_columns", "histogram",
           "metadata_columns"]

#: The derived charts: key -> title. Keys hold spaces, so an imported column rarely shares
#: one; one that does is charted as "<name> (column)".
DERIVED = {
    "prediction confidence": "prediction confidence",
    "label source": "label source (human / accepted / predicted / none)",
    "annotator": "annotator of the human label",
    "predicted class": "predicted class",
}
#: Item table columns never charted: every item has its own (ids, sources, texts).
NOT_CHARTED = ("id", "source")
#: The label source chart's bars, in this order (``LAYERS`` with "none" last).
SOURCE_BARS = ("human", "accepted", "predicted", "none")


@dataclass(frozen=True)
class ChartColumn:
    """One charted column.

    Attributes
    ----------
    name : the key (``set_range``/``set_categories`` take it); title : what the chart says.
    kind : ``"histogram"`` (numbers) or ``"bars"`` (categories).
    values : (N,) float64 for a histogram (NaN where there is no value), else None.
    edges : (B + 1,) bin edges of a histogram (as ``np.histogram``: the last bin closed).
    categories : the bars' values (None is the "(none)" bar), in the order drawn.
    codes : (N,) int32 each item's bin or bar; -1 where a histogram has no value.
    """

    name: str
    title: str
    kind: str
    codes: np.ndarray
    values: np.ndarray | None = None
    edges: np.ndarray | None = None
    categories: tuple[str | None, ...] = ()

    @property
    def size(self) -> int:
        """Bins or bars."""
        return len(self.edges) - 1 if self.edges is not None else len(self.categories)

    def counts(self, keep: np.ndarray | None = None) -> np.ndarray:
        """(size,) int64 items per bin or bar: all, or those where ``keep`` is True."""
        codes = self.codes if keep is None else self.codes[keep]
        return np.bincount(codes[codes >= 0], minlength=self.size)[:self.size]

    def missing(self, keep: np.ndarray | None = None) -> int:
        """Items without a value (a histogram's NaN): all, or those ``keep`` keeps."""
        codes = self.codes if keep is None else self.codes[keep]
        return int((codes < 0).sum())

    def in_range(self, lo: float, hi: float) -> np.ndarray:
        """(N,) bool: the values in ``[lo, hi]`` (an item without a value is outside)."""
        assert self.values is not None
        with np.errstate(invalid="ignore"):
            return (self.values >= lo) & (self.values <= hi)

    def among(self, chosen: list[str | None]) -> np.ndarray:
        """(N,) bool: the items whose category is one of ``chosen``."""
        index = [k for k, c in enumerate(self.categories) if c in chosen]
        return np.isin(self.codes, index)


def histogram(name: str, title: str, values: Any, edges: Any = None) -> ChartColumn:
    """A histogram column of ``values`` (NaN, None and infinities count as no value).

    ``edges`` default: whole-number values spanning fewer than ``CHART_BINS`` numbers get
    one bin per number; others ``CHART_BINS`` equal bins from the smallest to the largest.
    """
    v = np.asarray(values, np.float64).copy()
    v[~np.isfinite(v)] = np.nan
    finite = v[np.isfinite(v)]
    if edges is None:
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        whole = finite.size and np.all(finite == np.round(finite))
        if whole and hi - lo < CHART_BINS:
            edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
        else:
            edges = np.histogram_bin_edges(finite if finite.size else [0.0, 1.0],
                                           bins=CHART_BINS)
    edges = np.asarray(edges, np.float64)
    codes = np.searchsorted(edges, v, side="right").astype(np.int32) - 1
    codes[v == edges[-1]] = len(edges) - 2  # the last bin is closed, as in np.histogram
    codes[~np.isfinite(v) | (v < edges[0]) | (v > edges[-1])] = -1
    return ChartColumn(name, title, "histogram", codes, values=v, edges=edges)


def bars(name: str, title: str, values: Any, order: Any = None) -> ChartColumn:
    """A bar column of ``values`` (strings; None is the "(none)" bar).

    ``order``: the bars, in order (values outside it are refused); default the values
    present, sorted (as numbers when they all read as numbers: "2" before "10"), "(none)"
    last.
    """
    vals = list(values)
    if order is None:
        present = {v for v in vals if v is not None}
        try:
            order = sorted(present, key=float)
        except ValueError:
            order = sorted(present)
        if len(present) < len(set(vals)):
            order.append(None)
    categories = tuple(order)
    index = {c: k for k, c in enumerate(categories)}
    unknown = {v for v in vals if v not in index}
    if unknown:
        raise ValueError(f"chart {name!r}: values {sorted(map(str, unknown))[:5]} are not "
                         f"among its bars {list(categories)}")
    codes = np.fromiter((index[v] for v in vals), np.int32, count=len(vals))
    return ChartColumn(name, title, "bars", codes, categories=categories)


def metadata_columns(items: pl.DataFrame) -> tuple[list[ChartColumn], dict[str, str]]:
    """The charts of the item table: each imported column, and the folder and file size
    of image items (file sizes are read from disk: call this once, off the main thread).

    Returns ``(columns, skipped)``: ``skipped`` names each column not charted, with why.
    """
    has_images = bool((items["kind"] == "image").any())
    table = with_derived(items, ["folder", "file_size"]) if has_images else items
    columns, skipped = [], {}
    for name in table.columns:
        if name in NOT_CHARTED:
            skipped[name] = "one value per item"
            continue
        series = table[name]
        key = f"{name} (column)" if name in DERIVED else name
        title = "file size (bytes)" if name == "file_size" and name not in items.columns \
            else key
        distinct = series.drop_nulls().n_unique()
        if distinct < 2:
            skipped[name] = "one value" if distinct else "no values"
        elif series.dtype.is_numeric():
            columns.append(histogram(key, title, series.cast(pl.Float64).fill_null(np.nan)
                                     .to_numpy()))
        elif distinct > CHART_MAX_CATEGORIES:
            skipped[name] = f"{distinct:,} distinct values"
        else:
            try:
                text = series.cast(pl.String)
            except pl.exceptions.PolarsError:
                skipped[name] = f"type {series.dtype} is not charted"
                continue
            columns.append(bars(key, title, text.to_list()))
    return columns, skipped


def derived_columns(session: Any) -> list[ChartColumn]:
    """The charts of labels and predictions, as the session has them now: prediction
    confidence, label source, annotator of the human label and predicted class."""
    n = session.n
    store = session.labels
    pred = session.predictions
    names = store.classes
    layer = effective_labels(store.state, pred).layer.astype(np.int32)
    # LAYERS is none, human, accepted, predicted; the bars put "none" last.
    source = ChartColumn("label source", DERIVED["label source"], "bars",
                         (layer - 1) % len(LAYERS), categories=SOURCE_BARS)
    human = np.asarray(store.state.human) >= 0
    annotators = store.table()["annotator"].to_list() if human.any() else [None] * n
    who = [a if h else None for a, h in zip(annotators, human)]
    if pred is None:
        confidence = np.full(n, np.nan)
        predicted = np.full(n, -1, np.int64)
    else:
        confidence = np.asarray(pred.confidence, np.float64)
        predicted = np.asarray(pred.label, np.int64)
    # One bar per live class, in creation order, then "(none)" (no prediction, or a
    # prediction of a class deleted since).
    ids = np.fromiter(names, np.int64, count=len(names))
    codes = np.full(n, len(ids), np.int32)
    for k, cid in enumerate(ids.tolist()):
        codes[predicted == cid] = k
    return [
        histogram("prediction confidence", DERIVED["prediction confidence"], confidence,
                  edges=np.linspace(0.0, 1.0, CHART_BINS + 1)),
        source,
        bars("annotator", DERIVED["annotator"], who),
        ChartColumn("predicted class", DERIVED["predicted class"], "bars", codes,
                    categories=(*names.values(), None)),
    ]
