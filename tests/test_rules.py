"""Rules as labellers in a session (issue 16): every kind on the digits demo and on a small
text project, votes checked against a direct computation, undo, reopening, two annotators,
the analysis checked against numpy, and bad rules that write nothing."""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import polars as pl
import pytest

import workbench._rules as rules_module
from workbench._config import RULE_CHECK_MIN_VOTES
from workbench.session import Workbench

W = Workbench
Z90 = 1.6448536269514722


@pytest.fixture
def wb(demo_folder, tmp_path):
    folder = tmp_path / "demo"
    shutil.copytree(demo_folder, folder)
    w = W.open(folder, background=False, layout="quick")
    yield w
    w.close()


def truth(wb) -> np.ndarray:
    return wb.items["truth"].cast(pl.Int64).to_numpy()


def column_of(wb, rule_id: int, enabled_only: bool = True) -> np.ndarray:
    ids, votes = wb.rule_votes(enabled_only=enabled_only)
    return votes[:, ids.tolist().index(rule_id)]


def test_every_kind_votes_where_it_should_on_the_digits(wb):
    y = truth(wb)
    names = [p.rsplit("/", 1)[-1] for p in wb.items["source"].to_list()]
    ids = wb.items["id"].to_list()
    # keywords over the item text (an image's file name), part of words and whole words
    part = wb.add_rule("keywords", "low", words=["001"], whole_word=False)
    whole = wb.add_rule("keywords", "low", words=["001"])
    cased = wb.add_rule("keywords", "img", words=["IMAGE"], column="kind", case=True)
    uncased = wb.add_rule("keywords", "img", words=["IMAGE"], column="kind")
    regex = wb.add_rule("regex", "low", pattern=r"/00[0-4]\d\.png$", column="id")
    seven = wb.add_rule("expression", "seven", expr=(pl.col("truth") == "7")
                        & (pl.col("folder") == "digits") & (pl.col("file_size") > 0))
    as_json = wb.add_rule("expression", "seven",
                          expr=(pl.col("file_name") == "0007.png").meta.serialize(format="json"))
    region = wb.add_rule("region", "seven", items=np.array([3, 5, 5, 9]))
    cluster = wb.add_rule("region", "two", cluster=1)
    py = wb.add_rule("python", "eight", fn=lambda t: (t["truth"] == "8").to_numpy())
    cls = wb.labels.classes
    cid = {name: c for c, name in cls.items()}
    expect = {
        part: np.array(["001" in n for n in names]),
        whole: np.zeros(wb.n, bool),
        cased: np.zeros(wb.n, bool),
        uncased: np.ones(wb.n, bool),
        regex: np.array([re.search(r"/00[0-4]\d\.png$", i) is not None for i in ids]),
        seven: y == 7,
        as_json: np.arange(wb.n) == 7,
        region: np.isin(np.arange(wb.n), [3, 5, 9]),
        cluster: np.isin(np.arange(wb.n), wb.clusters[1].members),
        py: y == 8,
    }
    label = {part: "low", whole: "low", cased: "img", uncased: "img", regex: "low",
             seven: "seven", as_json: "seven", region: "seven", cluster: "two", py: "eight"}
    rule_ids, votes = wb.rule_votes()
    assert rule_ids.tolist() == [*range(1, 10), -1]  # logged rules by id, then the session's
    assert votes.shape == (wb.n, 10) and votes.dtype == np.int64
    for r, mask in expect.items():
        assert mask.any() or r in (whole, cased)
        np.testing.assert_array_equal(column_of(wb, r), np.where(mask, cid[label[r]], -1),
                                      err_msg=f"rule {r}")
    assert 0 < expect[part].sum() < wb.n and 0 < expect[regex].sum() < wb.n
    table = wb.rules
    assert table["id"].to_list() == rule_ids.tolist()
    assert table["stored"].to_list() == [True] * 9 + [False]
    assert table["kind"].to_list()[-1] == "python"
    assert table["error"].null_count() == 10
    # the python rule is nowhere in the log; the others are, with their specs
    logged = [a for a in wb.labels.log.read() if a.kind == "add_rule"]
    assert [a.target for a in logged] == list(range(1, 10))
    assert all('"fn"' not in a.name for a in logged)


def test_rules_persist_across_reopen_the_python_rule_does_not(wb):
    folder = wb.project.path
    kw = wb.add_rule("keywords", "zero", words=["0000.png"], name="the first")
    region = wb.add_rule("region", "zero", items=["digits/0010.png", "digits/0020.png"])
    wb.add_rule("python", "zero", fn=lambda t: np.zeros(t.height, bool))
    before = wb.rules.filter(pl.col("stored"))
    wb.close()
    again = W.open(folder, background=False, layout="quick")
    try:
        assert again.rules.equals(before)
        assert again.rules["name"].to_list() == ["the first", "region of 2 items"]
        zero = again.labels.class_id("zero")
        assert np.flatnonzero(column_of(again, kw) == zero).tolist() == [0]
        assert np.flatnonzero(column_of(again, region) == zero).tolist() == [10, 20]
    finally:
        again.close()


def test_undo_of_add_edit_and_remove_and_enable(wb):
    events = []
    wb.subscribe(events.append)
    rid = wb.add_rule("expression", "seven", expr=pl.col("truth") == "7")
    assert "labels" in events  # views redraw; the models retrain
    y = truth(wb)
    wb.edit_rule(rid, expr=pl.col("truth") == "1", name="ones")
    assert (column_of(wb, rid) >= 0).sum() == (y == 1).sum()
    wb.enable_rule(rid, False)
    assert wb.rule_votes()[0].tolist() == []
    assert wb.rules["enabled"].to_list() == [False]
    assert wb.undo()  # the disable
    assert wb.rules["enabled"].to_list() == [True]
    assert wb.undo()  # the edit: the old spec votes again
    assert (column_of(wb, rid) >= 0).sum() == (y == 7).sum()
    assert wb.rules["name"].to_list() == ["where [(col(\"truth\")) == (\"7\")]"]
    wb.remove_rule(rid)
    assert wb.rules.height == 0
    assert wb.undo()  # the remove
    assert wb.rules["id"].to_list() == [rid]
    assert wb.undo()  # the add, with the class it created
    assert wb.rules.height == 0 and wb.labels.classes == {}
    assert wb.redo()
    assert (column_of(wb, rid) >= 0).sum() == (y == 7).sum()


def test_votes_are_cached_until_the_rules_or_classes_change(wb, monkeypatch):
    calls = []
    real = rules_module.rule_mask
    monkeypatch.setattr(rules_module, "rule_mask", lambda spec, *a, **k: (
        calls.append(spec["kind"]), real(spec, *a, **k))[1])
    rid = wb.add_rule("keywords", "low", words=["001"], whole_word=False)
    assert calls == ["keywords"]  # checked on the items before it was written
    _ids, votes = wb.rule_votes()
    again = wb.rule_votes()
    assert again[1] is votes and not votes.flags.writeable
    wb.edit_rule(rid, name="renamed", label="other")  # same match, another class
    v2 = wb.rule_votes()[1]
    assert calls == ["keywords"]
    assert (v2[:, 0] >= 0).sum() == (votes[:, 0] >= 0).sum()
    assert set(np.unique(v2[:, 0])) == {-1, wb.labels.class_id("other")}
    wb.edit_rule(rid, words=["0010"])
    assert calls == ["keywords", "keywords"]
    assert (wb.rule_votes()[1][:, 0] >= 0).sum() == 1
    wb.delete_class("other")  # its rule stays, voting nowhere
    assert (wb.rule_votes()[1] >= 0).sum() == 0
    assert calls == ["keywords", "keywords"]


def wilson(c: int, n: int) -> tuple[float, float]:
    p = c / n
    centre = (p + Z90**2 / (2 * n)) / (1 + Z90**2 / n)
    half = Z90 / (1 + Z90**2 / n) * math.sqrt(p * (1 - p) / n + Z90**2 / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def test_analysis_matches_a_direct_computation(wb):
    y = truth(wb)
    rng = np.random.default_rng(0)
    labelled = rng.choice(wb.n, 300, replace=False)
    for d in (1, 7, 8):
        wb.label(labelled[y[labelled] == d], f"d{d}")
    ones = np.flatnonzero(y == 1)
    good = wb.add_rule("expression", "d1", expr=pl.col("truth") == "1")
    mixed = wb.add_rule("region", "d7", items=np.flatnonzero((y == 7) | (y == 1))[::2])
    bad = wb.add_rule("expression", "d1", expr=pl.col("truth") == "8")
    off = wb.add_rule("region", "d8", items=ones, enabled=False)
    new = wb.add_rule("keywords", "d9", words=["0005"])  # a class nobody labelled
    table = wb.rule_analysis()
    assert table["id"].to_list() == [good, mixed, bad, off, new]
    _ids, votes = wb.rule_votes(enabled_only=False)
    human = wb.labels.state.human
    enabled = np.array([True, True, True, False, True])
    known = human[human >= 0]
    for j, row in enumerate(table.iter_rows(named=True)):
        v = votes[:, j]
        assert row["coverage"] == pytest.approx(np.mean(v >= 0))
        ov = cf = 0
        for i in np.flatnonzero(v >= 0):
            other = [votes[i, k] for k in range(votes.shape[1])
                     if k != j and enabled[k] and votes[i, k] >= 0]
            ov += bool(other)
            cf += any(o != v[i] for o in other)
        assert row["overlaps"] == pytest.approx(ov / wb.n)
        assert row["conflicts"] == pytest.approx(cf / wb.n)
        lab = (v >= 0) & (human >= 0)
        assert row["labelled"] == lab.sum()
        assert row["correct"] == (lab & (v == human)).sum()
        cid = wb.labels.class_id(row["label"])
        assert row["base_rate"] == pytest.approx(np.mean(known == cid))
        if lab.sum():
            lo, hi = wilson(int((lab & (v == human)).sum()), int(lab.sum()))
            assert row["accuracy"] == pytest.approx((lab & (v == human)).sum() / lab.sum())
            assert (row["accuracy_low"], row["accuracy_high"]) == (pytest.approx(lo),
                                                                   pytest.approx(hi))
            base = np.mean(known == cid)
            n_lab = int(lab.sum())
            # the one flag rule (rules.analysis.rule_flags): enough votes and the lower end
            # at or below the base rate, or few votes and even the upper end below it
            want = (lo <= base) if n_lab >= RULE_CHECK_MIN_VOTES else (hi < base)
            assert row["flagged"] == want
        else:
            assert row["accuracy"] is None and row["accuracy_high"] is None
            assert not row["flagged"]
    assert table["flagged"].to_list() == [False, False, True, True, False]
    assert table["accuracy"][0] == 1.0 and table["conflicts"][0] > 0
    # per class, and the conflicts of one rule with the human labels
    cov = wb.rule_class_coverage()
    _e_ids, e_votes = wb.rule_votes()
    for row in cov.iter_rows(named=True):
        cid = wb.labels.class_id(row["class"])
        voted = (e_votes == cid).any(axis=1)
        assert row == {"class": row["class"], "rules": int(sum(
            wb.rules.filter(pl.col("enabled"))["label"] == row["class"])),
            "voted": voted.sum(), "rules_only": (voted & (human < 0)).sum(),
            "human": (human == cid).sum()}
    assert cov["class"].to_list() == ["d1", "d7", "d8", "d9"]
    wrong = wb.rule_conflicts(mixed)
    v = votes[:, 1]
    np.testing.assert_array_equal(wrong, np.flatnonzero((v >= 0) & (human >= 0) & (v != human)))
    assert wrong.size and (y[wrong] == 1).all()
    assert wb.rule_conflicts(good).size == 0
    with pytest.raises(KeyError, match="no rule 99"):
        wb.rule_conflicts(99)


def test_bad_rules_name_what_to_fix_and_write_nothing(wb):
    before = wb.labels.log.last_id()
    cases = [
        ({"kind": "keywords", "label": "x", "words": ["a"], "column": "colour"},
         "unknown column 'colour'"),
        ({"kind": "expression", "label": "x", "expr": pl.col("nope") == 1},
         "unknown column 'nope'"),
        ({"kind": "expression", "label": "x", "expr": pl.col("truth")}, "gives String values"),
        ({"kind": "expression", "label": "x", "expr": pl.col("truth") > pl.lit([1, 2])},
         "cannot be evaluated"),
        ({"kind": "prompt", "label": "x", "prompts": ["a seven"], "threshold": 0.3},
         "needs a text encoder"),
        ({"kind": "python", "label": "x", "fn": lambda t: np.ones(3, bool)},
         "one True/False per item"),
        ({"kind": "python", "label": "x", "fn": lambda t: 1 / 0}, "raised ZeroDivisionError"),
        ({"kind": "region", "label": "x", "cluster": 999}, "no proposed cluster 999"),
        ({"kind": "regex", "label": "x", "pattern": "[", "name": "broken"}, "'broken'.*invalid"),
    ]
    for spec, message in cases:
        kind, label = spec.pop("kind"), spec.pop("label")
        with pytest.raises(ValueError, match=message):
            wb.add_rule(kind, label, **spec)
    with pytest.raises(KeyError, match="unknown item id"):
        wb.add_rule("region", "x", items=["no such item"])
    rid = wb.add_rule("keywords", "x", words=["a"])
    after_add = wb.labels.log.last_id()
    with pytest.raises(ValueError, match=r"rule 1 .*unknown column"):
        wb.edit_rule(rid, column="colour")
    with pytest.raises(ValueError, match="keeps its kind"):
        wb.edit_rule(rid, kind="regex")
    with pytest.raises(KeyError, match="no rule 5"):
        wb.edit_rule(5, words=["b"])
    assert wb.labels.log.last_id() == after_add
    assert [a.kind for a in wb.labels.log.read(after=before)] == ["create_class", "add_rule"]


def test_two_sessions_see_each_others_rules(wb):
    other = W.open(wb.project.path, background=False, layout="quick", annotator="bob")
    try:
        wb.create_class("seven")
        mine = wb.add_rule("expression", "seven", expr=pl.col("truth") == "7")
        assert other.refresh()
        theirs = other.add_rule("keywords", "seven", words=["0007.png"])
        assert (mine, theirs) == (1, 2)
        assert wb.refresh()
        assert wb.rules["id"].to_list() == [1, 2]
        assert wb.rule_votes()[1].shape == (wb.n, 2)
        assert wb.undo()  # mine alone: my rule
        assert wb.rules["id"].to_list() == [2]
        other.refresh()
        assert other.rules["id"].to_list() == [2]
    finally:
        other.close()


SENTENCES = [
    "The cat sat on the warm windowsill.", "A kitten chased the ball of yarn.",
    "My cat sleeps all afternoon.", "Stock markets fell sharply on Monday.",
    "The central bank raised interest rates.", "Investors sold shares after the report.",
    "The striker scored twice in the final.", "The team won the championship match.",
    "Fans cheered as the goalkeeper saved a penalty.", "Catalogues of old scans.",
]


def test_text_project_keywords_and_prompt_rules(tmp_path):
    from workbench.items import from_dataframe

    items = from_dataframe(pl.DataFrame({"text": SENTENCES}))
    wb = W.from_items(tmp_path / "t", items, layout="quick", background=False, progress=False)
    try:
        cat = wb.add_rule("keywords", "pets", words=["cat", "kitten"])
        cased = wb.add_rule("keywords", "pets", words=["cat"], case=True)
        parts = wb.add_rule("keywords", "pets", words=["cat"], whole_word=False)
        money = wb.add_rule("prompt", "money", prompts=["finance and the economy", "stocks"],
                            threshold=0.3)
        sport = wb.add_rule("regex", "sport", pattern=r"\b(team|striker|goal\w*)\b")
        assert np.flatnonzero(column_of(wb, cat) >= 0).tolist() == [0, 1, 2]
        assert np.flatnonzero(column_of(wb, cased) >= 0).tolist() == [0, 2]
        assert np.flatnonzero(column_of(wb, parts) >= 0).tolist() == [0, 2, 9]
        assert np.flatnonzero(column_of(wb, sport) >= 0).tolist() == [6, 7, 8]
        # the prompt rule: the max cosine similarity to the prompts, from the encoder itself
        q = np.asarray(wb.text_encoder(["finance and the economy", "stocks"]), np.float64)
        x = np.asarray(wb.vectors, np.float64)
        sim = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
            q / np.linalg.norm(q, axis=1, keepdims=True)).T
        expect = sim.max(axis=1) >= 0.3
        assert expect[[3, 4, 5]].all() and not expect[[0, 1, 2, 6, 7, 8]].any()
        np.testing.assert_array_equal(column_of(wb, money) >= 0, expect)
        wb.edit_rule(money, threshold=float(np.sort(sim.max(axis=1))[-2]))
        assert (column_of(wb, money) >= 0).sum() == 2
        assert wb.rules["error"].null_count() == 5
    finally:
        wb.close()
