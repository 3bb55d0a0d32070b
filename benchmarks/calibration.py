"""Benchmark 6 (BENCHMARKS.md): does a confidence mean what it says?

The label-efficiency annotator (benchmark 1, ``label_efficiency.run_policy``: groups from
``next_cluster``, pages of suggestions, review queues) drives a :class:`workbench.Workbench`;
after every action, the machine labels of all items without a human label are scored:

* ``ece``: expected calibration error of ``Workbench.predictions.confidence``, 15
  equal-width bins; an item whose true class has no label yet counts as wrong (its
  machine label names a known class, so it is wrong whatever its confidence);
* ``Workbench.estimate()``: the estimated accuracy of all items with its 90% interval, and
  whether the true accuracy (human label where there is one, else the prediction) is
  inside (coverage = share of checkpoints, over all seeds, where it is);
* the machine labels an export at ``min_confidence=0.9`` would contain: how many, and
  their measured accuracy (null where there are none).

Each seed labels as its own annotator ("annotator SEED"): the seed picks which items of a
group the annotator looks at, and the annotator's name which unlabelled items the
workbench draws as spot checks, so the seeds differ in the draws the calibration rests on
(under one name, the digits runs of all seeds were the same session).

Reported at 10, 25, 50 and 100 actions (``--budgets``): medians over ``--seeds`` seeds;
``max_ece`` is the largest ECE at any checkpoint of any seed. ``session`` scores every
action from the first checkpoint on, not only the four checkpoints: the share of actions
whose interval holds the truth, whose ECE is at most 0.05 and whose export at 0.9 is at
least 0.9 right (12 checkpoints are few: a perfect 90% interval misses 2 or more of 12 a
third of the time). The label-efficiency accuracy
of the same run is reported as in benchmark 1.

Where an ECE comes from (``table``, per checkpoint): ``level_error``, the mean confidence
minus the share right (what the spot checks' hit rate pins); ``shape_ece``, the ECE left
once every confidence is shifted by one amount on the logit scale so that the mean is right
(what no estimate of the level can remove: the shape of confidence against features); and
the top bin (confidence at least 14/15): its share of the items, mean confidence and
share right.

    .venv/bin/python benchmarks/calibration.py --dataset mnist-test
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
from label_efficiency import BUDGETS, at_budget, run_policy
from scipy.special import expit, logit

from workbench.learn.calibrate import expected_calibration_error

RESULTS = Path(__file__).resolve().parent / "results"
EXPORT_AT = 0.9
TOP_BIN = 14 / 15  # the last of the ECE's 15 bins


def shape_ece(conf: np.ndarray, right: np.ndarray) -> float:
    """ECE after shifting every confidence by the one logit offset that makes their mean the
    share right: the part of the error a perfect level cannot remove."""
    z = logit(np.clip(np.asarray(conf, np.float64), 1e-6, 1 - 1e-6))
    target = float(np.mean(right))
    lo, hi = -20.0, 20.0
    for _ in range(80):  # the mean is increasing in the offset: bisection
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if float(expit(z + mid).mean()) > target else (mid, hi)
    return expected_calibration_error(expit(z + (lo + hi) / 2), right)


def score_point(wb, me, y: np.ndarray) -> dict:
    """Calibration figures of the workbench's current state (see the module docstring)."""
    pred = wb.predictions
    human = me.human()
    cur = me.current()
    truth_acc = float((cur == y).mean())
    free = human < 0
    out: dict = {"truth": truth_acc, "n_free": int(free.sum())}
    if pred is None or not free.any():
        out.update(ece=None, estimate=None, low=None, high=None, inside=None,
                   export_count=0, export_accuracy=None, unknown_share=None)
        return out
    conf = np.asarray(pred.confidence, np.float64)[free]
    right = cur[free] == y[free]
    known = np.isin(y[free], np.unique(human[~free]))
    est = wb.estimate(EXPORT_AT)
    sel = conf >= EXPORT_AT
    unknown = getattr(pred, "unknown", None)
    top = conf >= TOP_BIN
    out.update(
        ece=expected_calibration_error(conf, right),
        mean_confidence=float(conf.mean()), machine_accuracy=float(right.mean()),
        level_error=float(conf.mean() - right.mean()), shape_ece=shape_ece(conf, right),
        top_share=float(top.mean()),
        top_confidence=float(conf[top].mean()) if top.any() else None,
        top_accuracy=float(right[top].mean()) if top.any() else None,
        unknown_class_share=float((~known).mean()),
        unknown_class_confidence=float(conf[~known].mean()) if (~known).any() else None,
        flagged_unknown=(float(np.asarray(unknown)[free][~known].mean())
                         if unknown is not None and (~known).any() else None),
        estimate=est["accuracy"], low=est["low"], high=est["high"],
        inside=(None if est["low"] is None
                else bool(est["low"] - 1e-12 <= truth_acc <= est["high"] + 1e-12)),
        export_count=int(sel.sum()),
        export_accuracy=float(right[sel].mean()) if sel.any() else None,
        export_estimate=est["machine"]["accuracy"],
    )
    record = getattr(wb, "_calibration", None) or {}
    cal = record.get("calibrator")
    if cal is not None:  # what the calibrator saw (diagnostics; not a headline figure)
        out["calibrator"] = {"kind": cal.kind, **{k: v for k, v in cal.check.items()
                                                  if isinstance(v, (int, float))}}
    return out


def med(values: list) -> float | None:
    """The median of the values that are not None (None: none are)."""
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def summarise(curves: list[list[dict]], budgets: tuple[int, ...]) -> dict:
    table = {}
    for b in budgets:
        pts = [at_budget(c, b) for c in curves]
        ex = [p.get("extra") or {} for p in pts]
        table[str(b)] = {
            "accuracy": med([p["accuracy"] for p in pts]),
            "ece": med([e.get("ece") for e in ex]),
            "ece_max": max((e["ece"] for e in ex if e.get("ece") is not None), default=None),
            "estimate": med([e.get("estimate") for e in ex]),
            "low": med([e.get("low") for e in ex]),
            "high": med([e.get("high") for e in ex]),
            "truth": med([e.get("truth") for e in ex]),
            "inside": [e.get("inside") for e in ex],
            "export_count": med([e.get("export_count") for e in ex]),
            "export_accuracy": med([e.get("export_accuracy") for e in ex]),
            "export_accuracy_min": min((e["export_accuracy"] for e in ex
                                        if e.get("export_accuracy") is not None), default=None),
            "mean_confidence": med([e.get("mean_confidence") for e in ex]),
            "machine_accuracy": med([e.get("machine_accuracy") for e in ex]),
            "unknown_class_share": med([e.get("unknown_class_share") for e in ex]),
            "unknown_class_confidence": med([e.get("unknown_class_confidence") for e in ex]),
            "level_error": med([e.get("level_error") for e in ex]),
            "abs_level_error": med([abs(e["level_error"]) for e in ex
                                    if e.get("level_error") is not None]),
            "shape_ece": med([e.get("shape_ece") for e in ex]),
            "top_share": med([e.get("top_share") for e in ex]),
            "top_confidence": med([e.get("top_confidence") for e in ex]),
            "top_accuracy": med([e.get("top_accuracy") for e in ex]),
        }
    return table


def along_session(curves: list[list[dict]], start: int) -> dict:
    """Figures over every scored action from ``start`` on, all seeds together: what a person
    reads at any moment of the session, not only at the checkpoints."""
    ex = [p.get("extra") or {} for c in curves for p in c if p["actions"] >= start]
    inside = [e["inside"] for e in ex if e.get("inside") is not None]
    eces = [e["ece"] for e in ex if e.get("ece") is not None]
    exported = [e["export_accuracy"] for e in ex if e.get("export_accuracy") is not None]
    return {
        "from_action": start,
        "points": len(inside),
        "interval_coverage": float(np.mean(inside)) if inside else None,
        "ece_at_most_0.05": float(np.mean(np.asarray(eces) <= 0.05)) if eces else None,
        "ece_median": med(eces),
        "abs_level_error_median": med([abs(e["level_error"]) for e in ex
                                       if e.get("level_error") is not None]),
        "shape_ece_median": med([e.get("shape_ece") for e in ex]),
        "export_at_least_0.9": (float(np.mean(np.asarray(exported) >= EXPORT_AT))
                                if exported else None),
    }


def print_table(table: dict) -> None:
    print(f"\n{'actions':>7} {'accuracy':>8} {'ECE':>6} {'(max)':>6} {'conf':>6} {'right':>6} "
          f"{'estimate':>8} {'90% interval':>15} {'truth':>6} {'inside':>7} "
          f"{'export@.9':>9} {'its acc':>7} {'unk cls':>7} {'|level|':>7} {'shape':>6} "
          f"{'top':>5} {'conf':>6} {'right':>6}")

    def f(v, w=6, d=3):
        return f"{v:{w}.{d}f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"

    for b, r in table.items():
        inside = "".join("y" if v else ("n" if v is False else "-") for v in r["inside"])
        print(f"{b:>7} {f(r['accuracy'], 8)} {f(r['ece'])} {f(r['ece_max'])} "
              f"{f(r['mean_confidence'])} {f(r['machine_accuracy'])} {f(r['estimate'], 8)} "
              f"[{f(r['low'])}, {f(r['high'])}] {f(r['truth'])} {inside:>7} "
              f"{f(r['export_count'], 9, 0)} {f(r['export_accuracy'], 7)} "
              f"{f(r['unknown_class_share'], 7)} {f(r['abs_level_error'], 7)} "
              f"{f(r['shape_ece'])} {f(r['top_share'], 5, 2)} {f(r['top_confidence'])} "
              f"{f(r['top_accuracy'])}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--seeds", type=int, default=3, help="repeats (medians reported)")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS),
                        help="checkpoints, in actions (default 10 25 50 100)")
    parser.add_argument("--unanimous", type=int, default=11,
                        help="as in label_efficiency.py")
    parser.add_argument("--review-every", type=int, default=4,
                        help="as in label_efficiency.py")
    parser.add_argument("--out", type=Path, default=None,
                        help="result JSON (default benchmarks/results/calibration_NAME.json)")
    args = parser.parse_args(argv)
    name, x, y = load_from_args(args)
    budgets = tuple(sorted(set(args.budgets)))
    print(f"{name}: N={len(y)} D={x.shape[1]} classes={np.unique(y).size} "
          f"budgets={list(budgets)} seeds={args.seeds}", flush=True)
    t0 = time.perf_counter()
    curves, dids = [], []
    for seed in range(args.seeds):
        curve, did = run_policy(
            x, y, seed=seed, max_actions=max(budgets), unanimous=args.unanimous,
            review_every=args.review_every, log=lambda m: print(m, flush=True),
            on_action=lambda wb, me, _pt: score_point(wb, me, y), annotator=f"annotator {seed}")
        curves.append(curve)
        dids.append(did)
        for b in budgets:
            e = at_budget(curve, b).get("extra") or {}
            print(f"  seed {seed} @{b}: ece {e.get('ece')}  est {e.get('estimate')} "
                  f"[{e.get('low')}, {e.get('high')}] truth {e.get('truth')} "
                  f"export {e.get('export_count')} acc {e.get('export_accuracy')}", flush=True)
    table = summarise(curves, budgets)
    print_table(table)
    extras = [p.get("extra") or {} for c in curves for p in (at_budget(c, b) for b in budgets)]
    inside = [e["inside"] for e in extras if e.get("inside") is not None]
    eces = [e["ece"] for e in extras if e.get("ece") is not None]
    headline = {
        "benchmark": "calibration",
        "dataset": name,
        "ece": {b: r["ece"] for b, r in table.items()},
        "max_ece": max(eces) if eces else None,
        "interval_coverage": float(np.mean(inside)) if inside else None,
        "export_accuracy_at_0.9": {b: r["export_accuracy"] for b, r in table.items()},
        "export_count_at_0.9": {b: r["export_count"] for b, r in table.items()},
        "accuracy": {b: r["accuracy"] for b, r in table.items()},
        "session": along_session(curves, min(budgets)),
    }
    out = args.out or RESULTS / f"calibration_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        **headline, "table": table, "seeds": args.seeds, "budgets": list(budgets),
        "unanimous": args.unanimous, "review_every": args.review_every,
        "actions_taken": dids, "seconds": time.perf_counter() - t0,
        "curves": [[{k: v for k, v in p.items() if k != "weights"} for p in c]
                   for c in curves],
    }, indent=1))
    print(json.dumps(headline))
    return headline


if __name__ == "__main__":
    main()
