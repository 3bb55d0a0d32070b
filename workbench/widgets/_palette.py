"""Stable colour slots for classes, and the encoding of class ids into map codes."""

from __future__ import annotations

import numpy as np

from ._contract import CLASS_COLORS

__all__ = ["COLORS", "ClassSlots"]

#: Categorical colours (Tableau 10 then its light variants): distinct, colour-blind aware;
#: the table lives with the rest of what Python and js/ share.
COLORS = CLASS_COLORS


class ClassSlots:
    """Map class ids to small, stable slot numbers (1, 2, ...; 0 = no label).

    A class keeps its slot (and so its colour) for as long as it exists; a deleted
    class's slot is given to the next new class.
    """

    def __init__(self) -> None:
        self._slot: dict[int, int] = {}

    def sync(self, classes: dict[int, str]) -> dict[int, int]:
        """Update for the live ``{class_id: name}`` and return ``{class_id: slot}``."""
        self._slot = {c: s for c, s in self._slot.items() if c in classes}
        used = set(self._slot.values())
        free = 1
        for cid in classes:
            if cid not in self._slot:
                while free in used:
                    free += 1
                self._slot[cid] = free
                used.add(free)
        return dict(self._slot)

    def slot(self, class_id: int) -> int:
        return self._slot.get(int(class_id), 0)

    def class_of_slot(self, slot: int) -> int | None:
        for c, s in self._slot.items():
            if s == slot:
                return c
        return None

    def encode(self, class_ids: np.ndarray) -> np.ndarray:
        """(N,) class ids (-1 = none) to (N,) uint16 slots (0 = none)."""
        ids = np.asarray(class_ids, dtype=np.int64)
        out = np.zeros(ids.shape, np.uint16)
        if not self._slot:
            return out
        keys = np.array(sorted(self._slot), dtype=np.int64)
        vals = np.array([self._slot[k] for k in keys], dtype=np.uint16)
        pos = np.minimum(np.searchsorted(keys, ids), keys.size - 1)
        hit = keys[pos] == ids
        out[hit] = vals[pos[hit]]
        return out

    @staticmethod
    def color(slot: int) -> str:
        return COLORS[(slot - 1) % len(COLORS)]
