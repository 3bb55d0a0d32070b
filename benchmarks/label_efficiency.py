"""Benchmark 1 (BENCHMARKS.md): how far a person gets with how little work.

A simulated annotator drives the workbench through its public Python API: a
``workbench.project.Project`` made from ``workbench.items.from_vectors`` in a temporary
folder, labels recorded with ``project.labels.assign`` (real SQLite), groups, suggestions,
suspected errors and predictions from ``workbench.learn``. The annotator learns an item's
true label only by viewing it. Actions:

* label items: 1 action, views = items.
* label a group: the workbench proposes a group; the annotator views a random sample of at
  most 12 members and gives the sample's majority label to the whole group. 1 action.
* review a queue: at most 12 items shown with the workbench's predicted label; each wrong
  one corrected is 1 action (scored after each); the others are confirmed with the page.
  A page with nothing to correct still costs 1 action (accepting it is a click), so a
  review is never free.

The workbench's policy: label the cores of groups of the kNN graph's spectral embedding
(most typical half of each cluster, purer than the whole), the first from the largest
group and then the farthest from those done, then alternate review pages of uncertain-but-diverse suggestions (margin × k-center) and of
suspected wrong human labels (``rank_label_issues``). After every action all N items are
scored: the human label where there is one, else the combined prediction (propagation over
the kNN graph + linear probe retrained in the background).

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

from workbench.items import from_vectors
from workbench.learn import (
    LabelSpreader,
    LinearProbe,
    NotEnoughLabels,
    Retrainer,
    combine,
    graph_groups,
    kmeans_groups,
    rank_label_issues,
    spectral_embedding,
    suggest_batch,
)
from workbench.neighbors import build_knn_graph
from workbench.project import Project

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = (10, 25, 50, 100)
PAGE = 12  # items per group sample and per review page: one screen


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


class Session:
    """The workbench as a person uses it from the notebook: a project plus the learners."""

    def __init__(self, folder: Path, x: np.ndarray, *, probe: bool) -> None:
        items, vectors = from_vectors(x)
        self.project = Project.create(folder / "project", items, vectors=vectors)
        self.x = self.project.vectors(mmap=False)
        self.graph = build_knn_graph(self.x, k=15)
        self.spreader = LabelSpreader(self.graph)
        self.use_probe = probe
        # The probe retrains in the background after each change; the scoring waits for it
        # only at the points where a person would look at the recoloured map.
        self.retrainer = Retrainer(self._fit_probe, delay=0.0)
        self.probe: LinearProbe | None = None
        self.predictions = None

    # -- labels as class ids, names = the true class as text ---------------------------------

    def human(self) -> np.ndarray:
        """(N,) int64 human labels as truth ids (-1 = none)."""
        store = self.project.labels
        store.refresh()
        ids = store.state.human
        lut = {cid: int(name) for cid, name in store.classes.items()}
        out = np.full(ids.shape, -1, np.int64)
        for cid, t in lut.items():
            out[ids == cid] = t
        return out

    def assign(self, items: np.ndarray, labels: np.ndarray) -> None:
        """Record human labels, one ``assign`` per class (one user action in the UI)."""
        for lab in np.unique(labels):
            self.project.labels.assign(items[labels == lab], str(int(lab)))

    # -- learning ----------------------------------------------------------------------------

    def _fit_probe(self, x: np.ndarray, labels: np.ndarray) -> LinearProbe:
        return LinearProbe().fit(x, labels)

    def update(self, *, retrain: bool) -> None:
        """Propagate now (fast); retrain the probe in the background when asked."""
        human = self.human()
        try:
            prop = self.spreader.fit(human).predictions_
        except NotEnoughLabels:
            prop = None
        if retrain and self.use_probe and prop is not None:
            self.retrainer.submit(self.x, human.copy())
            self.probe = self.retrainer.wait()
        probe_pred = None
        if self.probe is not None:
            probe_pred = self.probe.predictions(self.x)
        if prop is None and probe_pred is None:
            self.predictions = None
        else:
            self.predictions = combine(prop, probe_pred, probe_weight=self.probe_weight())

    def probe_weight(self) -> float:
        # The probe's say grows with its held-out accuracy on human labels: a weak linear
        # probe (pixels) should not drag good propagation down, a strong one (text) leads.
        if self.probe is None or not np.isfinite(self.probe.cv_accuracy_):
            return 0.0
        return float(np.clip((self.probe.cv_accuracy_ - 0.5) / 0.5, 0.0, 1.0) * 0.5)

    def current(self) -> np.ndarray:
        human = self.human()
        if self.predictions is None:
            return human
        return np.where(human >= 0, human, self.predictions.label)

    def close(self) -> None:
        self.retrainer.close()
        self.project.close()


def run_policy(x: np.ndarray, y: np.ndarray, *, seed: int, n_groups: int, core: float,
               max_actions: int, probe: bool, grouping: str,
               regroup: bool, log) -> list[dict]:
    """The workbench's policy; returns one curve point per action."""
    ann = Annotator(y, seed)
    curve: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        s = Session(Path(tmp), x, probe=probe)

        def score() -> None:
            cur = s.current()
            human = s.human()
            lab = human >= 0
            acc = float((cur == y).mean())
            curve.append({
                "actions": ann.actions, "views": ann.views, "accuracy": acc,
                "macro_f1": macro_f1(y, cur),
                "human_accuracy": float((human[lab] == y[lab]).mean()) if lab.any() else None,
                "human_labels": int(lab.sum()),
            })

        emb = spectral_embedding(s.graph, seed=seed)
        if grouping == "graph":
            groups = graph_groups(s.graph, n_clusters=n_groups, seed=seed, embedding=emb)
        else:
            groups = kmeans_groups(s.x, n_clusters=n_groups, seed=seed)
        shown = np.zeros(len(y), bool)
        gi = 0
        review_turn = 0
        while ann.actions < max_actions:
            human = s.human()
            if gi < len(groups):
                # Label a group: the core of the next-largest cluster.
                g = groups[gi]
                gi += 1
                members = g.core(core)
                members = members[human[members] < 0]
                if members.size == 0:
                    continue
                sample = ann.rng.choice(members, size=min(PAGE, members.size), replace=False)
                seen = ann.view(sample)
                majority = np.bincount(seen).argmax()
                s.assign(members, np.full(members.size, majority))
                ann.actions += 1
                s.update(retrain=True)
                score()
                continue
            if regroup and s.predictions is not None and review_turn % 3 != 2:
                # A group from the region the models are least sure of: where they are
                # wrong, one group action fixes many items at once.
                review_turn += 1
                free = human < 0
                if not free.any():
                    break
                unsure = free & (s.predictions.confidence <= np.quantile(
                    s.predictions.confidence[free], 0.5))
                if unsure.sum() >= PAGE:
                    sub = graph_groups(s.graph, n_clusters=max(2, int(unsure.sum()) // 100),
                                       exclude=~unsure, seed=seed + ann.actions, embedding=emb)
                    members = sub[0].core(core)
                    sample = ann.rng.choice(members, size=min(PAGE, members.size), replace=False)
                    majority = np.bincount(ann.view(sample)).argmax()
                    s.assign(members, np.full(members.size, majority))
                    ann.actions += 1
                    s.update(retrain=True)
                    score()
                    continue
            if s.predictions is None:
                page = ann.rng.choice(np.flatnonzero(human < 0), size=PAGE, replace=False)
                proposed = np.full(PAGE, -1)
            elif review_turn % 4 == 3 and (human >= 0).sum() > 20:
                # A page of suspected wrong human labels.
                issues = rank_label_issues(s.x, human)
                page = issues.ranked[~shown[issues.ranked]][:PAGE]
                proposed = human[page]
            else:
                page = suggest_batch(s.predictions, s.x, human, batch_size=PAGE, exclude=shown)
                proposed = s.predictions.label[page]
            review_turn += 1
            if page.size == 0:
                break
            shown[page] = True
            truth = ann.view(page)
            wrong = page[truth != proposed]
            right = page[truth == proposed]
            if right.size:
                s.assign(right, truth[truth == proposed])  # confirmed with the page
            if wrong.size == 0:
                ann.actions += 1  # accepting a page is never free
                s.update(retrain=False)
                score()
            for i in wrong:
                if ann.actions >= max_actions:
                    break
                s.assign(np.array([i]), np.array([y[i]]))
                ann.actions += 1
                s.update(retrain=False)
                score()
            s.update(retrain=True)
        s.close()
    log(f"  workbench seed {seed}: " + "  ".join(
        f"{b}:{at_budget(curve, b)['accuracy']:.3f}" for b in BUDGETS if curve))
    return curve


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
    parser.add_argument("--groups", type=int, default=None,
                        help="k-means groups to label first (default: N/45 in [10, 40])")
    parser.add_argument("--core", type=float, default=0.5,
                        help="fraction of each cluster (most typical first) labelled as a group")
    parser.add_argument("--grouping", choices=("graph", "kmeans"), default="graph",
                        help="groups from the kNN graph's spectral embedding, or raw k-means")
    parser.add_argument("--regroup", action="store_true",
                        help="after the first groups, also label groups of the least sure items "
                             "(off: on digits it locks in impure groups and loses accuracy)")
    parser.add_argument("--no-probe", action="store_true", help="propagation only")
    args = parser.parse_args(argv)
    name, x, y = load_from_args(args)
    n_groups = args.groups or int(np.clip(len(y) // 45, 10, 40))
    max_actions = max(BUDGETS)
    print(f"{name}: N={len(y)} D={x.shape[1]} classes={np.unique(y).size} groups={n_groups} "
          f"core={args.core}", flush=True)
    points = sorted({1, 2, 3, 5, 7, *range(10, max_actions + 1, 5), *BUDGETS})
    curves, refs = [], []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        curves.append(run_policy(x, y, seed=seed, n_groups=n_groups, core=args.core,
                                 max_actions=max_actions, probe=not args.no_probe,
                                 grouping=args.grouping, regroup=args.regroup,
                                 log=lambda m: print(m, flush=True)))
        refs.append(references(x, y, seed=seed, points=points))
        print("  references seed {}: spreading {}  logreg {}".format(
            seed, " ".join(f"{b}:{refs[-1]['spreading'][b]:.3f}" for b in BUDGETS),
            " ".join(f"{b}:{refs[-1]['logreg'][b]:.3f}" for b in BUDGETS)), flush=True)

    def med(values) -> float:
        return float(np.median(values))

    table = {}
    for b in BUDGETS:
        st = [at_budget(c, b) for c in curves]
        table[str(b)] = {
            "accuracy": med([p["accuracy"] for p in st]),
            "macro_f1": med([p["macro_f1"] for p in st]),
            "human_accuracy": med([p["human_accuracy"] or 0.0 for p in st]),
            "views": med([p["views"] for p in st]),
            "reference_spreading": med([r["spreading"][b] for r in refs]),
            "reference_logreg": med([r["logreg"][b] for r in refs]),
        }
    print(f"\n{'actions':>8} {'accuracy':>9} {'macroF1':>8} {'human acc':>9} {'views':>6} "
          f"{'LabelSpr':>9} {'LogReg':>7}")
    for b, row in table.items():
        print(f"{b:>8} {row['accuracy']:9.3f} {row['macro_f1']:8.3f} {row['human_accuracy']:9.3f} "
              f"{row['views']:6.0f} {row['reference_spreading']:9.3f} {row['reference_logreg']:7.3f}")
    headline = {
        "benchmark": "label_efficiency",
        "dataset": name,
        "accuracy": {b: r["accuracy"] for b, r in table.items()},
        "reference_spreading": {b: r["reference_spreading"] for b, r in table.items()},
        "reference_logreg": {b: r["reference_logreg"] for b, r in table.items()},
        "views": {b: r["views"] for b, r in table.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"label_efficiency_{name}.json").write_text(json.dumps({
        **headline, "table": table, "groups": n_groups, "core": args.core, "grouping": args.grouping,
        "regroup": args.regroup,
        "probe": not args.no_probe, "seconds": time.perf_counter() - t0,
        "curves": curves, "references": [{k: {str(b): v for b, v in r[k].items()} for k in r}
                                         for r in refs],
    }, indent=1))
    plot(name, curves, refs, RESULTS / f"label_efficiency_{name}.png")
    print(json.dumps(headline))
    return headline


if __name__ == "__main__":
    main()
