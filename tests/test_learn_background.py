"""The background retrainer: debounced, superseding, never publishing stale results."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench.learn import LinearProbe, Retrainer


def test_superseded_fit_never_publishes_stale_predictions():
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    first_started = threading.Event()
    release_first = threading.Event()
    calls: list[int] = []

    def fit(labels: np.ndarray, tag: int):
        calls.append(tag)
        if tag == 1:
            first_started.set()
            assert release_first.wait(10)  # held until the newer labels have arrived
        return tag, LinearProbe(cv=2, l2_grid=(0.01,), max_iter=30).fit(x, labels).predictions(x)

    published: list[int] = []
    old = np.full(y.size, -1, np.int64)
    old[:20] = y[:20]
    new = old.copy()
    new[20:200] = y[20:200]
    with Retrainer(fit, delay=0.0, on_result=lambda r: published.append(r[0])) as rt:
        assert rt.submit(old.copy(), tag=1) == 1
        assert first_started.wait(10)
        t0 = time.perf_counter()
        assert rt.submit(new.copy(), tag=2) == 2
        assert time.perf_counter() - t0 < 0.1  # submit returns while a fit is running
        release_first.set()
        tag, pred = rt.wait(timeout=120)
    assert calls == [1, 2]
    assert published == [2]  # the fit on the old labels finished but was dropped
    assert tag == 2 and rt.published_generation == 2
    # What was published is the fit on the newer labels, far above chance (0.10).
    assert (pred.label == y).mean() > 0.7


def test_burst_of_changes_costs_one_fit():
    calls: list[int] = []
    with Retrainer(lambda v: calls.append(v) or v, delay=0.2) as rt:
        for i in range(5):
            rt.submit(i)
        assert rt.busy
        assert rt.wait(timeout=10) == 4
    assert calls == [4]


def test_errors_are_kept_not_lost():
    def boom(n: int) -> int:
        raise ValueError(f"cannot fit {n}")

    seen: list[BaseException] = []
    with Retrainer(boom, delay=0.0, on_error=seen.append) as rt:
        rt.submit(3)
        assert rt.wait(timeout=10) is None
        assert isinstance(rt.error, ValueError) and "cannot fit 3" in str(rt.error)
        assert "boom" in rt.error_traceback
    assert len(seen) == 1


def test_close_and_timeout():
    gate = threading.Event()
    rt = Retrainer(lambda: gate.wait(10), delay=0.0)
    rt.submit()
    with pytest.raises(TimeoutError):
        rt.wait(timeout=0.05)
    gate.set()
    rt.wait(timeout=10)
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.submit()
    with pytest.raises(ValueError, match="delay"):
        Retrainer(lambda: None, delay=-1)
