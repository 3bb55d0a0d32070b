"""Threads over independent pieces of the graph build (cells, blocks of rows).

Each piece runs its products single-threaded (BLAS and FAISS's OpenMP limited to one thread
per worker), so that ``threads`` workers use ``threads`` cores without oversubscription and
every piece computes the same numbers whatever the number of workers: the graph does not
depend on ``threads``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from .._device import available_cores

__all__ = ["run_pieces"]


@contextmanager
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # numpy's products then use their own threads: slower, same results
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_pieces(fn: Callable[[object], None], pieces: Iterable, threads: int | None) -> None:
    """``fn(piece)`` for every piece, on ``threads`` workers (default: every core).

    ``fn`` writes its own results (disjoint rows of shared arrays) and returns nothing.
    Pieces are started in the order given: pass the costliest first to balance the load.
    """
    import faiss

    threads = available_cores() if threads is None else max(1, int(threads))
    before = faiss.omp_get_max_threads()

    def call(piece):
        faiss.omp_set_num_threads(1)  # OpenMP's setting is per thread
        fn(piece)

    with _one_blas_thread():
        try:
            if threads == 1:
                for piece in pieces:
                    call(piece)
            else:
                with ThreadPoolExecutor(threads, thread_name_prefix="knn") as pool:
                    for _ in pool.map(call, pieces):
                        pass
        finally:
            faiss.omp_set_num_threads(before)
