"""Adjudication (issue 15): an adjudicator's decision is logged with source "adjudicated",
is the item's final label (human layer, consensus, training labels), is not an annotation,
and is undone like any action; in the widget, labelling from the disagreements queue is
adjudicating. And the map's "agreement" colour mode."""

from __future__ import annotations

import shutil
import sqlite3

import comm
import numpy as np
import polars as pl
import pytest
from _comm import RecordingComm, browser_says

from workbench.labels import LabelStore
from workbench.learn.consensus import consensus

IDS = [f"item{k}" for k in range(10)]


def logged(path, source):
    """[(item id, class name)] of the assigns with ``source`` in the SQLite log, in order."""
    con = sqlite3.connect(path)
    try:
        names = dict(con.execute("SELECT class_id, name FROM actions "
                                 "WHERE kind = 'create_class'"))
        rows = con.execute(
            "SELECT i.item_id, a.class_id FROM actions a JOIN items i ON i.action_id = a.id "
            "WHERE a.kind = 'assign' AND a.source = ? ORDER BY a.id, i.item_id", (source,))
        return [(item, names[cid]) for item, cid in rows]
    finally:
        con.close()


def sources(store):
    return store.table()["label_source"].to_list()


# -- the log --------------------------------------------------------------------------------


def test_an_adjudication_is_final_not_an_annotation_and_undone_like_any_action(tmp_path):
    path = tmp_path / "labels.sqlite"
    a = LabelStore(path, IDS, annotator="a")
    b = LabelStore(path, IDS, annotator="b")
    judge = LabelStore(path, IDS, annotator="judge")
    a.assign([0, 1], "cat")
    b.refresh()
    b.assign([0, 1], "dog")
    judge.refresh()
    cat, dog = judge.class_id("cat"), judge.class_id("dog")
    with pytest.raises(ValueError, match="adjudicated labels carry no confidence"):
        judge.assign([0], "cat", source="adjudicated", confidence=[0.9])
    judge.assign([0], "cat", source="adjudicated")  # no confidence needed
    assert logged(path, "adjudicated") == [("item0", "cat")]
    assert judge.state.human[:2].tolist() == [cat, dog]  # 1: the last writer, b
    assert judge.state.adjudicated[:2].tolist() == [cat, -1]
    table = judge.table()
    assert sources(judge)[:3] == ["adjudicated", "human", None]
    assert table["annotator"].to_list()[:2] == ["judge", "b"]
    assert table["confidence"].to_list()[0] == 1.0
    # not an annotation: the annotators are a and b only, with their own labels
    names, ann = judge.annotations()
    assert names == ["a", "b"]
    assert ann[:2].tolist() == [[cat, dog], [cat, dog]]
    # final: an annotator writing after it changes their annotation, not the label
    a.refresh()
    a.assign([0], "dog")
    judge.refresh()
    assert judge.state.human[0] == cat and sources(judge)[0] == "adjudicated"
    assert judge.annotations()[1][0].tolist() == [dog, dog]
    a.remove([0])  # nor does an annotator's removal
    judge.refresh()
    assert judge.state.human[0] == cat
    assert judge.annotations()[1][0].tolist() == [-1, dog]
    a.undo()  # a's undo takes back a's removal only
    judge.refresh()
    assert judge.annotations()[1][0].tolist() == [dog, dog]
    assert judge.state.adjudicated[0] == cat
    # the adjudicator's undo takes the decision back: the annotators' latest label shows
    assert judge.undo()
    assert judge.state.human[0] == dog and judge.state.adjudicated[0] == -1
    assert sources(judge)[0] == "human" and judge.table()["annotator"][0] == "a"
    assert judge.redo()
    assert judge.state.human[0] == cat and sources(judge)[0] == "adjudicated"
    # a replay of the log (another process, a restart) gives the same
    again = LabelStore(path, IDS, annotator="c")
    np.testing.assert_array_equal(again.state.human, judge.state.human)
    np.testing.assert_array_equal(again.state.adjudicated, judge.state.adjudicated)
    assert again.table().equals(judge.table())
    # a merge moves adjudicated labels like the others
    judge.merge_classes(["cat"], "dog")
    assert judge.state.adjudicated[0] == dog and judge.state.human[0] == dog
    assert judge.undo()
    # taking an adjudication off (source "adjudicated") leaves the annotators' label
    judge.remove([0], source="adjudicated")
    assert judge.state.adjudicated[0] == -1 and judge.state.human[0] == dog
    assert sources(judge)[0] == "human"
    for s in (a, b, judge, again):
        s.close()


def test_effective_labels_name_the_adjudicated_source(tmp_path):
    from workbench.labels import effective_labels

    store = LabelStore(tmp_path / "l.sqlite", IDS, annotator="judge")
    store.assign([0, 1], "x")
    store.assign([1, 2], "y", source="adjudicated")
    store.assign([3], "y", source="probe", confidence=[0.8])
    eff = effective_labels(store.state)
    assert eff.source[:5].tolist() == ["human", "adjudicated", "adjudicated", "probe", None]
    assert eff.layer[:3].tolist() == [1, 1, 1]  # all human
    store.close()


# -- the consensus --------------------------------------------------------------------------


def test_consensus_takes_final_labels_as_known_and_learns_from_them():
    # Two annotators who disagree on every item: alone, nothing tells them apart. Final
    # labels on a few items, all agreeing with annotator 0, make annotator 0 the one to
    # believe on the rest, and the final items' consensus is the decision, quality 1.
    rng = np.random.default_rng(0)
    a0 = rng.integers(0, 2, 40)
    labels = np.stack([a0, 1 - a0], axis=1)
    alone = consensus(labels, n_classes=2)
    assert abs(alone.annotator_quality[0] - alone.annotator_quality[1]) < 1e-6
    final = np.full(40, -1)
    final[:10] = a0[:10]
    final[10] = 1 - a0[10]  # an adjudicator may overrule the better annotator too
    out = consensus(labels, n_classes=2, final=final)
    assert out.annotator_quality[0] > 0.8 > 0.2 > out.annotator_quality[1]
    np.testing.assert_array_equal(out.label[11:], a0[11:])
    np.testing.assert_array_equal(out.label[:11], final[:11])
    np.testing.assert_array_equal(out.quality[:11], 1.0)
    assert not out.flagged[:11].any()
    np.testing.assert_array_equal(out.agreement[:11], 0.5)  # one of the two agreed
    # a decided item nobody labelled still has its consensus
    lab = np.array([[0, 1], [-1, -1], [1, 1]])
    got = consensus(lab, n_classes=2, final=np.array([-1, 1, -1]))
    assert got.label.tolist()[1] == 1 and got.quality[1] == 1.0
    assert np.isnan(got.agreement[1]) and got.n_annotations[1] == 0
    with pytest.raises(ValueError, match="final must be"):
        consensus(lab, n_classes=2, final=np.array([0, 1]))
    with pytest.raises(ValueError, match="final must be"):
        consensus(lab, n_classes=2, final=np.array([0, 2, -1]))


def test_a_session_adjudication_is_the_consensus_and_what_the_models_learn(tmp_path):
    from workbench import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    ann = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    bob = Workbench.open(folder, background=False, layout="quick", annotator="bob")
    judge = Workbench.open(folder, background=False, layout="quick", annotator="judge")
    y = np.array([int(v) for v in ann.items["truth"]])
    zeros, ones = np.flatnonzero(y == 0)[:30], np.flatnonzero(y == 1)[:30]
    ann.labels.assign_many([(zeros, "zero"), (ones, "one")])
    bob.labels.assign_many([(zeros, "zero"), (ones[:20], "one"), (ones[20:], "zero")])
    judge.refresh()
    disputed = ones[20:]
    # the judge overrules both annotators on one undisputed item, sides with ann elsewhere
    judge.adjudicate(disputed, "one")
    judge.adjudicate([zeros[0]], "one")
    ann.refresh()
    table = ann.consensus()
    assert "adjudicated" in table.columns
    rows = table[np.concatenate([disputed, zeros[:1]]).tolist()]
    assert rows["consensus"].to_list() == ["one"] * 11
    assert rows["quality"].to_list() == [1.0] * 11
    assert rows["adjudicated"].all() and not rows["flagged"].any()
    assert rows["agreement"].to_list() == [0.5] * 10 + [0.0]
    assert table["adjudicated"].sum() == 11
    one, zero = ann.labels.class_id("one"), ann.labels.class_id("zero")
    train = ann._training_labels()
    assert (train[disputed] == one).all() and train[zeros[0]] == one
    assert (train[zeros[1:]] == zero).all()
    # not annotations: the judge is no annotator
    assert set(ann.annotations()["annotator"].to_list()) == {"ann", "bob"}
    assert list(ann.annotator_quality()) == ["ann", "bob"]
    labels = ann.labels.table()
    assert labels["label_source"][int(zeros[0])] == "adjudicated"
    assert labels["annotator"][int(zeros[0])] == "judge"
    # an item decided needs no more annotations
    bob.annotations_per_item = 2
    only_ann = np.flatnonzero(y == 2)[:3]
    ann.labels.assign(only_ann, "two")
    bob.refresh()
    assert (bob._queue_labels()[only_ann] == -1).all()  # they still need bob's label
    judge.refresh()
    judge.adjudicate(only_ann[:1], "two")
    bob.refresh()
    assert bob._queue_labels()[only_ann].tolist()[0] >= 0
    assert (bob._queue_labels()[only_ann[1:]] == -1).all()
    # the judge's undo takes back the newest decision only
    assert judge.undo()
    ann.refresh()
    assert ann.consensus()["adjudicated"].sum() == 11
    assert judge.undo()
    ann.refresh()
    after = ann.consensus()
    assert after["adjudicated"].sum() == 10
    assert after["consensus"][int(zeros[0])] == "zero"
    assert ann._training_labels()[zeros[0]] == zero
    for s in (ann, bob, judge):
        s.close()


# -- the widget -----------------------------------------------------------------------------


@pytest.fixture
def team(demo_folder, tmp_path, monkeypatch):
    """An app over ann's session, on a project where ann and bob disagree on 12 ones."""
    from workbench import Workbench
    from workbench.widgets import WorkbenchApp

    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    folder = tmp_path / "digits"
    shutil.copytree(demo_folder, folder)
    wb = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    y = np.array([int(v) for v in wb.items["truth"]])
    zeros, ones = np.flatnonzero(y == 0)[:30], np.flatnonzero(y == 1)[:30]
    wb.labels.assign_many([(zeros, "zero"), (ones, "one")])
    other = Workbench.open(folder, background=False, layout="quick", annotator="bob")
    other.labels.assign_many([(zeros[:20], "zero"), (ones[:12], "zero")])
    other.close()
    wb.refresh()
    app = WorkbenchApp(wb)
    yield app, zeros, ones
    app.close()
    wb.close()


def test_labelling_from_the_disagreements_queue_adjudicates(team):
    app, zeros, ones = team
    wb = app.session
    db = wb.project.path / "labels.sqlite"
    ids = wb.items["id"].to_list()
    app.panel.queue_disagreements.click()
    picked = app.selection.copy()
    assert set(picked) == set(ones[:12])
    assert app.controls.adjudicating
    assert "adjudicator's decision" in app.gallery.title
    # key 2 is "one" (classes in creation order: zero, one): a decision, not a label
    human_before = len(logged(db, "human"))
    browser_says(app.map, {"type": "label_key", "key": 2})
    assert sorted(logged(db, "adjudicated")) == sorted((ids[i], "one") for i in picked)
    assert len(logged(db, "human")) == human_before
    table = wb.consensus()
    assert table["adjudicated"].to_numpy()[picked].all()
    assert set(table["consensus"].to_numpy()[picked]) == {"one"}
    app.panel.queue_disagreements.click()  # decided items leave the queue
    assert app.selection.size == 0 and app.gallery.title == "Disagreements: none"
    # one undo (a key in the map) takes the whole decision back
    browser_says(app.map, {"type": "undo"})
    assert not wb.consensus()["adjudicated"].any()
    app.panel.queue_disagreements.click()
    assert set(app.selection) == set(ones[:12])
    # dropping a card keeps the queue; a card's class is then a decision too
    browser_says(app.gallery, {"type": "drop", "index": int(ones[0])})
    assert app.controls.adjudicating and app.gallery.title.startswith("Disagreements")
    zero_slot = next(c["slot"] for c in app.map.classes if c["name"] == "zero")
    browser_says(app.gallery, {"type": "relabel", "index": int(ones[1]), "slot": zero_slot})
    assert logged(db, "adjudicated")[-1] == (ids[ones[1]], "zero")
    assert wb.consensus()["consensus"][int(ones[1])] == "zero"
    # any other selection ends adjudicating: a lasso and a key are an annotation again
    app.selection = [int(zeros[25])]
    assert not app.controls.adjudicating
    browser_says(app.map, {"type": "label_key", "key": 2})
    assert logged(db, "human")[-1] == (ids[zeros[25]], "one")
    assert logged(db, "adjudicated")[-1] == (ids[ones[1]], "zero")


def test_the_map_colours_by_agreement(team):
    from workbench.widgets._view_model import agreement_codes

    app, zeros, ones = team
    wb = app.session
    np.testing.assert_array_equal(agreement_codes([np.nan, 0.0, 0.5, 1.0, 1 / 3]),
                                  [0, 1, 128, 255, 86])
    assert app.map.codes("agreement").max() == 0  # computed only when asked
    app.color_by = "agreement"
    app.wait()
    codes = app.map.codes("agreement")
    table = wb.consensus()
    np.testing.assert_array_equal(codes, agreement_codes(table["agreement"].to_numpy()))
    assert (codes[ones[:12]] == 128).all()  # one of two agree
    assert (codes[zeros[:20]] == 255).all() and (codes[ones[12:]] == 255).all()
    nobody = table["annotations"].to_numpy() == 0
    assert nobody.sum() > 1000 and (codes[nobody] == 0).all()  # grey, like no prediction
    # a new label recolours: bob now agrees on one of the disputed items
    from workbench import Workbench

    bob = Workbench.open(wb.project.path, background=False, layout="quick", annotator="bob")
    bob.labels.assign([int(ones[0])], "one")
    bob.close()
    wb.refresh()
    app.wait()
    assert app.map.codes("agreement")[ones[0]] == 255
    assert (app.map.codes("agreement")[ones[1:12]] == 128).all()
    assert wb.consensus().filter(pl.col("annotations") > 0).height == 60
