"""Helpers shared by the label-store tests: ten item ids and the current labels by name."""

from __future__ import annotations

from workbench.labels import LabelStore

IDS = [f"item{i}" for i in range(10)]


def current(store: LabelStore) -> list[str | None]:
    names = store.classes
    return [names.get(int(c)) for c in store.state.current]
