"""Memory at scale: N memory-mapped vectors through graph, propagation and probe.

The vectors are written to a ``.npy`` file in chunks and memory-mapped, as a project's
``vectors.npy`` is, so the process never holds a copy it did not make itself. Each stage
reports its wall seconds and the process's peak resident memory after it, against the raw
size of the vectors.

    python benchmarks/memory.py --n 1000000 --dim 512

The last line printed is one JSON object (also written to
``benchmarks/results/memory_n{n}.json``) with ``n``, ``raw_vector_bytes``,
``peak_rss_bytes`` and per-stage figures.

Many classes (issue 13): ``--classes 10 1000`` runs one fresh process per class count
(so each has its own peak RSS), with ``--centres`` = that count and class = centre, and
times a whole retrain as ``Workbench._fit`` runs it (less the map's propagation and the
confidence calibration): ``LabelSpreader.fit`` from cold, ``LinearProbe.fit`` + its
predictions for every item, ``held_out_weights`` (``MIX_FOLDS`` folds, each a propagation
and a probe refit) and ``mix``. Written to ``benchmarks/results/memory_n{n}_classes.json``:
per class count the retrain seconds (and each step's), the peak RSS after it, and the
ratios of the largest class count to the smallest.

    python benchmarks/memory.py --n 100000 --classes 10 1000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 50_000


def peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def write_vectors(path: Path, n: int, dim: int, *, centres: int, seed: int) -> np.ndarray:
    """Clustered unit vectors written chunk by chunk to ``path``; returns the true ids."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    y = rng.integers(0, centres, n)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        block = c[y[start:stop]] + 0.9 * rng.standard_normal((stop - start, dim),
                                                             dtype=np.float32) / np.sqrt(dim)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    out.flush()
    del out
    return y


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--centres", type=int, default=50)
    p.add_argument("--labels", type=int, default=10_000, help="human labels given")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", type=int, nargs="+", default=None,
                   help="class counts to compare, each in its own process (timing a retrain)")
    p.add_argument("--retrain", action="store_true",
                   help="one class count (--centres) in this process, timing a retrain")
    args = p.parse_args(argv)
    if args.classes:
        return compare_classes(args)
    if args.retrain:
        return retrain_run(args)

    from workbench.learn import LabelSpreader, LinearProbe
    from workbench.neighbors import build_knn_graph

    res: dict = {"benchmark": "memory", "n": args.n, "dim": args.dim,
                 "rss_bytes_after_imports": peak_rss()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.npy"
        t = time.perf_counter()
        y = write_vectors(path, args.n, args.dim, centres=args.centres, seed=args.seed)
        x = np.load(path, mmap_mode="r")
        res["raw_vector_bytes"] = int(x.nbytes)
        res["write_seconds"] = time.perf_counter() - t
        res["rss_bytes_after_data"] = peak_rss()
        print(f"vectors: {x.shape} memory-mapped, {x.nbytes / 1e9:.2f} GB")

        t = time.perf_counter()
        graph = build_knn_graph(x, seed=args.seed)
        res["graph_seconds"] = time.perf_counter() - t
        res["graph_recall_estimate"] = graph.recall_estimate
        res["rss_bytes_after_graph"] = peak_rss()
        print(f"graph: {res['graph_seconds']:.0f}s, peak {res['rss_bytes_after_graph'] / 1e9:.2f} GB")

        rng = np.random.default_rng(args.seed)
        labels = np.full(args.n, -1, np.int64)
        picked = rng.choice(args.n, args.labels, replace=False)
        labels[picked] = y[picked]

        t = time.perf_counter()
        prop = LabelSpreader(graph).fit(labels).predictions_
        res["propagation_seconds"] = time.perf_counter() - t
        res["propagation_accuracy"] = float((prop.label == y).mean())
        res["rss_bytes_after_propagation"] = peak_rss()
        print(f"propagation: {res['propagation_seconds']:.0f}s, "
              f"accuracy {res['propagation_accuracy']:.3f}")

        t = time.perf_counter()
        probe = LinearProbe().fit(x, labels)
        pred = probe.predictions(x)
        res["probe_seconds"] = time.perf_counter() - t
        res["probe_accuracy"] = float((pred.label == y).mean())
        res["rss_bytes_after_probe"] = peak_rss()
        print(f"probe: {res['probe_seconds']:.0f}s, accuracy {res['probe_accuracy']:.3f}")

    res["peak_rss_bytes"] = peak_rss()
    res["peak_rss_over_raw"] = res["peak_rss_bytes"] / res["raw_vector_bytes"]
    print("| stage | seconds | peak RSS after (GB) |\n|---|---|---|")
    for stage in ("graph", "propagation", "probe"):
        print(f"| {stage} | {res[f'{stage}_seconds']:.1f} | "
              f"{res[f'rss_bytes_after_{stage}'] / 1e9:.2f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"memory_n{args.n}.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res))
    return res


def retrain_run(args: argparse.Namespace) -> dict:
    """Graph, then one retrain (the steps of ``Workbench._fit``) for ``args.centres``
    classes; returns (and prints as its last line) the figures as a dict."""
    from workbench._config import MIX_FOLDS, MIX_FOLDS_MAX_ITEMS
    from workbench.learn import LabelSpreader, LinearProbe, held_out_weights, mix
    from workbench.neighbors import build_knn_graph

    res: dict = {"classes": args.centres, "n": args.n, "dim": args.dim,
                 "labels": args.labels}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.npy"
        y = write_vectors(path, args.n, args.dim, centres=args.centres, seed=args.seed)
        x = np.load(path, mmap_mode="r")
        t = time.perf_counter()
        graph = build_knn_graph(x, seed=args.seed)
        res["graph_seconds"] = time.perf_counter() - t
        rng = np.random.default_rng(args.seed)
        human = np.full(args.n, -1, np.int64)
        picked = rng.choice(args.n, args.labels, replace=False)
        human[picked] = y[picked]
        res["labelled_classes"] = int(np.unique(human[picked]).size)
        rest = human < 0
        print(f"{args.centres} classes: graph {res['graph_seconds']:.0f}s", flush=True)
        # A running kernel has loaded torch and compiled the propagation kernel long
        # before a retrain: pay both here, on a few items, outside the timing.
        t = time.perf_counter()
        few = np.flatnonzero(human >= 0)[:200]
        LinearProbe().fit(np.ascontiguousarray(x[few]), human[few])
        LabelSpreader(build_knn_graph(np.ascontiguousarray(x[:500]))).fit(
            np.where(np.arange(500) < 50, np.arange(500) % 2, -1))
        res["warm_up_seconds"] = time.perf_counter() - t
        res["rss_bytes_before_retrain"] = peak_rss()

        t0 = t = time.perf_counter()
        prop = LabelSpreader(graph).fit(human).predictions_
        res["propagation_seconds"] = time.perf_counter() - t
        res["propagation_iterations"] = prop.n_iter
        res["propagation_accuracy"] = float((prop.label[rest] == y[rest]).mean())
        res["rss_bytes_after_propagation"] = peak_rss()
        t = time.perf_counter()
        probe = LinearProbe().fit(x, human)
        pred = probe.predictions(x)
        res["probe_seconds"] = time.perf_counter() - t
        res["probe_accuracy"] = float((pred.label[rest] == y[rest]).mean())
        res["rss_bytes_after_probe"] = peak_rss()
        t = time.perf_counter()
        mixing = held_out_weights(human, {"propagated": graph}, probe, vectors=x,
                                  folds=MIX_FOLDS if args.n <= MIX_FOLDS_MAX_ITEMS else 1,
                                  fitted={"propagated": prop})
        res["held_out_weights_seconds"] = time.perf_counter() - t
        res["rss_bytes_after_held_out_weights"] = peak_rss()
        t = time.perf_counter()
        combined = mix({"propagated": prop, "probe": pred}, mixing.weights,
                       temperature=mixing.temperature)
        res["mix_seconds"] = time.perf_counter() - t
        res["retrain_seconds"] = time.perf_counter() - t0
        res["mixed_accuracy"] = float((combined.label[rest] == y[rest]).mean())
        res["weights"] = mixing.weights
    res["peak_rss_bytes"] = peak_rss()
    res["raw_vector_bytes"] = int(args.n * args.dim * 4)
    print(f"{args.centres} classes: retrain {res['retrain_seconds']:.1f}s (propagation "
          f"{res['propagation_seconds']:.1f}, probe {res['probe_seconds']:.1f}, held-out "
          f"weights {res['held_out_weights_seconds']:.1f}, mix {res['mix_seconds']:.1f}), "
          f"peak {res['peak_rss_bytes'] / 1e9:.2f} GB", flush=True)
    print(json.dumps(res))
    return res


def compare_classes(args: argparse.Namespace) -> dict:
    """:func:`retrain_run` for each of ``args.classes`` in a fresh process (its own peak
    RSS); writes ``memory_n{n}_classes.json``."""
    runs = {}
    for c in args.classes:
        cmd = [sys.executable, __file__, "--retrain", "--n", str(args.n), "--dim",
               str(args.dim), "--centres", str(c), "--labels", str(args.labels),
               "--seed", str(args.seed)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        sys.stderr.write(out.stderr[-2000:])
        print("\n".join(out.stdout.strip().splitlines()[:-1]), flush=True)
        runs[str(c)] = json.loads(out.stdout.strip().splitlines()[-1])
    lo, hi = runs[str(min(args.classes))], runs[str(max(args.classes))]
    res = {"benchmark": "memory_classes", "n": args.n, "dim": args.dim,
           "labels": args.labels, "runs": runs,
           "peak_rss_ratio": hi["peak_rss_bytes"] / lo["peak_rss_bytes"],
           # the same before mix (predict.py), whose float64 temporaries can set the peak
           "peak_rss_ratio_before_mix": (hi["rss_bytes_after_held_out_weights"]
                                         / lo["rss_bytes_after_held_out_weights"]),
           "retrain_seconds_ratio": hi["retrain_seconds"] / lo["retrain_seconds"]}
    print("| classes | retrain s | propagation s | probe s | held-out weights s | mix s | "
          "peak RSS GB (before mix) |\n|---|---|---|---|---|---|---|")
    for c, r in runs.items():
        print(f"| {c} | {r['retrain_seconds']:.1f} | {r['propagation_seconds']:.1f} | "
              f"{r['probe_seconds']:.1f} | {r['held_out_weights_seconds']:.1f} | "
              f"{r['mix_seconds']:.1f} | {r['peak_rss_bytes'] / 1e9:.2f} "
              f"({r['rss_bytes_after_held_out_weights'] / 1e9:.2f}) |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"memory_n{args.n}_classes.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
