"""The kNN graph's GPU build (torch): the same code run by torch on the CPU here, where there
is no GPU, checked against FAISS's exact and IVF graphs; the device choice and its errors.
benchmarks/knn_gpu.py measures it on a real GPU."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from workbench.neighbors import _torch as torch_module
from workbench.neighbors import build as build_module
from workbench.neighbors import build_knn_graph
from workbench.neighbors._blocks import recall
from workbench.neighbors._torch import TorchVectors

torch = pytest.importorskip("torch")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


def _clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, dim)).astype(np.float32)
    x = centres[rng.integers(0, 12, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def vectors():
    return _clustered(3000, 32)


@pytest.fixture(scope="module")
def exact(vectors):
    return build_knn_graph(vectors, k=10, method="exact", device="cpu")


def test_torch_exact_graph_is_the_exact_graph(vectors, exact):
    ids, sims = TorchVectors(vectors, "cpu").exact_graph(10)
    assert ids.shape == (3000, 10) and ids.dtype == np.int64 and sims.dtype == np.float32
    assert not (ids == np.arange(3000)[:, None]).any()  # self left out
    assert recall(ids, exact.indices) > 0.999  # up to ties
    # similarities are float32 ones (rescored), nearest first
    np.testing.assert_allclose(sims, exact.similarities, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-7).all()


def test_torch_ivf_graph_matches_the_cpu_ivf_graph(vectors, exact):
    cpu = build_module._ivf_graph(vectors, 10, target_recall=0.99, seed=0, threads=1)
    gpu = build_module._ivf_graph(vectors, 10, target_recall=0.99, seed=0, threads=1,
                                  on=TorchVectors(vectors, "cpu"))
    assert recall(gpu[0], exact.indices) >= 0.99
    assert abs(gpu[2] - cpu[2]) < 0.01  # the same recall check, on the same sample
    assert recall(gpu[0], cpu[0]) > 0.995
    i, j = np.nonzero(gpu[0] >= 0)
    true = np.einsum("ij,ij->i", vectors[i], vectors[gpu[0][i, j]])
    np.testing.assert_allclose(gpu[1][i, j], true, atol=1e-5)


def test_without_room_for_float32_similarities_come_from_float16(vectors, exact, monkeypatch):
    need = 3000 * 32 * 2 + torch_module._WORK_BYTES
    monkeypatch.setattr(TorchVectors, "_free_bytes", lambda self: need)
    on = TorchVectors(vectors, "cpu")
    assert not on.exact
    ids, sims = on.exact_graph(10)
    assert recall(ids, exact.indices) > 0.98
    np.testing.assert_allclose(sims, exact.similarities, atol=5e-3)


def test_vectors_too_large_for_the_device_say_what_to_do(vectors, monkeypatch):
    monkeypatch.setattr(TorchVectors, "_free_bytes", lambda self: 1000)
    with pytest.raises(MemoryError, match="device='cpu'"):
        TorchVectors(vectors, "cpu")


def test_tiny_and_padded_graphs(vectors):
    ids, sims = TorchVectors(vectors[:5], "cpu").exact_graph(4)
    assert sorted(ids[0]) == [1, 2, 3, 4] and (sims[0] > -1.01).all()
    g = build_module._ivf_graph(vectors[:40], 10, target_recall=0.99, seed=0, threads=1,
                                on=TorchVectors(vectors[:40], "cpu"))
    assert (g[0] >= 0).all() and g[2] >= 0.99


def test_the_whole_build_routes_to_the_gpu(vectors, exact, monkeypatch, caplog):
    """build_knn_graph on a (pretend) GPU: torch's search, the recall check, the cache."""
    # torch's CPU device stands in for the GPU; "cpu" still means FAISS
    monkeypatch.setattr(build_module, "cuda_device", lambda d: None if d == "cpu" else "cpu")
    monkeypatch.setattr(build_module, "fits_on", lambda device, n, dim: True)
    made = []
    real = TorchVectors.__init__

    def spy(self, x, device):
        made.append(device)
        real(self, x, device)

    monkeypatch.setattr(TorchVectors, "__init__", spy)
    g = build_knn_graph(vectors, k=10, exact_max_items=1000)  # auto: exact on the GPU
    assert made == ["cpu"] and g.recall_estimate == 1.0
    assert recall(g.indices, exact.indices) > 0.999
    monkeypatch.setattr(build_module, "GRAPH_GPU_EXACT_MAX_ITEMS", 2000)
    with caplog.at_level(logging.INFO, logger="workbench.neighbors.build"):
        g = build_knn_graph(vectors, k=10, exact_max_items=1000)  # auto: IVF on the GPU
    assert len(made) == 2 and "nprobe" in caplog.text
    assert g.recall_estimate >= 0.99 and recall(g.indices, exact.indices) >= 0.99
    # small collections and explicit CPU builds never touch the GPU
    build_knn_graph(vectors[:500], k=10)
    build_knn_graph(vectors, k=10, exact_max_items=1000, device="cpu")
    assert len(made) == 2


def test_no_room_on_the_gpu_builds_on_the_cpu(vectors, monkeypatch, caplog):
    monkeypatch.setattr(build_module, "cuda_device", lambda device: "cuda")
    monkeypatch.setattr(build_module, "fits_on", lambda device, n, dim: False)
    with caplog.at_level(logging.INFO, logger="workbench.neighbors.build"):
        g = build_knn_graph(vectors, k=10, exact_max_items=1000)
    assert "built on the CPU" in caplog.text and g.recall_estimate >= 0.99


@no_cuda
def test_asking_for_a_gpu_torch_does_not_see_says_so(vectors):
    with pytest.raises(ValueError, match="CUDA"):
        build_knn_graph(vectors, k=10, device="cuda")


def test_device_errors(vectors):
    with pytest.raises(ValueError, match="cuda"):
        build_knn_graph(vectors, k=10, device="tpu")
    with pytest.raises(ValueError, match="engine='ray'"):
        build_knn_graph(vectors, k=10, engine="ray", device="cuda")


def test_a_faiss_gpu_alone_is_exact_only_up_to_the_gpu_limit(vectors, monkeypatch, caplog):
    """FAISS with CUDA and no torch GPU: exact up to GRAPH_GPU_EXACT_MAX_ITEMS (its flat
    index on the GPU), IVF beyond, as with torch (an exact graph of 10M items would take
    hours even there)."""
    monkeypatch.setattr(build_module, "cuda_device", lambda d: None)
    monkeypatch.setattr(build_module, "gpu_available", lambda: True)
    monkeypatch.setattr(build_module, "GRAPH_GPU_EXACT_MAX_ITEMS", 2000)
    with caplog.at_level(logging.INFO, logger="workbench.neighbors.build"):
        g = build_knn_graph(vectors, k=10, exact_max_items=1000)
    assert "nprobe" in caplog.text and g.recall_estimate >= 0.99
