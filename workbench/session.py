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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._arrays import as_vectors, check_nonzero_rows
from ._config import KNN_K
from ._construct import Constructors
from ._estimate import Estimates
from ._events import Event, EventBus
from ._label_verbs import LabelVerbs
from ._map_job import MapJob
from ._names import ClusterNames
from ._queues import Cluster, Queues
from ._rules import Rules
from ._selections import Selections
from ._team import Team
from .learn import Predictions
from .learn.pipeline import ModelState, fit_models
from .neighbors import KnnGraph, NeighborIndex, build_knn_graph
from .project import Project

__all__ = ["Cluster", "Event", "Workbench"]

log = logging.getLogger(__name__)

EVENTS = tuple(e.value for e in Event)


class Workbench(Constructors, LabelVerbs, Queues, Estimates, Team, MapJob, Rules, ClusterNames,
                Selections):
    """A labelling session over one project folder.

    Create with :meth:`demo` (offline digits), :meth:`open` (an existing project),
    :meth:`from_items` (embed items) or :meth:`create` (items and ready vectors).

    This class wires; each part is a module of its own: construction (``_construct``), the
    label verbs (``_label_verbs``), clusters, suggestions and search (``_queues``), the
    accuracy estimate (``_estimate``), several annotators' consensus (``_team``), the map and its thread (``_map_job``), events
    (``_events``) and one retrain (:func:`workbench.learn.pipeline.fit_models`).

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
        self._events = EventBus()
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
            self._start_live()
        if self.labels.state.human.max(initial=-1) >= 0 or self.labels.state.rules:
            self.retrain()  # labels or rules saved before: predictions at once

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
        """What is running, on which device, who labels, and the probe's held-out accuracy."""
        with self._lock:
            return {
                "running": sorted(self._running),
                "device": self.device,
                "annotator": self.labels.annotator,
                "probe_accuracy": self.probe_accuracy,
                "message": self.message,
            }

    def item_text(self, i: int) -> str:
        """What to show for item ``i``: the text of a text item, the file name of an image."""
        row = self.items.row(int(i), named=True)
        if row["kind"] == "image":
            return Path(row["source"]).name
        return str(row["source"])

    # -- background work -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; events (:class:`Event`): labels,
        predictions, layout, status. It may be called from a worker thread. Returns an
        unsubscribe function."""
        return self._events.subscribe(callback)

    def retrain(self) -> None:
        """Refit propagation and probe on the current human labels (their consensus once
        several annotators label), in the background."""
        human = self._training_labels()
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
        self._stop_live()
        if self._retrainer is not None:
            self._retrainer.close(wait=False)
        self.project.close()

    def export(self, path: str | os.PathLike[str], *, format: str | None = None,
               include: str = "human", min_confidence: float = 0.0, overwrite: bool = False,
               csv_safe: bool = True, mode: str | None = None, split: float | None = None,
               seed: int | None = None, annotations: bool = False, items: Any = None,
               selection: str | None = None) -> Path:
        """Export the labels; the one export path (``workbench export`` calls this too).

        Rows come from :func:`~workbench.labels.effective_labels` over the label log and
        the current :attr:`predictions`: ``include="human"`` (default) human labels only,
        ``"all"`` also accepted machine labels and live predictions whose confidence is at
        least ``min_confidence``. ``format``: parquet, csv, tsv, jsonl (default: the file
        suffix), imagefolder or hf (``mode``, ``split``, ``seed``: ImageFolder only).
        Refuses a path inside a project folder, and an existing file or non-empty folder
        unless ``overwrite``; writes metadata alongside (with :meth:`estimate`, at this
        ``min_confidence`` for ``include="all"``). ``items`` / ``selection``: export only
        those items, or the selection saved under that name. See
        :func:`workbench.export.export_project`.
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
        # several annotators: their consensus beside each row of a table
        team = self._team_consensus() if _is_table(path, format) else None
        return export_project(
            self.project, path, format=format, include=include,
            min_confidence=min_confidence, predictions=self.predictions, estimate=estimate,
            overwrite=overwrite, csv_safe=csv_safe, mode=mode, split=split, seed=seed,
            consensus=team, annotations=annotations, items=self.subset_ids(items, selection))

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
        self._emit(Event.LABELS)
        if retrain:
            self.retrain()

    def _publish_predictions(self, result: ModelState) -> None:
        with self._lock:
            self.propagation = result.propagation
            self.map_propagation = result.map_propagation
            self.probe_predictions = result.probe
            self.weights = result.weights
            self.predictions = result.combined
            # The probe's own held-out accuracy, kept for compatibility: it is not the
            # accuracy of the labels (that is estimate(), from calibrated confidence).
            if result.accuracy is not None:
                self.probe_accuracy = result.accuracy
            self._calibration = result.calibration
            self._issues_input = result.issues_input
            self._estimates = {}
            self.message = result.message
            self._running.discard("retrain")
        self._emit(Event.PREDICTIONS)
        self._emit(Event.STATUS)

    def _on_fit_error(self, exc: BaseException) -> None:
        log.error("background retrain failed: %s", exc, exc_info=exc)
        with self._lock:
            self.message = f"retrain failed: {exc}"
            self._running.discard("retrain")
        self._emit(Event.STATUS)

    def _set_running(self, job: str, on: bool) -> None:
        with self._lock:
            (self._running.add if on else self._running.discard)(job)
        self._emit(Event.STATUS)

    def _emit(self, event: Event | str) -> None:
        self._events.emit(event)

    def _fit(self, human: np.ndarray) -> ModelState:
        """One retrain on a snapshot of the human labels (worker thread): see
        :func:`workbench.learn.pipeline.fit_models`."""
        votes = self.rule_votes()[1]  # the enabled rules' votes: one more source
        return fit_models(human, vectors=self.vectors, graph=self.graph,
                          spreader=self._spreader, map_models=self._map_models,
                          groups=self._cluster_ids, device=self.device,
                          rules=votes if votes.shape[1] else None,
                          spot_checks=self._spot_checked(human))


def _is_table(path: str | os.PathLike[str], format: str | None) -> bool:
    from .export import ExportError
    from .export.options import TABLE_FORMATS, format_for

    try:
        return format_for(path, format) in TABLE_FORMATS
    except ExportError:  # export_project says what is wrong
        return False
