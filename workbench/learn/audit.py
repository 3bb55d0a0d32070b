"""The lasso audit (:func:`audit_selection`): which members of a selection drawn on the 2-D
map are probably not like the rest, and which items outside it probably belong.

A 2-D map tears some regions and merges others: UMAP keeps neighbourhoods, not distances,
so a lasso drawn around an island can take in a few points of another class laid next to
it and leave out members laid elsewhere. The full-dimensional kNN graph has no such
distortion; the audit reads it:

* a member is a *suspect* when most of its neighbours lie outside the selection;
* an item outside is *missed* when most of its neighbours lie inside.

Pure: arrays in, arrays out; the session (``Workbench.audit_selection``) and the widget call
it, ``benchmarks/lasso_audit.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._config import AUDIT_FRACTION

__all__ = ["Audit", "audit_selection"]


@dataclass(frozen=True)
class Audit:
    """What the audit of one selection found.

    Attributes
    ----------
    suspects : (S,) int64 positions of members whose neighbours mostly lie outside the
        selection, the most outside first.
    missed : (M,) int64 positions of items outside whose neighbours mostly lie inside,
        the most inside first.
    suspect_share : (S,) float64 the share of each suspect's neighbours outside.
    missed_share : (M,) float64 the share of each missed item's neighbours inside.
    """

    suspects: np.ndarray
    missed: np.ndarray
    suspect_share: np.ndarray
    missed_share: np.ndarray

    def __len__(self) -> int:
        return int(self.suspects.size + self.missed.size)


def audit_selection(
    graph: object,
    selected: Sequence[int] | np.ndarray,
    *,
    fraction: float = AUDIT_FRACTION,
) -> Audit:
    """Audit a selection against the full-dimensional kNN graph.

    Parameters
    ----------
    graph : a :class:`~workbench.neighbors.KnnGraph` (``indices`` (N, k), -1 where fewer
        neighbours exist; only ``indices`` is read).
    selected : positions of the selected items (repeats ignored), or an (N,) boolean mask.
    fraction : the share of neighbours (strictly more than it) that makes a member a suspect
        (outside) or an outside item missed (inside); default ``AUDIT_FRACTION``.

    Returns
    -------
    :class:`Audit`. Items without a neighbour are never flagged.
    """
    indices = np.asarray(graph.indices)  # type: ignore[attr-defined]
    n = indices.shape[0]
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"fraction is a share of neighbours in [0, 1), got {fraction}")
    inside = _as_mask(selected, n)
    valid = indices >= 0
    counts = valid.sum(axis=1)
    in_neighbours = (inside[np.where(valid, indices, 0)] & valid).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_in = np.where(counts > 0, in_neighbours / np.maximum(counts, 1), np.nan)
    share_out = 1.0 - share_in
    has = counts > 0
    suspects = np.flatnonzero(inside & has & (share_out > fraction))
    missed = np.flatnonzero(~inside & has & (share_in > fraction))
    # most outside (inside) first; ties by position, so the order is reproducible
    suspects = suspects[np.lexsort((suspects, -share_out[suspects]))]
    missed = missed[np.lexsort((missed, -share_in[missed]))]
    return Audit(suspects.astype(np.int64), missed.astype(np.int64),
                 share_out[suspects].astype(np.float64), share_in[missed].astype(np.float64))


def _as_mask(selected: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(selected)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a selection mask needs one value per item ({n}), got shape "
                             f"{arr.shape}")
        return arr.copy()
    arr = arr.ravel()
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"selected items must be integer positions, got dtype {arr.dtype}")
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise IndexError(f"selected item position {int(bad[0])} is outside 0..{n - 1}")
    mask = np.zeros(n, bool)
    mask[arr.astype(np.int64)] = True
    return mask
