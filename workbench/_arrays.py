"""The ground level for arrays: what every module that takes vectors or a k checks them with.

Nothing here imports another workbench module but ``_config``: items, neighbours, the map and
every learning module stand on it, so none of them needs the item loaders for a check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ItemError", "as_vectors", "check_k", "check_nonzero_rows"]


class ItemError(ValueError):
    """Input that cannot become a collection of items; the message names the culprit."""


def check_k(k: int) -> int:
    """``k`` as an int, or ValueError when it is not a positive integer number of neighbours."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer number of neighbours, got {k!r}")
    return int(k)


def as_vectors(vectors: Any, *, name: str = "vectors") -> np.ndarray:
    """Check and convert to a (N, D) float32 C-contiguous array; errors name the bad row."""
    if type(vectors).__name__ == "Series" and hasattr(vectors, "to_list"):  # polars
        vectors = vectors.to_list()
    if isinstance(vectors, np.ndarray) and vectors.dtype != object:
        arr = vectors
    else:
        rows = list(vectors)
        if not rows:
            raise ItemError(f"{name} is empty")
        lengths = [np.size(r) if r is not None else 0 for r in rows]
        expected = lengths[0]
        for i, length in enumerate(lengths):
            if length != expected or length == 0:
                raise ItemError(
                    f"{name} row {i} has {length} values but row 0 has {expected}; "
                    "all vectors must have the same length"
                )
        arr = np.asarray(rows)
    if arr.ndim != 2:
        raise ItemError(f"{name} must be 2-D (N items × D dims), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ItemError(f"{name} is empty (shape {arr.shape})")
    try:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ItemError(f"{name} must be numeric: {e}") from e
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ItemError(
            f"{name} row {int(bad[0])} contains NaN or infinity ({bad.size} such rows); "
            "drop or re-embed those items"
        )
    return arr


def check_nonzero_rows(
    vectors: np.ndarray, ids: Sequence[str] | None = None, *, name: str = "vectors"
) -> None:
    """Raise :class:`ItemError` naming the first item whose vector is all zeros.

    A zero vector has no direction: its cosine similarity to everything is undefined, so
    it has no neighbours, no place on the map, and the label propagation solver fails on
    it. ``vectors`` is (N, D); ``ids`` (N,) names the items (default: row numbers).
    """
    x = np.asarray(vectors, dtype=np.float32)
    # Squared norms as normalisation computes them (no (N, D) temporary): a row too small
    # to normalise in float32 counts as zero too.
    zero = np.einsum("ij,ij->i", x, x) == 0
    if zero.any():
        bad = np.flatnonzero(zero)
        who = f"item {ids[int(bad[0])]!r}" if ids is not None else f"row {int(bad[0])}"
        raise ItemError(
            f"{name} of {who} is all zeros ({bad.size} such row(s)); a zero vector has no "
            "direction, so it cannot be compared with any other: drop those items or "
            "embed them again (an embedder returning zeros usually failed on the input)"
        )
