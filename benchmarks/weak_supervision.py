"""Benchmark 8 (BENCHMARKS.md): rules as labellers (weak supervision).

A fixed rule set (keyword and regular-expression rules, :data:`RULES`) votes on the texts
of the subjectivity corpus (Pang & Lee: subjective = review snippets from Rotten Tomatoes,
objective = plot summaries from IMDb). The rules were written once from general knowledge
of the two genres (reviews judge, address the reader and talk about the film as a film; plot
summaries narrate: third person, family, plot verbs, ages and years), not fitted on the
labels: no rule was added, dropped or edited after seeing how it scored.

Rule evaluation (the project's rule spec, JSON): a text is lower-cased unless ``"case":
true``; a ``keywords`` rule votes its ``label`` when any of its ``words`` occurs, as a whole
word when ``"whole_word": true`` (not inside a longer run of letters, digits or
apostrophes, so "don" does not match "don't"); a ``regex`` rule votes when Python's
``re.search`` finds its ``pattern``. Otherwise the rule abstains. ``--rules FILE`` loads
such a list instead; its labels are the data set's class names (subjectivity: "objective",
"subjective"; ``--vectors/--labels`` data: the label values as written, with ``--texts``
giving one text per line).

The §1 annotator (``label_efficiency.run_policy``) labels through a real session without
rules to 50 actions; the human labels it had given at 0, 10, 25 and 50 actions are then
handed, the same to every arm, to :func:`workbench.learn.pipeline.fit_models` (the session's
retrain, over the session's own kNN graph, map graph and proposed clusters):

* ``without_rules``: ``fit_models(human)``; ``with_rules``: ``fit_models(human,
  rules=votes)``; ``with_random_rule``: the same with one more rule voting a random class on
  30% of the items;
* ``label_model`` / ``snorkel`` / ``majority``: the workbench's label model, Snorkel's
  ``LabelModel`` (snorkel 0.10.0, installed with pip into the project's venv: it added only
  packages the venv lacked) and majority vote over the same rules, each followed by the same
  probe (:func:`workbench.learn.pipeline.fit_rules_probe`, as the session fits its rules'
  probe: L2 chosen on the human labels) trained on the human labels plus the method's
  labels (of probability >= ``RULES_MIN_CONFIDENCE``; majority: ties abstain) of the other
  items.
* ``label_model_covered`` / ``snorkel_covered`` / ``majority_covered``: the three label
  models compared before any probe: the accuracy of each one's own labels on the items a
  rule voted on and no human labelled (:func:`covered_accuracy`; a tie counts 1/C).

A second session runs the same annotator with the rules on from the start (added as
``python`` rules before its first action, :class:`RulesOn`) to ``--session-budget`` actions
(default 10): there its groups, suggestions and review queues come from the model with the
rules, as for a person who writes rules first (``with_rules_session``).

Accuracy is over all N items: the human label where there is one, else the prediction
(no prediction: wrong). ``supervised_ceiling`` puts the budgets in scale: the session's
probe given the true label of every item, its cross-validated accuracy
(5-fold, :class:`~workbench.learn.LinearProbe`) on the vectors alone and on the
vectors beside one "fired" column per rule; its ``at_50`` is the first with the 50-action
human labels counted right, i.e. what a perfect model of these vectors would score in the
``without_rules`` column at 50 actions. Rules are flagged as a person sees them in
``wb.rule_analysis()["flagged"]`` (:func:`workbench.rules.analysis.rule_flags`), checked
to agree with :func:`workbench.learn.label_model.check_rules` at each budget; reported for
the random rule and for the fixed set. Medians over ``--seeds``.

    .venv/bin/python benchmarks/weak_supervision.py --dataset subjectivity
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import label_efficiency
from _data import add_data_arguments, load_from_args, read_subjectivity
from label_efficiency import at_budget, run_policy

from workbench import Workbench
from workbench._config import RULES_MIN_CONFIDENCE
from workbench.learn import LabelSpreader
from workbench.learn.label_model import check_rules, fit_label_model
from workbench.learn.pipeline import fit_models, fit_rules_probe
from workbench.rules import rule_stats

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = (0, 10, 25, 50)
RANDOM_COVERAGE = 0.3

#: The built-in rules for subjectivity, each with where it came from.
RULES = [
    # Reviews speak in the first person and address the reader; plot summaries do not.
    {"kind": "keywords", "label": "subjective", "case": False, "whole_word": True,
     "words": ["i", "i'm", "i've", "me", "my", "we", "us", "our", "you", "your", "you'll",
               "you're"]},
    # Praise: the critic's stock adjectives.
    {"kind": "keywords", "label": "subjective", "case": False, "whole_word": True,
     "words": ["brilliant", "wonderful", "funny", "hilarious", "charming", "delightful",
               "entertaining", "enjoyable", "masterpiece", "beautifully", "engaging",
               "compelling", "witty", "clever", "fascinating", "terrific", "superb"]},
    # Pans: the critic's stock complaints.
    {"kind": "keywords", "label": "subjective", "case": False, "whole_word": True,
     "words": ["boring", "dull", "tedious", "mess", "bad", "worst", "stupid", "pointless",
               "lame", "pretentious", "predictable", "tiresome", "clumsy", "silly", "bland",
               "disappointing"]},
    # A review judges the film as a made thing: its makers, its cast, its script, its viewers.
    {"kind": "keywords", "label": "subjective", "case": False, "whole_word": True,
     "words": ["movie", "director", "performances", "performance", "screenplay", "script",
               "audience", "audiences", "viewers", "filmmaker", "filmmakers", "cinematic",
               "acting", "cast"]},
    # Hedges and intensifiers: opinion words ("too long", "quite good", "simply", "enough").
    {"kind": "keywords", "label": "subjective", "case": False, "whole_word": True,
     "words": ["too", "really", "quite", "rather", "pretty", "simply", "enough", "most",
               "ever", "better", "best"]},
    # Exclamations and rhetorical questions belong to reviews. (Measured after the run, not
    # changed: 0.49 precision on this corpus, plot summaries ask questions too, "will he
    # escape?"; the flag catches it at 50 actions.)
    {"kind": "regex", "label": "subjective", "case": False, "pattern": r"[!?]"},
    # Contractions and "it's"/"there's": a spoken, reviewing voice.
    {"kind": "regex", "label": "subjective", "case": False,
     "pattern": r"\b(?:it's|there's|that's|isn't|doesn't|don't|can't|won't)\b"},
    # Verdict phrases: "worth seeing", "fans of", "feels like", "kind of".
    {"kind": "regex", "label": "subjective", "case": False,
     "pattern": r"\b(?:worth|fans? of|feels? like|kind of|sort of|at least)\b"},
    # Plot summaries narrate in the third person.
    {"kind": "keywords", "label": "objective", "case": False, "whole_word": True,
     "words": ["he", "she", "his", "her", "him", "himself", "herself", "they", "their"]},
    # Plot verbs: what a character does next.
    {"kind": "keywords", "label": "objective", "case": False, "whole_word": True,
     "words": ["discovers", "finds", "decides", "meets", "learns", "tries", "becomes",
               "must", "begins", "falls", "returns", "lives", "leaves", "kills", "travels",
               "agrees", "realizes", "arrives", "escape", "plans"]},
    # Family and relations: who the characters are to each other.
    {"kind": "keywords", "label": "objective", "case": False, "whole_word": True,
     "words": ["father", "mother", "wife", "husband", "son", "daughter", "brother", "sister",
               "family", "boyfriend", "girlfriend", "uncle", "aunt", "parents", "friends"]},
    # Setting: places and times of a story.
    {"kind": "keywords", "label": "objective", "case": False, "whole_word": True,
     "words": ["years", "year", "town", "city", "village", "school", "york", "war", "home",
               "police", "team", "job", "house", "night"]},
    # Narration's time connectives: "when", "after", "until", "while", "soon".
    {"kind": "keywords", "label": "objective", "case": False, "whole_word": True,
     "words": ["when", "after", "until", "while", "soon", "then", "later", "meanwhile"]},
    # Ages and dates: "a 16-year-old", "in 1944", "the 1950s".
    {"kind": "regex", "label": "objective", "case": False,
     "pattern": r"\b\d+(?:-year-old|s)?\b|year-old"},
]


def evaluate_rules(rules: list[dict], texts: list[str], class_of: dict[str, int]) -> np.ndarray:
    """(N, R) int64 votes: ``class_of[rule["label"]]`` where the rule matches, else -1."""
    votes = np.full((len(texts), len(rules)), -1, np.int64)
    for j, rule in enumerate(rules):
        if rule["label"] not in class_of:
            raise SystemExit(f"rule {j} votes {rule['label']!r}, not a class of this data "
                             f"set ({sorted(class_of)}); fix its label")
        flags = 0 if rule.get("case", False) else re.IGNORECASE
        if rule["kind"] == "keywords":
            words = "|".join(re.escape(w) for w in rule["words"])
            pattern = (rf"(?<![\w'])(?:{words})(?![\w'])" if rule.get("whole_word", True)
                       else f"(?:{words})")
        elif rule["kind"] == "regex":
            pattern = rule["pattern"]
        else:
            raise SystemExit(f"rule {j}: kind {rule['kind']!r} is not evaluated here "
                             "(keywords, regex)")
        rx = re.compile(pattern, flags)
        hit = np.fromiter((rx.search(t) is not None for t in texts), bool, len(texts))
        votes[hit, j] = class_of[rule["label"]]
    return votes


def supervised_ceiling(x: np.ndarray, y: np.ndarray, votes: np.ndarray,
                       folds: int = 5) -> dict:
    """The probe's accuracy with every true label (see the module docstring): ``folds``-fold,
    each fold predicted by the probe fitted on the others' true labels; on the vectors, and
    on the vectors beside the rules' fired columns."""
    from workbench.learn import LinearProbe

    part = np.random.default_rng(0).permutation(y.size) % folds
    out = {}
    for name, feats in (("probe", x),
                        ("probe_with_rule_features",
                         np.hstack([x, (votes >= 0).astype(x.dtype)]))):
        right = 0
        for f in range(folds):
            probe = LinearProbe().fit(feats, np.where(part == f, -1, y))
            right += int((probe.predict(feats[part == f]) == y[part == f]).sum())
        out[name] = right / y.size
    return out


def majority(votes: np.ndarray, c: int) -> np.ndarray:
    """(N, C) one-hot majority votes (ties and no votes: uniform, i.e. abstain)."""
    counts = np.stack([(votes == k).sum(axis=1) for k in range(c)], axis=1).astype(float)
    top = counts.max(axis=1, keepdims=True)
    win = (counts == top) & (top > 0)
    out = np.full(counts.shape, 1.0 / c)
    one = win.sum(axis=1) == 1
    out[one] = win[one]
    return out


def snorkel_proba(votes: np.ndarray, c: int, seed: int) -> np.ndarray:
    from snorkel.labeling.model import LabelModel

    lm = LabelModel(cardinality=c, verbose=False)
    lm.fit(L_train=votes, n_epochs=500, log_freq=500, seed=seed, progress_bar=False)
    return lm.predict_proba(votes)


def covered_accuracy(proba: np.ndarray, free: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a label model's own labels on ``free`` items (a rule voted, no human
    label): its most probable class against the truth, a tie split evenly among the tied
    classes (majority vote's abstain counts as a coin flip, not as wrong)."""
    p = proba[free]
    top = np.isclose(p, p.max(axis=1, keepdims=True), rtol=0, atol=1e-9)
    return float((top[np.arange(p.shape[0]), y[free]] / top.sum(axis=1)).mean())


def probe_after(proba: np.ndarray, covered: np.ndarray, human: np.ndarray, x: np.ndarray,
                y: np.ndarray) -> float:
    """Accuracy of the probe trained on the human labels plus the method's confident labels,
    fitted as the session fits its rules' probe (:func:`fit_rules_probe`: L2 chosen on the
    human labels), so the methods differ only in their labels."""
    conf = proba.max(axis=1)
    sure = (human < 0) & covered & (conf >= RULES_MIN_CONFIDENCE)
    train = np.where(sure, proba.argmax(axis=1), human).astype(np.int64)
    state = fit_rules_probe(train, human, x, None)
    if state.probe is None:
        return float((human == y).mean())
    pred = np.where(human >= 0, human, state.probe.label)
    return float((pred == y).mean())


class RulesOn:
    """Stands in for :class:`Workbench` in ``label_efficiency.run_policy``: the same
    session, with the rules added (as ``python`` rules returning each rule's matches) before
    the annotator's first action, so its groups, suggestions and review queues come from the
    model with the rules, as a person who wrote rules first would see."""

    def __init__(self, votes: np.ndarray) -> None:
        self.votes = votes

    def create(self, *args, **kwargs) -> Workbench:
        wb = Workbench.create(*args, **kwargs)
        for j in range(self.votes.shape[1]):
            hit = self.votes[:, j] >= 0
            wb.add_rule("python", str(int(self.votes[hit, j][0])), name=f"rule {j}",
                        fn=lambda items, hit=hit: hit)
        return wb


def session_with_rules(x, y, votes, seed: int, args) -> dict:
    """The §1 annotator in a session with the rules on, to ``args.session_budget`` actions:
    its accuracy there and the session's own ``rule_analysis()["flagged"]`` rules."""
    got: dict = {}

    def capture(wb, me, point):
        got["flagged"] = [int(j) for j in
                          np.flatnonzero(wb.rule_analysis()["flagged"].to_numpy())]
        got["human_labels"] = point["human_labels"]

    label_efficiency.Workbench = RulesOn(votes)
    try:
        curve, _ = run_policy(x, y, seed=seed, max_actions=args.session_budget,
                              unanimous=args.unanimous, review_every=args.review_every,
                              log=lambda m: print(m, flush=True), on_action=capture)
    finally:
        label_efficiency.Workbench = Workbench
    return {"accuracy": at_budget(curve, args.session_budget)["accuracy"], **got}


def workbench_accuracy(human: np.ndarray, y: np.ndarray, session: dict,
                       rules: np.ndarray | None) -> float | None:
    spreader = LabelSpreader(session["graph"])
    mg = session["map_graph"]
    pair = (mg, LabelSpreader(mg)) if mg is not None else None
    state = fit_models(human, vectors=session["x"], graph=session["graph"], spreader=spreader,
                       map_models=lambda: pair, groups=session["groups"], rules=rules)
    if state.combined is None:
        return None if not (human >= 0).any() else float((human == y).mean())
    pred = np.where(human >= 0, human, state.combined.label)
    return float((pred == y).mean())


def one_seed(x, y, votes, seed: int, args) -> dict:
    c = int(y.max()) + 1
    snaps: dict[int, np.ndarray] = {}
    session: dict = {"x": x}

    def capture(wb, me, point):
        snaps[point["actions"]] = me.human()
        if "graph" not in session:
            session["graph"] = wb.graph
            session["groups"] = wb._cluster_ids()  # the session's proposed clusters
        session["map_graph"] = wb.map_graph
        return None

    curve, _ = run_policy(x, y, seed=seed, max_actions=max(args.budgets),
                          unanimous=args.unanimous, review_every=args.review_every,
                          log=lambda m: print(m, flush=True), on_action=capture)
    rng = np.random.default_rng(10_000 + seed)
    rand = np.where(rng.random(y.size) < RANDOM_COVERAGE, rng.integers(0, c, y.size), -1)
    with_rand = np.column_stack([votes, rand])
    snorkel = snorkel_proba(votes, c, seed)
    maj = majority(votes, c)
    covered = (votes >= 0).any(axis=1)
    out: dict = {}
    if args.session_budget:
        t0 = time.perf_counter()
        out["session_with_rules"] = session_with_rules(x, y, votes, seed, args)
        print(f"  seed {seed}: annotator with the rules on, {args.session_budget} actions: "
              f"{out['session_with_rules']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for b in args.budgets:
        point = at_budget(curve, b)
        human = snaps[point["actions"]] if b > 0 and point["actions"] else np.full(y.size, -1)
        t0 = time.perf_counter()
        lm = fit_label_model(votes, human)
        lm_proba = np.zeros((y.size, c))
        lm_proba[:, lm.classes] = lm.proba
        row = {
            "human_labels": int((human >= 0).sum()),
            "session_accuracy": point.get("accuracy") if b > 0 else None,
            "without_rules": workbench_accuracy(human, y, session, None),
            "with_rules": workbench_accuracy(human, y, session, votes),
            "with_random_rule": workbench_accuracy(human, y, session, with_rand),
            "label_model": probe_after(lm_proba, covered, human, x, y),
            "snorkel": probe_after(snorkel, covered, human, x, y),
            "majority": probe_after(maj, covered, human, x, y),
            "label_model_alone": float((np.where(human >= 0, human, lm.label) == y).mean()),
            **{f"{k}_covered": covered_accuracy(p, covered & (human < 0), y)
               for k, p in (("label_model", lm_proba), ("snorkel", snorkel),
                            ("majority", maj))},
        }
        # The flag a person sees (the session's rule_analysis table), and check_rules's,
        # which follows the same rule (workbench.rules.rule_flags): they must agree.
        rule_class = np.array([int(with_rand[with_rand[:, j] >= 0, j][0])
                               for j in range(with_rand.shape[1])])
        table = rule_stats(with_rand, np.ones(with_rand.shape[1], bool), rule_class, human)
        flagged = table["flagged"].to_numpy()
        check = check_rules(with_rand, human, groups=session["groups"])
        if b > 0 and not np.array_equal(flagged, check.flagged):
            raise SystemExit(f"rule_analysis flags {np.flatnonzero(flagged).tolist()} but "
                             f"check_rules flags {np.flatnonzero(check.flagged).tolist()}")
        row["random_rule_flagged"] = bool(flagged[-1])
        row["random_rule_lift_z"] = float(check.lift_z[-1])
        row["rules_flagged"] = [int(j) for j in np.flatnonzero(flagged[:-1])]
        row["seconds"] = time.perf_counter() - t0
        out[str(b)] = row
        print(f"  seed {seed} @{b}: " + "  ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
            if k != "rules_flagged"), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--rules", type=Path, default=None, help="rule set JSON")
    parser.add_argument("--texts", type=Path, default=None,
                        help="one text per line, aligned with --vectors (other data)")
    parser.add_argument("--seeds", type=int, default=3, help="repeats (medians reported)")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--unanimous", type=int, default=11, help="as in label_efficiency.py")
    parser.add_argument("--review-every", type=int, default=4,
                        help="as in label_efficiency.py")
    parser.add_argument("--session-budget", type=int, default=10,
                        help="actions of the annotator in a session with the rules on (0: "
                             "skip that arm)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 seed, budgets 0 and 10, 2 actions with rules on")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budgets, args.session_budget = 1, [0, 10], 2
    if args.dataset is None and args.vectors is None:
        args.dataset = "subjectivity"
    name, x, y = load_from_args(args)
    if name == "subjectivity":
        texts, y_text = read_subjectivity()
        if not np.array_equal(y_text, y):
            raise SystemExit("the subjectivity texts and vectors are not aligned")
        class_of = {"objective": 0, "subjective": 1}
    elif args.texts is not None:
        texts = args.texts.read_text().splitlines()
        raw = np.unique(np.load(args.labels))
        class_of = {str(v): i for i, v in enumerate(raw)}
    else:
        raise SystemExit("rules need texts: --dataset subjectivity, or --texts FILE")
    rules = json.loads(args.rules.read_text()) if args.rules else RULES
    votes = evaluate_rules(rules, texts, class_of)
    fired = votes >= 0
    print(f"{name}: N={y.size} rules={len(rules)} covered={fired.any(axis=1).mean():.3f} "
          f"budgets={args.budgets} seeds={args.seeds}", flush=True)
    for j in range(len(rules)):  # reported, not used to choose the rules
        at = fired[:, j]
        print(f"  rule {j:2d} {rules[j]['label']:>11}: coverage {at.mean():.3f} "
              f"precision {(votes[at, j] == y[at]).mean() if at.any() else float('nan'):.3f}")
    t0 = time.perf_counter()
    ceiling = supervised_ceiling(x, y, votes)
    print(f"the probe with every true label (cross-validated): {ceiling['probe']:.4f}; "
          f"with the rules' fired columns beside the vectors: "
          f"{ceiling['probe_with_rule_features']:.4f}", flush=True)
    runs = [one_seed(x, y, votes, seed, args) for seed in range(args.seeds)]

    def med(key: str, b: int):
        vals = [r[str(b)][key] for r in runs if r[str(b)].get(key) is not None]
        return float(np.median(vals)) if vals else None

    arms = ("without_rules", "with_rules", "with_random_rule", "label_model", "snorkel",
            "majority")
    covered = ("label_model_covered", "snorkel_covered", "majority_covered")
    keys = (*arms, "label_model_alone", "session_accuracy", "human_labels", *covered)
    table = {str(b): {k: med(k, b) for k in keys} for b in args.budgets}
    shown = [k for k in keys if k not in ("session_accuracy", "human_labels")]
    print(f"\n{'actions':>7} {'labels':>6} " + " ".join(f"{k[:12]:>12}" for k in shown))
    for b, r in table.items():
        print(f"{b:>7} {r['human_labels'] or 0:6.0f} " + " ".join(
            f"{r[k]:12.4f}" if r[k] is not None else f"{'-':>12}" for k in shown))
    flagged = [r[str(b)]["random_rule_flagged"] for r in runs for b in args.budgets if b > 0]
    drops = [r[str(b)]["with_rules"] - r[str(b)]["with_random_rule"]
             for r in runs for b in args.budgets]
    gains = [r[str(b)]["with_rules"] - r[str(b)]["without_rules"]
             for r in runs for b in args.budgets if r[str(b)]["without_rules"] is not None]
    correct_flagged = {b: [len(r[str(b)]["rules_flagged"]) for r in runs]
                       for b in map(str, args.budgets) if b != "0"}
    session = [r["session_with_rules"] for r in runs if "session_with_rules" in r]
    headline = {
        "benchmark": "weak_supervision", "dataset": name,
        **{k: {b: table[b][k] for b in table} for k in (*arms, *covered)},
        "random_rule_flagged": bool(flagged) and all(flagged),
        "random_rule_drop": float(np.median(drops)),
    }
    if 50 in args.budgets:  # a perfect model of the vectors, human labels counted right
        share = float(np.median([r["50"]["human_labels"] for r in runs])) / y.size
        ceiling["at_50"] = share + (1 - share) * ceiling["probe"]
    headline["supervised_ceiling"] = ceiling
    if session:
        headline["with_rules_session"] = {
            str(args.session_budget): float(np.median([s["accuracy"] for s in session]))}
        print(f"annotator with the rules on, {args.session_budget} actions: "
              f"{headline['with_rules_session']} (per seed "
              f"{[round(s['accuracy'], 4) for s in session]})")
    print(f"with rules minus without, worst over seeds and budgets: "
          f"{min(gains) * 100 if gains else float('nan'):.2f} points; rules of the set "
          f"flagged per seed: {correct_flagged}")
    print(f"random rule flagged at every budget > 0 of every seed: "
          f"{headline['random_rule_flagged']} ({sum(flagged)}/{len(flagged)}); accuracy drop "
          f"median {np.median(drops) * 100:.2f} points, worst {max(drops) * 100:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"weak_supervision_{name}.json").write_text(json.dumps({
        **headline, "table": table, "runs": runs, "seeds": args.seeds, "rules": rules,
        "random_rule_drop_max": float(max(drops)),
        "with_minus_without_min": float(min(gains)) if gains else None,
        "rules_flagged_count": correct_flagged,
        "rule_coverage": fired.mean(axis=0).tolist(), "seconds": time.perf_counter() - t0,
    }, indent=1))
    print(json.dumps(headline))
    return headline


if __name__ == "__main__":
    main()
