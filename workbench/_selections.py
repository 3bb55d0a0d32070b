"""Selections of the :class:`~workbench.Workbench`: audit a lasso against the kNN graph, the
duplicates and outliers queues, search above a similarity threshold, selections combined
(union, intersection, difference) and selections saved under a name.

Saved selections are project data, kept in their own file in the project folder,
``selections.json`` (:data:`~workbench._config.SELECTIONS_FILE`), rewritten whole and
atomically (:func:`~workbench._files.atomic_write`) on every save: a crash leaves the old
file or the new one, never half of one. A selection is stored as item *ids* (positions
change meaning if items are ever reordered), with who saved it and when. Not in
``workbench.json`` (project settings): that file is read at every open and a selection can
hold 100,000 ids. Not in the label log either: a selection is a person's working set, not a
label, and is neither undone nor shared through a team's label store (a team shares the
project folder, so the file is shared with it; two saves at the same moment: the last wins
whole). The session mixes :class:`Selections` in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._config import (
    AUDIT_FRACTION,
    NEAR_DUPLICATE_SIMILARITY,
    OUTLIER_QUEUE_SIZE,
    RULE_PROMPT_CHUNK,
    SELECTIONS_FILE,
)
from ._files import atomic_write

__all__ = ["COMBINE_MODES", "Selections", "combine", "read_selections", "saved_ids"]

#: How a new selection meets the current one: it replaces it, or their union, their
#: intersection, or the current one less the new one (difference).
COMBINE_MODES = ("replace", "union", "intersection", "difference")

_VERSION = 1


def combine(current: Sequence[int] | np.ndarray, new: Sequence[int] | np.ndarray,
            mode: str = "replace") -> np.ndarray:
    """(K,) int64 sorted positions: ``new`` combined with ``current`` by ``mode`` (one of
    :data:`COMBINE_MODES`)."""
    a = np.unique(np.asarray(current, np.int64).ravel())
    b = np.unique(np.asarray(new, np.int64).ravel())
    if mode == "replace":
        return b
    if mode == "union":
        return np.union1d(a, b)
    if mode == "intersection":
        return np.intersect1d(a, b, assume_unique=True)
    if mode == "difference":
        return np.setdiff1d(a, b, assume_unique=True)
    raise ValueError(f"combine mode must be one of {list(COMBINE_MODES)}, not {mode!r}")


def read_selections(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The saved selections of the project at ``folder``: ``{name: {"ids": [...],
    "annotator": ..., "saved_at": ...}}``, in the order saved ({} when none)."""
    path = Path(folder) / SELECTIONS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != _VERSION or not isinstance(data.get("selections"), dict):
            raise ValueError("not a selections file of this version")
        for name, entry in data["selections"].items():
            if not isinstance(entry.get("ids"), list):
                raise ValueError(f"selection {name!r} has no list of ids")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{str(path)!r} is damaged ({e}); it holds only the saved "
                         "selections: move it away to start afresh") from e
    return data["selections"]


def saved_ids(folder: str | os.PathLike[str], name: str) -> list[str]:
    """The item ids of the selection saved as ``name`` in the project at ``folder``."""
    saved = read_selections(folder)
    if name not in saved:
        known = ", ".join(repr(k) for k in saved) or "none yet"
        raise KeyError(f"no saved selection {name!r} in {str(folder)!r} (saved: {known}); "
                       "save one with wb.save_selection(name, items)")
    return [str(i) for i in saved[name]["ids"]]


class Selections:
    """``audit_selection``, ``duplicates``, ``outliers``, ``similarity`` and
    ``search_above``, ``combine``, and saved selections (``save_selection``,
    ``saved_selections``, ``saved_selection``, ``delete_selection``, ``subset_ids``). Needs
    ``graph``, ``vectors``, ``items``, ``n``, ``labels``, ``project`` and ``text_encoder``
    of the session."""

    combine = staticmethod(combine)

    # -- the lasso audit, duplicates, outliers ----------------------------------------------

    def audit_selection(self, items: Any, *, fraction: float = AUDIT_FRACTION) -> Any:
        """Which of ``items`` (a selection: positions, ids or an (N,) mask) are probably not
        like the rest, and which items outside probably belong, read off the full kNN graph
        (the 2-D map tears and merges regions; the graph does not).

        Returns an :class:`~workbench.learn.audit.Audit`: ``suspects`` (members whose
        neighbours mostly lie outside) and ``missed`` (outside items whose neighbours mostly
        lie inside), the clearest first; ``fraction`` is the share that counts as "mostly".
        """
        from .learn.audit import audit_selection

        return audit_selection(self.graph, self.positions_of(items), fraction=fraction)

    def duplicates(self, threshold: float = NEAR_DUPLICATE_SIMILARITY) -> list[np.ndarray]:
        """Groups of near-duplicate items, largest first: items joined by graph edges of
        cosine similarity at least ``threshold`` (cosine distance at most 1 - threshold);
        each group (G,) int64 positions, G >= 2."""
        from .neighbors import near_duplicates

        return near_duplicates(self.graph, threshold=threshold)

    def outliers(self, n: int = OUTLIER_QUEUE_SIZE) -> np.ndarray:
        """(n,) int64 positions of the most isolated items, most isolated first: the
        largest cosine distance to their k-th nearest neighbour
        (:func:`~workbench.neighbors.outlier_scores`)."""
        from .neighbors import outlier_scores

        if int(n) < 0:
            raise ValueError(f"n is a number of items, not {n}")
        scores = outlier_scores(self.graph)
        order = np.lexsort((np.arange(scores.size), -scores))
        return order[: int(n)].astype(np.int64)

    # -- search with a threshold ------------------------------------------------------------

    def similarity(self, query: str | None = None, items: Any = None) -> np.ndarray:
        """(N,) float32 cosine similarity of every item to a text ``query`` (the text tower
        of the model that embedded the items) or to ``items`` (the mean of their unit
        vectors, as "more like this"); give exactly one."""
        if (query is None) == (items is None):
            raise ValueError("give a text query or items to compare with, one of the two")
        if query is not None:
            if not str(query).strip():
                raise ValueError("the search text is empty")
            if self.text_encoder is None:
                self.text_encoder = self._text_encoder_from_project()
            if self.text_encoder is None:
                raise ValueError(
                    "text search needs a text encoder in the same space as the vectors: "
                    "embed with CLIP (images) or a sentence model (texts), or pass "
                    "text_encoder= (a callable list[str] -> (Q, D) array)")
            q = np.asarray(self.text_encoder([str(query)]), np.float32).reshape(-1)
        else:
            idx = self.positions_of(items)
            if idx.size == 0:
                raise ValueError("select items first, then ask for items like them")
            rows = np.asarray(self.vectors[idx], np.float32)
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            q = rows.mean(axis=0)
        if q.shape != (self.vectors.shape[1],):
            raise ValueError(f"the text encoder gave {q.size} numbers for a query; the "
                             f"vectors have {self.vectors.shape[1]}: not the same model")
        norm = float(np.linalg.norm(q))
        if not norm > 0:
            raise ValueError("the query vector is zero (the items' vectors cancel out); "
                             "pick fewer items")
        q = q / norm
        out = np.empty(self.vectors.shape[0], np.float32)
        for start in range(0, out.size, RULE_PROMPT_CHUNK):
            block = np.asarray(self.vectors[start:start + RULE_PROMPT_CHUNK], np.float32)
            out[start:start + block.shape[0]] = (
                block @ q / np.maximum(np.linalg.norm(block, axis=1), 1e-12))
        return out

    def search_above(self, threshold: float, *, query: str | None = None,
                     items: Any = None) -> np.ndarray:
        """(K,) int64 positions of the items whose :meth:`similarity` to ``query`` or
        ``items`` is at least ``threshold``, most similar first (``items`` included)."""
        sims = self.similarity(query=query, items=items)
        hit = np.flatnonzero(sims >= float(threshold))
        return hit[np.lexsort((hit, -sims[hit]))].astype(np.int64)

    # -- saved selections -------------------------------------------------------------------

    def save_selection(self, name: str, items: Any) -> int:
        """Save ``items`` (positions, ids or an (N,) mask) under ``name`` (replacing a
        selection of that name) in the project's ``selections.json``; returns how many."""
        name = str(name).strip()
        if not name:
            raise ValueError("name the selection first")
        if self.project.read_only:
            raise ValueError(f"project {str(self.project.path)!r} is open read-only: "
                             "selections cannot be saved")
        idx = self.positions_of(items)
        if idx.size == 0:
            raise ValueError(f"nothing to save as {name!r}: select items first")
        saved = read_selections(self.project.path)
        saved[name] = {
            "ids": self.items["id"].gather(pl.Series(idx, dtype=pl.UInt32)).to_list(),
            "annotator": self.labels.annotator,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        self._write_selections(saved)
        return int(idx.size)

    @property
    def saved_selections(self) -> pl.DataFrame:
        """The saved selections, one row each: ``name``, ``items``, ``annotator``,
        ``saved_at``, in the order saved."""
        saved = read_selections(self.project.path)
        return pl.DataFrame(
            {"name": list(saved), "items": [len(e["ids"]) for e in saved.values()],
             "annotator": [e.get("annotator") for e in saved.values()],
             "saved_at": [e.get("saved_at") for e in saved.values()]},
            schema={"name": pl.String, "items": pl.Int64, "annotator": pl.String,
                    "saved_at": pl.String})

    def saved_selection(self, name: str) -> np.ndarray:
        """(K,) int64 sorted positions of the items saved as ``name`` (use it as a lasso:
        ``app.select(wb.saved_selection(name))``, as a rule: ``wb.add_rule("region", label,
        items=wb.saved_selection(name))``, or export it: ``wb.export(path, selection=name)``)."""
        ids = saved_ids(self.project.path, name)
        positions = self.positions_of(np.asarray(ids, dtype=object))
        return np.unique(positions)

    def delete_selection(self, name: str) -> None:
        """Forget the selection saved as ``name``."""
        saved = read_selections(self.project.path)
        if name not in saved:
            saved_ids(self.project.path, name)  # raises, naming those saved
        del saved[name]
        self._write_selections(saved)

    def subset_ids(self, items: Any = None, selection: str | None = None) -> list[str] | None:
        """The item ids an export is limited to: ``items`` (positions, ids or a mask) or
        the saved ``selection``; None (everything) when neither is given."""
        if items is not None and selection is not None:
            raise ValueError("export items= or selection=, not both")
        if selection is not None:
            return saved_ids(self.project.path, selection)
        if items is None:
            return None
        idx = self.positions_of(items)
        return self.items["id"].gather(pl.Series(idx, dtype=pl.UInt32)).to_list()

    # -- helpers ------------------------------------------------------------------------------

    def positions_of(self, items: Any) -> np.ndarray:
        """(K,) int64 positions of ``items``: positions, item ids (strings), or an (N,)
        boolean mask; repeats kept. Errors name the bad item."""
        if isinstance(items, (int, np.integer, str)):
            items = [items]
        arr = np.asarray(list(items) if not isinstance(items, np.ndarray) else items)
        arr = arr.ravel()
        if arr.dtype == bool:
            if arr.size != self.n:
                raise ValueError(f"a mask needs one True/False per item ({self.n}), not "
                                 f"{arr.size}")
            return np.flatnonzero(arr).astype(np.int64)
        if arr.size == 0:
            return np.zeros(0, np.int64)
        if arr.dtype.kind in "iu":
            bad = arr[(arr < 0) | (arr >= self.n)]
            if bad.size:
                raise IndexError(f"item position {int(bad[0])} is out of range for "
                                 f"{self.n} items")
            return arr.astype(np.int64)
        if arr.dtype.kind in "US" or arr.dtype == object:
            ids = self.items["id"]
            found = pl.DataFrame({"id": ids, "position": np.arange(self.n)})
            asked = pl.DataFrame({"id": [str(i) for i in arr.tolist()]})
            got = asked.join(found, on="id", how="left", maintain_order="left")
            missing = got.filter(pl.col("position").is_null())["id"]
            if missing.len():
                raise KeyError(f"unknown item id {missing[0]!r} ({missing.len()} unknown); "
                               "ids must come from the project's items")
            return got["position"].to_numpy().astype(np.int64)
        raise ValueError(f"items must be positions, item ids or a mask, not {arr.dtype}")

    def _write_selections(self, saved: dict[str, dict[str, Any]]) -> None:
        text = json.dumps({"version": _VERSION, "selections": saved}, indent=1) + "\n"
        atomic_write(Path(self.project.path) / SELECTIONS_FILE,
                     lambda p: Path(p).write_text(text))
