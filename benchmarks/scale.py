"""Scale benchmark (BENCHMARKS.md section 3): each stage timed beside its peer, same run.

    python benchmarks/scale.py --n 100000 --dim 512 --stages knn,layout

Data: clustered synthetic vectors by default (a Gaussian mixture of ``--centres`` centres on
the unit sphere, each cluster spread along its own ``--intrinsic``-dimensional subspace,
plus isotropic noise in all dimensions, so neighbours are neither trivial nor meaningless),
or real data with ``--dataset NAME`` / ``--vectors X.npy --labels y.npy``.

Stages are functions ``stage(ctx) -> dict`` registered in :data:`STAGES`; ``ctx`` holds
``X`` (N, D) float32, ``y`` (N,) cluster ids, ``n``, ``dim``, ``seed``, ``repeats``, and
after the ``knn`` stage ``graph`` (the workbench's :class:`KnnGraph`). Each returns its
headline keys. The last printed line is one JSON object with every headline key, also
written to ``benchmarks/results/scale_n{n}.json``.

Stages here:

* ``knn``: the workbench graph (k=15) against exact FAISS flat (which also gives the
  truth for recall@15 over all N) and pynndescent as UMAP runs it.
* ``layout``: the workbench map (umap-learn on the FAISS graph) against umap-learn with
  its own neighbours, same seed; trustworthiness on a random sample of both.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import add_data_arguments, load_from_args
from _stages_learn import STAGES as _LEARN
from _stages_learn import timed_runs

from workbench._config import KNN_K

RESULTS = Path(__file__).resolve().parent / "results"
TRUST_SAMPLE = 5000


# -- data and measurement helpers ------------------------------------------------------------


def make_clustered(
    n: int,
    dim: int,
    *,
    seed: int = 0,
    centres: int = 50,
    intrinsic: int = 16,
    spread: float = 0.6,
    noise: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, dim) float32 unit rows, y (n,) int64 cluster ids).

    Each point is ``centre + spread * (z @ B_c) + noise * e``: centres are random unit
    vectors; ``B_c`` is a random ``intrinsic``-dimensional basis per cluster (rows of norm
    ~1/sqrt(intrinsic)), ``z`` standard normal, ``e`` isotropic with expected norm 1. Real
    embeddings look like this: low-dimensional structure within clusters, plus noise.
    """
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    y = rng.integers(0, centres, n)
    x = np.empty((n, dim), np.float32)
    for j in range(centres):
        rows = np.flatnonzero(y == j)
        basis = rng.standard_normal((intrinsic, dim)).astype(np.float32)
        basis /= np.sqrt(dim * intrinsic)
        z = rng.standard_normal((rows.size, intrinsic)).astype(np.float32)
        e = rng.standard_normal((rows.size, dim)).astype(np.float32) / np.sqrt(dim)
        x[rows] = c[j] + spread * (z @ basis) + noise * e
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, y.astype(np.int64)


def peak_rss() -> int:
    """Peak resident memory of this process so far, bytes (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def timed(fn: Callable[[], object], repeats: int) -> tuple[object, float]:
    """(last result, median wall seconds over ``repeats`` calls).

    The median CPU seconds of the same calls (all threads of this process) are kept in
    ``timed.cpu``: on a shared machine other processes stretch wall time, not CPU time, so
    CPU-time ratios are the steadier comparison.
    """
    out, wall, timed.cpu = timed_runs(fn, repeats)
    return out, wall


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of ``exact``'s neighbours (N, k) that ``approx`` (N, >=k) also found."""
    hits = 0
    for col in range(exact.shape[1]):
        e = exact[:, col : col + 1]
        hits += int(((approx == e) & (e >= 0)).any(axis=1).sum())
    return hits / exact.size


def drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """(N, k) neighbour ids without each row's own id (the first k others)."""
    n = idx.shape[0]
    is_self = idx == np.arange(n)[:, None]
    # Rows where the item is missing from its own list (ties) lose their last entry instead.
    is_self[~is_self.any(axis=1), -1] = True
    return idx[~is_self].reshape(n, idx.shape[1] - 1)[:, :k].astype(np.int64)


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    print(f"\n## {title}")
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))


# -- stages ----------------------------------------------------------------------------------


def stage_knn(ctx: dict) -> dict:
    import faiss
    from umap.umap_ import nearest_neighbors

    from workbench.neighbors import build_knn_graph

    x, k, repeats = ctx["X"], KNN_K, ctx["repeats"]
    graph, t_ours = timed(lambda: build_knn_graph(x, k=k, seed=ctx["seed"]), repeats)
    cpu_ours = timed.cpu
    ctx["graph"] = graph
    # Peak so far = vectors + the workbench graph (the peers below have not run yet).
    rss_graph = peak_rss()
    # The graph's own working memory, untimed: numpy reports its allocations to tracemalloc
    # (FAISS's k-means on at most 64 points per cell is small beside them).
    tracemalloc.start()
    build_knn_graph(x, k=k, seed=ctx["seed"])
    graph_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Compile pynndescent's numba code first, so its time below is search, not compilation.
    nearest_neighbors(x[:500], k + 1, "cosine", {}, False, None, low_memory=True)

    def exact():
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(x)
        return index.search(x, k + 1)[1]

    exact_ids, t_exact = timed(exact, repeats)
    cpu_exact = timed.cpu
    truth = drop_self(exact_ids, k)

    def pynnd():
        # Exactly the call umap-learn makes for its own neighbours (unseeded: all cores).
        return nearest_neighbors(x, k + 1, "cosine", {}, False, None, low_memory=True)[0]

    nnd_ids, t_nnd = timed(pynnd, repeats)
    cpu_nnd = timed.cpu
    out = {
        "knn_recall": recall_at_k(graph.indices, truth),
        "knn_recall_estimate": graph.recall_estimate,
        "knn_seconds": t_ours,
        "knn_seconds_exact": t_exact,
        "knn_speedup_vs_exact": t_exact / t_ours,
        "knn_seconds_pynndescent": t_nnd,
        "knn_recall_pynndescent": recall_at_k(drop_self(nnd_ids, k), truth),
        "knn_cpu_seconds": cpu_ours,
        "knn_cpu_seconds_exact": cpu_exact,
        "knn_cpu_seconds_pynndescent": cpu_nnd,
        "knn_cpu_speedup_vs_exact": cpu_exact / cpu_ours,
        "peak_rss_bytes_after_graph": rss_graph,
        "graph_extra_rss_bytes": rss_graph - ctx["rss_after_data"],
        "graph_peak_alloc_bytes": graph_bytes,
    }
    table(
        f"kNN graph, k={k}, n={ctx['n']}, d={ctx['dim']}",
        [
            ("workbench (FAISS, cell-blocked IVF)", f"{t_ours:.1f}", f"{cpu_ours:.1f}",
             f"{out['knn_recall']:.4f}"),
            ("exact FAISS flat", f"{t_exact:.1f}", f"{cpu_exact:.1f}", "1.0000"),
            ("pynndescent (umap-learn's)", f"{t_nnd:.1f}", f"{cpu_nnd:.1f}",
             f"{out['knn_recall_pynndescent']:.4f}"),
        ],
        ("method", "seconds", "cpu seconds", "recall@15"),
    )
    return out


def stage_layout(ctx: dict) -> dict:
    import umap
    from sklearn.manifold import trustworthiness
    from umap.umap_ import nearest_neighbors

    from workbench.layout import compute_layout, quick_layout, warm_up
    from workbench.neighbors import build_knn_graph

    x, seed, repeats = ctx["X"], ctx["seed"], ctx["repeats"]
    if "graph" not in ctx:
        ctx["graph"] = build_knn_graph(x, k=KNN_K, seed=seed)
    graph = ctx["graph"]
    # Compile every code path timed below first (the workbench does this at session start),
    # so that each timing is work, not numba compilation.
    warm_up(background=False)
    small = build_knn_graph(x[:300], k=KNN_K)
    compute_layout(small, x[:300], seed=None, n_epochs=2)
    ref_params = {"n_neighbors": graph.k + 1, "metric": "cosine", "min_dist": 0.1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        umap.UMAP(random_state=seed, **ref_params).fit_transform(x[:300])
        nearest_neighbors(x[:500], graph.k + 1, "cosine", {}, False, np.random.RandomState(seed))

    quick, t_quick = timed(lambda: quick_layout(graph, x, seed=seed), repeats)
    ours, t_ours = timed(lambda: compute_layout(graph, x, seed=seed), repeats)
    cpu_ours = timed.cpu
    _, t_unseeded = timed(lambda: compute_layout(graph, x, seed=None), repeats)

    def reference():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return umap.UMAP(random_state=seed, **ref_params).fit_transform(x)

    ref, t_ref = timed(reference, repeats)
    cpu_ref = timed.cpu
    rng = np.random.default_rng(seed)
    s = rng.choice(len(x), size=min(TRUST_SAMPLE, len(x)), replace=False)

    def trust(emb):
        return float(trustworthiness(x[s], emb[s], n_neighbors=KNN_K, metric="cosine"))

    out = {
        "layout_seconds": t_ours,
        "layout_seconds_reference": t_ref,
        "layout_trustworthiness": trust(ours),
        "layout_trustworthiness_reference": trust(ref),
        "layout_seconds_quick": t_quick,
        "layout_trustworthiness_quick": trust(quick),
        "layout_seconds_unseeded": t_unseeded,
        "layout_cpu_seconds": cpu_ours,
        "layout_cpu_seconds_reference": cpu_ref,
    }
    if "knn_seconds" in ctx.get("results", {}):
        out["layout_plus_graph_seconds"] = t_ours + ctx["results"]["knn_seconds"]
    table(
        f"2-D layout, n={ctx['n']} (seeded unless said; trustworthiness on {s.size} points)",
        [
            ("workbench (UMAP on FAISS graph)", f"{t_ours:.1f}", f"{out['layout_trustworthiness']:.4f}"),
            ("workbench, unseeded (all cores)", f"{t_unseeded:.1f}", ""),
            ("workbench quick first view", f"{t_quick:.1f}", f"{out['layout_trustworthiness_quick']:.4f}"),
            ("umap-learn, own neighbours", f"{t_ref:.1f}", f"{out['layout_trustworthiness_reference']:.4f}"),
        ],
        ("method", "seconds", "trustworthiness"),
    )
    return out


STAGES: dict[str, Callable[[dict], dict]] = {"knn": stage_knn, "layout": stage_layout}
STAGES.update(_LEARN)  # propagation and probe, in _stages_learn.py beside this file


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="synthetic items (default 100000)")
    p.add_argument("--dim", type=int, default=512, help="synthetic dimensions (default 512)")
    p.add_argument("--centres", type=int, default=50, help="synthetic clusters (default 50)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma list of {list(STAGES)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="runs per timing; the median is quoted")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default results/scale_n{n}.json)")
    add_data_arguments(p)
    args = p.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")

    import faiss  # noqa: F401  (imported before the baseline, like the rest below)
    import umap  # noqa: F401

    import workbench.layout  # noqa: F401

    baseline = peak_rss()
    t = time.perf_counter()
    if args.dataset or args.vectors:
        name, x, y = load_from_args(args)
    else:
        name = f"synthetic-{args.centres}-clusters"
        x, y = make_clustered(args.n, args.dim, seed=args.seed, centres=args.centres)
    print(f"data: {name}, {x.shape[0]} x {x.shape[1]} in {time.perf_counter() - t:.1f}s")
    ctx = {"X": x, "y": y, "n": x.shape[0], "dim": x.shape[1], "seed": args.seed,
           "repeats": args.repeats, "results": {}, "rss_after_data": peak_rss()}
    results: dict = {"benchmark": "scale", "dataset": name, "n": ctx["n"], "dim": ctx["dim"],
                     "repeats": args.repeats, "rss_bytes_after_imports": baseline,
               "rss_bytes_after_data": ctx["rss_after_data"]}
    for s in stages:
        t = time.perf_counter()
        results.update(STAGES[s](ctx))
        ctx["results"] = results
        print(f"(stage {s}: {time.perf_counter() - t:.0f}s wall)")
    results["peak_rss_bytes"] = peak_rss()
    results["raw_vector_bytes"] = int(x.nbytes)
    results["peak_rss_over_raw"] = results["peak_rss_bytes"] / x.nbytes
    out = args.out or RESULTS / f"scale_n{ctx['n']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    # Runs of different stages on the same data add up in one file; each stage's figures
    # and its peers always come from one run. The last printed line is this run only.
    merged = json.loads(out.read_text()) if out.exists() else {}
    same = all(merged.get(key) == results[key] for key in ("dataset", "n", "dim"))
    merged = {**merged, **results} if same else dict(results)
    merged.setdefault("stages_run_at", {}).update(
        {s: time.strftime("%Y-%m-%dT%H:%M:%S") for s in stages}
    )
    out.write_text(json.dumps(merged, indent=1) + "\n")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
