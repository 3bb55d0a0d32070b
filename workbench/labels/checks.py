"""Checking what callers give a :class:`~workbench.labels.LabelStore` before it is logged.

Items come as ids (str) or positions (int), in any order and with repeats; classes by
name or id, and a new class name is any non-empty string; machine labels carry one finite confidence per item given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .._config import LABEL_SOURCES, MACHINE_SOURCES

__all__ = [
    "as_item_array",
    "check_confidence",
    "check_name",
    "check_source",
    "find_class",
    "resolve_items",
]


def as_item_array(items: Iterable[str | int] | np.ndarray) -> np.ndarray:
    """``items`` as a flat array; ``ValueError`` when there are none."""
    arr = np.asarray(list(items) if not isinstance(items, np.ndarray) else items)
    if arr.ndim != 1:
        arr = arr.ravel()
    if arr.size == 0:
        raise ValueError("no items given; select at least one item")
    return arr


def resolve_items(
    arr: np.ndarray, ids: Sequence[str], pos: dict[str, int]
) -> tuple[list[str], np.ndarray, int]:
    """(ids without repeats, where each was first given, how many were given).

    ``arr`` is from :func:`as_item_array`; ``ids`` and ``pos`` are the store's item ids in
    row order and ``{id: position}``.
    """
    if arr.dtype.kind in "iu":
        bad = arr[(arr < 0) | (arr >= len(ids))]
        if bad.size:
            raise IndexError(
                f"item position {int(bad[0])} is out of range for {len(ids)} items"
            )
        uniq, first = np.unique(arr, return_index=True)
        return [ids[i] for i in uniq], first, arr.size
    if arr.dtype.kind in "US" or arr.dtype == object:
        seen: dict[str, int] = {}
        for k, i in enumerate(arr.tolist()):
            seen.setdefault(str(i), k)
        missing = [i for i in seen if i not in pos]
        if missing:
            raise KeyError(
                f"unknown item id {missing[0]!r} ({len(missing)} unknown); "
                "ids must come from the project's items"
            )
        return list(seen), np.fromiter(seen.values(), np.int64), arr.size
    raise TypeError(f"items must be ids (str) or positions (int), not {arr.dtype}")


def check_source(source: str) -> None:
    """``ValueError`` unless ``source`` is one of ``LABEL_SOURCES``."""
    if source not in LABEL_SOURCES:
        raise ValueError(f"source must be one of {LABEL_SOURCES}, not {source!r}")


def check_confidence(
    first: np.ndarray,
    n_given: int,
    source: str,
    confidence: Sequence[float] | np.ndarray | None,
) -> list[float] | None:
    """The confidences of the resolved items (None for human labels), checked.

    ``first`` and ``n_given`` are from :func:`resolve_items`: machine sources need
    ``n_given`` finite numbers, aligned with the items as given; human labels, and an
    adjudicator's (source "adjudicated", a human decision), none.
    """
    if source in MACHINE_SOURCES:
        if confidence is None:
            raise ValueError(f"machine labels ({source}) need a confidence per item")
        conf = np.asarray(confidence, np.float64).ravel()
        if conf.shape != (n_given,) or not np.all(np.isfinite(conf)):
            raise ValueError(
                f"confidence must be {n_given} finite numbers, one per item given"
            )
        # Aligned with the items as given; the ids come back sorted and deduplicated.
        return conf[first].tolist()
    if confidence is not None:
        raise ValueError(f"{source} labels carry no confidence (a person decided them)")
    return None


def check_name(name: object) -> str:
    """A class name: any non-empty Unicode string (``TypeError``/``ValueError`` otherwise)."""
    if not isinstance(name, str):
        raise TypeError(f"a class name must be a string, not {type(name).__name__}")
    if not name.strip():
        raise ValueError("a class name cannot be empty or only whitespace")
    return name


def find_class(classes: dict[int, str], label: str | int) -> int:
    """The id of a live class in ``classes`` given by name or id; ``KeyError`` if unknown."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if int(label) in classes:
            return int(label)
        raise KeyError(
            f"no class with id {int(label)}; live classes: {list(classes.values())}"
        )
    for cid, name in classes.items():
        if name == label:
            return cid
    raise KeyError(
        f"no class named {label!r}; create it first (create_class) or pick one of "
        f"{list(classes.values())}"
    )
