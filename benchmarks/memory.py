"""Memory at scale: N memory-mapped vectors through graph, propagation and probe.

The vectors are written to a ``.npy`` file in chunks and memory-mapped, as a project's
``vectors.npy`` is, so the process never holds a copy it did not make itself. Each stage
reports its wall seconds and the process's peak resident memory after it, against the raw
size of the vectors.

    python benchmarks/memory.py --n 1000000 --dim 512

The last line printed is one JSON object (also written to
``benchmarks/results/memory_n{n}.json``) with ``n``, ``raw_vector_bytes``,
``peak_rss_bytes`` and per-stage figures.
"""

from __future__ import annotations

import argparse
import json
import resource
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
    args = p.parse_args(argv)

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


if __name__ == "__main__":
    main()
