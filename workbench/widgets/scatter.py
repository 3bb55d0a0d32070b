"""The map: every item as a point, drawn by WebGL in the browser (regl-scatterplot).

What travels, and how:

* coordinates: the ``coords`` trait, float32 ``x, y`` pairs as one binary buffer, sent once;
* label codes: per point, 0 = none, else a palette slot (uint16; confidence and review
  flags uint8), sent whole once per view in reply to its ``ready`` message;
* a relabel: a ``patch`` message with the changed indices (uint32) and their new codes,
  never the coordinates and never the unchanged codes;
* the selection: the ``selection`` trait, uint32 indices as one binary buffer, both ways;
* thumbnails: on demand, a ``thumb`` request answered with the image bytes as a buffer.

Above ``budget`` points the kernel keeps the coordinates (level of detail, see
:mod:`workbench.widgets._lod`): ``ready`` gets a ``points`` message (an overview), each
numbered ``view`` request the points of its rectangle up to the budget, and a ``lasso``
polygon is resolved here over all points.

The widget holds no labels of its own: the app encodes the session's state into codes
and calls :meth:`ScatterMap.update`; key presses go back to the app as actions. Fields,
colour modes and message types are those of :mod:`workbench.widgets._contract`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anywidget
import numpy as np
import traitlets

from .. import _config as config
from .._config import MAP_HEIGHT, MAP_POINT_SIZE
from ._bundle import bundle
from ._contract import (
    CODE_FIELDS,
    COLOR_MODES,
    KEY_ACTIONS,
    LASSO_TYPES,
    MAP_BROWSER_SETS,
    MAX_LABEL_KEY,
)
from ._lod import Detail, as_polygon, as_rect
from ._messages import MessageReplies
from ._positions import as_position, as_positions

__all__ = ["CODE_FIELDS", "COLOR_MODES", "ScatterMap", "normalize_coords"]

log = logging.getLogger("workbench.widgets")


def _bytes_from_json(value: Any, widget: Any) -> bytes:
    # Buffers arrive as memoryview; the trait stores plain bytes.
    return b"" if value is None else bytes(value)


def normalize_coords(coords: Any) -> np.ndarray:
    """(N, 2) finite coordinates as float32 inside [-1, 1], aspect ratio kept.

    Coordinates already inside [-1, 1] are kept as they are (so the map matches the
    session's ``coords``); others are centred and scaled to fit.
    """
    xy = np.asarray(coords, dtype=np.float32)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0:
        raise ValueError(f"coords must have shape (N, 2) with N >= 1, got {xy.shape}")
    if not np.isfinite(xy).all():
        bad = int(np.flatnonzero(~np.isfinite(xy).all(axis=1))[0])
        raise ValueError(f"coords row {bad} is NaN or infinite; recompute the layout")
    if np.abs(xy).max() <= 1.0:
        return np.ascontiguousarray(xy)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float((hi - lo).max()) or 1.0
    return np.ascontiguousarray((xy - (lo + hi) / 2) * (1.9 / span), dtype=np.float32)


def default_point_size(n: int) -> float:
    """Smaller points for bigger maps, so dense regions keep their structure."""
    if n <= 10_000:
        return float(MAP_POINT_SIZE)
    if n <= 200_000:
        return 3.0
    return 1.5


class ScatterMap(MessageReplies, anywidget.AnyWidget):
    """WebGL map of ``N`` points with lasso/box selection, legend and hover previews.

    Parameters
    ----------
    coords : (N, 2) coordinates (see :func:`normalize_coords`).
    height : pixels (default ``MAP_HEIGHT``).
    point_size : pixels; default depends on N.
    thumbnail : ``fn(index) -> dict`` answering hover requests, with keys ``kind``
        ("image"/"text"/"vector"), ``data`` (bytes or None), ``mime``, ``text``, ``label``.
    on_action : ``fn(message: dict)`` called for key presses (``label_key`` with ``key``
        1-9, ``remove_labels``, ``undo``, ``redo``) after validation.

    Attributes
    ----------
    selected : (K,) int64 positions of the selected points (settable via :meth:`select`).
    bytes_sent : wire bytes (JSON + buffers) of the last :meth:`update`.
    """

    _what = "map"
    _browser_sets = MAP_BROWSER_SETS

    _esm = bundle("scatter")

    coords = traitlets.Bytes(b"").tag(sync=True)
    n = traitlets.Int(0).tag(sync=True)
    classes = traitlets.List(traitlets.Dict()).tag(sync=True)
    color_by = traitlets.Enum(COLOR_MODES, default_value="label").tag(sync=True)
    selection = traitlets.Bytes(b"").tag(sync=True, from_json=_bytes_from_json)
    lasso_type = traitlets.Enum(LASSO_TYPES, default_value="freeform").tag(sync=True)
    point_size = traitlets.Float(float(MAP_POINT_SIZE)).tag(sync=True)
    height = traitlets.Int(MAP_HEIGHT).tag(sync=True)
    n_clusters = traitlets.Int(0).tag(sync=True)
    #: Suggested cluster names drawn on the map: ``{"x", "y", "name", "level", "size"}`` per
    #: name, ``x, y`` in the coordinates of ``coords``, ``level`` ``"coarse"`` (shown zoomed
    #: out) or ``"fine"`` (zoomed in); drawn as text, never markup.
    cluster_labels = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: Most points drawn at once; with ``n`` above it the browser gets samples (level of
    #: detail) and ``coords`` stays empty.
    budget = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        coords: Any,
        *,
        height: int = MAP_HEIGHT,
        point_size: float | None = None,
        thumbnail: Callable[[int], dict[str, Any]] | None = None,
        on_action: Callable[[dict[str, Any]], None] | None = None,
        budget: int | None = None,
        **kwargs: Any,
    ) -> None:
        xy = normalize_coords(coords)
        n = xy.shape[0]
        self._n = n  # fixed: every code array and the front end's buffers have this length
        self._detail = Detail(
            xy, config.MAP_POINT_BUDGET if budget is None else int(budget),
            grid=config.MAP_LOD_GRID, per_group=config.MAP_LOD_MIN_PER_GROUP,
            must_share=config.MAP_LOD_LABELLED_SHARE, margin=config.MAP_VIEW_MARGIN,
            cache=config.MAP_VIEW_CACHE)
        #: Above the budget: positions last sent (overview or view), of the overview, and the
        #: last lasso's polygon ((V, 2), data coordinates); None below (all points drawn).
        self.loaded: np.ndarray | None = None
        self.overview: np.ndarray | None = None
        self.lasso_polygon: np.ndarray | None = None
        super().__init__(
            coords=b"" if self._detail.on else xy.tobytes(), budget=self._detail.budget,
            n=n, height=int(height),
            point_size=float(point_size) if point_size is not None else default_point_size(n),
            **kwargs,
        )
        self._codes: dict[str, np.ndarray] = {
            f: np.zeros(n, dt) for f, dt in CODE_FIELDS.items()
        }
        self._thumbnail = thumbnail
        self._on_action = on_action
        self._seq = 0
        self.bytes_sent = 0
        self.views_ready = 0
        self._on_shown: list[Any] = []
        self.on_msg(self._on_custom_msg)

    # -- validation (values from Python and from the browser) ---------------------------

    @traitlets.validate("n")
    def _valid_n(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] != self._n:
            raise traitlets.TraitError(
                f"n is the number of points, {self._n}; it cannot become {proposal['value']!r}"
            )
        return proposal["value"]

    @traitlets.validate("coords")
    def _valid_coords(self, proposal: dict[str, Any]) -> bytes:
        value = proposal["value"]
        if not value and self._detail.on:
            return value
        if len(value) != self._n * 8:
            raise traitlets.TraitError(
                f"coords must be {self._n} float32 (x, y) pairs ({self._n * 8} bytes), "
                f"got {len(value)} bytes"
            )
        self._detail.moved(np.frombuffer(value, np.float32).reshape(-1, 2).copy())
        if not self._detail.on:
            return value
        # Above the budget the coordinates stay here: the views load their points again.
        if self.views_ready:
            self._send_msg({"type": "reload"})
        return b""

    @traitlets.observe("selection")
    def _selection_changed(self, change: dict[str, Any]) -> None:
        self._detail.version += 1  # the samples keep the selected points

    @traitlets.validate("cluster_labels")
    def _valid_cluster_labels(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for k, d in enumerate(proposal["value"]):
            try:
                x, y, size = float(d["x"]), float(d["y"]), int(d.get("size", 0))
                name, level = d["name"], d["level"]
            except (KeyError, TypeError, ValueError) as e:
                raise traitlets.TraitError(
                    f"cluster_labels[{k}] needs numbers x, y (size) and strings name, level; "
                    f"got {d!r}") from e
            if not (np.isfinite(x) and np.isfinite(y)) or not isinstance(name, str) \
                    or level not in ("fine", "coarse"):
                raise traitlets.TraitError(
                    f"cluster_labels[{k}]: x, y must be finite, name a string and level "
                    f"'fine' or 'coarse'; got {d!r}")
            out.append({"x": x, "y": y, "name": name, "level": level, "size": size})
        return out

    @traitlets.validate("selection")
    def _valid_selection(self, proposal: dict[str, Any]) -> bytes:
        value = proposal["value"]
        if len(value) % 4:
            raise traitlets.TraitError(
                f"selection must be uint32 positions (a multiple of 4 bytes), "
                f"got {len(value)} bytes"
            )
        try:
            as_positions(np.frombuffer(value, np.uint32), self._n, what="selection")
        except IndexError as e:
            raise traitlets.TraitError(str(e)) from e
        return value

    # -- state ---------------------------------------------------------------------------

    @property
    def selected(self) -> np.ndarray:
        """(K,) int64 positions of the selected points, sorted."""
        return np.frombuffer(self.selection, dtype=np.uint32).astype(np.int64)

    def select(self, indices: Any) -> None:
        """Select points (replaces the selection; empty clears it): positions, whole
        floats or an (N,) boolean mask, as :func:`~workbench.widgets._positions.as_positions`."""
        idx = as_positions(indices, self._n, what="selection")
        self.selection = np.unique(idx).astype(np.uint32).tobytes() if idx.size else b""

    def codes(self, field: str) -> np.ndarray:
        """A copy of the current codes of ``field`` (one of ``CODE_FIELDS``)."""
        return self._codes[self._field(field)].copy()

    def update(self, **fields: Any) -> int:
        """Set code arrays and send what changed; return the bytes sent.

        Each keyword is a field of ``CODE_FIELDS`` with an (N,) integer array. Changed
        points go as one ``patch`` message per field (indices + codes); when a patch would
        be larger than the whole field, the whole field is sent instead.
        """
        staged = []
        for name, values in fields.items():
            field = self._field(name)
            dt = CODE_FIELDS[field]
            arr = np.asarray(values)
            if arr.shape != (self._n,):
                raise ValueError(f"{field} codes must have shape ({self._n},), got {arr.shape}")
            if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(dt).max):
                raise ValueError(
                    f"{field} codes must lie in [0, {np.iinfo(dt).max}]; "
                    f"got [{arr.min()}, {arr.max()}]"
                )
            new = arr.astype(dt)
            changed = np.flatnonzero(new != self._codes[field])
            self._codes[field] = new
            if changed.size:
                staged.append((field, changed))
        sent = 0
        if staged:
            self._seq += 1
            self._detail.version += 1
        if self._detail.on and any(c.size > self._detail.budget for _, c in staged):
            # Bigger than a view: the browser reloads what it shows, with the new codes.
            self.bytes_sent = self._send_msg({"type": "reload"})
            return self.bytes_sent
        for k, (field, changed) in enumerate(staged):
            last = k == len(staged) - 1
            new = self._codes[field]
            if self._detail.on or changed.size * (4 + new.itemsize) < new.nbytes:
                msg = {"type": "patch", "field": field, "seq": self._seq, "last": last}
                buffers = [changed.astype(np.uint32).tobytes(), new[changed].tobytes()]
            else:
                msg = {"type": "codes", "fields": [field], "seq": self._seq}
                buffers = [new.tobytes()]
            sent += self._send_msg(msg, buffers)
        self.bytes_sent = sent
        return sent

    # -- messages ------------------------------------------------------------------------

    def _field(self, name: str) -> str:
        if name not in CODE_FIELDS:
            raise ValueError(f"unknown code field {name!r}; fields are {list(CODE_FIELDS)}")
        return name

    def _index(self, content: dict[str, Any]) -> int | None:
        idx = content.get("index")
        try:
            return as_position(idx, self._n)
        except (ValueError, IndexError):
            self._reject(content, f"index must be an integer in [0, {self._n}), got {idx!r}")
            return None

    def when_shown(self, fn: Any) -> None:
        """Call ``fn()`` once a view of the map is on screen (now, if one is): work only a
        person looking at the map needs (e.g. naming clusters) never runs in a script."""
        if self.views_ready:
            fn()
        else:
            self._on_shown.append(fn)

    def _on_custom_msg(self, widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            self._reject(content, "a message must be an object with a string 'type'")
            return
        kind = content["type"]
        if kind == "ready":
            self.views_ready += 1
            shown, self._on_shown = self._on_shown, []
            for fn in shown:
                fn()
            if self._detail.on:  # a quick first overview above twice the budget, then all
                if self._n > 2 * self._detail.budget:
                    first = self._detail.first(self._codes, config.MAP_LOD_FIRST_SHARE)
                    self._send_points("overview", 0, first, self._detail.extent, self._n, True)
                self.overview = self._detail.overview(self._codes, self.selected)
                self._send_points("overview", 0, self.overview, self._detail.extent, self._n)
                return
            # All-zero fields (no predictions yet, no clusters) are left out: the view
            # starts from zeros, and at 1M points each field is 1-2 MB.
            fields = [f for f in CODE_FIELDS if self._codes[f].any()]
            self._send_msg(
                {"type": "codes", "fields": fields, "seq": self._seq},
                [self._codes[f].tobytes() for f in fields],
            )
        elif kind == "thumb":
            self._reply_thumb(content)
        elif kind == "view":
            self._reply_view(content)
        elif kind == "lasso":
            self._resolve_lasso(content)
        elif kind in KEY_ACTIONS:
            if kind == "label_key":
                key = content.get("key")
                if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= MAX_LABEL_KEY:
                    self._reject(content, f"label_key needs a key from 1 to {MAX_LABEL_KEY}, got {key!r}")
                    return
            self._dispatch({"type": kind, **({"key": content["key"]} if kind == "label_key" else {})},
                      content)
        else:
            self._reject(content, f"unknown message type {kind!r}")

    def _reply_thumb(self, content: dict[str, Any]) -> None:
        index = self._index(content)
        if index is not None:
            self._send_thumb(content, index)

    # -- level of detail: above the budget ------------------------------------------------
    def _send_points(self, kind: str, seq: int, positions: np.ndarray,
                     rect: tuple[float, ...], total: int, coarse: bool = False) -> None:
        """Positions, coordinates and (nonzero) codes of the points a view draws."""
        self.loaded = positions
        fields = [f for f in CODE_FIELDS if self._codes[f].any()]
        msg = {"type": "points", "kind": kind, "seq": seq, "rect": list(rect), "coarse": coarse,
               "extent": list(self._detail.extent), "total": total,
               "complete": bool(positions.size == total), "count": int(positions.size),
               "fields": fields, "codes_seq": self._seq}
        buffers = [positions.astype(np.uint32).tobytes(), self._detail.xy[positions].tobytes()]
        buffers += [self._codes[f][positions].tobytes() for f in fields]
        self._send_msg(msg, buffers)

    def _reply_view(self, content: dict[str, Any]) -> None:
        seq, rect = content.get("seq"), as_rect(content.get("rect"))
        if not self._detail.on or rect is None or type(seq) is not int:
            self._reject(content, "a view request needs an integer seq and rect [x0, y0, x1, y1] "
                         "with x0 < x1 and y0 < y1, on a map above its point budget")
            return
        if not self._detail.answers.fresh(seq):
            return  # the view moved on: a newer request was answered already
        positions, grown, total = self._detail.view(rect, self._codes, self.selected)
        self._send_points("view", seq, positions, grown, total)

    def _resolve_lasso(self, content: dict[str, Any]) -> None:
        xy = as_polygon(content.get("polygon"))
        if xy is None or not self._detail.on:
            self._reject(content, "a lasso needs a polygon [x0, y0, x1, y1, ...] of 3 or more "
                         "finite points, on a map above its point budget")
            return
        self.lasso_polygon = xy
        hidden = self._codes["filtered"] > 0
        self.select(self._detail.lasso(xy, self.selected, hidden=hidden,
                                       merge=bool(content.get("merge")),
                                       remove=bool(content.get("remove"))))
