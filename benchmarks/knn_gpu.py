"""The kNN graph on a GPU (torch, ``build_knn_graph(device="cuda")``) beside the CPU build.

    python benchmarks/knn_gpu.py --sizes 1000000 10000000 --cpu-max 1000000

Needs a CUDA GPU seen by torch. The vectors follow scale.py's clustered generator (50
centres, 16-dimensional structure per cluster, isotropic noise, unit rows), drawn by torch on
the GPU: numpy takes minutes to draw 10M × 512. Per size, after a warm-up build (CUDA
context, cuBLAS, FAISS's threads):

* ``gpu``: ``method="auto"`` on the GPU (exact up to ``GRAPH_GPU_EXACT_MAX_ITEMS`` items,
  IVF beyond) and, with ``--both-methods`` at sizes where auto is exact, the IVF build too;
* ``cpu``: the CPU build (FAISS and threads over every core) at sizes up to ``--cpu-max``.

Reported per build: wall seconds, the seconds of its GPU stages (cell assignment, recall
sample, cell pass, exact graph), the build's own recall estimate, recall@15 against exact
neighbours of ``--truth-sample`` items (float32 products on the GPU with TF32 off, computed
apart from the build), the peak GPU memory, and the share of rows identical to the CPU
graph's where both ran. Written to ``benchmarks/results/knn_gpu.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import save_result

from workbench._config import GRAPH_GPU_EXACT_MAX_ITEMS, KNN_K
from workbench._device import available_cores
from workbench.neighbors import build as build_module
from workbench.neighbors._torch import TorchVectors


def make_clustered_gpu(n: int, dim: int, *, seed: int = 0, centres: int = 50,
                       intrinsic: int = 16, spread: float = 0.6, noise: float = 0.25,
                       device: str = "cuda"):
    """scale.make_clustered's distribution drawn by torch on ``device``: (n, dim) float32."""
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    c = torch.randn(centres, dim, device=device, generator=g)
    c /= c.norm(dim=1, keepdim=True)
    basis = torch.randn(centres, intrinsic, dim, device=device, generator=g)
    basis /= (dim * intrinsic) ** 0.5
    out = np.empty((n, dim), np.float32)
    step = 1 << 20
    for a in range(0, n, step):
        m = min(step, n - a)
        y = torch.randint(0, centres, (m,), device=device, generator=g)
        x = noise * torch.randn(m, dim, device=device, generator=g) / dim ** 0.5
        z = torch.randn(m, intrinsic, device=device, generator=g)
        for j in range(centres):
            rows = torch.nonzero(y == j).squeeze(1)
            x[rows] += c[j] + spread * (z[rows] @ basis[j])
        out[a : a + m] = (x / x.norm(dim=1, keepdim=True)).cpu().numpy()
    return out


def truth(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids of ``x[rows]`` (self excluded) by float32 products, TF32 off."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    q = torch.from_numpy(x[rows]).cuda()
    best_s = torch.full((rows.size, k + 1), -torch.inf, device="cuda")
    best_i = torch.full((rows.size, k + 1), -1, dtype=torch.int64, device="cuda")
    step = 1 << 20
    for a in range(0, x.shape[0], step):
        s = q @ torch.from_numpy(x[a : a + step]).cuda().T
        ts, ti = torch.topk(s, min(k + 1, s.shape[1]), dim=1)
        s_all = torch.cat([best_s, ts], 1)
        i_all = torch.cat([best_i, ti + a], 1)
        best_s, j = torch.topk(s_all, k + 1, dim=1)
        best_i = torch.gather(i_all, 1, j)
    ids = best_i.cpu().numpy()
    return np.stack([row[row != r][:k] for row, r in zip(ids, rows)])


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(sum(np.intersect1d(a, e).size for a, e in zip(approx, exact)) / exact.size)


class Stages:
    """Wall seconds in the GPU stages of the builds (TorchVectors' methods), per build."""

    NAMES = ("nearest", "exact_rows", "cell_search", "exact_graph")

    def __init__(self):
        import torch

        self.seconds: dict[str, float] = {}
        for name in self.NAMES:
            original = getattr(TorchVectors, name)

            def timed(*args, _f=original, _name=name, **kwargs):
                t = time.perf_counter()
                try:
                    return _f(*args, **kwargs)
                finally:
                    torch.cuda.synchronize()
                    self.seconds[_name] = self.seconds.get(_name, 0.0) + time.perf_counter() - t

            setattr(TorchVectors, name, timed)

    def take(self) -> dict[str, float]:
        out, self.seconds = {k: round(v, 2) for k, v in self.seconds.items()}, {}
        return out


def build(x, *, k, seed, device, method, stages, exact_ids):
    import torch

    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    g = build_module.build_knn_graph(x, k=k, seed=seed, device=device, method=method)
    wall = time.perf_counter() - t
    return g, {
        "device": device, "method": method, "wall_s": round(wall, 2),
        "stages_s": stages.take(), "recall_estimate": round(g.recall_estimate, 4),
        "recall": round(recall(g.indices[ROWS], exact_ids), 4),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if device != "cpu" else None,
    }


ROWS: np.ndarray = np.empty(0, np.int64)


def main(argv: list[str] | None = None) -> dict:
    import torch

    global ROWS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=KNN_K)
    p.add_argument("--cpu-max", type=int, default=1_000_000,
                   help="largest size also built on the CPU")
    p.add_argument("--both-methods", action="store_true",
                   help="at sizes where the GPU build is exact, time its IVF build too")
    p.add_argument("--truth-sample", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("knn_gpu.py needs a CUDA GPU seen by torch")
    stages = Stages()
    warm = make_clustered_gpu(50_000, args.dim, seed=99)
    for device in ("cuda", "cpu"):
        build_module.build_knn_graph(warm, k=args.k, method="ivf", device=device)
    stages.take()
    out = {
        "benchmark": "knn_gpu", "dim": args.dim, "k": args.k,
        "gpu": torch.cuda.get_device_name(0), "cpu_cores": available_cores(),
        "gpu_exact_max_items": GRAPH_GPU_EXACT_MAX_ITEMS,
        "machine": platform.platform(), "sizes": {},
    }
    for n in args.sizes:
        t = time.perf_counter()
        x = make_clustered_gpu(n, args.dim, seed=args.seed)
        rng = np.random.default_rng(args.seed + 1)
        ROWS = np.sort(rng.choice(n, size=min(args.truth_sample, n), replace=False))
        exact_ids = truth(x, ROWS, args.k)
        runs = []
        print(f"n={n}: data and truth in {time.perf_counter() - t:.1f} s", flush=True)
        methods = ["auto"]
        if args.both_methods and n <= GRAPH_GPU_EXACT_MAX_ITEMS:
            methods.append("ivf")
        gpu_graph = None
        for method in methods:
            g, r = build(x, k=args.k, seed=args.seed, device="cuda", method=method,
                         stages=stages, exact_ids=exact_ids)
            gpu_graph = g if gpu_graph is None else gpu_graph
            runs.append(r)
            print(r, flush=True)
        if n <= args.cpu_max:
            g, r = build(x, k=args.k, seed=args.seed, device="cpu", method="auto",
                         stages=stages, exact_ids=exact_ids)
            r["rows_identical_to_gpu_auto"] = round(
                float((g.indices == gpu_graph.indices).all(axis=1).mean()), 4)
            runs.append(r)
            print(r, flush=True)
        out["sizes"][str(n)] = runs
        del x
    return save_result("knn_gpu", out)


if __name__ == "__main__":
    main()
