"""The kNN graph's cell pass as Ray tasks (``build_knn_graph(..., engine="ray")``), against a
real Ray head on 127.0.0.1 (tests/ray_conftest.py): the same graph as the local build, one
cache entry for both engines, and clear errors."""

from __future__ import annotations

import logging
import socket
import sys

import numpy as np
import pytest

from workbench._config import GRAPH_RAY_TASKS_PER_CPU
from workbench.neighbors import build as build_module
from workbench.neighbors import build_knn_graph


def clustered(n: int, dim: int = 32, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Clusters of uneven size and spread: the k-means cells (and their costs) are uneven."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    y = rng.choice(centres, n, p=rng.dirichlet(np.ones(centres)))
    spread = rng.uniform(0.2, 0.6, centres).astype(np.float32)[y, None]
    return c[y] + spread * rng.standard_normal((n, dim)).astype(np.float32)


@pytest.fixture(scope="module")
def ray_address(ray_cluster):
    """The test cluster; this process is disconnected from it (the cluster left up) after
    the module."""
    yield ray_cluster
    import ray

    if ray.is_initialized():
        ray.shutdown()  # a driver's shutdown leaves a cluster it joined running


@pytest.fixture(scope="module")
def vectors():
    return clustered(20_000)


def test_ray_build_is_the_local_build(ray_address, vectors, caplog):
    local = build_knn_graph(vectors, method="ivf", exact_max_items=1000, threads=2)
    with caplog.at_level(logging.INFO, logger="workbench.neighbors._ray"):
        remote = build_knn_graph(vectors, method="ivf", exact_max_items=1000, threads=2,
                                 engine="ray", address=ray_address)
    assert remote.indices.shape == local.indices.shape == (20_000, 15)
    assert np.array_equal(remote.indices, local.indices)
    np.testing.assert_allclose(remote.similarities, local.similarities, rtol=0, atol=1e-6)
    assert remote.recall_estimate == local.recall_estimate
    assert local.recall_estimate >= 0.95
    # The work was spread: the test cluster's two CPUs, GRAPH_RAY_TASKS_PER_CPU runs each.
    assert f"cell pass as {2 * GRAPH_RAY_TASKS_PER_CPU} Ray tasks over 2 CPUs" in caplog.text


def test_ray_build_with_neighbour_rounds_is_the_local_build(ray_address, monkeypatch, caplog):
    # A cheap cell pass (nprobe 2 of 95 cells), two rounds on the driver short of the
    # target, then the full pass: two Ray passes over the vectors put once.
    monkeypatch.setattr(build_module, "GRAPH_CELL_PASS_RECALL", 0.6)
    x = clustered(6000, centres=30, seed=1)
    local = build_knn_graph(x, method="ivf", k=10, seed=3)
    with caplog.at_level(logging.INFO, logger="workbench.neighbors"):
        remote = build_knn_graph(x, method="ivf", k=10, seed=3, engine="ray",
                                 address=ray_address)
    assert caplog.text.count("Ray tasks over") == 2
    assert "rounds=2" in caplog.text
    assert np.array_equal(remote.indices, local.indices)
    np.testing.assert_allclose(remote.similarities, local.similarities, rtol=0, atol=1e-6)
    assert remote.recall_estimate == local.recall_estimate


def test_cache_entry_does_not_depend_on_the_engine(ray_address, tmp_path, monkeypatch):
    x = clustered(3000, seed=2)
    built = build_knn_graph(x, method="ivf", cache_dir=tmp_path, engine="ray",
                            address=ray_address)
    files = sorted(p.name for p in tmp_path.iterdir())

    def no_build(*args, **kwargs):
        raise AssertionError("the graph was rebuilt instead of read from the cache")

    monkeypatch.setattr(build_module, "_ivf_graph", no_build)
    cached = build_knn_graph(x, method="ivf", cache_dir=tmp_path, engine="local")
    assert np.array_equal(cached.indices, built.indices)
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_invalid_engine_is_refused():
    with pytest.raises(ValueError, match=r"engine must be one of 'local', 'ray', not 'dask'"):
        build_knn_graph(clustered(200), engine="dask")


def test_unreachable_address_fails_at_once_and_says_so():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    with pytest.raises(ConnectionError, match=rf"cannot reach the Ray cluster at '{address}'"):
        build_knn_graph(clustered(2000), method="ivf", engine="ray", address=address)


def test_a_local_cluster_that_no_longer_answers_is_passed_over(monkeypatch, caplog):
    """address=None with a remembered local cluster (/tmp/ray/ray_current_cluster) whose
    head is gone: a new local Ray, said in the log, instead of ray.init retrying the dead
    address for minutes. (Ray's own start is not what is tested: ray.init is recorded.)"""
    ray = pytest.importorskip("ray")
    import workbench._ray as ray_module

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    calls = []
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(ray_module, "_remembered_cluster", lambda: dead)
    with caplog.at_level(logging.WARNING, logger="workbench._ray"):
        ray_module.connect(None)
    assert calls[-1]["address"] == "local"
    assert f"last started at {dead} does not answer" in caplog.text
    with socket.socket() as head:  # one that answers is left to ray.init, as before
        head.bind(("127.0.0.1", 0))
        head.listen()
        alive = f"127.0.0.1:{head.getsockname()[1]}"
        monkeypatch.setattr(ray_module, "_remembered_cluster", lambda: alive)
        ray_module.connect(None)
    assert calls[-1]["address"] is None
    monkeypatch.setattr(ray_module, "_remembered_cluster", lambda: None)  # none recorded
    ray_module.connect(None)
    assert calls[-1]["address"] is None and len(calls) == 3


def test_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'workbench\[ray\]'"):
        build_knn_graph(clustered(2000), method="ivf", engine="ray")
    # No Ray is needed where no IVF pass runs: a small graph is exact and built here.
    assert build_knn_graph(clustered(300), engine="ray").n == 300
