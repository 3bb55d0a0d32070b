"""The IVF graph's cell pass on a Ray cluster (``build_knn_graph(..., engine="ray")``).

Only the cell pass leaves the driver: it is the build's cost (every cell's items against
all items of its ``nprobe`` nearest cells). The k-means cells, the recall sample, the
choice of ``nprobe`` and any neighbour-of-neighbour rounds stay on the driver as in the
local build: the rounds are off by default (:data:`GRAPH_CELL_PASS_RECALL`) and, when they
run, read vectors at random across the whole collection, which a split over processes
would not make cheaper.

Shared data. The unit vectors ``x``, ``order``, ``starts`` and the ``near`` table of a pass
go into the object store once (``ray.put``), and every task gets the references: Ray moves
an object to a node once and each worker there reads it zero-copy (read-only numpy arrays
in shared memory), so N × D floats cost one copy per node whatever the number of tasks.
This was chosen over memory-mapping a ``.npy``: that needs a filesystem every node sees,
and the vectors the graph is built from are a normalised copy held in memory, which would
first have to be written out. The price is one copy of the vectors in the driver node's
object store for the length of the build (2 GiB at 1M × 512).

Tasks. Cells are grouped into runs of about equal cost, costliest first as in the local
build, :data:`GRAPH_RAY_TASKS_PER_CPU` runs per CPU of the cluster
(``ray.cluster_resources()``); each task asks for one CPU and searches its cells with one
FAISS (``faiss.omp_set_num_threads(1)``) and one BLAS thread with the local build's own
per-cell function (:func:`~._blocks.search_cell`), so the graph is bit-identical to the
local one. A task returns ``(rows, ids, sims)`` of its cells' items; the driver writes them
into the graph as tasks finish. Workers need ``workbench`` and ``faiss`` importable (the
same environment as the driver, or a Ray ``runtime_env``).

Connection: :func:`workbench._ray.connect`.
"""

from __future__ import annotations

import logging

import numpy as np

from .._config import GRAPH_RAY_TASKS_PER_CPU
from .._ray import connect
from ._blocks import cells_by_cost, search_cell

__all__ = ["RayCellSearch", "split_by_cost"]

log = logging.getLogger(__name__)


def split_by_cost(cells: np.ndarray, cost: np.ndarray, parts: int) -> list[np.ndarray]:
    """``cells`` (costliest first) cut into at most ``parts`` consecutive runs of about
    equal summed ``cost``; a cell costlier than a run's share is a run of its own."""
    total = np.cumsum(cost, dtype=np.float64)
    if parts <= 1 or cells.size <= 1:
        return [cells] if cells.size else []
    edges = np.searchsorted(total, total[-1] * np.arange(1, parts) / parts, side="right")
    return [run for run in np.split(cells, np.unique(edges)) if run.size]


class RayCellSearch:
    """The cell pass of one graph build as Ray tasks over runs of cells.

    Parameters
    ----------
    x : (N, D) float32 unit rows.
    k : neighbours per item.
    order, starts : the cells' items: cell ``c`` holds ``order[starts[c]:starts[c + 1]]``.
    address : passed to :func:`connect`.

    ``x``, ``order`` and ``starts`` are put into the object store once, for every pass of
    the build; calling the object with a ``near`` table (nlist, nprobe) runs one pass and
    returns ``(ids (N, k) int64, sims (N, k) float32)``, equal to
    :func:`~._blocks.cell_blocked_search` on the same arguments.
    """

    def __init__(self, x: np.ndarray, k: int, order: np.ndarray, starts: np.ndarray, *,
                 address: str | None = None):
        self._ray = connect(address)
        self._n, self._k = x.shape[0], k
        self._starts = starts
        self._shared = tuple(self._ray.put(a) for a in (x, order, starts))

    def __call__(self, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ray = self._ray
        cells, cost = cells_by_cost(near, self._starts)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        runs = split_by_cost(cells, cost, min(cells.size, cpus * GRAPH_RAY_TASKS_PER_CPU))
        log.info("kNN graph: cell pass as %d Ray tasks over %d CPUs", len(runs), cpus)
        x_ref, order_ref, starts_ref = self._shared
        near_ref = ray.put(np.ascontiguousarray(near))
        task = _remote_search(ray)
        pending = [task.remote(x_ref, self._k, near_ref, order_ref, starts_ref, run)
                   for run in runs]
        idx = np.full((self._n, self._k), -1, np.int64)
        sims = np.zeros((self._n, self._k), np.float32)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                rows, run_idx, run_sims = ray.get(done[0])
                idx[rows], sims[rows] = run_idx, run_sims
        finally:  # a failed task or an interrupt: the other tasks' work is not wanted
            for ref in pending:
                ray.cancel(ref)
        return idx, sims


_REMOTE: dict[str, object] = {}


def _remote_search(ray):
    """:func:`search_cells` as a Ray remote function of one CPU (made once)."""
    if "search" not in _REMOTE:
        _REMOTE["search"] = ray.remote(num_cpus=1)(search_cells)
    return _REMOTE["search"]


def search_cells(
    x: np.ndarray, k: int, near: np.ndarray, order: np.ndarray, starts: np.ndarray,
    cells: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, ids (rows, k), sims (rows, k)) of the items of ``cells``: a Ray task's work,
    one FAISS and BLAS thread, each cell as in the local build."""
    import faiss

    from ._threads import run_pieces

    faiss.omp_set_num_threads(1)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    # run_pieces also holds BLAS to one thread, as in the local build
    run_pieces(lambda c: found.append(search_cell(x, k, near[c], order, starts, int(c))),
               cells, threads=1)
    if not found:
        return np.empty(0, np.int64), np.empty((0, k), np.int64), np.empty((0, k), np.float32)
    rows, idx, sims = (np.concatenate(parts) for parts in zip(*found))
    return rows, idx, sims
