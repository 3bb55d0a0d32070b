"""Benchmark 7 (BENCHMARKS.md): several annotators, one consensus.

A simulated team: ``--annotators`` (default 5) with accuracies spread from 0.55 to 0.95 and
class-dependent confusions (each annotator's accuracy varies by class, and its mistakes for
a class go mostly to a few other classes, seeded), each labelling a random ``--coverage``
(default 0.4) of the items, so items have 0..A labels. The workbench's own model is its
linear probe fitted on the majority-vote labels, cross-fitted in 5 folds (an item's
probabilities come from a probe that never saw its labels), as a session would have it.

In the same run, over the items with at least one label: the workbench's consensus
(:func:`workbench.learn.consensus.consensus`), majority vote, Dawid-Skene (crowd-kit) and
cleanlab's ``get_label_quality_multiannotator`` (CROWDLAB) given the same model
probabilities; the Spearman correlation of each method's annotator quality with the
annotators' true accuracy; the error rate of the items the workbench flags for an
adjudicator against the rest; and the agreement figures (Fleiss' kappa, Krippendorff's alpha
against the ``krippendorff`` package). Medians over ``--seeds``.

    .venv/bin/python benchmarks/multi_annotator.py --dataset mnist-test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import add_data_arguments, load_from_args

RESULTS = Path(__file__).resolve().parent / "results"


def simulate(y: np.ndarray, n_ann: int, coverage: float, seed: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """(N, A) labels (-1: not labelled) and (A,) the accuracies the annotators were given."""
    rng = np.random.default_rng(seed)
    c = int(y.max()) + 1
    acc = np.linspace(0.55, 0.95, n_ann)
    labels = np.full((y.size, n_ann), -1, np.int64)
    for a in range(n_ann):
        per_class = np.clip(acc[a] + rng.normal(0, 0.08, c), 0.3, 0.99)
        # where annotator a goes wrong on class k: a few other classes, most of the time
        wrong_to = np.zeros((c, c))
        for k in range(c):
            others = np.delete(np.arange(c), k)
            wrong_to[k, others] = rng.dirichlet(np.full(c - 1, 0.3)) if c > 2 else 1.0
        seen = rng.random(y.size) < coverage
        idx = np.flatnonzero(seen)
        right = rng.random(idx.size) < per_class[y[idx]]
        out = y[idx].copy()
        for i in np.flatnonzero(~right):
            out[i] = rng.choice(c, p=wrong_to[y[idx[i]]])
        labels[idx, a] = out
    return labels, acc


def cross_fitted_probe(x: np.ndarray, target: np.ndarray, *, folds: int = 5,
                       seed: int = 0) -> np.ndarray:
    """(N, C) probabilities of each item from a probe fitted without that item's fold."""
    from workbench.learn import LinearProbe

    n = target.size
    fold = np.random.default_rng(seed).permutation(n) % folds
    first = LinearProbe().fit(x, np.where(fold != 0, target, -1))
    c = int(target.max()) + 1
    out = np.zeros((n, c))
    for f in range(folds):
        probe = first if f == 0 else first.refit(x, np.where(fold != f, target, -1))
        rows = np.flatnonzero(fold == f)
        out[np.ix_(rows, probe.classes_)] = probe.predict_proba(x[rows])
    return out


def dawid_skene(labels: np.ndarray) -> np.ndarray:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    task, worker = np.nonzero(labels >= 0)
    df = pd.DataFrame({"task": task, "worker": worker, "label": labels[task, worker]})
    got = DawidSkene(n_iter=100).fit_predict(df)
    out = np.full(labels.shape[0], -1, np.int64)
    out[got.index.to_numpy()] = got.to_numpy().astype(np.int64)
    return out


def cleanlab_crowdlab(labels: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Consensus labels of the labelled items and (A,) annotator quality."""
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    has = (labels >= 0).any(axis=1)
    frame = pd.DataFrame(np.where(labels[has] >= 0, labels[has], np.nan))
    p = np.clip(proba[has], 1e-6, None)
    p /= p.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = get_label_quality_multiannotator(frame, p, verbose=False)
    out = np.full(labels.shape[0], -1, np.int64)
    out[has] = res["label_quality"]["consensus_label"].to_numpy().astype(np.int64)
    quality = res["annotator_stats"]["annotator_quality"].sort_index().to_numpy()
    return out, quality


def run_seed(x: np.ndarray, y: np.ndarray, args: argparse.Namespace, seed: int) -> dict:
    from scipy.stats import spearmanr

    from workbench.learn.consensus import (
        consensus,
        fleiss_kappa,
        krippendorff_alpha,
        majority_vote,
    )

    labels, _ = simulate(y, args.annotators, args.coverage, seed)
    c = int(y.max()) + 1
    has = (labels >= 0).any(axis=1)
    truth_acc = np.array([(labels[labels[:, a] >= 0, a] == y[labels[:, a] >= 0]).mean()
                          for a in range(labels.shape[1])])
    t = time.perf_counter()
    majority = majority_vote(labels, c)
    proba = cross_fitted_probe(x, majority, seed=seed)
    model_seconds = time.perf_counter() - t
    t = time.perf_counter()
    ours = consensus(labels, proba, n_classes=c)
    ours_seconds = time.perf_counter() - t
    t = time.perf_counter()
    ds = dawid_skene(labels)
    ds_seconds = time.perf_counter() - t
    t = time.perf_counter()
    cl, cl_quality = cleanlab_crowdlab(labels, proba)
    cl_seconds = time.perf_counter() - t

    def acc(pred):
        return float((pred[has] == y[has]).mean())

    wrong = ours.label != y
    flagged = ours.flagged & has
    rest = ~ours.flagged & has
    import krippendorff

    reliability = np.where(labels >= 0, labels, np.nan).T.astype(float)
    return {
        "seed": seed, "items_labelled": int(has.sum()),
        "labels_per_item": float((labels >= 0).sum() / max(has.sum(), 1)),
        "annotator_true_accuracy": truth_acc.tolist(),
        "consensus_accuracy": acc(ours.label), "majority_accuracy": acc(majority),
        "dawid_skene_accuracy": acc(ds), "cleanlab_accuracy": acc(cl),
        "model_accuracy": acc(proba.argmax(axis=1)),
        "model_weight": ours.model_weight,
        "annotator_quality": ours.annotator_quality.tolist(),
        "annotator_quality_spearman": float(spearmanr(ours.annotator_quality, truth_acc)[0]),
        "cleanlab_annotator_quality": cl_quality.tolist(),
        "cleanlab_annotator_quality_spearman": float(spearmanr(cl_quality, truth_acc)[0]),
        "flagged": int(flagged.sum()),
        "flagged_error_rate": float(wrong[flagged].mean()) if flagged.any() else None,
        "unflagged_error_rate": float(wrong[rest].mean()) if rest.any() else None,
        "mean_quality": float(ours.quality[has].mean()),
        "fleiss_kappa": fleiss_kappa(labels, c),
        "krippendorff_alpha": krippendorff_alpha(labels, c),
        "krippendorff_alpha_reference": float(krippendorff.alpha(
            reliability_data=reliability, level_of_measurement="nominal")),
        "seconds": {"model": model_seconds, "consensus": ours_seconds,
                    "dawid_skene": ds_seconds, "cleanlab": cl_seconds},
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(p)
    p.add_argument("--annotators", type=int, default=5)
    p.add_argument("--coverage", type=float, default=0.4,
                   help="share of the items each annotator labels")
    p.add_argument("--seeds", type=int, default=3, help="repeats (medians reported)")
    args = p.parse_args(argv)
    name, x, y = load_from_args(args)
    runs = []
    for seed in range(args.seeds):
        r = run_seed(x, y, args, seed)
        runs.append(r)
        print(f"{name} seed {seed}: ours {r['consensus_accuracy']:.4f} (model weight "
              f"{r['model_weight']}), majority {r['majority_accuracy']:.4f}, Dawid-Skene "
              f"{r['dawid_skene_accuracy']:.4f}, cleanlab {r['cleanlab_accuracy']:.4f}; "
              f"quality rho {r['annotator_quality_spearman']:.2f} (cleanlab "
              f"{r['cleanlab_annotator_quality_spearman']:.2f}); flagged "
              f"{r['flagged']} err {r['flagged_error_rate']} vs {r['unflagged_error_rate']}",
              flush=True)

    def med(key):
        vals = [r[key] for r in runs if r[key] is not None]
        return float(np.median(vals)) if vals else None

    headline = {"benchmark": "multi_annotator", "dataset": name,
                **{k: med(k) for k in (
                    "consensus_accuracy", "majority_accuracy", "dawid_skene_accuracy",
                    "cleanlab_accuracy", "annotator_quality_spearman",
                    "cleanlab_annotator_quality_spearman", "flagged_error_rate",
                    "unflagged_error_rate", "fleiss_kappa", "krippendorff_alpha",
                    "krippendorff_alpha_reference", "model_accuracy")}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"multi_annotator_{name}.json").write_text(json.dumps(
        {**headline, "annotators": args.annotators, "coverage": args.coverage,
         "seeds": args.seeds, "runs": runs}, indent=1) + "\n")
    print(json.dumps(headline))
    return headline


if __name__ == "__main__":
    main()
