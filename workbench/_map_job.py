"""The session's map: a quick first layout at once, the UMAP map computed in a background
thread (the map's own neighbours then join the predictions), and the PCA projection shown
until it arrives. The session mixes this in."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from ._config import KNN_K, PCA_LAYOUT_SAMPLE
from ._events import Event

__all__ = ["MapJob", "pca_layout"]

log = logging.getLogger("workbench.session")


class MapJob:
    """``_first_layout``, ``_start_layout`` and ``_map_spreader_if_ready``; needs
    ``graph``, ``vectors``, ``project``, ``layout_method``, ``background``, ``labels``,
    ``_lock``, ``retrain``, ``_emit`` and ``_set_running`` of the session."""

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
                self._emit(Event.LAYOUT)
                if labelled:  # the map's neighbours now join the predictions
                    self.retrain()
            except Exception as e:  # shown to the user, the quick layout stays
                log.error("layout failed: %s", e, exc_info=e)
                self.message = f"layout failed: {e}"
            finally:
                self._set_running("layout", False)

        self._layout_thread = threading.Thread(target=run, name="workbench-layout", daemon=True)
        self._layout_thread.start()

    def _map_models(self) -> tuple[Any, Any] | None:
        """The map's (graph, spreader) once the UMAP map exists, else None."""
        spreader = self._map_spreader_if_ready()
        return None if spreader is None else (self.map_graph, spreader)

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


def pca_layout(vectors: np.ndarray, *, sample: int = PCA_LAYOUT_SAMPLE, seed: int = 0) -> np.ndarray:
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
