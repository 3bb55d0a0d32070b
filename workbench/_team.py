"""Several annotators on one project: their labels arriving live, the consensus of their
labels weighed with the workbench's own model, and how good each annotator is
(:mod:`workbench.learn.consensus`). The session mixes this in."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import polars as pl

from ._config import ADJUDICATED, LIVE_POLL_SECONDS
from ._events import Event

__all__ = ["Team"]

log = logging.getLogger("workbench.session")


class Team:
    """Live labels of others, ``annotations_per_item``, ``adjudicate()``, ``consensus()``
    and ``annotator_quality()``; needs ``project``, ``labels``, ``items``, ``predictions``,
    ``refresh``, ``_lock``, ``_issues_input`` and ``_labels_changed`` of the session."""

    @property
    def annotator(self) -> str:
        """Who is labelling in this session: recorded on every action, and whose actions undo
        and redo take back. Settable (the widget's "annotator" field sets it)."""
        return self.labels.annotator

    @annotator.setter
    def annotator(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"an annotator name is a non-empty text, not {name!r}")
        self.labels.log.annotator = name.strip()
        self._emit(Event.STATUS)

    def adjudicate(self, items: Any, label: str | int) -> None:
        """Decide the label of ``items`` (positions or ids) as the adjudicator: one action,
        logged with source "adjudicated", undone by your own undo like any other.

        The decision is final: it is the item's human label and its consensus (quality 1,
        never flagged) and what the models learn, whatever annotators wrote before or write
        after; it is not an annotation (:meth:`annotations` leaves it out). ``label`` is a
        class name (created if new) or id.
        """
        self.labels.assign(items, label, source=ADJUDICATED)
        self._labels_changed()

    def _start_live(self) -> None:
        """Look for labels other sessions wrote (another kernel, another annotator), in a
        daemon thread: they show (recoloured, counted, retrained on) without reopening.
        The log says when to look (``wait_for_change``): SQLite's change counter every
        ``LIVE_POLL_SECONDS``, PostgreSQL's ``NOTIFY`` at once."""
        self._live_stop = threading.Event()
        wait = self.labels.log.wait_for_change

        def run() -> None:
            while not self._live_stop.is_set():
                try:
                    if wait(LIVE_POLL_SECONDS) and not self._live_stop.is_set():
                        self.refresh()
                except Exception as e:  # a closed or busy store: look again later
                    if self._live_stop.wait(LIVE_POLL_SECONDS):
                        return
                    log.warning("live labels: %s", e)

        self._live_thread = threading.Thread(target=run, name="workbench-live", daemon=True)
        self._live_thread.start()

    def _stop_live(self) -> None:
        stop = getattr(self, "_live_stop", None)
        if stop is not None:
            stop.set()
            self._live_thread.join(timeout=5)

    @property
    def annotations_per_item(self) -> int:
        """How many annotators should label each item (a project setting, default 1):
        above 1, "label next" serves each annotator the items that still need their
        label, including items others labelled already, never one they labelled."""
        return int(self.project.meta.get("annotations_per_item", 1))

    @annotations_per_item.setter
    def annotations_per_item(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"annotations_per_item must be a whole number >= 1, not {k!r}")
        self.project.set_setting("annotations_per_item", int(k))

    def _queue_labels(self) -> np.ndarray:
        """(N,) the labels the queues treat as done: the human layer, but with k > 1
        annotations per item, an item still needing this annotator's label counts as free."""
        human = self.labels.state.human
        k = self.annotations_per_item
        if k <= 1:
            return human
        names, ann = self.labels.annotations()
        mine = (ann[:, names.index(self.labels.annotator)] >= 0 if self.labels.annotator
                in names else np.zeros(human.size, bool))
        decided = self.labels.state.adjudicated >= 0  # an adjudicated item needs no one
        need = ((ann >= 0).sum(axis=1) < k) & ~mine & ~decided
        return np.where(need, -1, human)

    def _training_labels(self) -> np.ndarray:
        """(N,) the labels the models learn from: the human layer, or, once two or more
        annotators have labels, their consensus (annotators alone: the model must not vote
        on its own training labels) where anyone labelled, or an adjudicator decided."""
        from .learn import consensus

        names, cols, classes, final = self._annotation_columns()
        if len(names) < 2 or classes.size < 2:
            return self.labels.state.human.copy()  # adjudications included: the human layer
        agreed = consensus(cols, n_classes=classes.size, final=final).label
        return np.where(agreed >= 0, classes[np.clip(agreed, 0, None)], -1).astype(np.int64)

    def consensus(self) -> pl.DataFrame:
        """One row per item: ``id``, ``consensus`` (class name, null when nobody labelled it
        and there is no model), ``quality`` (the chance it is right), ``annotations``,
        ``agreement`` (share of its annotators who gave the consensus label), ``flagged``
        (worth an adjudicator's look) and ``adjudicated`` (an adjudicator decided it: its
        consensus is that decision, quality 1, never flagged), from every annotator's own
        labels, the adjudications and the model's out-of-fold probabilities (see
        :func:`workbench.learn.consensus.consensus`).
        """
        return self._consensus_table(self._consensus()[0])

    def _team_consensus(self) -> pl.DataFrame | None:
        """:meth:`consensus` when two or more annotators have labels, else None."""
        columns = self._annotation_columns()
        if len(columns[0]) < 2 or columns[2].size < 2:
            return None
        return self._consensus_table(self._consensus(columns)[0])

    def _consensus_table(self, out: Any) -> pl.DataFrame:
        classes = sorted(self.labels.classes)
        label = [None if k < 0 else self.labels.classes[classes[k]] for k in out.label]
        return pl.DataFrame({
            "id": self.items["id"], "consensus": pl.Series(label, dtype=pl.String),
            "quality": out.quality, "annotations": out.n_annotations,
            "agreement": out.agreement, "flagged": out.flagged,
            "adjudicated": self.labels.state.adjudicated >= 0,
        })

    def annotations(self) -> pl.DataFrame:
        """Every annotator's own current labels, one row per annotation: ``id``,
        ``annotator``, ``label`` (the long table a crowd-labelling tool reads)."""
        names, ann = self.labels.annotations()
        rows, cols = np.nonzero(ann >= 0)
        classes = self.labels.classes
        ids = self.items["id"].to_numpy()
        return pl.DataFrame({
            "id": pl.Series(ids[rows], dtype=pl.String),
            "annotator": pl.Series([names[c] for c in cols], dtype=pl.String),
            "label": pl.Series([classes[int(k)] for k in ann[rows, cols]], dtype=pl.String),
        })

    def agreement(self) -> dict[str, Any]:
        """How much the annotators agree: ``krippendorff_alpha`` and ``fleiss_kappa`` (over
        the items with 2+ annotations), ``cohen_kappa`` (one row per pair of annotators:
        ``a``, ``b``, ``items`` both labelled, ``kappa``) and ``confusion``, each
        annotator's labels against the consensus (one row per annotator, consensus class
        and their label, with the ``count``: the off-diagonal rows are their mistakes)."""
        from .learn.consensus import cohen_kappa, fleiss_kappa, krippendorff_alpha

        columns = self._annotation_columns()
        names, cols, classes, _ = columns
        if len(names) < 2 or classes.size < 2:
            raise ValueError("agreement needs two annotators and labels in 2 classes")
        c = classes.size
        kappa = cohen_kappa(cols, c)
        pairs = [(names[i], names[j], int(((cols[:, i] >= 0) & (cols[:, j] >= 0)).sum()),
                  float(kappa[i, j])) for i in range(len(names)) for j in range(i + 1, len(names))]
        agreed = self._consensus(columns)[0].label
        cls = self.labels.classes
        class_names = [cls[int(k)] for k in classes]
        rows = []
        for a, name in enumerate(names):
            both = (cols[:, a] >= 0) & (agreed >= 0)
            counts = np.bincount(agreed[both] * c + cols[both, a], minlength=c * c).reshape(c, c)
            rows += [(name, class_names[t], class_names[g], int(counts[t, g]))
                     for t, g in zip(*np.nonzero(counts))]
        return {
            "krippendorff_alpha": krippendorff_alpha(cols, c),
            "fleiss_kappa": fleiss_kappa(cols, c),
            "cohen_kappa": pl.DataFrame(pairs, schema=["a", "b", "items", "kappa"],
                                        orient="row"),
            "confusion": pl.DataFrame(rows, schema=["annotator", "consensus", "label", "count"],
                                      orient="row"),
        }

    def annotator_quality(self) -> dict[str, float]:
        """Each annotator's estimated accuracy (the mean chance their labels are right)."""
        out, names = self._consensus()
        return {n: float(q) for n, q in zip(names, out.annotator_quality, strict=True)}

    def _annotation_columns(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Annotator names, their (N, A) labels as class columns (-1: none), the (C,)
        class ids in column order and the (N,) adjudicated class columns (-1: none)."""
        names, ann = self.labels.annotations()
        adjudicated = self.labels.state.adjudicated
        classes = np.array(sorted(self.labels.classes), np.int64)
        cols = np.where(ann >= 0, np.searchsorted(classes, np.maximum(ann, 0)), -1)
        final = np.where(adjudicated >= 0, np.searchsorted(classes, np.maximum(adjudicated, 0)),
                         -1)
        return names, cols, classes, final

    def _consensus(self, columns: tuple | None = None) -> tuple[Any, list[str]]:
        from .learn import consensus

        names, cols, classes, final = columns or self._annotation_columns()
        if classes.size < 2:
            raise ValueError("consensus needs labels in at least 2 classes")
        return consensus(cols, self._model_prior(classes), n_classes=classes.size,
                         final=final), names

    def _model_prior(self, classes: np.ndarray) -> np.ndarray | None:
        """(N, C) the model's probabilities in ``classes`` order: out-of-fold for the items
        the last probe fit held out, the live prediction for unlabelled items, flat for
        labelled items the model saw (their own labels must not vote twice)."""
        with self._lock:
            pred, fitted = self.predictions, self._issues_input
        if pred is None:
            return None
        n, c = len(self.items), classes.size
        prior = np.full((n, c), 1.0 / c)
        have = np.isin(pred.classes, classes)
        cols = np.searchsorted(classes, pred.classes[have])
        free = self.labels.state.human < 0
        prior[np.ix_(free, cols)] = pred.proba[np.ix_(free, np.flatnonzero(have))]
        if fitted is not None:
            _, probe_labels, oof = fitted  # oof: one row per item the probe learned from
            rows = np.flatnonzero(probe_labels >= 0)
            held = np.isfinite(oof).all(axis=1)
            seen = rows[held]
            oof = oof[held]
            probe_classes = np.unique(probe_labels[rows])
            ok = np.isin(probe_classes, classes)
            if seen.size and ok.any():
                prior[seen] = 1e-6
                prior[np.ix_(seen, np.searchsorted(classes, probe_classes[ok]))] = \
                    oof[:, np.flatnonzero(ok)]
        prior = np.clip(prior, 1e-6, None)
        return prior / prior.sum(axis=1, keepdims=True)
