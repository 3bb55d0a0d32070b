"""Run fits in a worker thread: debounced, and a newer request supersedes an older one.

The kernel's main thread must never wait for training. :class:`Retrainer` takes requests
with :meth:`~Retrainer.submit` (which returns at once), waits ``delay`` seconds of quiet so
a burst of labels costs one fit, runs the callable in its thread, and publishes the result
only if no newer request arrived since that fit took its inputs. A superseded fit runs to
its end (torch cannot be interrupted safely mid-step) but its result is dropped, so stale
predictions never reach the callback.

At interpreter exit every live runner is closed and its running fit awaited: a worker
thread still inside torch or FAISS while Python tears down aborts the process ("terminate
called without an active exception"), so a script that ends right after ``wb.show()`` or a
label waits for the fit in flight instead.
"""

from __future__ import annotations

import atexit
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from .._config import RETRAIN_DELAY_S

__all__ = ["Retrainer"]

_LIVE: weakref.WeakSet[Retrainer] = weakref.WeakSet()


@atexit.register
def _close_live() -> None:
    """Close every live runner and wait for its running fit (pending ones are dropped)."""
    for runner in list(_LIVE):
        runner.close(wait=True)


class Retrainer:
    """A debounced, superseding background runner for one kind of fit.

    Parameters
    ----------
    fn : the fit, called as ``fn(*args, **kwargs)`` with the arguments of a ``submit``.
        Give it snapshots (copies) of mutable inputs: it runs later, in another thread.
    on_result : called in the worker thread as ``on_result(result)`` for each published
        result. Widgets must hand it to the main thread before touching any trait.
    on_error : called as ``on_error(exc)`` when the newest fit raises; default stores it in
        :attr:`error` (and the traceback in :attr:`error_traceback`).
    delay : seconds of quiet after the last ``submit`` before fitting (default
        ``RETRAIN_DELAY_S``).
    name : thread name, shown in debuggers.

    Attributes
    ----------
    result : the last published result (None before the first).
    generation : number of requests submitted so far.
    published_generation : the request whose result is in ``result`` (0 = none).
    error : the exception of the newest failed fit, else None.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        delay: float = RETRAIN_DELAY_S,
        name: str = "workbench-retrainer",
    ) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay}")
        self._fn = fn
        self._on_result = on_result
        self._on_error = on_error
        self.delay = float(delay)
        self._cond = threading.Condition()
        self._request: tuple[int, tuple, dict] | None = None
        self._last_submit = 0.0
        self._running = False
        self._closed = False
        self.generation = 0
        self.published_generation = 0
        self.result: Any = None
        self.error: BaseException | None = None
        self.error_traceback: str | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def submit(self, *args: Any, **kwargs: Any) -> int:
        """Ask for a fit with these arguments; returns its generation number at once.

        Any earlier request not yet started is replaced; one already running will not
        publish its result.
        """
        with self._cond:
            if self._closed:
                raise RuntimeError("this Retrainer is closed; create a new one")
            self.generation += 1
            self._request = (self.generation, args, kwargs)
            self._last_submit = time.monotonic()
            self._cond.notify_all()
            return self.generation

    @property
    def busy(self) -> bool:
        """True while a request is waiting or a fit is running."""
        with self._cond:
            return self._running or self._request is not None

    def wait(self, timeout: float | None = None) -> Any:
        """Block until every submitted request is done (published or dropped).

        For tests, scripts and benchmarks; interactive code uses ``on_result`` instead.
        Returns :attr:`result`. ``TimeoutError`` if still busy after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._running or self._request is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"the background fit is still running after {timeout} s")
                self._cond.wait(left)
            return self.result

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker (pending requests are dropped); joins it with ``wait``."""
        with self._cond:
            self._closed = True
            self._request = None
            self._cond.notify_all()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> Retrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._request is not None:
                        quiet = time.monotonic() - self._last_submit
                        if quiet >= self.delay:
                            break
                        self._cond.wait(self.delay - quiet)
                    else:
                        self._cond.wait()
                if self._closed:
                    self._cond.notify_all()
                    return
                gen, args, kwargs = self._request
                self._request = None
                self._running = True
            try:
                out, err = self._fn(*args, **kwargs), None
            except Exception as exc:  # reported, never lost with the thread
                out, err = None, exc
                tb = traceback.format_exc()
            with self._cond:
                current = gen == self.generation and not self._closed
                if current:
                    if err is None:
                        self.result, self.published_generation, self.error = out, gen, None
                    else:
                        self.error, self.error_traceback = err, tb
            # Callbacks outside the lock, so they may call submit() themselves.
            try:
                if current and err is None and self._on_result is not None:
                    self._on_result(out)
                elif current and err is not None and self._on_error is not None:
                    self._on_error(err)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
