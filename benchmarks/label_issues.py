"""Benchmark 2 (BENCHMARKS.md): finding wrong human labels.

A seeded random 20% of the items become human labels, 5% of those flipped to another class.
The workbench ranks the labels (``workbench.learn.rank_label_issues``); precision and recall
among its top k (k = number of flips) are reported beside cleanlab's
``find_label_issues`` on out-of-fold logistic-regression probabilities of the same labels.

    .venv/bin/python benchmarks/label_issues.py --dataset mnist-test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import add_data_arguments, load_from_args

from workbench.learn import rank_label_issues

RESULTS = Path(__file__).resolve().parent / "results"


def noisy_labels(y: np.ndarray, *, frac: float, flip: float, seed: int):
    """(labels (N,) int64 with -1 = unlabelled, flipped positions (F,) int64)."""
    rng = np.random.default_rng(seed)
    n = y.size
    classes = np.unique(y)
    pos = rng.choice(n, size=round(frac * n), replace=False)
    flipped = rng.choice(pos, size=round(flip * pos.size), replace=False)
    labels = np.full(n, -1, np.int64)
    labels[pos] = y[pos]
    for i in flipped:
        others = classes[classes != y[i]]
        labels[i] = rng.choice(others)
    return labels, np.sort(flipped)


def cleanlab_reference(x: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Top-k positions from cleanlab.filter.find_label_issues on OOF logistic regression."""
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pos = np.flatnonzero(labels >= 0)
    yl = labels[pos]
    _, yl = np.unique(yl, return_inverse=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    proba = cross_val_predict(model, x[pos], yl, method="predict_proba",
                              cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    ranked = find_label_issues(yl, proba, return_indices_ranked_by="self_confidence")
    return pos[ranked[:k]]


def precision_recall(found: np.ndarray, flipped: np.ndarray, k: int) -> tuple[float, float]:
    hits = np.isin(found[:k], flipped).sum()
    return float(hits / k), float(hits / flipped.size)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--fraction", type=float, default=0.2, help="items given as labels")
    parser.add_argument("--flip", type=float, default=0.05, help="share of those flipped")
    parser.add_argument("--seeds", type=int, default=3, help="repeats (median reported)")
    args = parser.parse_args(argv)
    name, x, y = load_from_args(args)
    rows = []
    for seed in range(args.seeds):
        labels, flipped = noisy_labels(y, frac=args.fraction, flip=args.flip, seed=seed)
        k = flipped.size
        t0 = time.perf_counter()
        ours = rank_label_issues(x, labels).ranked
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = cleanlab_reference(x, labels, k, seed)
        t_ref = time.perf_counter() - t0
        p, r = precision_recall(ours, flipped, k)
        rp, rr = precision_recall(ref, flipped, k)
        rows.append({"seed": seed, "k": int(k), "precision": p, "recall": r,
                     "reference_precision": rp, "reference_recall": rr,
                     "seconds": t_ours, "reference_seconds": t_ref})
        print(f"{name} seed {seed}: k={k}  workbench P={p:.3f} R={r:.3f} ({t_ours:.1f}s)  "
              f"cleanlab P={rp:.3f} R={rr:.3f} ({t_ref:.1f}s)", flush=True)
    med = {key: float(np.median([row[key] for row in rows]))
           for key in ("precision", "recall", "reference_precision", "reference_recall")}
    headline = {"benchmark": "label_issues", "dataset": name, **med}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"label_issues_{name}.json"
    out.write_text(json.dumps({**headline, "runs": rows, "fraction": args.fraction,
                               "flip": args.flip}, indent=1))
    print(json.dumps(headline))
    return headline


if __name__ == "__main__":
    main()
