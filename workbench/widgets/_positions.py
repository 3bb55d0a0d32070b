"""Item positions from what a person or a browser gives: the one check every widget uses.

Positions arrive as Python lists, numpy arrays, boolean masks, item ids, JSON numbers and
uint32 buffers. :func:`as_positions` turns each of them into ``(K,) int64`` positions in
``[0, N)`` or refuses it with a message that says what was wrong; nothing is truncated,
wrapped around or read as something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["as_position", "as_positions"]


def as_positions(
    items: Any, n: int, *, ids: Mapping[str, int] | None = None, what: str = "items"
) -> np.ndarray:
    """``items`` as (K,) int64 positions of a collection of ``n`` items, order kept.

    Parameters
    ----------
    items : one of
        * integer positions (any int dtype, a list, a scalar), each in ``[0, n)``;
        * floats that are whole numbers (``3.0``), converted; ``2.5``, NaN or inf refused;
        * a boolean mask of shape ``(n,)``: the positions where it is True (a mask of any
          other length is refused, never read as the positions 0 and 1);
        * item ids (strings), when ``ids`` (``{id: position}``) is given;
        * None or empty: no positions.
    n : number of items.
    ids : the item ids' positions, for string input.
    what : the name of ``items`` in error messages.

    Raises
    ------
    ValueError : a mask of the wrong shape, non-whole floats, strings without ``ids``,
        anything that is not a position.
    IndexError : a position outside ``[0, n)`` (negatives included).
    KeyError : an unknown item id.
    """
    if items is None:
        return np.zeros(0, np.int64)
    arr = np.asarray(items)
    if arr.dtype == object and arr.ndim > 0 and arr.size and not all(
        isinstance(x, str) for x in arr.ravel()
    ):
        # Mixed Python objects (ints from a pandas object column, numpy scalars): as numbers.
        try:
            arr = np.asarray(arr.tolist())
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what} must be positions, a boolean mask or item ids: {e}") from e
        if arr.dtype == object:
            raise ValueError(
                f"{what} must be positions, a boolean mask or item ids; got {items!r:.80}"
            )
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(
                f"{what}: a boolean mask must have one value per item, shape ({n},); got "
                f"shape {arr.shape}. Pass positions (np.flatnonzero(mask)) for a subset"
            )
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind in "US" or arr.dtype == object:
        return _id_positions(arr, ids, what)
    if arr.dtype.kind == "f":
        flat = arr.ravel()
        bad = ~np.isfinite(flat) | (flat != np.round(flat))
        if bad.any():
            raise ValueError(
                f"{what} must be whole-number positions; got {flat[bad][0]!r} "
                f"({int(bad.sum())} not whole)"
            )
        arr = flat
    elif arr.dtype.kind not in "iu":
        raise ValueError(
            f"{what} must be positions, a boolean mask or item ids, not {arr.dtype} values"
        )
    flat = arr.ravel()
    out_of_range = (flat < 0) | (flat >= n)
    if out_of_range.any():
        raise IndexError(
            f"{what}: position {flat[out_of_range][0]!r} is out of range for {n} items "
            f"(0 to {n - 1}); {int(out_of_range.sum())} out of range"
        )
    return flat.astype(np.int64)


def as_position(value: Any, n: int, *, what: str = "index") -> int:
    """One position in ``[0, n)`` (an int, or a whole float); True/False are refused."""
    if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
        raise ValueError(f"{what} must be one integer position, got {value!r}")
    return int(as_positions([value], n, what=what)[0])


def _id_positions(arr: np.ndarray, ids: Mapping[str, int] | None, what: str) -> np.ndarray:
    if ids is None:
        raise ValueError(f"{what} must be integer positions or a boolean mask, not strings")
    flat = [str(x) for x in arr.ravel()]
    missing = [x for x in flat if x not in ids]
    if missing:
        raise KeyError(f"unknown item id {missing[0]!r} ({len(missing)} unknown)")
    return np.array([ids[x] for x in flat], dtype=np.int64)
