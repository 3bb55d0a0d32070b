"""Memory at scale: N memory-mapped vectors through graph, propagation and probe.

The vectors are written to a ``.npy`` file in chunks and memory-mapped, as a project's
``vectors.npy`` is, so the process never holds a copy it did not make itself. Each stage
reports its wall seconds and the process's peak resident memory after it, against the raw
size of the vectors.

    python benchmarks/memory.py --n 1000000 --dim 512

The last line printed is one JSON object (also written to
``benchmarks/results/memory_n{n}.json``) with ``n``, ``raw_vector_bytes``,
``peak_rss_bytes`` and per-stage figures.

Many classes (issue 13): ``--classes 10 1000`` runs one fresh process per class count,
with ``--centres`` = that count and class = centre, and times one whole retrain of a real
``Workbench`` (``Workbench._fit``, what its background thread runs after a label change:
propagation over the vectors' graph and the map's, the probe with its choice of L2, the
held-out predictions that choose the mix and fit the confidence calibrator, the mix and the
calibrated confidence). Written to ``benchmarks/results/memory_n{n}_classes.json``: per
class count the retrain seconds, the resident peak during the retrain, accuracy and mean
confidence against the truth, and the ratios of the largest class count to the smallest.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import save_result

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
    return save_result(f"memory_n{args.n}", res)


def retrain_peak_reset() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` 5), so that
    :func:`retrain_peak` reads the peak of what runs after; False where that is refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def retrain_peak() -> int:
    """Peak resident bytes since :func:`retrain_peak_reset` (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return peak_rss()


def retrain_run(args: argparse.Namespace) -> dict:
    """One retrain of a real :class:`workbench.Workbench` (``Workbench._fit``, what the
    background thread runs after each label change) for ``args.centres`` classes, on a
    project of ``args.n`` memory-mapped vectors with ``args.labels`` human labels; returns
    (and prints as its last line) the figures as a dict.

    The workbench is made and warmed first (graph, clusters, one retrain on a few labels
    so that torch, scikit-learn and the compiled propagation loops are loaded, as in any
    kernel after its first labels). The UMAP map's neighbours join as in a session with its
    map ready: over the quick (PCA) layout's coordinates, the same size and cost of graph.
    Peak memory is the process's resident high-water mark during the retrain alone (reset
    just before it), so the 10- and 1,000-class figures compare the retrain, not the
    graph build before it.
    """
    from workbench import Workbench
    from workbench.items import from_vectors
    from workbench.learn import expected_calibration_error

    res: dict = {"classes": args.centres, "n": args.n, "dim": args.dim,
                 "labels": args.labels}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.npy"
        y = write_vectors(path, args.n, args.dim, centres=args.centres, seed=args.seed)
        x = np.load(path, mmap_mode="r")
        t = time.perf_counter()
        items, vectors = from_vectors(x)
        wb = Workbench.create(Path(tmp) / "project", items, vectors=vectors,
                              background=False, layout="quick")
        wb._cluster_ids()
        wb._umap_ready = True  # the map's neighbours join (see the docstring)
        res["create_seconds"] = time.perf_counter() - t
        rng = np.random.default_rng(args.seed)
        human = np.full(args.n, -1, np.int64)
        picked = rng.choice(args.n, args.labels, replace=False)
        human[picked] = y[picked]
        res["labelled_classes"] = int(np.unique(human[picked]).size)
        rest = human < 0
        print(f"{args.centres} classes: workbench made in {res['create_seconds']:.0f}s",
              flush=True)
        t = time.perf_counter()
        warm = np.full(args.n, -1, np.int64)
        first = picked[np.isin(y[picked], np.unique(y[picked])[:5])][:100]
        warm[first] = y[first]
        wb._fit(warm)
        res["warm_up_seconds"] = time.perf_counter() - t
        res["rss_bytes_before_retrain"] = peak_rss()
        res["peak_is_retrain_only"] = retrain_peak_reset()

        t = time.perf_counter()
        out = wb._fit(human)
        res["retrain_seconds"] = time.perf_counter() - t
        res["retrain_peak_rss_bytes"] = retrain_peak()
        combined = out.combined
        res["mixed_accuracy"] = float((combined.label[rest] == y[rest]).mean())
        res["propagation_accuracy"] = float((out.propagation.label[rest] == y[rest]).mean())
        res["propagation_iterations"] = out.propagation.n_iter
        if out.probe is not None:
            res["probe_accuracy"] = float((out.probe.label[rest] == y[rest]).mean())
        res["map_propagation"] = out.map_propagation is not None
        res["weights"] = out.weights
        conf = combined.confidence[rest]
        right = combined.label[rest] == y[rest]
        res["mean_confidence"] = float(conf.mean())
        res["confidence_ece"] = float(expected_calibration_error(conf, right))
    res["peak_rss_bytes"] = peak_rss()
    res["raw_vector_bytes"] = int(args.n * args.dim * 4)
    print(f"{args.centres} classes: retrain {res['retrain_seconds']:.1f}s, retrain peak "
          f"{res['retrain_peak_rss_bytes'] / 1e9:.2f} GB, accuracy "
          f"{res['mixed_accuracy']:.4f}", flush=True)
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
           "retrain_peak_rss_ratio": hi["retrain_peak_rss_bytes"] / lo["retrain_peak_rss_bytes"],
           "retrain_seconds_ratio": hi["retrain_seconds"] / lo["retrain_seconds"]}
    print("| classes | retrain s | retrain peak RSS GB | accuracy | mean confidence | "
          "map propagation |\n|---|---|---|---|---|---|")
    for c, r in runs.items():
        print(f"| {c} | {r['retrain_seconds']:.1f} | {r['retrain_peak_rss_bytes'] / 1e9:.2f} | "
              f"{r['mixed_accuracy']:.4f} | {r['mean_confidence']:.3f} | "
              f"{'yes' if r['map_propagation'] else 'no'} |")
    return save_result(f"memory_n{args.n}_classes", res)


if __name__ == "__main__":
    main()
