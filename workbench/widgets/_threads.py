"""Run a function on the kernel's main thread, which owns the widgets.

Session callbacks (new predictions, a finished propagation) can fire on a worker thread;
touching a widget trait there races with the kernel's own message handling. They are
handed to the main thread's event loop instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["call_on_main", "kernel_loop"]


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
