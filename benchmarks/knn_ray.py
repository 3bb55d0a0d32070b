"""The kNN graph built locally and with its cell pass as Ray tasks, on the same cores.

    python benchmarks/knn_ray.py --n 1000000 --dim 512 --repeats 1

The benchmark starts its own local Ray (``ray.init("local", num_cpus=--cores)``) and builds
the graph of the same clustered vectors (scale.py's generator, as knn_vs_pynndescent.py)
with ``engine="local"`` (``threads=--cores``) and ``engine="ray"``, back to back in each
repeat.
Both runs use the same cores: the driver's k-means, recall sample and ``nprobe`` choice run
on ``--cores`` threads in both, and Ray's workers hold ``--cores`` CPUs while the driver
waits on them. Reported per run: the wall seconds of the whole build and of its cell pass
(the part Ray takes over; for Ray with the ``ray.put`` of the shared arrays), the overhead
ratio ``ray / local - 1`` of both, recall@15 against exact neighbours of ``--truth-sample``
items, and whether the two graphs are identical. Both sides are warmed up first (numba,
Ray's worker processes and their imports), so the times are work on a running cluster.
Written to ``benchmarks/results/knn_ray_n{n}.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import save_result
from knn_vs_pynndescent import sample_recall, sample_truth
from scale import make_clustered

from workbench._config import KNN_K
from workbench._device import available_cores
from workbench.neighbors import build as build_module


class StageClock:
    """Wall seconds spent in the graph's cell pass (both engines) and in the Ray engine's
    ``ray.put`` of the shared arrays, summed over the passes of one build."""

    def __init__(self):
        self.seconds = {"cell_pass": 0.0, "ray_put": 0.0}
        local_search = build_module.cell_blocked_search
        ray_search = build_module.RayCellSearch
        clock = self.seconds

        def timed_local(*args, **kwargs):
            t = time.perf_counter()
            try:
                return local_search(*args, **kwargs)
            finally:
                clock["cell_pass"] += time.perf_counter() - t

        class TimedRay(ray_search):
            def __init__(self, *args, **kwargs):
                t = time.perf_counter()
                super().__init__(*args, **kwargs)
                clock["ray_put"] += time.perf_counter() - t

            def __call__(self, near):
                t = time.perf_counter()
                try:
                    return super().__call__(near)
                finally:
                    clock["cell_pass"] += time.perf_counter() - t

        build_module.cell_blocked_search = timed_local
        build_module.RayCellSearch = TimedRay

    def reset(self) -> None:
        for key in self.seconds:
            self.seconds[key] = 0.0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--cores", type=int, default=available_cores(),
                   help="threads of the local build and CPUs of the Ray started here")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--truth-sample", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import ray

    from workbench.neighbors import build_knn_graph

    k, cores = KNN_K, args.cores
    x, _ = make_clustered(args.n, args.dim, seed=args.seed)
    rows = np.sort(np.random.default_rng(123).choice(args.n, args.truth_sample, replace=False))
    truth = sample_truth(x, rows, k)
    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        clock = StageClock()
        warm = x[: min(args.n, 30_000)]
        for engine in ("local", "ray"):  # numba, Ray's workers and their imports
            build_knn_graph(warm, k=k, method="ivf", threads=cores, engine=engine)
        runs = []
        for rep in range(args.repeats):
            run: dict = {}
            graphs = {}
            for engine in ("local", "ray"):
                clock.reset()
                t = time.perf_counter()
                graphs[engine] = build_knn_graph(x, k=k, method="ivf", seed=args.seed,
                                                 threads=cores, engine=engine)
                run[f"seconds_{engine}"] = time.perf_counter() - t
                run[f"cell_pass_seconds_{engine}"] = clock.seconds["cell_pass"]
                if engine == "ray":
                    run["ray_put_seconds"] = clock.seconds["ray_put"]
                run[f"recall_{engine}"] = sample_recall(graphs[engine].indices[rows], truth)
                run[f"recall_estimate_{engine}"] = graphs[engine].recall_estimate
                print(f"repeat {rep}, {engine}: seconds={run[f'seconds_{engine}']:.4g}, "
                      f"cell pass={run[f'cell_pass_seconds_{engine}']:.4g}", flush=True)
            run["overhead"] = run["seconds_ray"] / run["seconds_local"] - 1
            run["cell_pass_overhead"] = (
                (run["cell_pass_seconds_ray"] + run["ray_put_seconds"])
                / run["cell_pass_seconds_local"] - 1
            )
            run["identical"] = bool(
                np.array_equal(graphs["local"].indices, graphs["ray"].indices)
                and np.array_equal(graphs["local"].similarities, graphs["ray"].similarities)
            )
            del graphs
            runs.append(run)
            print(f"repeat {rep}: " + ", ".join(f"{a}={b:.4g}" if isinstance(b, float)
                                                 else f"{a}={b}" for a, b in run.items()),
                  flush=True)
    finally:
        ray.shutdown()  # the Ray this benchmark started
    out = {"benchmark": "knn_ray", "n": args.n, "dim": args.dim, "k": k, "cores": cores,
           "truth_sample": args.truth_sample, "runs": runs,
           "run_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return save_result(f"knn_ray_n{args.n}", out)


if __name__ == "__main__":
    main()
