"""The workbench's kNN graph against pynndescent (umap-learn's own), interleaved in one run.

    python benchmarks/knn_vs_pynndescent.py --n 100000 --dim 512 --repeats 3

On a shared machine wall time drifts with other jobs, so each repeat runs ours and then
pynndescent back to back, and every repeat is reported (wall and CPU seconds). Recall@15 is
measured against exact neighbours of a random sample of ``--truth-sample`` items (exact over
all N costs minutes at 100k and hours at 1M; scale.py --stages knn does the full check).
Clustered synthetic data as in scale.py. Written to
``benchmarks/results/knn_vs_pynndescent_n{n}.json``.
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
from scale import make_clustered

from workbench._config import KNN_K


def sample_truth(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    import faiss

    _, ids = faiss.knn(x[rows], x, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    out = np.empty((rows.size, k), np.int64)
    for r, row in enumerate(ids):
        out[r] = row[row != rows[r]][:k]
    return out


def sample_recall(approx: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(np.intersect1d(a, t).size for a, t in zip(approx, truth))
    return hits / truth.size


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--truth-sample", type=int, default=2000)
    p.add_argument("--no-pynndescent", action="store_true", help="time ours only")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from umap.umap_ import nearest_neighbors

    from workbench.neighbors import build_knn_graph

    k = KNN_K
    x, _ = make_clustered(args.n, args.dim, seed=args.seed)
    rows = np.sort(np.random.default_rng(123).choice(args.n, args.truth_sample, replace=False))
    truth = sample_truth(x, rows, k)
    # Compile both sides' numba code first, so that the times below are work.
    nearest_neighbors(x[:500], k + 1, "cosine", {}, False, None, low_memory=True)
    build_knn_graph(x[:30_000], k=k, method="ivf")
    runs = []
    for rep in range(args.repeats):
        g, wall, cpu = timed(lambda: build_knn_graph(x, k=k, seed=args.seed))
        run = {"seconds": wall, "cpu_seconds": cpu, "recall": sample_recall(g.indices[rows], truth),
               "recall_estimate": g.recall_estimate}
        print(f"repeat {rep}, ours: seconds={wall:.4g}, recall={run['recall']:.4f}", flush=True)
        if not args.no_pynndescent:
            ids, wall, cpu = timed(lambda: nearest_neighbors(
                x, k + 1, "cosine", {}, False, None, low_memory=True)[0])
            nnd = np.array([r[r != i][:k] for r, i in zip(ids[rows], rows)])
            run.update({"seconds_pynndescent": wall, "cpu_seconds_pynndescent": cpu,
                        "recall_pynndescent": sample_recall(nnd, truth)})
        runs.append(run)
        print(f"repeat {rep}: " + ", ".join(f"{a}={b:.4g}" for a, b in run.items()), flush=True)
    out = {"benchmark": "knn_vs_pynndescent", "n": args.n, "dim": args.dim, "k": k,
           "truth_sample": args.truth_sample, "runs": runs,
           "run_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return save_result(f"knn_vs_pynndescent_n{args.n}", out)


if __name__ == "__main__":
    main()
