"""Several annotators: consensus labels, annotator quality, adjudication flags and agreement
figures, checked against the truth of simulated teams and against reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from workbench.learn.consensus import (
    cohen_kappa,
    consensus,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
)


def team(n=1500, c=4, accs=(0.55, 0.65, 0.75, 0.85, 0.95), coverage=0.5, seed=0):
    """Truth, (N, A) labels with class-dependent confusions, and the given accuracies."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    labels = np.full((n, len(accs)), -1, np.int64)
    for a, acc in enumerate(accs):
        # each annotator's mistakes on a class go mostly to one other class
        favourite = (np.arange(c) + 1 + rng.integers(0, c - 1, c)) % c
        seen = np.flatnonzero(rng.random(n) < coverage)
        out = y[seen].copy()
        wrong = rng.random(seen.size) > acc
        fav = rng.random(seen.size) < 0.8
        other = (y[seen] + 1 + rng.integers(0, c - 1, seen.size)) % c
        out[wrong] = np.where(fav, favourite[y[seen]], other)[wrong]
        labels[seen, a] = out
    return y, labels, np.asarray(accs)


def true_accuracy(y, labels):
    return np.array([(labels[labels[:, a] >= 0, a] == y[labels[:, a] >= 0]).mean()
                     for a in range(labels.shape[1])])


def test_consensus_beats_majority_and_ranks_annotators():
    y, labels, _ = team()
    has = (labels >= 0).any(axis=1)
    major = majority_vote(labels, 4)
    out = consensus(labels, n_classes=4)
    acc_major = (major[has] == y[has]).mean()
    acc_ours = (out.label[has] == y[has]).mean()
    assert acc_ours > acc_major + 0.03, (acc_ours, acc_major)
    rho = spearmanr(out.annotator_quality, true_accuracy(y, labels))[0]
    assert rho >= 0.9
    # annotator quality reads as an accuracy: within 0.05 of the truth for everyone
    np.testing.assert_allclose(out.annotator_quality, true_accuracy(y, labels), atol=0.05)
    # the confusion matrices found each annotator's diagonal
    diag = np.array([np.diag(m).mean() for m in out.confusion])
    assert spearmanr(diag, true_accuracy(y, labels))[0] >= 0.9
    # items without labels and without a model have no consensus
    assert (out.label[~has] == -1).all() and np.isnan(out.agreement[~has]).all()
    assert out.model_weight == 0.0


def test_quality_is_a_calibrated_chance_and_flags_hold_the_errors():
    y, labels, _ = team(n=3000, seed=1)
    out = consensus(labels, n_classes=4)
    has = out.n_annotations > 0
    wrong = out.label != y
    # quality reads as the chance of being right, in the large
    assert abs(out.quality[has].mean() - (~wrong[has]).mean()) < 0.03
    flagged, rest = out.flagged & has, ~out.flagged & has
    assert flagged.any() and rest.any()
    assert wrong[flagged].mean() >= 2 * wrong[rest].mean()


def test_a_good_model_is_weighed_in_and_a_useless_one_is_not():
    y, labels, _ = team(seed=2, coverage=0.3)
    has = (labels >= 0).any(axis=1)
    rng = np.random.default_rng(3)
    # a model right 90% of the time, with probabilities that say so
    guess = np.where(rng.random(y.size) < 0.9, y, rng.integers(0, 4, y.size))
    good = np.full((y.size, 4), 0.1 / 3)
    good[np.arange(y.size), guess] = 0.9
    alone = consensus(labels, n_classes=4)
    with_model = consensus(labels, good)
    assert with_model.model_weight > 0
    assert (with_model.label[has] == y[has]).mean() > (alone.label[has] == y[has]).mean() + 0.02
    # items nobody labelled take the model's answer
    assert (with_model.label[~has] == good[~has].argmax(axis=1)).all()
    noise = rng.dirichlet(np.ones(4), y.size)
    junk = consensus(labels, noise)
    assert junk.model_weight <= 0.25
    assert (junk.label[has] == y[has]).mean() >= (alone.label[has] == y[has]).mean() - 0.01


def test_agreement_figures_match_references():
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    _, labels, _ = team(n=800, seed=4)
    data = np.where(labels >= 0, labels, np.nan).T.astype(float)
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert krippendorff_alpha(labels, 4) == pytest.approx(ref, abs=1e-9)
    pairs = cohen_kappa(labels, 4)
    both = (labels[:, 0] >= 0) & (labels[:, 4] >= 0)
    assert pairs[0, 4] == pytest.approx(cohen_kappa_score(labels[both, 0], labels[both, 4]))
    assert np.allclose(pairs, pairs.T, equal_nan=True) and (np.diag(pairs) == 1).all()
    # Fleiss (1971) as in the textbook example: 10 subjects, 14 raters, kappa 0.210
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                       [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                       [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    table = np.array([np.repeat(np.arange(5), row) for row in counts])
    assert fleiss_kappa(table, 5) == pytest.approx(0.210, abs=5e-4)


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="N items, A annotators"):
        consensus(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="class columns"):
        consensus(np.array([[0, 5]]), n_classes=3)
    with pytest.raises(ValueError, match="model_proba must be"):
        consensus(np.array([[0, 1], [1, -1]]), np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="integer"):
        consensus(np.array([[0.5, 1.0]]))


def test_a_project_with_three_annotators_gives_consensus_and_their_quality(tmp_path):
    # Three people label overlapping parts of the digits demo, each in their own session
    # (their own annotator name, as three kernels would); the first session's consensus
    # uses all three plus its model, and ranks them by how often they are right.
    from workbench import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    rng = np.random.default_rng(0)
    accuracy = {"ann": 0.95, "bob": 0.8, "cy": 0.6}
    sessions = {}
    for name in accuracy:
        sessions[name] = Workbench.open(folder, background=False, layout="quick",
                                        annotator=name)
    first = sessions["ann"]
    y = np.array([int(v) for v in first.items["truth"]])
    for name, acc in accuracy.items():
        seen = np.flatnonzero(rng.random(y.size) < 0.5)
        said = np.where(rng.random(seen.size) < acc, y[seen],
                        (y[seen] + rng.integers(1, 10, seen.size)) % 10)
        sessions[name].labels.assign_many(
            [(seen[said == d], f"digit {d}") for d in range(10)])  # one action each
    first.refresh()  # picks up the others' labels and retrains
    table = first.consensus()
    quality = first.annotator_quality()
    assert list(quality) == ["ann", "bob", "cy"]
    assert quality["ann"] > quality["bob"] > quality["cy"]
    for name, acc in accuracy.items():
        assert abs(quality[name] - acc) < 0.06, quality
    labelled = table["annotations"].to_numpy() > 0
    right = table["consensus"].to_numpy() == np.array([f"digit {d}" for d in y])
    last_writer = first.current_labels()
    names = first.labels.classes
    last = np.array([names.get(int(c), "") for c in last_writer])
    assert right[labelled].mean() > 0.95
    assert right[labelled].mean() > (last == np.array([f"digit {d}" for d in y]))[labelled].mean()
    long = first.annotations()
    assert long.columns == ["id", "annotator", "label"]
    assert long.height == int((first.labels.annotations()[1] >= 0).sum())
    cy = long.filter(long["annotator"] == "cy")
    assert cy.height == int((first.labels.annotations()[1][:, 2] >= 0).sum())
    # one annotator's undo takes back their labels only
    names_before, ann_before = first.labels.annotations()
    assert sessions["bob"].labels.undo()
    first.labels.refresh()
    names_after, ann_after = first.labels.annotations()
    assert (ann_before[:, names_before.index("bob")] >= 0).any()
    assert names_after == ["ann", "cy"]  # bob has no labels left
    keep = [i for i, n in enumerate(names_before) if n != "bob"]
    np.testing.assert_array_equal(ann_after, ann_before[:, keep])
    for s in sessions.values():
        s.close()


def test_labels_of_another_session_arrive_live(tmp_path):
    # Two kernels on one project, two annotators: what one labels shows in the other within
    # two seconds, without a refresh (the map recolours on the "labels" event).
    import time

    from workbench import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    here = Workbench.open(folder, layout="quick", annotator="ann")
    there = Workbench.open(folder, layout="quick", annotator="bob", background=False)
    events = []
    here.subscribe(events.append)
    try:
        there.labels.assign([0, 1, 2], "digit 0")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5 and not (here.labels.state.human[:3] >= 0).all():
            time.sleep(0.05)
        seconds = time.monotonic() - t0
        assert (here.labels.state.human[:3] >= 0).all(), "the other session's labels never came"
        assert seconds < 2.0, f"took {seconds:.2f} s"
        assert "labels" in events
        assert here.labels.classes[int(here.labels.state.human[0])] == "digit 0"
    finally:
        here.close()
        there.close()


def test_models_learn_the_consensus_of_several_annotators(tmp_path):
    # Three annotators, two of whom agree on a disputed item: the models are trained on
    # their consensus, not on whoever wrote last.
    from workbench import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    people = {n: Workbench.open(folder, background=False, layout="quick", annotator=n)
              for n in ("ann", "bob", "cy")}
    y = np.array([int(v) for v in people["ann"].items["truth"]])
    first = np.flatnonzero(y == 0)[:40]
    ones = np.flatnonzero(y == 1)[:40]
    disputed = first[:5]
    for name in ("ann", "bob"):
        people[name].labels.assign_many([(first, "zero"), (ones, "one")])
    people["cy"].labels.assign_many([(disputed, "one")])  # wrong, and written last
    wb = people["ann"]
    wb.refresh()
    assert (wb.labels.state.human[disputed] == wb.labels.class_id("one")).all()  # last writer
    train = wb._training_labels()
    assert (train[disputed] == wb.labels.class_id("zero")).all()
    assert (train[ones] == wb.labels.class_id("one")).all()
    assert (wb.predictions.label[disputed] == wb.labels.class_id("zero")).all()
    # a single annotator's project trains on its human labels exactly
    for p in people.values():
        p.close()
    solo = Workbench.demo(tmp_path / "solo", background=False, layout="quick")
    solo.labels.assign_many([(first, "zero"), (ones, "one")])
    np.testing.assert_array_equal(solo._training_labels(), solo.labels.state.human)
    solo.close()


def test_a_team_export_carries_the_consensus(tmp_path):
    import polars as pl

    from workbench import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    a = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    b = Workbench.open(folder, background=False, layout="quick", annotator="bob")
    y = np.array([int(v) for v in a.items["truth"]])
    zeros, ones = np.flatnonzero(y == 0)[:30], np.flatnonzero(y == 1)[:30]
    a.labels.assign_many([(zeros, "zero"), (ones, "one")])
    b.labels.assign_many([(zeros[:20], "zero"), (ones[:10], "zero")])  # bob is wrong on 10
    a.refresh()
    out = pl.read_csv(a.export(tmp_path / "team.csv"))
    assert {"consensus", "consensus_quality", "annotations", "agreement"} <= set(out.columns)
    table = a.consensus().filter(pl.col("annotations") > 0)
    merged = out.join(table, on="id")
    assert (merged["consensus"] == merged["consensus_right"]).all()
    both = merged.filter(pl.col("annotations") == 2)
    assert both.height == 30 and set(both["agreement"].to_list()) <= {0.5, 1.0}
    # the same rows from the command line
    from workbench.cli import main

    a.close()
    b.close()
    assert main(["export", str(folder), str(tmp_path / "cli.csv")]) == 0
    assert pl.read_csv(tmp_path / "cli.csv").equals(out)


def test_two_annotations_per_item_serve_each_annotator_what_still_needs_them(tmp_path):
    from workbench import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    ann = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    assert ann.annotations_per_item == 1
    with pytest.raises(ValueError, match="whole number"):
        ann.annotations_per_item = 0
    ann.annotations_per_item = 2
    y = np.array([int(v) for v in ann.items["truth"]])
    rng = np.random.default_rng(0)
    mine = rng.choice(y.size, 600, replace=False)
    ann.labels.assign_many([(mine[y[mine] == d], f"digit {d}") for d in range(10)])
    ann.retrain()
    bob = Workbench.open(folder, background=False, layout="quick", annotator="bob")
    assert bob.annotations_per_item == 2  # a project setting, kept in workbench.json
    pages_bob = bob.suggestions(50)
    pages_ann = ann.suggestions(50)
    assert not np.isin(pages_ann, mine).any()  # never what ann labelled already
    assert np.isin(pages_bob, mine).any()  # ann's items still need bob's label
    bob.labels.assign_many([(pages_bob[y[pages_bob] == d], f"digit {d}") for d in range(10)])
    bob.refresh()
    again = bob.suggestions(50)
    assert not np.isin(again, pages_bob).any()  # never what bob labelled
    # with one annotation per item, labelled items are done for everyone
    bob.annotations_per_item = 1
    assert not np.isin(bob.suggestions(50), mine).any()
    ann.close()
    bob.close()


def test_session_agreement_figures_and_confusion_against_consensus(tmp_path):
    # Three annotators: ann and bob agree everywhere, cy calls every "digit 1" a "digit 0".
    # The figures match the module's functions, and cy's confusion row shows the mistake.
    from workbench import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    people = {n: Workbench.open(folder, background=False, layout="quick", annotator=n)
              for n in ("ann", "bob", "cy")}
    try:
        zeros, ones = np.arange(0, 10), np.arange(10, 20)
        for n, wb in people.items():
            wb.label(zeros, "digit 0")
            wb.label(ones, "digit 0" if n == "cy" else "digit 1")
        wb = people["ann"]
        wb.refresh()
        out = wb.agreement()
        _, cols, _, _ = wb._annotation_columns()
        assert out["fleiss_kappa"] == pytest.approx(fleiss_kappa(cols, 2))
        assert out["krippendorff_alpha"] == pytest.approx(krippendorff_alpha(cols, 2))
        kappa = {(a, b): k for a, b, _, k in out["cohen_kappa"].iter_rows()}
        assert kappa[("ann", "bob")] == pytest.approx(1.0)
        assert kappa[("ann", "cy")] == pytest.approx(0.0)
        confusion = {(a, t, g): k for a, t, g, k in out["confusion"].iter_rows()}
        assert confusion[("cy", "digit 1", "digit 0")] == 10
        assert confusion[("ann", "digit 1", "digit 1")] == 10
        assert ("ann", "digit 1", "digit 0") not in confusion
    finally:
        for wb in people.values():
            wb.close()
