"""The :class:`Workbench`: one object that wires the steps for the user.

items → vectors → kNN graph → 2-D map; label actions → propagation + linear probe (in the
background) → predictions, suggestions, suspected errors. Every step is a function in its
own module; this class only holds the results, runs the slow steps off the caller's
thread and tells subscribers when something changed.

Threads: the caller's thread (the notebook's main thread) owns the widgets. Background
results are stored here and announced through :meth:`subscribe` callbacks, *from the worker
thread*: a widget must hand them to its own thread before touching a trait (the widgets
module does). A new label supersedes a running retrain; nothing here ever waits for one
unless asked (:meth:`wait`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._arrays import as_vectors, check_nonzero_rows
from ._config import (
    ACTIVE_BATCH_SIZE,
    CLUSTER_CORE_FRACTION,
    CLUSTER_COUNT_MAX,
    CLUSTER_COUNT_MIN,
    CLUSTER_ITEMS_PER_CLUSTER,
    KNN_K,
    MANY_CLASSES,
    MIX_FOLDS,
    MIX_FOLDS_MAX_ITEMS,
    PROBE_MIN_LABELS,
    SPECTRAL_MAX_ITEMS,
)
from .learn import Group, NotEnoughLabels, Predictions
from .neighbors import KnnGraph, NeighborIndex, build_knn_graph
from .project import Project, demo_project

__all__ = ["Cluster", "Workbench"]

log = logging.getLogger(__name__)

EVENTS = ("labels", "predictions", "layout", "status")


@dataclass(frozen=True)
class Cluster(Group):
    """A proposed group to label in one action: a :class:`~workbench.learn.Group`
    (``members`` most typical first, ``sample``, ``kind``, ``size``, ``core()``) plus its
    ``id``, its number in :attr:`Workbench.clusters` (in the order proposed)."""

    id: int = -1


class Workbench:
    """A labelling session over one project folder.

    Create with :meth:`demo` (offline digits), :meth:`open` (an existing project) or
    :meth:`create` (a new project from items and vectors).

    Parameters
    ----------
    project : the open :class:`~workbench.project.Project`.
    vectors : (N, D) embeddings aligned with the items; default the project's own
        ``vectors.npy``.
    text_encoder : optional callable ``list[str] -> (Q, D)`` in the same space as
        ``vectors`` (CLIP's text tower) for text search and zero-shot.
    background : run layout and retraining in worker threads (default True); with False
        every step runs in the caller's thread (scripts, tests).
    layout : ``"umap"`` (default: a quick first map at once, the UMAP map when ready) or
        ``"quick"`` (the quick map only: no numba compilation, for scripts and tests).
    """

    def __init__(
        self,
        project: Project,
        *,
        vectors: np.ndarray | None = None,
        text_encoder: Callable[[list[str]], np.ndarray] | None = None,
        background: bool = True,
        layout: str = "umap",
    ) -> None:
        from ._device import best_device
        from .learn import LabelSpreader, Retrainer

        self.project = project
        given = vectors is not None
        if vectors is None:
            vectors = project.vectors()
        if vectors is None:
            raise ValueError(
                f"project {str(project.path)!r} has no vectors yet: embed its items first "
                "(workbench embed PROJECT --model ...) or pass vectors="
            )
        self.vectors = as_vectors(vectors)
        if self.vectors.shape[0] != project.n:
            raise ValueError(
                f"{self.vectors.shape[0]} vectors for {project.n} items; embed the project again"
            )
        if given:  # the project's own vectors were checked when it was created
            check_nonzero_rows(self.vectors, project.items["id"].to_list())
        if layout not in ("umap", "quick"):
            raise ValueError(f"layout must be 'umap' or 'quick', not {layout!r}")
        self.text_encoder = text_encoder
        self.background = background
        self.layout_method = layout
        self.device = best_device()
        self._subscribers: list[Callable[[str], None]] = []
        self._lock = threading.RLock()
        cache = project.cache_dir
        self.graph: KnnGraph = build_knn_graph(self.vectors, k=KNN_K, cache_dir=cache)
        self.index = NeighborIndex.build(self.vectors, cache_dir=cache)
        self._spreader = LabelSpreader(self.graph)
        # Propagation over the map's own neighbours joins once the UMAP map exists.
        self._map_spreader: LabelSpreader | None = None
        self.map_graph: KnnGraph | None = None
        self._umap_ready = False
        self.propagation: Predictions | None = None
        self.map_propagation: Predictions | None = None
        self.weights: dict[str, float] = {}
        self.probe_predictions: Predictions | None = None
        self.predictions: Predictions | None = None
        # The probe's cross-validated accuracy (compatibility only; see estimate()).
        self.probe_accuracy: float | None = None
        self._calibration: dict[str, Any] | None = None
        # (human labels, probe labels, out-of-fold probabilities) of the last probe fit.
        self._issues_input: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._estimates: dict[Any, dict[str, Any]] = {}
        self._clusters: list[Cluster] | None = None
        self._clusters_lock = threading.Lock()
        self._running: set[str] = set()
        self.message = ""
        self.coords = self._first_layout()
        self._retrainer = (
            Retrainer(self._fit, on_result=self._publish_predictions,
                      on_error=self._on_fit_error, name="workbench-retrain")
            if background else None
        )
        self._layout_thread: threading.Thread | None = None
        if background:
            self._start_layout()
        if self.labels.state.human.max(initial=-1) >= 0:
            self.retrain()

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def demo(cls, folder: str | os.PathLike[str] = "projects/digits", **kw: Any) -> Workbench:
        """The offline demo: scikit-learn's 1,797 digits as real PNGs in a project folder.

        Its vectors are the digits' pixels (no model weights needed); each item keeps its
        true digit in the ``truth`` column so a demo can check itself.
        """
        project = demo_project(folder)  # the same project `workbench demo FOLDER` makes
        return cls(project, **kw)

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        *,
        annotator: str | None = None,
        read_only: bool | None = None,
        **kw: Any,
    ) -> Workbench:
        """Reopen a project folder: items, labels, vectors and caches come back.

        ``annotator`` and ``read_only`` go to :meth:`Project.open` (``read_only=None``:
        read-only exactly when the folder is not writable); the rest to the constructor.
        """
        return cls(Project.open(folder, annotator=annotator, read_only=read_only), **kw)

    @classmethod
    def from_items(
        cls,
        folder: str | os.PathLike[str],
        items: pl.DataFrame,
        *,
        model: Any = None,
        batch_size: int | None = None,
        progress: bool = True,
        **kw: Any,
    ) -> Workbench:
        """Embed ``items`` and open a workbench on them, in a project at ``folder``.

        Parameters
        ----------
        items : item table from :mod:`workbench.items` (images or texts).
        model : an :class:`~workbench.embed.Embedder`, or a spec for
            :func:`~workbench.embed.make_embedder` (``"clip"``, ``"clip:ViT-L-14"``,
            ``"dino:small"``, ``"text"``, ``"clip:/path/to/config.json"``); default CLIP for
            images, MiniLM for texts.

        Reopening: if ``folder`` already holds an embedded project it is opened as is
        (``items`` is ignored), so the cell that created a project can be re-run. The
        embedding is cached by model and content: an interrupted run resumes.
        """
        from ._config import PROJECT_FILE
        from .embed import Embedder, embed_items, make_embedder
        from .items import validate_items

        folder = Path(folder)
        if (folder / PROJECT_FILE).exists():
            project = Project.open(folder)
            if project.vectors() is not None:
                return cls(project, **kw)
            project.close()
            raise ValueError(
                f"{str(folder)!r} holds a project without vectors; open it with "
                "Workbench.open(folder, vectors=...) or choose a new folder"
            )
        items = validate_items(items)
        kinds = set(items["kind"].to_list())
        if len(kinds) != 1 or kinds <= {"vector"}:
            raise ValueError(
                f"from_items embeds images or texts, one kind at a time; got {sorted(kinds)} "
                "(for precomputed vectors use Workbench.create(folder, items, vectors=...))"
            )
        kind = kinds.pop()
        # The spec is kept so that a reopened project can load the same text tower; a
        # ready-made Embedder object cannot be recreated from the folder alone.
        if model is None:
            spec: str | None = "text" if kind == "text" else "clip"
        else:
            spec = model if isinstance(model, str) else None
        embedder = model if isinstance(model, Embedder) else make_embedder(spec, kind=kind)
        from .embed.cli import folder_cache

        cache = folder / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        # Vectors `workbench embed FOLDER` already computed are reused, not embedded again.
        result = embed_items(items, embedder, cache_dir=folder_cache(items) or cache,
                             batch_size=batch_size, progress=progress)
        if not result.ids:
            raise ValueError("no item could be embedded:\n" + "\n".join(
                f"  {k}: {v}" for k, v in list(result.skipped.items())[:20]))
        kept = items[result.rows.tolist()]
        project = Project.create(
            folder, kept, vectors=result.vectors, check=False, skipped=result.skipped,
            meta={"embedder": {"name": embedder.name, "spec": spec}},
        )
        kw.setdefault("text_encoder", getattr(embedder, "encode_text", None))
        return cls(project, **kw)

    @classmethod
    def create(
        cls, folder: str | os.PathLike[str], items: pl.DataFrame, *, vectors: Any, **kw: Any
    ) -> Workbench:
        """A new project from items (see :mod:`workbench.items`) and their vectors.

        All or nothing (see :meth:`Project.create`); vectors must be finite with no row of
        all zeros (the error names the first such item).
        """
        return cls(Project.create(folder, items, vectors=vectors,
                                  annotator=kw.pop("annotator", None)), **kw)

    # -- state ---------------------------------------------------------------------------------

    @property
    def items(self) -> pl.DataFrame:
        return self.project.items

    @property
    def n(self) -> int:
        return self.project.n

    @property
    def labels(self):
        """The project's :class:`~workbench.labels.LabelStore`."""
        return self.project.labels

    @property
    def status(self) -> dict[str, Any]:
        """What is running, on which device, and the probe's held-out accuracy."""
        with self._lock:
            return {
                "running": sorted(self._running),
                "device": self.device,
                "probe_accuracy": self.probe_accuracy,
                "message": self.message,
            }

    @property
    def clusters(self) -> list[Cluster]:
        """Groups proposed to label in one action each; cached.

        k-means on the spectral embedding of the kNN graph (groups that follow the graph
        are purer where classes are curved), in a farthest-first order so the first few
        cover the map; above ``SPECTRAL_MAX_ITEMS`` items, FAISS k-means on the vectors,
        largest first.
        """
        with self._clusters_lock:  # the retrain thread asks too; compute once
            return self._compute_clusters()

    def _compute_clusters(self) -> list[Cluster]:
        if self._clusters is None:
            from .learn import graph_groups, kmeans_groups

            n_clusters = int(np.clip(round(self.n / CLUSTER_ITEMS_PER_CLUSTER),
                                     CLUSTER_COUNT_MIN, CLUSTER_COUNT_MAX))
            n_clusters = min(n_clusters, self.n)
            if 4 <= self.n <= SPECTRAL_MAX_ITEMS:
                groups = graph_groups(self.graph, n_clusters=n_clusters)
            else:
                groups = kmeans_groups(self.vectors, n_clusters=n_clusters)
            self._clusters = [Cluster(g.members, g.sample, g.kind, id=i)
                              for i, g in enumerate(groups)]
            self._cluster_of = np.zeros(self.n, np.int64)
            for c in self._clusters:
                self._cluster_of[c.members] = c.id
        return self._clusters

    def next_cluster(self, core: float = CLUSTER_CORE_FRACTION) -> Cluster | None:
        """The proposed cluster most worth labelling as a whole now, or None when a page of
        :meth:`suggestions` is worth more.

        Before any model, clusters come in the proposed order (spread over the map). After,
        doubt is one minus an item's calibrated confidence (the chance the workbench has it
        wrong). A page of suggestions (spread-out items) is worth the sum of its items'
        doubt. A cluster's members are alike, so labelling all of them teaches about as
        much as labelling a few spread-out ones: its worth is the mean doubt of its
        unlabelled core members times the square root of their number. The larger wins:
        whole clusters while regions of the map are unknown, pages once what remains is
        scattered doubt.
        """
        human = self.labels.state.human
        pred = self.predictions
        u = None if pred is None else np.where(pred.label >= 0, 1.0 - pred.confidence, 1.0)
        best, best_worth = None, 0.0
        for c in self.clusters:
            part = c.core(core)
            free = part[human[part] < 0]
            if free.size * 2 < part.size:
                continue
            if u is None:
                return c
            worth = float(u[free].mean()) * float(np.sqrt(free.size))
            if worth > best_worth:
                best, best_worth = c, worth
        if best is None or u is None:
            return best
        page = self.suggestions()
        return best if best_worth > float(u[page].sum()) else None

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

    def item_text(self, i: int) -> str:
        """What to show for item ``i``: the text of a text item, the file name of an image."""
        row = self.items.row(int(i), named=True)
        if row["kind"] == "image":
            return Path(row["source"]).name
        return str(row["source"])

    # -- labelling -----------------------------------------------------------------------------

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

    # -- search and queues ---------------------------------------------------------------------

    def more_like_this(self, items: Sequence[int] | np.ndarray | int, k: int = 50) -> np.ndarray:
        """(k,) positions of the items most similar to ``items`` (themselves left out)."""
        idx, _ = self.index.more_like_this(np.atleast_1d(np.asarray(items, np.int64)), k)
        return idx[idx >= 0]

    def text_search(self, query: str, k: int = 100) -> np.ndarray:
        """(k,) positions of the items that best match a text query (CLIP text tower)."""
        if self.text_encoder is None:
            self.text_encoder = self._text_encoder_from_project()
        if self.text_encoder is None:
            raise ValueError(
                "text search needs a text encoder in the same space as the vectors: embed "
                "with CLIP (images) or a sentence model (texts) via Workbench.from_items, or "
                "pass text_encoder= (a callable list[str] -> (Q, D) array)"
            )
        if not str(query).strip():
            raise ValueError("the search text is empty")
        q = np.asarray(self.text_encoder([str(query)]), np.float32)
        idx, _ = self.index.search_vectors(q, k)
        return idx[0][idx[0] >= 0]

    def suggestions(self, n: int = ACTIVE_BATCH_SIZE) -> np.ndarray:
        """Items to label next: uncertain and diverse; before any model, uncovered clusters."""
        from .learn import cluster_coverage_batch, suggest_batch

        human = self.labels.state.human
        if self.predictions is None:
            return cluster_coverage_batch(self.clusters, human, batch_size=n)
        return suggest_batch(self.predictions, self.vectors, human, batch_size=n)

    def suspected_errors(self, n: int = ACTIVE_BATCH_SIZE, *,
                         exclude: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Human labels most likely wrong (out-of-fold probe + neighbour votes), most
        suspect first; ``exclude``: positions to leave out (e.g. already reviewed)."""
        from .learn import rank_label_issues

        human = self.labels.state.human.copy()  # callers may be worker threads
        with self._lock:
            fitted = self._issues_input
        labels, oof = human, None
        if fitted is not None and np.array_equal(fitted[0], human):
            # The last retrain's out-of-fold probe probabilities, for the labels as they
            # are now: nothing to fit again.
            labels, oof = fitted[1], fitted[2]
        try:
            issues = rank_label_issues(self.vectors, labels, oof_proba=oof)
        except NotEnoughLabels:
            return np.zeros(0, np.int64)
        ranked = issues.ranked
        if exclude is not None:
            ranked = ranked[~np.isin(ranked, np.asarray(exclude, np.int64))]
        return ranked[:n]

    def estimate(self, min_confidence: float | None = None) -> dict[str, Any]:
        """How right the labels are now, with a 90% interval; cheap (no refit), any thread.

        From the last published fit: each machine label (accepted, else the prediction)
        is right with its calibrated confidence; human labels are taken as right (their
        own error rate is not estimated). The interval adds the Poisson-binomial spread of
        the count right to the spread of that count across bootstrap refits of the
        calibrator over held-out clusters.

        Parameters
        ----------
        min_confidence : threshold of the ``"machine"`` figures (default
            ``CAL_EXPORT_MIN_CONFIDENCE`` = 0.9): the machine labels an export at this
            ``min_confidence`` would contain.

        Returns
        -------
        dict: ``accuracy``, ``low``, ``high`` (estimated share of all N items whose
        effective label is right), ``n_items``, ``n_human``, ``n_machine``, and
        ``machine``: {``min_confidence``, ``count``, ``accuracy``, ``low``, ``high``}.
        Figures are None before any fit.
        """
        from ._config import CAL_EXPORT_MIN_CONFIDENCE

        t = CAL_EXPORT_MIN_CONFIDENCE if min_confidence is None else float(min_confidence)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, not {min_confidence}")
        with self._lock:
            record = self._calibration
            cache = self._estimates
        state = self.labels.state
        key = (t, int((state.human >= 0).sum()), int((state.machine >= 0).sum()))
        hit = cache.get(key)
        if hit is not None:
            return dict(hit, machine=dict(hit["machine"]))
        out = _compute_estimate(state, record, t, self.n)
        cache[key] = out
        return dict(out, machine=dict(out["machine"]))

    # -- background work -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; events: labels, predictions, layout,
        status. It may be called from a worker thread. Returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def retrain(self) -> None:
        """Refit propagation and probe on the current human labels (in the background)."""
        human = self.labels.state.human.copy()
        if self._retrainer is None:
            self._publish_predictions(self._fit(human))
        else:
            self._set_running("retrain", True)
            self._retrainer.submit(human)

    def wait(self, timeout: float | None = 120.0) -> None:
        """Block until background layout and retraining are done (scripts, tests, notebooks
        run unattended). Interactive use never needs this."""
        if self._layout_thread is not None:
            self._layout_thread.join(timeout)
        if self._retrainer is not None:
            self._retrainer.wait(timeout)

    def close(self) -> None:
        if self._retrainer is not None:
            self._retrainer.close(wait=False)
        self.project.close()

    def export(self, path: str | os.PathLike[str], *, format: str | None = None,
               include: str = "human", min_confidence: float = 0.0, overwrite: bool = False,
               csv_safe: bool = True, mode: str | None = None, split: float | None = None,
               seed: int | None = None) -> Path:
        """Export the labels; the one export path (``workbench export`` calls this too).

        Rows come from :func:`~workbench.labels.effective_labels` over the label log and
        the current :attr:`predictions`: ``include="human"`` (default) human labels only,
        ``"all"`` also accepted machine labels and live predictions whose confidence is at
        least ``min_confidence``. ``format``: parquet, csv, tsv, jsonl (default: the file
        suffix), imagefolder or hf (``mode``, ``split``, ``seed``: ImageFolder only).
        Refuses a path inside a project folder, and an existing file or non-empty folder
        unless ``overwrite``; writes metadata alongside (with :meth:`estimate`, at this
        ``min_confidence`` for ``include="all"``). See :func:`workbench.export.export_project`.
        """
        from .export import export_project

        estimate = None
        compute = getattr(self, "estimate", None)
        if callable(compute):
            try:
                try:  # its machine figures then describe the machine labels exported
                    estimate = (compute(min_confidence=float(min_confidence))
                                if include == "all" else compute())
                except TypeError:
                    estimate = compute()
            except Exception as e:  # the export is still worth having without it
                log.warning("export: no accuracy estimate (%s)", e)
        return export_project(
            self.project, path, format=format, include=include,
            min_confidence=min_confidence, predictions=self.predictions, estimate=estimate,
            overwrite=overwrite, csv_safe=csv_safe, mode=mode, split=split, seed=seed)

    def show(self):
        """The notebook widget over this session."""
        from .widgets import WorkbenchApp  # the core never imports widget code at load time

        return WorkbenchApp(self)

    def _ipython_display_(self) -> None:  # pragma: no cover - notebook only
        from IPython.display import display

        display(self.show())

    def __repr__(self) -> str:
        return (f"Workbench({str(self.project.path)!r}, items={self.n}, "
                f"classes={len(self.labels.classes)}, device={self.device!r})")

    # -- internals -----------------------------------------------------------------------------

    def _labels_changed(self, *, retrain: bool = True) -> None:
        self._emit("labels")
        if retrain:
            self.retrain()

    def _fit(self, human: np.ndarray) -> dict[str, Any]:
        """Propagation (over the vectors' graph and, once it exists, the UMAP map's), the
        probe, and their mix, on a snapshot of the human labels (worker thread)."""
        from .learn import (
            Mixing,
            calibrated,
            held_out_predictions,
            mix,
            mixing_from_held_out,
            side_by_side,
        )
        from .learn.calibrate import (
            fallback_calibrator,
            log_mass,
            nearest_labelled_distance,
            neighbour_radius,
        )

        out: dict[str, Any] = {"propagation": None, "map_propagation": None, "probe": None,
                               "accuracy": None, "weights": {}, "message": ""}
        graphs = {"propagated": self.graph}
        # Above MANY_CLASSES the 2-D map's neighbours cannot keep hundreds of classes apart
        # (its held-out weight was 0 at 1,000 classes) and a second propagation would cost
        # as much as the first: the vectors' graph propagates alone.
        n_classes = np.unique(human[human >= 0]).size
        map_spreader = self._map_spreader_if_ready() if n_classes <= MANY_CLASSES else None
        if map_spreader is not None:
            graphs["map"] = self.map_graph

        def spread() -> None:
            self._spreader.fit(human)
            if map_spreader is not None:
                map_spreader.fit(human)

        # Propagation and the probe are independent: they fit side by side (two cores).
        try:
            _, fitted = side_by_side(spread, lambda: self._fit_probe(human))
        except NotEnoughLabels as e:  # from propagation: nothing is labelled enough yet
            out["message"] = str(e)
            return out
        out["propagation"] = self._spreader.predictions_
        if map_spreader is not None:
            out["map_propagation"] = map_spreader.predictions_
        probe = fitted.pop("model")
        out.update(fitted)
        models = {"propagated": out["propagation"], "map": out["map_propagation"],
                  "probe": out["probe"]}
        held = held_out_predictions(
            human, graphs, probe, vectors=self.vectors, groups=self._cluster_ids(),
            folds=MIX_FOLDS if self.n <= MIX_FOLDS_MAX_ITEMS else 1, fitted=models)
        mixing = None if held is None else mixing_from_held_out(held)
        if mixing is None:  # too few labels to hold any out: an even mix, a coin flip
            mixing = Mixing({k: 1.0 for k, v in models.items() if v is not None},
                            calibrator=fallback_calibrator())
        out["weights"] = mixing.weights
        combined = mix(models, mixing.weights, temperature=mixing.temperature)
        # Calibrated confidence: the chance each machine label is right (learn/calibrate.py).
        mass = log_mass(out["propagation"].mass)
        distance = nearest_labelled_distance(self.vectors, np.flatnonzero(human >= 0),
                                             radius=neighbour_radius(self.graph))
        combined, features = calibrated(combined, models, mixing, log_mass=mass,
                                        distance=distance)
        out["combined"] = combined
        out["calibration"] = {"calibrator": mixing.calibrator, "features": features,
                              "predictions": combined}
        return out

    def _fit_probe(self, human: np.ndarray) -> dict[str, Any]:
        """The probe's part of :meth:`_fit`: ``model`` (None when it cannot fit yet),
        ``probe`` predictions, ``accuracy``, ``issues_input`` or a ``message``."""
        from .learn import LinearProbe

        # The probe learns the classes with 2+ labels (its held-out choice of L2 needs
        # them); a class named by one item is left to propagation until its second label,
        # rather than holding the probe back for every class.
        classes, counts = np.unique(human[human >= 0], return_counts=True)
        probe_labels = np.where(np.isin(human, classes[counts < 2]), -1, human)
        n_probe = int((probe_labels >= 0).sum())
        if n_probe < PROBE_MIN_LABELS or int((counts >= 2).sum()) < 2:
            return {"model": None,
                    "message": (f"the probe waits for {PROBE_MIN_LABELS} labels in 2+ classes "
                                f"that have 2+ labels each; {n_probe} so far")}
        try:
            probe = LinearProbe(device=self.device).fit(self.vectors, probe_labels)
        except NotEnoughLabels as e:
            return {"model": None, "message": str(e)}
        return {"model": probe, "probe": probe.predictions(self.vectors),
                "accuracy": float(probe.cv_accuracy_),
                # Kept so the suspected-errors queue ranks without fitting again.
                "issues_input": (human.copy(), probe_labels, probe.oof_proba_)}

    def _cluster_ids(self) -> np.ndarray:
        """(N,) int64 the proposed cluster of every item."""
        with self._clusters_lock:
            self._compute_clusters()
            return self._cluster_of

    def _map_spreader_if_ready(self) -> Any:
        """A spreader over the UMAP map's neighbours, built the first time it is needed."""
        from .layout import map_graph
        from .learn import LabelSpreader

        with self._lock:
            if not self._umap_ready:
                return None
            if self._map_spreader is None:
                self.map_graph = map_graph(self.coords, k=KNN_K)
                self._map_spreader = LabelSpreader(self.map_graph)
            return self._map_spreader

    def _publish_predictions(self, result: dict[str, Any]) -> None:
        with self._lock:
            self.propagation = result["propagation"]
            self.map_propagation = result["map_propagation"]
            self.probe_predictions = result["probe"]
            self.weights = result["weights"]
            self.predictions = result.get("combined")
            # The probe's own held-out accuracy, kept for compatibility: it is not the
            # accuracy of the labels (that is estimate(), from calibrated confidence).
            if result["accuracy"] is not None:
                self.probe_accuracy = result["accuracy"]
            self._calibration = result.get("calibration")
            self._issues_input = result.get("issues_input")
            self._estimates = {}
            self.message = result["message"]
            self._running.discard("retrain")
        self._emit("predictions")
        self._emit("status")

    def _on_fit_error(self, exc: BaseException) -> None:
        log.error("background retrain failed: %s", exc, exc_info=exc)
        with self._lock:
            self.message = f"retrain failed: {exc}"
            self._running.discard("retrain")
        self._emit("status")

    def _set_running(self, job: str, on: bool) -> None:
        with self._lock:
            (self._running.add if on else self._running.discard)(job)
        self._emit("status")

    def _first_layout(self) -> np.ndarray:
        """Coordinates to show at once: the UMAP map when there is no background thread,
        else a PCA projection (no numba, milliseconds) until the UMAP map arrives."""
        from .layout import compute_layout

        if self.layout_method == "umap" and not self.background:
            self._layout_final = self._umap_ready = True
            return compute_layout(self.graph, self.vectors, cache_dir=self.project.cache_dir)
        self._layout_final = self.layout_method == "quick"
        return pca_layout(self.vectors)

    def _start_layout(self) -> None:
        from .layout import compute_layout

        if self._layout_final:
            return

        def run() -> None:
            self._set_running("layout", True)
            try:
                coords = compute_layout(self.graph, self.vectors,
                                        cache_dir=self.project.cache_dir)
                with self._lock:
                    self.coords = coords
                    self._layout_final = self._umap_ready = True
                    labelled = bool((self.labels.state.human >= 0).any())
                self._emit("layout")
                if labelled:  # the map's neighbours now join the predictions
                    self.retrain()
            except Exception as e:  # shown to the user, the quick layout stays
                log.error("layout failed: %s", e, exc_info=e)
                self.message = f"layout failed: {e}"
            finally:
                self._set_running("layout", False)

        self._layout_thread = threading.Thread(target=run, name="workbench-layout", daemon=True)
        self._layout_thread.start()

    def _text_encoder_from_project(self) -> Callable[[list[str]], np.ndarray] | None:
        """The text side of the model that embedded this project (CLIP's text tower, or the
        sentence model itself for texts), loaded on first use."""
        info = self.project.meta.get("embedder") or {}
        spec = info.get("spec")
        backend = str(info.get("name", "")).split(":")[0]
        if not spec or backend not in ("clip", "text"):
            return None
        from .embed import make_embedder

        return make_embedder(spec, kind="image" if backend == "clip" else "text").encode_text

    def _emit(self, event: str) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(event)
            except Exception as e:  # a broken view must not break labelling
                log.error("subscriber %r failed on %r: %s", cb, event, e, exc_info=e)


def _compute_estimate(state: Any, record: dict[str, Any] | None, t: float,
                      n: int) -> dict[str, Any]:
    """:meth:`Workbench.estimate` from a label state and the last fit's calibration."""
    from .labels.effective import ACCEPTED, HUMAN, effective_labels
    from .learn.calibrate import estimate_accuracy

    none = {"accuracy": None, "low": None, "high": None}
    is_h = state.human >= 0
    out: dict[str, Any] = {**none, "n_items": int(n), "n_human": int(is_h.sum()),
                           "n_machine": 0,
                           "machine": {"min_confidence": t, "count": 0, **none}}
    if record is None or record.get("calibrator") is None:
        return out
    pred, cal, feats = record["predictions"], record["calibrator"], record["features"]
    if pred.n != n:
        return out
    eff = effective_labels(state, pred)
    machine = eff.layer >= ACCEPTED
    # Chance right per machine label: the calibrated confidence where it is the predicted
    # label; an accepted label that differs gets its share of the remaining doubt.
    cols = np.searchsorted(pred.classes, np.clip(eff.label, 0, None))
    cols = np.minimum(cols, max(pred.classes.size - 1, 0))
    rows = np.arange(n)
    p_lab = pred.proba[rows, cols].astype(np.float64) if pred.classes.size else np.zeros(n)
    p_top = pred.proba.max(axis=1).astype(np.float64) if pred.classes.size else np.ones(n)
    same = (eff.label == pred.label) & (pred.classes.size > 0)
    scale = np.where(same, 1.0, np.divide(p_lab, np.maximum(1.0 - p_top, 1e-9)))
    conf = np.asarray(pred.confidence, np.float64)
    p_right = np.where(same, conf, (1.0 - conf) * np.clip(scale, 0.0, 1.0))
    weight = np.where(same, 1.0, -np.clip(scale, 0.0, 1.0))  # d(p_right)/d(conf)
    offset = np.where(same, 0.0, np.clip(scale, 0.0, 1.0))
    uncertain = ~(eff.layer == HUMAN)  # machine labels, and items with no label (wrong)
    w_all = np.where(machine, weight, 0.0)
    sums = cal.boot_sums(feats, np.where(uncertain, w_all, 0.0))
    base = float(np.where(machine & uncertain, offset, 0.0).sum())
    overall = estimate_accuracy(np.where(machine, p_right, 0.0)[uncertain],
                                sums + base if sums.size else None, int(is_h.sum()),
                                model_error=cal.model_error())
    out.update({k: overall[k] for k in ("accuracy", "low", "high")})
    out["n_machine"] = int(machine.sum())
    sel = machine & (np.nan_to_num(eff.confidence, nan=0.0) >= t)
    if sel.any():
        part = estimate_accuracy(p_right[sel], cal.boot_sums(feats, np.where(sel, weight, 0.0))
                                 + float(offset[sel].sum()), 0, model_error=cal.model_error())
        out["machine"] = {"min_confidence": t, "count": int(sel.sum()),
                          **{k: part[k] for k in ("accuracy", "low", "high")}}
    return out


def pca_layout(vectors: np.ndarray, *, sample: int = 20_000, seed: int = 0) -> np.ndarray:
    """(N, 2) float32 in [-1, 1]: the first two principal components (an instant first map).

    The axes are fitted on at most ``sample`` rows, so this stays fast at a million items.
    """
    from .layout import scale_to_unit

    x = np.asarray(vectors, np.float32)
    rng = np.random.default_rng(seed)
    fit = x if x.shape[0] <= sample else x[rng.choice(x.shape[0], sample, replace=False)]
    mean = fit.mean(axis=0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    axes = vt[:2].T if vt.shape[0] >= 2 else np.eye(x.shape[1], 2, dtype=np.float32)
    return scale_to_unit((x - mean) @ axes)
