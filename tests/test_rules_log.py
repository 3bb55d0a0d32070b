"""Labelling rules in the label log (issue 16): logged as actions on both stores, undone and
redone like labels, shared by annotators, ids never reused, carried along by class edits."""

from __future__ import annotations

import json

import pytest
from _labels import IDS

from workbench.labels import LabelStore
from workbench.labels.replay import Replay

KEYWORDS = {"kind": "keywords", "label": "cat", "words": ["cat", "kitten"]}


def test_add_edit_remove_and_their_undo(store):
    rid = store.add_rule(KEYWORDS)
    assert rid == 1
    assert store.classes == {0: "cat"}  # the class came with the rule
    spec = store.rules[rid]
    assert spec == {"kind": "keywords", "label": "cat", "class_id": 0, "name": None,
                    "enabled": True, "words": ["cat", "kitten"], "column": None,
                    "case": False, "whole_word": True}
    store.edit_rule(rid, {**KEYWORDS, "words": ["feline"], "name": "felines"})
    assert store.rules[rid]["words"] == ["feline"]
    assert store.rules[rid]["name"] == "felines"
    assert store.undo()  # the edit: the spec before it is back
    assert store.rules[rid] == spec
    assert store.redo()
    assert store.rules[rid]["words"] == ["feline"]
    store.remove_rule(rid)
    assert store.rules == {}
    assert store.undo()  # the remove: the rule is back, as edited
    assert store.rules[rid]["words"] == ["feline"]
    assert store.undo()  # the edit again
    assert store.rules[rid] == spec
    assert store.undo()  # the add: the rule and the class it created, in one action
    assert store.rules == {}
    assert store.classes == {}
    assert not store.can_undo
    # ids are never reused, even those of undone adds
    assert store.add_rule(KEYWORDS) == 2
    assert store.add_rule({"kind": "region", "label": "cat", "items": ["item1"]}) == 3
    assert list(store.rules) == [2, 3]
    assert store.classes == {1: "cat"}  # created once: the second rule found it


def test_rule_actions_are_logged_with_the_id_in_target_and_the_spec_in_name(store):
    rid = store.add_rule({**KEYWORDS, "label": "dog"})
    store.edit_rule(rid, {**KEYWORDS, "label": "cat"})
    rows = [a for a in store.log.read() if a.kind.endswith("_rule")]
    assert [(a.kind, a.target, a.class_id) for a in rows] == [("add_rule", rid, None),
                                                             ("edit_rule", rid, None)]
    assert json.loads(rows[1].name)["class_id"] == store.class_id("cat")
    assert store.classes == {0: "dog", 1: "cat"}  # the edit created "cat" in its action
    assert store.undo()
    assert store.classes == {0: "dog"}
    assert store.rules[rid]["label"] == "dog"


def test_two_annotators_share_rules_and_never_share_an_id(log_at):
    a = LabelStore(log_at, IDS, annotator="ann")
    b = LabelStore(log_at, IDS, annotator="bob")
    try:
        r1 = a.add_rule(KEYWORDS)
        r2 = b.add_rule({"kind": "regex", "label": "cat", "pattern": "^c"})  # b had not seen r1
        assert (r1, r2) == (1, 2)
        assert b.classes == {0: "cat"}  # b found a's class inside its write
        a.refresh()
        assert list(a.rules) == list(b.rules) == [1, 2]
        assert a.undo()  # a's own add only
        b.refresh()
        assert list(b.rules) == [2]
        b.edit_rule(2, {"kind": "regex", "label": "cat", "pattern": "^k", "enabled": False})
        a.refresh()
        assert a.rules[2]["pattern"] == "^k" and a.rules[2]["enabled"] is False
        with pytest.raises(KeyError, match="no rule 1"):
            b.edit_rule(1, KEYWORDS)  # undone by its author: gone for everyone
        assert b.add_rule(KEYWORDS) == 3
        reopened = LabelStore(log_at, IDS, annotator="cid")
        assert list(reopened.rules) == [2, 3]
        assert reopened.rules == b.rules
        reopened.close()
    finally:
        a.close()
        b.close()


def test_rules_follow_their_class_through_rename_and_merge(store):
    rid = store.add_rule(KEYWORDS)
    other = store.add_rule({"kind": "keywords", "label": "kitty", "words": ["kitty"]})
    store.rename_class("cat", "feline")
    assert store.rules[rid]["label"] == "feline"
    store.merge_classes(["kitty"], "feline")
    assert store.rules[other]["label"] == "feline"
    assert store.rules[other]["class_id"] == store.class_id("feline")
    assert store.undo()  # the merge
    assert store.rules[other]["label"] == "kitty"
    store.delete_class("kitty")  # the rule stays, its class gone: it votes nowhere
    assert store.rules[other]["class_id"] not in store.classes
    store.edit_rule(other, {"kind": "keywords", "label": "feline", "words": ["kitty"]})
    assert store.rules[other]["class_id"] == store.class_id("feline")


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "keyword", "label": "cat", "words": ["a"]}, "unknown rule kind 'keyword'"),
    ({"kind": "keywords", "label": "cat", "words": []}, "words is empty"),
    ({"kind": "keywords", "label": "cat", "words": ["  "]}, "words is empty"),
    ({"kind": "keywords", "label": "cat"}, "the field 'words' is missing"),
    ({"kind": "keywords", "label": "cat", "words": ["a"], "colour": 1}, "unknown field"),
    ({"kind": "keywords", "label": "", "words": ["a"]}, "class name is empty"),
    ({"kind": "keywords", "label": "cat", "words": ["a"], "case": "yes"}, "case is True"),
    ({"kind": "regex", "label": "cat", "pattern": "(unclosed", "name": "paren"},
     "rule 'paren' .*regular expression '\\(unclosed' is invalid"),
    ({"kind": "expression", "label": "cat", "expr": "{not json"}, "not a polars expression"),
    ({"kind": "prompt", "label": "cat", "prompts": ["a cat"], "threshold": 1.5},
     "threshold is a cosine similarity from -1 to 1"),
    ({"kind": "prompt", "label": "cat", "prompts": ["a cat"], "threshold": float("nan")},
     "threshold"),
    ({"kind": "region", "label": "cat", "items": []}, "holds no items"),
    ({"kind": "python", "label": "cat", "fn": len}, "python rule is a function"),
])
def test_bad_specs_name_the_rule_and_write_nothing(store, spec, message):
    before = store.log.last_id()
    with pytest.raises(ValueError, match=message):
        store.add_rule(spec)
    assert store.log.last_id() == before
    assert store.rules == {} and store.classes == {}


def test_bad_edits_and_removes_write_nothing(store):
    rid = store.add_rule(KEYWORDS)
    before = store.log.last_id()
    with pytest.raises(ValueError, match=r"rule 1 .*words is empty"):
        store.edit_rule(rid, {**KEYWORDS, "words": []})
    with pytest.raises(ValueError, match="keeps its kind"):
        store.edit_rule(rid, {"kind": "regex", "label": "cat", "pattern": "x"})
    with pytest.raises(KeyError, match="no rule 7"):
        store.remove_rule(7)
    with pytest.raises(TypeError, match="rule id is a whole number"):
        store.remove_rule("1")
    with pytest.raises(KeyError):
        store.add_rule({**KEYWORDS, "label": 42})  # a class id that does not exist
    assert store.log.last_id() == before


def test_rules_are_not_annotations_and_leave_the_labels_alone(store, log_at):
    store.assign(["item0", "item1"], "cat")
    other = LabelStore(log_at, IDS, annotator="bob")
    try:
        other.assign(["item2"], "dog")
        rules = LabelStore(log_at, IDS, annotator="rule-writer")
        rules.add_rule(KEYWORDS)
        rules.add_rule({"kind": "region", "label": "dog", "items": ["item0"]})
        rules.close()
        store.refresh()
        names, ann = store.annotations()
        assert names == ["ann", "bob"]
        assert ann[:3].tolist() == [[0, -1], [0, -1], [-1, 1]]
        table = store.table()
        assert table["label"].to_list()[:4] == ["cat", "cat", "dog", None]
    finally:
        other.close()


def test_a_foreign_rule_row_is_skipped_not_fatal(tmp_path):
    """A rule row this code did not write (no JSON spec) changes nothing on replay."""
    path = tmp_path / "labels.sqlite"
    s = LabelStore(path, IDS, annotator="ann")
    s.log.append("add_rule", target=5, name="not json")
    s.log.append("edit_rule", target=9, name=json.dumps({"kind": "regex"}))
    rid = s.add_rule(KEYWORDS)
    assert rid == 6  # above every id ever logged
    replay = Replay(IDS, {i: p for p, i in enumerate(IDS)})
    replay.feed(s.log.read())
    assert list(replay.state.rules) == [6]
    s.close()
