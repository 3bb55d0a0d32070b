"""Benchmark 1 (BENCHMARKS.md): how far a person gets with how little work.

A simulated annotator drives a :class:`workbench.Workbench` through its public Python API,
as a person does in the notebook: a project made from ``workbench.items.from_vectors`` in a
temporary folder (real SQLite), the UMAP map and retraining in background threads, labels
given with ``Workbench.label``, groups from ``Workbench.next_cluster``, pages from
``Workbench.suggestions`` and ``Workbench.suspected_errors``. The annotator learns an
item's true label only by viewing it, and decides only from what it has viewed. Actions:

* label items: view each given item, give its true label. 1 action; views = items.
* label a group: view a random sample of at most 12 members of the group the workbench
  proposes (the core of ``next_cluster()``) and give the sample's majority label to the
  whole core, wrong members included, as a lasso does. 1 action; 12 views.
* review a queue: at most 12 suspected wrong labels shown; each wrong one corrected is 1
  action (scored after each); a page with nothing to correct still costs 1 action.

The annotator's policy: take the group the workbench proposes; if the sample it viewed is
not near-unanimous (fewer than ``--unanimous`` of 12 agree) it labels just the items it
viewed instead of the whole group (a person does not lasso a mixed cluster). When the
workbench proposes no group (a page of suggestions is worth more), it labels the page of
suggestions; every ``--review-every``-th page is the queue of suspected wrong labels (after a
queue with nothing to correct, the person waits twice as long for the next). After
every action it waits for the background retrain (as a person looks at the recoloured
map) and scores all N items: the human label where there is one, else the workbench's
prediction (its mix of propagation over the vectors' kNN graph and over the map's, and the
linear probe, weights chosen on held-out human labels).

References in the same run: random single items labelled one at a time, scikit-learn
``LabelSpreading(kernel="knn")`` and ``LogisticRegression`` predicting the rest.

    .venv/bin/python benchmarks/label_efficiency.py --dataset mnist-test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import add_data_arguments, load_from_args

from workbench import Workbench
from workbench.items import from_vectors

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = (10, 25, 50, 100)
PAGE = 12  # items per group sample and per page: one screen


class Annotator:
    """Knows the truth; reveals it only item by item, counting views and actions."""

    def __init__(self, truth: np.ndarray, seed: int) -> None:
        self.truth = truth
        self.rng = np.random.default_rng(seed)
        self.views = 0
        self.actions = 0

    def view(self, items: np.ndarray) -> np.ndarray:
        self.views += int(np.asarray(items).size)
        return self.truth[items]


class Person:
    """The annotator at the notebook: labels through the workbench, class names = truth."""

    def __init__(self, wb: Workbench, ann: Annotator) -> None:
        self.wb, self.ann = wb, ann

    def human(self) -> np.ndarray:
        """(N,) int64 human labels as truth ids (-1 = none)."""
        return self._as_truth(self.wb.labels.state.human)

    def current(self) -> np.ndarray:
        return self._as_truth(self.wb.current_labels())

    def _as_truth(self, ids: np.ndarray) -> np.ndarray:
        out = np.full(ids.shape, -1, np.int64)
        for cid, name in self.wb.labels.classes.items():
            out[ids == cid] = int(name)
        return out

    def label(self, items: np.ndarray, truth: np.ndarray) -> None:
        """One action in the UI: the items get their (viewed) labels, one name per class."""
        for t in np.unique(truth):
            self.wb.label(items[truth == t], str(int(t)))


def run_policy(x: np.ndarray, y: np.ndarray, *, seed: int, max_actions: int,
               unanimous: int, review_every: int, log,
               on_action=None, annotator: str | None = None) -> tuple[list[dict], dict]:
    """The annotator's session; returns one curve point per action, and what it did.

    ``annotator``: the name the labels are given under (default: the workbench's, the
    login name); the workbench's spot-check draws depend on it, as two people's do.

    ``on_action(wb, person, point)``, if given, is called after each scored action (the
    calibration benchmark reads the workbench's confidences there); what it returns is
    stored in the point under ``"extra"``.
    """
    ann = Annotator(y, seed)
    curve: list[dict] = []
    did = {"group": 0, "mixed_group": 0, "suggestions": 0, "review": 0, "corrections": 0}
    with tempfile.TemporaryDirectory() as tmp:
        items, vectors = from_vectors(x)
        wb = Workbench.create(Path(tmp) / "project", items, vectors=vectors,
                              annotator=annotator)
        wb.wait()  # the person looks at the map before the first action
        me = Person(wb, ann)

        def act(kind: str) -> None:
            ann.actions += 1
            did[kind] += 1
            wb.wait()  # the recoloured map
            cur, human = me.current(), me.human()
            lab = human >= 0
            curve.append({
                "actions": ann.actions, "views": ann.views, "kind": kind,
                "accuracy": float((cur == y).mean()), "macro_f1": macro_f1(y, cur),
                "human_accuracy": float((human[lab] == y[lab]).mean()) if lab.any() else None,
                "human_labels": int(lab.sum()), "weights": dict(wb.weights),
            })
            if on_action is not None:
                curve[-1]["extra"] = on_action(wb, me, curve[-1])

        pages = 0
        reviewed = np.zeros(len(y), bool)
        gap = review_every  # a review that finds nothing makes the next one wait longer
        next_review = gap
        while ann.actions < max_actions:
            cluster = wb.next_cluster()
            if cluster is not None:
                core = cluster.core()
                core = core[wb.labels.state.human[core] < 0]
                sample = ann.rng.choice(core, size=min(PAGE, core.size), replace=False)
                seen = ann.view(sample)
                counts = np.bincount(seen)
                if counts.max() >= min(unanimous, sample.size):
                    me.label(core, np.full(core.size, counts.argmax()))
                    act("group")
                else:  # a mixed sample: label what was viewed, not the whole group
                    me.label(sample, seen)
                    act("mixed_group")
                continue
            pages += 1
            if review_every and pages >= next_review:
                page = wb.suspected_errors(PAGE, exclude=np.flatnonzero(reviewed))
                if page.size:
                    reviewed[page] = True
                    human = me.human()
                    truth = ann.view(page)
                    wrong = page[truth != human[page]]
                    gap = review_every if wrong.size else 2 * gap
                    next_review = pages + gap
                    if wrong.size == 0:
                        act("review")  # accepting a page is never free
                    for i in wrong:
                        if ann.actions >= max_actions:
                            break
                        me.label(np.array([i]), np.array([y[i]]))
                        did["corrections"] += 1
                        act("review")
                    continue
            page = wb.suggestions(PAGE)
            if page.size == 0:
                break
            me.label(page, ann.view(page))
            act("suggestions")
        wb.close()
    log(f"  workbench seed {seed}: " + "  ".join(
        f"{b}:{at_budget(curve, b)['accuracy']:.3f}" for b in BUDGETS if curve) + f"  {did}")
    return curve, did


def references(x: np.ndarray, y: np.ndarray, *, seed: int, points: list[int]) -> dict:
    """Random single labels, one per action: LabelSpreading and LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.semi_supervised import LabelSpreading

    order = np.random.default_rng(1000 + seed).permutation(len(y))
    out = {"spreading": {}, "logreg": {}}
    for b in points:
        idx = order[:b]
        labels = np.full(len(y), -1)
        labels[idx] = y[idx]
        if np.unique(y[idx]).size < 2:
            pred = np.full(len(y), y[idx][0])
            out["spreading"][b] = out["logreg"][b] = float((pred == y).mean())
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ls = LabelSpreading(kernel="knn").fit(x, labels)
        out["spreading"][b] = float((ls.transduction_ == y).mean())
        lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[idx], y[idx])
        pred = lr.predict(x)
        pred[idx] = y[idx]
        out["logreg"][b] = float((pred == y).mean())
    return out


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", labels=np.unique(y), zero_division=0))


def at_budget(curve: list[dict], budget: int) -> dict:
    """The state after the last action within ``budget`` actions."""
    ok = [p for p in curve if p["actions"] <= budget]
    return ok[-1] if ok else {"accuracy": 0.0, "views": 0, "macro_f1": 0.0,
                              "human_accuracy": None, "actions": 0}


def plot(name: str, curves: list[list[dict]], refs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, c in enumerate(curves):
        ax.plot([p["actions"] for p in c], [p["accuracy"] for p in c], color="C0",
                label="workbench" if i == 0 else None)
    for key, color, lab in (("spreading", "C1", "random + LabelSpreading"),
                            ("logreg", "C2", "random + LogisticRegression")):
        for i, r in enumerate(refs):
            pts = sorted(r[key].items())
            ax.plot([p for p, _ in pts], [v for _, v in pts], color=color, ls="--",
                    label=lab if i == 0 else None)
    ax.set(xlabel="annotator actions", ylabel="accuracy of all items", title=name,
           xlim=(0, max(BUDGETS)), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--seeds", type=int, default=3, help="repeats (medians reported)")
    parser.add_argument("--unanimous", type=int, default=11,
                        help="sampled members (of 12) that must agree before the annotator "
                             "labels a whole group rather than just the items it viewed")
    parser.add_argument("--review-every", type=int, default=4,
                        help="every n-th page is the queue of suspected wrong labels (0: never)")
    parser.add_argument("--references-only", action="store_true",
                        help="keep the saved run's workbench curves, recompute its references")
    args = parser.parse_args(argv)
    name, x, y = load_from_args(args)
    if args.references_only:
        return redo_references(name, x, y)
    max_actions = max(BUDGETS)
    print(f"{name}: N={len(y)} D={x.shape[1]} classes={np.unique(y).size} "
          f"unanimous={args.unanimous} review_every={args.review_every}", flush=True)
    curves, refs, dids = [], [], []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        curve, did = run_policy(x, y, seed=seed, max_actions=max_actions,
                                unanimous=args.unanimous, review_every=args.review_every,
                                log=lambda m: print(m, flush=True))
        curves.append(curve)
        dids.append(did)
        refs.append(references(x, y, seed=seed, points=reference_points(curve)))
        print("  references seed {}: spreading {}  logreg {}".format(
            seed, " ".join(f"{b}:{refs[-1]['spreading'][b]:.3f}" for b in BUDGETS),
            " ".join(f"{b}:{refs[-1]['logreg'][b]:.3f}" for b in BUDGETS)), flush=True)

    table = summarise(curves, refs)
    print_table(table)
    headline = headline_of(name, table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"label_efficiency_{name}.json").write_text(json.dumps({
        **headline, "table": table, "seeds": args.seeds, "unanimous": args.unanimous,
        "review_every": args.review_every, "actions_taken": dids,
        "seconds": time.perf_counter() - t0,
        "curves": curves, "references": [{k: {str(b): v for b, v in r[k].items()} for k in r}
                                         for r in refs],
    }, indent=1))
    plot(name, curves, refs, RESULTS / f"label_efficiency_{name}.png")
    print(json.dumps(headline))
    return headline


def redo_references(name: str, x: np.ndarray, y: np.ndarray) -> dict:
    """Recompute the references (at equal actions and equal views) of a saved run."""
    path = RESULTS / f"label_efficiency_{name}.json"
    saved = json.loads(path.read_text())
    curves = saved["curves"]
    refs = [references(x, y, seed=seed, points=reference_points(curve))
            for seed, curve in enumerate(curves)]
    table = summarise(curves, refs)
    print_table(table)
    headline = headline_of(name, table)
    saved.update({**headline, "table": table,
                  "references": [{k: {str(b): v for b, v in r[k].items()} for k in r}
                                 for r in refs]})
    path.write_text(json.dumps(saved, indent=1))
    plot(name, curves, refs, RESULTS / f"label_efficiency_{name}.png")
    print(json.dumps(headline))
    return headline


def reference_points(curve: list[dict]) -> list[int]:
    """Label counts to run the references at: the curve's action counts, and the views the
    annotator had spent at each budget (for the comparison at equal views)."""
    actions = {1, 2, 3, 5, 7, *range(10, max(BUDGETS) + 1, 5), *BUDGETS}
    return sorted(actions | {at_budget(curve, b)["views"] for b in BUDGETS})


def headline_of(name: str, table: dict) -> dict:
    return {
        "benchmark": "label_efficiency",
        "dataset": name,
        "accuracy": {b: r["accuracy"] for b, r in table.items()},
        "reference_spreading": {b: r["reference_spreading"] for b, r in table.items()},
        "reference_logreg": {b: r["reference_logreg"] for b, r in table.items()},
        "views": {b: r["views"] for b, r in table.items()},
    }


def print_table(table: dict) -> None:
    print(f"\n{'actions':>8} {'accuracy':>9} {'(worst)':>8} {'macroF1':>8} {'human acc':>9} "
          f"{'views':>6} {'LabelSpr':>9} {'LogReg':>7}   at equal views: {'LabelSpr':>8} {'LogReg':>7}")
    for b, row in table.items():
        print(f"{b:>8} {row['accuracy']:9.3f} {row['accuracy_min']:8.3f} {row['macro_f1']:8.3f} "
              f"{row['human_accuracy']:9.3f} {row['views']:6.0f} "
              f"{row['reference_spreading']:9.3f} {row['reference_logreg']:7.3f}   "
              f"{'':>16}{row['reference_spreading_at_views']:8.3f} "
              f"{row['reference_logreg_at_views']:7.3f}")


def summarise(curves: list[list[dict]], refs: list[dict]) -> dict:
    """Medians over seeds at each budget; references at equal actions and equal views."""

    def med(values) -> float:
        return float(np.median(values))

    table = {}
    for b in BUDGETS:
        st = [at_budget(c, b) for c in curves]
        table[str(b)] = {
            "accuracy": med([p["accuracy"] for p in st]),
            "accuracy_min": float(min(p["accuracy"] for p in st)),
            "macro_f1": med([p["macro_f1"] for p in st]),
            "human_accuracy": med([p["human_accuracy"] or 0.0 for p in st]),
            "views": med([p["views"] for p in st]),
            "reference_spreading": med([r["spreading"][b] for r in refs]),
            "reference_logreg": med([r["logreg"][b] for r in refs]),
            # The same random labels, as many as the items the workbench's annotator viewed.
            "reference_spreading_at_views": med([r["spreading"][p["views"]]
                                                 for r, p in zip(refs, st, strict=True)]),
            "reference_logreg_at_views": med([r["logreg"][p["views"]]
                                              for r, p in zip(refs, st, strict=True)]),
        }
    return table


if __name__ == "__main__":
    main()
