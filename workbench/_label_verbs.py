"""The label verbs of a :class:`~workbench.Workbench`: each one action on the project's label
log (:class:`~workbench.labels.LabelStore`), then the session told that labels changed (a
view redraws, the models retrain in the background). The session mixes this in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .learn import NotEnoughLabels

__all__ = ["LabelVerbs"]


class LabelVerbs:
    """``label``, ``remove_labels``, ``undo``/``redo``, class edits, ``refresh`` and
    ``accept_predictions``, and the one rule for each item's label now. Needs ``labels``
    (the store), ``predictions``, ``n``, ``_lock`` and ``_labels_changed`` of the session."""

    def current_labels(self) -> np.ndarray:
        """(N,) int64 each item's label now: human, else accepted machine label, else the
        prediction, else -1 (:func:`workbench.labels.effective_labels`, the one rule)."""
        return self.effective_labels().label

    def effective_labels(self) -> Any:
        """:class:`~workbench.labels.EffectiveLabels` of every item: label, layer (human /
        accepted / predicted), source and confidence, by the one rule every view uses."""
        from .labels import effective_labels

        with self._lock:
            predictions = self.predictions
        return effective_labels(self.labels.state, predictions)

    def label(self, items: Sequence[int] | np.ndarray, name: str) -> None:
        """Give ``items`` (positions or ids) the human label ``name`` (created if new)."""
        self.labels.assign(items, name)
        self._labels_changed()

    def remove_labels(self, items: Sequence[int] | np.ndarray) -> None:
        self.labels.remove(items)
        self._labels_changed()

    def undo(self) -> bool:
        done = self.labels.undo()
        if done:
            self._labels_changed()
        return done

    def redo(self) -> bool:
        done = self.labels.redo()
        if done:
            self._labels_changed()
        return done

    def create_class(self, name: str) -> int:
        cid = self.labels.create_class(name)
        self._labels_changed(retrain=False)
        return cid

    def rename_class(self, old: str | int, new: str) -> None:
        self.labels.rename_class(old, new)
        self._labels_changed(retrain=False)

    def merge_classes(self, sources: Sequence[str | int], into: str | int) -> None:
        self.labels.merge_classes(sources, into)
        self._labels_changed()

    def delete_class(self, name: str | int) -> None:
        self.labels.delete_class(name)
        self._labels_changed()

    def refresh(self) -> bool:
        """Pick up labels written by another process; True when something changed."""
        changed = self.labels.refresh()
        if changed:
            self._labels_changed()
        return changed

    def accept_predictions(self, items: Sequence[int] | np.ndarray | None = None, *,
                           min_confidence: float = 0.0) -> int:
        """Record current predictions as machine labels (kept beside human labels), every
        class at once as ONE action: one undo takes them all back.

        Returns the number of items recorded. Human labels are never touched.
        """
        pred = self.predictions
        if pred is None:
            raise NotEnoughLabels("no predictions yet: label a few items of two classes first")
        pos = np.arange(self.n) if items is None else np.asarray(items, np.int64)
        ok = (pred.label[pos] >= 0) & (pred.confidence[pos] >= min_confidence)
        ok &= np.isin(pred.label[pos], list(self.labels.classes))
        pos = pos[ok]
        # Combined predictions are recorded as "probe": the log's machine sources are
        # propagated / probe / zeroshot, and the probe is what a combination adds.
        source = "propagated" if pred.source == "propagated" else "probe"
        groups = []
        for cid in np.unique(pred.label[pos]):
            sel = pos[pred.label[pos] == cid]
            groups.append((sel, int(cid), pred.confidence[sel]))
        if groups:
            self.labels.assign_many(groups, source=source, create=False)
        self._labels_changed(retrain=False)
        return int(pos.size)
