"""Linked filters: small charts of the items' columns beside the map that filter it.

One chart per column (:mod:`workbench.widgets._chart_columns`): numbers as histograms
(drag across one to keep a range), a few categories as bars (click bars to keep them); the
item table's own columns, and the prediction confidence, label source, annotator and
predicted class. Filters of several charts combine (an item must pass all of them). What
they keep is :attr:`FilterCharts.mask`: the map fades the rest (and a lasso leaves it
out), the gallery pages through only what is kept, and every chart shows, over each bar,
how many of its items the filters keep.

Python bins and counts; only the counts travel to the browser, never the rows. The
columns of labels and predictions are recomputed in a worker thread after each change
and applied on the main thread.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anywidget
import ipywidgets as w
import numpy as np
import traitlets

from ._bundle import bundle
from ._chart_columns import ChartColumn, derived_columns, metadata_columns
from ._contract import CHART_BROWSER_SETS, CHART_MESSAGES, SessionEvent
from ._messages import MessageReplies
from ._threads import OffMainThread

__all__ = ["FilterCharts"]

log = logging.getLogger("workbench.widgets")

#: Width of the charts beside the map, in pixels: a 290 px chart (js/charts.js) and margins.
PANEL_WIDTH = 320


def _number(value: Any) -> float | None:
    """A finite float from a message, else None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class FilterCharts(MessageReplies, anywidget.AnyWidget):
    """The filter charts of ``app`` (a :class:`~workbench.widgets.app.WorkbenchApp`),
    connected to its session, map and gallery when created.

    Everything a brush or a click does is a method, so a notebook cell can do it too:
    :meth:`set_range`, :meth:`set_categories`, :meth:`clear`; :attr:`mask` is what the
    filters keep.

    Attributes
    ----------
    charts : one dict per chart (what the browser draws): ``name``, ``title``, ``kind``
        ("histogram" or "bars"), ``counts`` (all items per bin or bar), ``kept`` (those the
        filters keep), ``missing`` / ``missing_kept`` (items without a value), ``edges``
        (histogram) or ``categories`` (bars, None = "(none)"), and the chart's filter:
        ``range`` ([lo, hi] or None) or ``chosen`` (the bars kept; empty: all).
    kept, total : items the filters keep, of all. skipped : ``{column: why not charted}``.
    """

    _what = "charts"
    _browser_sets = CHART_BROWSER_SETS

    _esm = bundle("charts")

    charts = traitlets.List(traitlets.Dict()).tag(sync=True)
    kept = traitlets.Int(0).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    skipped = traitlets.Dict().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, app: Any) -> None:
        self.app = app
        self.session = app.session
        n = int(self.session.n)
        self._n = n
        self._columns: dict[str, ChartColumn] = {}
        self._metadata: tuple[list[ChartColumn], dict[str, str]] | None = None
        self._ranges: dict[str, tuple[float, float]] = {}
        self._chosen: dict[str, list[str | None]] = {}
        self._mask = np.ones(n, bool)
        self._closed = False
        self._gallery_filtered = False  # whether the gallery was last given a filter
        super().__init__(total=n, kept=n)
        self.layout.width = f"{PANEL_WIDTH}px"
        self.layout.flex = "0 0 auto"
        self.on_msg(self._on_custom_msg)
        self._job = OffMainThread(self._compute, self._apply_columns, on_error=self._failed,
                                  loop=getattr(app, "_loop", None), name="workbench-charts")
        self._unsubscribe = self.session.subscribe(self._on_event)
        self._job.submit()

    # -- what the filters keep --------------------------------------------------------------

    @property
    def mask(self) -> np.ndarray:
        """(N,) bool: the items every filter keeps (all True without a filter)."""
        return self._mask.copy()

    @property
    def active(self) -> bool:
        """Whether any chart filters."""
        return bool(self._ranges or self._chosen)

    def keep(self, items: Any) -> np.ndarray:
        """The positions among ``items`` (positions, ids or a mask) the filters keep."""
        idx = self.app.view.positions(items)
        return idx[self._mask[idx]]

    def columns(self) -> list[str]:
        """The charted columns' names (what :meth:`set_range` and :meth:`set_categories`
        take), once computed."""
        self._ready()
        return list(self._columns)

    # -- what a brush or a click does -------------------------------------------------------

    def set_range(self, column: str, lo: float, hi: float) -> None:
        """Keep the items whose ``column`` (a histogram) lies in ``[lo, hi]``; items
        without a value are left out. Replaces the column's range."""
        col = self._column(column, "histogram")
        lo_f, hi_f = _number(lo), _number(hi)
        if lo_f is None or hi_f is None or lo_f > hi_f:
            raise ValueError(f"the range of chart {col.name!r} needs two finite numbers "
                             f"lo <= hi, got {lo!r} and {hi!r}")
        self._ranges[col.name] = (lo_f, hi_f)
        self._update()

    def set_categories(self, column: str, values: Any) -> None:
        """Keep the items whose ``column`` (a bar chart) is one of ``values`` (None: the
        "(none)" bar); no values clears the column's filter. A value kept before stays
        allowed after its bar emptied (the last label of an annotator removed): it shows as
        a bar of 0 until it is no longer kept."""
        col = self._column(column, "bars")
        chosen = list(dict.fromkeys([values] if isinstance(values, str) else values))
        before = self._chosen.get(col.name, [])
        unknown = [v for v in chosen if v not in col.categories and v not in before]
        if unknown:
            raise ValueError(f"chart {col.name!r} has no bar {unknown[0]!r}; its bars are "
                             f"{list(col.categories)}")
        if chosen:
            self._chosen[col.name] = chosen
        else:
            self._chosen.pop(col.name, None)
        self._update()

    def toggle(self, column: str, value: str | None) -> None:
        """Keep (or no longer keep) one bar of ``column``: what clicking it does."""
        chosen = list(self._chosen.get(column, []))
        if value in chosen:
            chosen.remove(value)
        else:
            chosen.append(value)
        self.set_categories(column, chosen)

    def clear(self, column: str | None = None) -> None:
        """Clear the filter of ``column`` (default: every chart's)."""
        if column is None:
            self._ranges.clear()
            self._chosen.clear()
        else:
            name = self._column(column).name
            self._ranges.pop(name, None)
            self._chosen.pop(name, None)
        self._update()

    # -- life cycle -------------------------------------------------------------------------

    def beside(self, map_widget: Any) -> w.HBox:
        """The map and these charts side by side (the map takes the room left)."""
        map_widget.layout.flex = "1 1 0%"
        map_widget.layout.min_width = "0"
        return w.HBox([map_widget, self], layout=w.Layout(align_items="flex-start",
                                                          width="100%"))

    def refresh(self) -> None:
        """Recompute the charts of labels and predictions (a worker thread)."""
        self._job.submit()

    def wait(self, timeout: float | None = 120.0) -> None:
        """Block until the charts are computed and, on the main thread, shown."""
        self._job.wait(timeout)

    def close(self) -> None:
        self._closed = True
        self._unsubscribe()
        self._job.close()
        super().close()

    # -- internals ------------------------------------------------------------------------

    def _ready(self) -> None:
        if not self._columns:
            self.wait()
        if not self._columns:
            raise RuntimeError(f"the charts are not computed: {self.error or 'still busy'}")

    def _column(self, name: str, kind: str | None = None) -> ChartColumn:
        self._ready()
        col = self._columns.get(name)
        if col is None:
            raise ValueError(f"no chart {name!r}; the charts are {list(self._columns)}"
                             + (f" (not charted: {self.skipped[name]})"
                                if name in self.skipped else ""))
        if kind is not None and col.kind != kind:
            what = "a range" if kind == "histogram" else "categories"
            shape = "histogram" if col.kind == "histogram" else "bar chart"
            raise ValueError(f"chart {name!r} is a {shape}: it takes "
                             + ("categories (set_categories)" if col.kind == "bars"
                                else "a range (set_range)") + f", not {what}")
        return col

    def _compute(self) -> tuple[list[ChartColumn], dict[str, str], list[ChartColumn]]:
        """Worker thread: the item table's charts (once) and those of labels/predictions."""
        if self._metadata is None:
            self._metadata = metadata_columns(self.session.items)
        columns, skipped = self._metadata
        return columns, skipped, derived_columns(self.session)

    def _apply_columns(self, result: tuple[list[ChartColumn], dict[str, str],
                                           list[ChartColumn]]) -> None:
        if self._closed:  # a result that arrived after close: nothing shows it
            return
        metadata, skipped, derived = result
        self._columns = {c.name: c for c in [*metadata, *derived]}
        self.skipped = dict(skipped)
        self.error = ""
        self._update()

    def _failed(self, e: BaseException) -> None:
        log.error("workbench: the filter charts failed: %s", e, exc_info=e)
        self.error = f"the charts failed: {e}"

    def _on_event(self, event: str) -> None:
        if event in (SessionEvent.LABELS, SessionEvent.PREDICTIONS):
            self._job.submit()  # any thread: the job hands its result to the main thread

    def _update(self) -> None:
        """The mask from every filter, then the charts, the map and the gallery."""
        mask = np.ones(self._n, bool)
        for name, (lo, hi) in self._ranges.items():
            mask &= self._columns[name].in_range(lo, hi)
        for name, chosen in self._chosen.items():
            mask &= self._columns[name].among(chosen)
        self._mask = mask
        self.charts = [self._chart(c, mask) for c in self._columns.values()]
        self.kept = int(mask.sum())
        self.app.map.update(filtered=(~mask).astype(np.uint8))
        if self.active or self._gallery_filtered:  # else the gallery pages as it was
            self.app.gallery.set_filter(mask if self.active else None)
            self._gallery_filtered = self.active

    def _chart(self, col: ChartColumn, mask: np.ndarray) -> dict[str, Any]:
        """What the browser draws of one chart: counts only."""
        out: dict[str, Any] = {
            "name": col.name, "title": col.title, "kind": col.kind,
            "counts": col.counts().tolist(), "kept": col.counts(mask).tolist(),
            "missing": col.missing(), "missing_kept": col.missing(mask),
        }
        if col.edges is not None:
            out["edges"] = col.edges.tolist()
            lo_hi = self._ranges.get(col.name)
            out["range"] = list(lo_hi) if lo_hi else None
        else:
            chosen = self._chosen.get(col.name, [])
            gone = [v for v in chosen if v not in col.categories]  # kept bars now empty
            out["categories"] = [*col.categories, *gone]
            out["counts"] += [0] * len(gone)
            out["kept"] += [0] * len(gone)
            out["chosen"] = list(chosen)
        return out

    def _on_custom_msg(self, widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict) or content.get("type") not in CHART_MESSAGES:
            self._reject(content, f"a message must be an object with a 'type' of "
                                  f"{list(CHART_MESSAGES)}")
            return
        kind, column = content["type"], content.get("column")
        try:
            if kind == "clear":
                if column is not None and not isinstance(column, str):
                    raise ValueError(f"clear needs a chart's name or null, got {column!r}")
                self.clear(column)
            elif not isinstance(column, str):
                raise ValueError(f"{kind} needs a chart's name, got {column!r}")
            elif kind == "brush":
                self.set_range(column, content.get("lo"), content.get("hi"))
            else:
                category = content.get("category")
                if category is not None and not isinstance(category, str):
                    raise ValueError(f"toggle needs a bar's value (a string or null), got "
                                     f"{category!r}")
                self.toggle(column, category)
        except (ValueError, RuntimeError) as e:
            self._reject(content, str(e))

