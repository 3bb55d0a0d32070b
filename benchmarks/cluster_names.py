"""Benchmark 9 (BENCHMARKS.md): do the suggested cluster names say what a cluster holds?

A text set (default the subjectivity corpus: 10,000 sentences embedded with the packaged
all-MiniLM-L6-v2) is grouped the way the workbench proposes clusters (k-means on the
spectral embedding of the kNN graph, :func:`workbench.learn.graph_groups`) into K = 10 and
30 groups. Each group is named twice, from its texts alone:

* ``names``: the workbench's suggested names (:func:`workbench.learn.cluster_names.text_names`:
  class-based TF-IDF phrases, the top three joined);
* ``frequency``: the group's three most frequent words that are not stop words
  (:func:`workbench.learn.cluster_names.frequency_names`).

A zero-shot classifier is then built from each set of names alone: the text model embeds
every name, and each item goes to the name nearest its own vector (cosine). The score is
how often an item goes back to its own group (accuracy over all N items; chance is about
1/K). ``ratio`` is names / frequency at the K where it is smaller; the goal is >= 1.5.

    .venv/bin/python benchmarks/cluster_names.py              # subjectivity
    .venv/bin/python benchmarks/cluster_names.py --texts FILE  # CSV/Parquet with a `text` column

Embeddings of ``--texts`` are cached under ``benchmarks/.cache/`` by the file's content.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import CACHE, load, read_subjectivity

from workbench._config import CLUSTER_NAME_TERMS, KNN_K
from workbench.learn import graph_groups
from workbench.learn.cluster_names import (
    frequency_names,
    join_terms,
    text_cluster_terms,
    text_names,
)
from workbench.neighbors import build_knn_graph, normalize

RESULTS = Path(__file__).resolve().parent / "results"
KS = (10, 30)


def text_encoder():
    """The workbench's text model (the packaged all-MiniLM-L6-v2): ``list[str] -> (Q, D)``."""
    from workbench.embed import make_embedder

    return make_embedder("text", kind="text").encode_text


def read_texts(path: Path) -> list[str]:
    import polars as pl

    table = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    if "text" not in table.columns:
        raise SystemExit(f"{path} has no `text` column (columns: {table.columns})")
    return [str(t) for t in table["text"].fill_null("").to_list()]


def embed_texts(texts: list[str], path: Path, encode) -> np.ndarray:
    """The texts' vectors, cached by the file's content."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cache = CACHE / f"cluster_names_{digest}.npy"
    if cache.exists():
        return np.load(cache)
    x = np.concatenate([encode(texts[i:i + 512]) for i in range(0, len(texts), 512)])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cache, x.astype(np.float32))
    return x.astype(np.float32)


def back_to_own(x: np.ndarray, assign: np.ndarray, names: list[str], encode) -> float:
    """Share of the items whose nearest name (cosine to the name's embedding) is their own
    group's; an empty name is never nearest."""
    v = normalize(np.asarray(encode([n or "-" for n in names]), np.float32))
    sims = normalize(x) @ v.T
    sims[:, [k for k, n in enumerate(names) if not n]] = -np.inf
    return float((sims.argmax(1) == assign).mean())


def run(x: np.ndarray, texts: list[str], encode) -> dict:
    graph = build_knn_graph(x, k=KNN_K)
    out = {}
    for k in KS:
        t0 = time.perf_counter()
        groups = graph_groups(graph, n_clusters=k)
        assign = np.full(len(texts), -1, np.int64)
        for g, grp in enumerate(groups):
            assign[grp.members] = g
        t1 = time.perf_counter()
        names = [join_terms(t) for t in text_cluster_terms(texts, assign, len(groups), vectors=x,
                                                          encode_text=encode)]
        naming_s = time.perf_counter() - t1
        tfidf = [join_terms(t) for t in text_names(texts, assign, len(groups),
                                                   top=CLUSTER_NAME_TERMS)]
        freq = [join_terms(t) for t in frequency_names(texts, assign, len(groups),
                                                       top=CLUSTER_NAME_TERMS)]
        out[str(k)] = {
            "names": round(back_to_own(x, assign, names, encode), 4),
            "tfidf_only": round(back_to_own(x, assign, tfidf, encode), 4),
            "frequency": round(back_to_own(x, assign, freq, encode), 4),
            "chance": round(float(np.max(np.bincount(assign)) / len(texts)), 4),
            "clusters": len(groups),
            "naming_seconds": round(naming_s, 3),
            "cluster_seconds": round(t1 - t0, 3),
            "examples": [{"size": int(grp.size), "names": n, "frequency": f}
                         for grp, n, f in list(zip(groups, names, freq, strict=True))[:10]],
        }
        print(f"K={k}: names {out[str(k)]['names']:.3f}, frequency "
              f"{out[str(k)]['frequency']:.3f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, help="CSV or Parquet with a `text` column")
    args = parser.parse_args()
    encode = text_encoder()
    if args.texts is not None:
        name, texts = args.texts.stem, read_texts(args.texts)
        x = embed_texts(texts, args.texts, encode)
    else:
        name = "subjectivity"
        texts, _ = read_subjectivity()
        x, _ = load("subjectivity")
        if x.shape[0] != len(texts):
            raise SystemExit("the subjectivity texts and vectors are not aligned")
    by_k = run(x, texts, encode)
    ratio = min(v["names"] / max(v["frequency"], 1e-9) for v in by_k.values())
    headline = {"benchmark": "cluster_names", "dataset": name,
                "k": {k: {"names": v["names"], "frequency": v["frequency"]}
                      for k, v in by_k.items()},
                "ratio": round(ratio, 3), "goal": 1.5}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"cluster_names_{name}.json").write_text(json.dumps(
        {**headline, "details": by_k, "n_items": len(texts)}, indent=1) + "\n")
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
