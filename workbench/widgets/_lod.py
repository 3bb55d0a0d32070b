"""Level of detail for big maps: which points the browser draws, and selections over all.

The kernel keeps every coordinate; the browser draws at most a budget of points. This module
holds the arithmetic, free of widget code:

* :func:`sample`: a density-aware choice of at most ``budget`` points (a grid over the
  region, each cell capped alike so sparse cells keep all their points), after a minimum per
  class/cluster and the labelled and selected points;
* :func:`in_rect`: the points inside a view rectangle (what a zoomed-in view loads);
* :func:`in_polygon`: the points inside a lasso or box polygon, over every point, exact;
* :class:`ViewAnswers`: the latest-request rule (stale requests are dropped) and a small
  LRU of answered views;
* :class:`Detail`: all of it for one map's coordinates and codes (what the map widget asks).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["Detail", "ViewAnswers", "as_polygon", "as_rect", "grow_rect", "in_polygon", "in_rect", "sample"]

#: Seed of the sampling: the same state gives the same overview (a redraw does not shimmer).
_SEED = 19


def _bounds(xy: np.ndarray) -> tuple[float, float, float, float]:
    x, y = xy[:, 0], xy[:, 1]  # column by column: numpy's axis=0 reduction is slow here
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def _cells(xy: np.ndarray, rect: Sequence[float], grid: int) -> np.ndarray:
    """The grid cell (row-major, ``grid`` per side) of each point; outside points clamp."""
    x0, y0, x1, y1 = (float(v) for v in rect)
    sx = np.float32(grid / max(x1 - x0, 1e-12))
    sy = np.float32(grid / max(y1 - y0, 1e-12))
    fx = xy[:, 0] - np.float32(x0)
    fx *= sx
    np.clip(fx, 0, grid - 1, out=fx)
    fy = xy[:, 1] - np.float32(y0)
    fy *= sy
    np.clip(fy, 0, grid - 1, out=fy)
    cells = fx.astype(np.int32)
    cells *= grid
    cells += fy.astype(np.int32)
    return cells


def _cap(counts: np.ndarray, room: int) -> float:
    """The largest per-cell cap ``m`` with ``sum(min(counts, m)) <= room`` (water filling)."""
    lo, hi = 0.0, float(counts.max())
    for _ in range(40):
        mid = (lo + hi) / 2
        if np.minimum(counts, mid).sum() <= room:
            lo = mid
        else:
            hi = mid
    return lo


def density_sample(xy: np.ndarray, room: int, rng: np.random.Generator, *,
                   rect: Sequence[float] | None = None, grid: int = 256) -> np.ndarray:
    """At most ``room`` row numbers of ``xy`` (sorted), spread by density.

    A ``grid`` x ``grid`` grid over ``rect`` (default the points' bounds) gets one cap ``m``
    for every cell, the largest that fits ``room``: a cell with at most ``m`` points keeps
    them all, a denser one keeps each point with probability ``m / count``; a random
    excess over ``room`` is dropped from the dense cells, so the count never exceeds it.
    """
    k = xy.shape[0]
    if room <= 0 or k == 0:
        return np.zeros(0, np.int64)
    if k <= room:
        return np.arange(k, dtype=np.int64)
    # No finer than room / 4 cells: a small budget still keeps a few points per dense cell.
    grid = max(8, min(grid, int(np.sqrt(room / 4))))
    cells = _cells(xy, rect if rect is not None else _bounds(xy), grid)
    counts = np.bincount(cells, minlength=grid * grid)
    m = _cap(counts, room)
    p = np.minimum(np.float32(1), np.float32(m) / counts[cells].astype(np.float32))
    kept = np.flatnonzero(rng.random(k, dtype=np.float32) < p)
    if kept.size > room:  # chance kept a few too many: drop them from the dense cells
        thinned = kept[p[kept] < 1]
        drop = rng.choice(thinned, min(kept.size - room, thinned.size), replace=False)
        kept = np.setdiff1d(kept, drop)[:room]
    return kept.astype(np.int64)


def sample(xy: np.ndarray, budget: int, *, groups: Sequence[np.ndarray] = (),
           must: np.ndarray | None = None, rect: Sequence[float] | None = None,
           grid: int = 256, per_group: int = 200, must_share: float = 0.5) -> np.ndarray:
    """At most ``budget`` row numbers of ``xy`` (sorted int64) that keep the map's look.

    Parameters
    ----------
    xy : (K, 2) coordinates of the candidates.
    budget : the most rows returned; with ``K <= budget`` every row.
    groups : (K,) integer codes (class slots, clusters; 0 = none): each nonzero code keeps
        about ``per_group`` of its points (all of a smaller group), so none vanishes.
    must : (K,) bool, the labelled and selected points: all kept while they fit in
        ``must_share`` of the budget, else a density sample of them that does.
    rect : the region the grid covers (default the points' bounds).
    grid : cells per side of the density grid.

    Returns
    -------
    Sorted positions into ``xy``; the rest of the budget is a :func:`density_sample` of
    the points not yet kept.
    """
    k = xy.shape[0]
    if k <= budget:
        return np.arange(k, dtype=np.int64)
    rng = np.random.default_rng(_SEED)
    rect = _bounds(xy) if rect is None else rect
    keep = np.zeros(k, bool)
    u = None
    for codes in groups:
        codes = np.asarray(codes)
        if not codes.any():
            continue
        if u is None:
            u = rng.random(k, dtype=np.float32)
        counts = np.bincount(codes, minlength=1).astype(np.float32)
        counts[0] = np.inf  # code 0 (none) is no group
        keep |= u < np.float32(per_group) / counts[codes]
    if keep.sum() > budget // 2:  # more groups than the budget affords: thin them out
        idx = np.flatnonzero(keep)
        keep[:] = False
        keep[idx[density_sample(xy[idx], budget // 2, rng, rect=rect, grid=grid)]] = True
    if must is not None and must.any():
        idx = np.flatnonzero(must & ~keep)
        room = max(int(budget * must_share) - int(keep.sum()), 0)
        keep[idx[density_sample(xy[idx], room, rng, rect=rect, grid=grid)]] = True
    rest = np.flatnonzero(~keep)
    room = budget - int(keep.sum())
    keep[rest[density_sample(xy[rest], room, rng, rect=rect, grid=grid)]] = True
    return np.flatnonzero(keep).astype(np.int64)


def grow_rect(rect: Sequence[float], share: float) -> tuple[float, float, float, float]:
    """``rect`` (x0, y0, x1, y1) grown by ``share`` of its width and height on each side."""
    x0, y0, x1, y1 = (float(v) for v in rect)
    dx, dy = (x1 - x0) * share, (y1 - y0) * share
    return x0 - dx, y0 - dy, x1 + dx, y1 + dy


def as_rect(value: object) -> tuple[float, float, float, float] | None:
    """``[x0, y0, x1, y1]`` from the browser as floats (x0 < x1, y0 < y1), or None."""
    if not isinstance(value, list) or len(value) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            for v in value):
        return None
    x0, y0, x1, y1 = (float(v) for v in value)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def as_polygon(value: object) -> np.ndarray | None:
    """A flat ``[x0, y0, x1, y1, ...]`` from the browser as a (V, 2) float64 polygon of 3 or
    more finite vertices, or None."""
    try:
        poly = np.asarray(value, np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None
    return poly if poly.shape[0] >= 3 and np.isfinite(poly).all() else None


def in_rect(xy: np.ndarray, rect: Sequence[float]) -> np.ndarray:
    """Sorted positions of the points with ``x0 <= x <= x1`` and ``y0 <= y <= y1``."""
    x0, y0, x1, y1 = (np.float32(v) for v in rect)
    x, y = xy[:, 0], xy[:, 1]
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))


def _crossing_test(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule: inside where a ray to +x crosses the polygon's edges an odd number
    of times (float64, the same arithmetic as the tests' reference)."""
    inside = np.zeros(px.shape[0], bool)
    xs, ys = poly[:, 0], poly[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    for ax, ay, bx, by in zip(xs, ys, xj, yj):
        if ay == by:
            continue  # a horizontal edge never crosses a horizontal ray an odd way
        lo, hi = (ay, by) if ay < by else (by, ay)
        sel = np.flatnonzero((py >= lo) & (py < hi))
        if not sel.size:
            continue
        xc = ax + (py[sel] - ay) * (bx - ax) / (by - ay)
        inside[sel[px[sel] < xc]] ^= True
    return inside


def in_polygon(xy: np.ndarray, polygon: Sequence[Sequence[float]], *, grid: int = 256
               ) -> np.ndarray:
    """Sorted positions of every point inside ``polygon`` ((V, 2), closed or not; even-odd
    rule), exact over all the points.

    Fast at millions of points: points outside the polygon's bounding box are never
    looked at; a grid over the box marks the cells the edges pass through, and only the
    points of those cells are tested edge by edge; a cell clear of every edge is inside or
    outside as a whole (its centre decides).
    """
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    if poly.shape[0] < 3 or not np.isfinite(poly).all():
        raise ValueError(f"a selection polygon needs 3 or more finite vertices, got {poly.shape[0]}")
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    cand = in_rect(xy, (x0, y0, x1, y1))
    if not cand.size:
        return cand.astype(np.int64)
    pts = xy[cand].astype(np.float64)
    w, h = max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)
    # The cells the edges touch: samples along each edge at most half a cell apart, then
    # their neighbours too (an edge clipping a cell's corner has a sample next door).
    a, b = poly, np.roll(poly, -1, axis=0)
    steps = np.ceil(np.maximum(np.abs(b[:, 0] - a[:, 0]) / w, np.abs(b[:, 1] - a[:, 1]) / h)
                    * grid * 2).astype(np.int64) + 1
    t = np.concatenate([np.linspace(0, 1, s + 1) for s in steps])
    e = np.repeat(np.arange(len(poly)), steps + 1)
    samples = a[e] + (b[e] - a[e]) * t[:, None]
    edge = np.zeros((grid + 2, grid + 2), bool)
    ix = np.clip(((samples[:, 0] - x0) / w * grid).astype(np.int64), 0, grid - 1) + 1
    iy = np.clip(((samples[:, 1] - y0) / h * grid).astype(np.int64), 0, grid - 1) + 1
    edge[ix, iy] = True
    touched = edge.copy()
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            touched[1:-1, 1:-1] |= edge[1 + dx:grid + 1 + dx, 1 + dy:grid + 1 + dy]
    touched = touched[1:-1, 1:-1]
    cx = x0 + (np.arange(grid) + 0.5) * w / grid
    cy = y0 + (np.arange(grid) + 0.5) * h / grid
    gx, gy = np.meshgrid(cx, cy, indexing="ij")
    centre_inside = _crossing_test(gx.ravel(), gy.ravel(), poly).reshape(grid, grid)
    pix = np.clip(((pts[:, 0] - x0) / w * grid).astype(np.int64), 0, grid - 1)
    piy = np.clip(((pts[:, 1] - y0) / h * grid).astype(np.int64), 0, grid - 1)
    inside = centre_inside[pix, piy] & ~touched[pix, piy]
    near = np.flatnonzero(touched[pix, piy])
    inside[near] = _crossing_test(pts[near, 0], pts[near, 1], poly)
    return cand[inside].astype(np.int64)


class ViewAnswers:
    """View requests answered newest-first: stale requests dropped, answers kept in an LRU.

    The browser numbers its view requests; a request older than one already answered is
    stale (the view moved on) and :meth:`fresh` says so. Answers (positions) are kept per
    ``(rect, version)``, ``version`` counting changes of what the answers depend on.
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.latest = -1
        self.dropped = 0
        self._lru: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def fresh(self, seq: int) -> bool:
        """True for a request newer than every one answered (then it is the latest)."""
        if seq <= self.latest:
            self.dropped += 1
            return False
        self.latest = seq
        return True

    def get(self, key: tuple) -> np.ndarray | None:
        """The positions answered for ``key``, or None."""
        found = self._lru.get(key)
        if found is not None:
            self._lru.move_to_end(key)
        return found

    def put(self, key: tuple, positions: np.ndarray) -> None:
        """Remember an answer; the least recently used goes beyond ``size``."""
        self._lru[key] = positions
        self._lru.move_to_end(key)
        while len(self._lru) > self.size:
            self._lru.popitem(last=False)

    def clear(self) -> None:
        """Forget every answer (the coordinates changed); the numbering goes on."""
        self._lru.clear()


#: Code fields whose values are groups that keep a minimum in every sample.
GROUP_FIELDS = ("human", "machine", "predicted", "cluster")


class Detail:
    """Level of detail of one map: all ``N`` coordinates, at most ``budget`` drawn at once.

    Parameters
    ----------
    xy : (N, 2) float32 coordinates (kept, not copied).
    budget, grid, per_group, must_share, margin, cache : see ``MAP_POINT_BUDGET``,
        ``MAP_LOD_GRID``, ``MAP_LOD_MIN_PER_GROUP``, ``MAP_LOD_LABELLED_SHARE``,
        ``MAP_VIEW_MARGIN`` and ``MAP_VIEW_CACHE`` in :mod:`workbench._config`.

    Every method takes the current codes (``{field: (N,) array}``) and selection
    (positions): the samples keep every class and cluster, the labelled (``human``) and the
    selected points. ``version`` counts changes of those; answers are cached per version.
    """

    def __init__(self, xy: np.ndarray, budget: int, *, grid: int = 256, per_group: int = 200,
                 must_share: float = 0.5, margin: float = 0.25, cache: int = 8) -> None:
        if budget < 1:
            raise ValueError(f"the map's point budget must be at least 1, got {budget}")
        self.xy, self.budget, self.grid = xy, int(budget), int(grid)
        self.per_group, self.must_share, self.margin = int(per_group), float(must_share), margin
        self.answers = ViewAnswers(cache)
        self.version = 0
        self.extent = _bounds(xy)
        self.last_lasso_s = float("nan")

    @property
    def on(self) -> bool:
        """True when the map has more points than the budget (the browser gets samples)."""
        return self.xy.shape[0] > self.budget

    def _sample(self, idx: np.ndarray | None, rect: Sequence[float] | None,
                codes: Mapping[str, np.ndarray], selected: np.ndarray) -> np.ndarray:
        xy = self.xy if idx is None else self.xy[idx]
        if xy.shape[0] <= self.budget:
            return np.arange(xy.shape[0], dtype=np.int64)
        pick = (lambda a: a) if idx is None else (lambda a: a[idx])
        must = codes["human"] > 0
        if selected.size:
            must = must.copy()
            must[selected] = True
        return sample(xy, self.budget, groups=[pick(codes[f]) for f in GROUP_FIELDS if f in codes],
                      must=pick(must), rect=rect, grid=self.grid, per_group=self.per_group,
                      must_share=self.must_share)

    def overview(self, codes: Mapping[str, np.ndarray], selected: np.ndarray) -> np.ndarray:
        """Sorted positions of the overview: at most ``budget`` points over the whole map."""
        key = ("overview", self.version)
        found = self.answers.get(key)
        if found is None:
            found = self._sample(None, self.extent, codes, selected)
            self.answers.put(key, found)
        return found

    def first(self, codes: Mapping[str, np.ndarray], share: float) -> np.ndarray:
        """Sorted positions of a quick first overview of ``share`` of the budget: a density
        sample of an evenly strided subset of the points (no pass over all of them)."""
        k = max(int(self.budget * share), 1)
        stride = max(self.xy.shape[0] // (4 * k), 1)
        sub = np.arange(0, self.xy.shape[0], stride)
        groups = [codes[f][sub] for f in GROUP_FIELDS if f in codes]
        return sub[sample(self.xy[sub], k, groups=groups, rect=self.extent, grid=self.grid,
                          per_group=self.per_group)]

    def view(self, rect: Sequence[float], codes: Mapping[str, np.ndarray], selected: np.ndarray
             ) -> tuple[np.ndarray, tuple[float, float, float, float], int]:
        """The points of a view: ``(positions, rect, total)``.

        ``rect`` (x0, y0, x1, y1, data coordinates) is grown by ``margin``; ``total``
        counts every point inside it. With ``total <= budget`` the positions are all of
        them (complete detail), else a :func:`sample` of them.
        """
        grown = grow_rect(rect, self.margin)
        key = (tuple(round(v, 9) for v in grown), self.version)
        inside = in_rect(self.xy, grown)
        found = self.answers.get(key)
        if found is None:
            found = inside[self._sample(inside, grown, codes, selected)]
            self.answers.put(key, found)
        return found, grown, int(inside.size)

    def lasso(self, polygon: Sequence[Sequence[float]], selected: np.ndarray, *,
              hidden: np.ndarray | None = None, merge: bool = False, remove: bool = False
              ) -> np.ndarray:
        """The selection after a lasso or box: every point inside ``polygon``, drawn or not,
        less the ``hidden`` ones (a (N,) bool: what the filter charts hide), replacing
        ``selected``, added to it (``merge``) or taken from it (``remove``)."""
        t0 = time.perf_counter()
        inside = in_polygon(self.xy, polygon, grid=self.grid)
        if hidden is not None and hidden.any():
            inside = inside[~hidden[inside]]
        if merge:
            inside = np.union1d(selected, inside)
        elif remove:
            inside = np.setdiff1d(selected, inside)
        self.last_lasso_s = time.perf_counter() - t0
        return inside.astype(np.int64)

    def moved(self, xy: np.ndarray) -> None:
        """New coordinates (a new layout): cached answers are forgotten."""
        self.xy = xy
        self.extent = _bounds(xy)
        self.answers.clear()
        self.version += 1
