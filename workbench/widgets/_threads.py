"""Run a function on the kernel's main thread, which owns the widgets.

Session callbacks (new predictions, a finished propagation) can fire on a worker thread;
touching a widget trait there races with the kernel's own message handling. They are
handed to the main thread's event loop instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["OffMainThread", "call_on_main", "kernel_loop"]

log = logging.getLogger("workbench.widgets")


def kernel_loop() -> Any | None:
    """The IPython kernel's main-thread IOLoop, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    ip = get_ipython()
    kernel = getattr(ip, "kernel", None) if ip is not None else None
    return getattr(kernel, "io_loop", None)


def call_on_main(fn: Callable[[], Any], *, loop: Any | None = None) -> None:
    """Call ``fn()`` now when on the main thread, else schedule it on the main loop.

    Parameters
    ----------
    fn : a callable with no arguments.
    loop : a tornado ``IOLoop`` (or anything with ``add_callback``) running on the main
        thread; default the kernel's, found through IPython. Without one (plain Python,
        no front end to race with) ``fn`` is called directly.
    """
    if threading.current_thread() is threading.main_thread():
        fn()
        return
    loop = loop if loop is not None else kernel_loop()
    if loop is None:
        fn()
    else:
        loop.add_callback(fn)


class OffMainThread:
    """One kind of work (a fit, a ranking) run in a worker thread, its result handed to the
    main thread: the newest request wins.

    ``submit(*args)`` returns at once; ``compute(*args)`` runs in the worker thread (only
    the newest request runs once the worker is free), and ``apply(result)`` then runs on
    the main thread, through the loop as :func:`call_on_main` does, unless a newer request
    came in meanwhile. A failure goes to ``on_error(exc)`` on the main thread.

    Parameters
    ----------
    compute : ``fn(*args) -> result``; must not touch widgets.
    apply : ``fn(result)``, on the main thread.
    on_error : ``fn(exc)``, on the main thread; default logs it.
    loop : the main thread's loop (see :func:`call_on_main`); default the kernel's.
    name : the worker thread's name.
    """

    def __init__(
        self,
        compute: Callable[..., Any],
        apply: Callable[[Any], None],
        *,
        on_error: Callable[[BaseException], None] | None = None,
        loop: Any | None = None,
        name: str = "workbench-widget-job",
    ) -> None:
        from ..learn.background import Retrainer

        self._compute = compute
        self._apply = apply
        self._on_error = on_error or (lambda e: log.error("%s failed: %s", name, e, exc_info=e))
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[tuple[int, bool, Any]] = []
        self._generation = 0
        self._done = 0  # the newest request applied (or failed)
        self._job = Retrainer(self._run, on_result=self._deliver, delay=0.0, name=name)

    @property
    def busy(self) -> bool:
        """True from ``submit`` until the newest request's result is applied (or failed)."""
        with self._lock:
            return self._done != self._generation

    def submit(self, *args: Any) -> None:
        with self._lock:
            self._generation += 1
            self._job.submit(self._generation, *args)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the newest request is computed; on the main thread, apply it too
        (the loop may not get to it before the caller reads the widgets)."""
        self._job.wait(timeout)
        if threading.current_thread() is threading.main_thread():
            self.flush()

    def flush(self) -> None:
        """Apply what the worker handed over and the loop has not applied yet (main thread)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for gen, ok, value in pending:
            with self._lock:
                if gen != self._generation:
                    continue  # a newer request supersedes it
                self._done = gen
            if ok:
                self._apply(value)
            else:
                self._on_error(value)

    def close(self) -> None:
        self._job.close(wait=False)

    def _run(self, gen: int, *args: Any) -> tuple[int, bool, Any]:
        try:
            return gen, True, self._compute(*args)
        except Exception as e:  # handed to the main thread like a result
            return gen, False, e

    def _deliver(self, out: tuple[int, bool, Any]) -> None:
        with self._lock:
            self._pending.append(out)
        call_on_main(self.flush, loop=self._loop)
