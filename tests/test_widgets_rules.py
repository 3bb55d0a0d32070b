"""The rules panel of the app (no browser): a typed rule is one action, its row shows its
coverage and its accuracy on the human labels as they come, the map colours by its votes,
the gallery shows its conflicts with humans, on/off and remove, all undoable; rule and
class names are data in the table."""

from __future__ import annotations

import time

import numpy as np
import pytest

from workbench.widgets.rules_panel import rule_fields


def settle(app, until=lambda: True, timeout=10.0):
    """Let the worker threads finish and apply their results (as the kernel loop does)."""
    deadline = time.monotonic() + timeout
    while True:
        app.refresh()
        if until() or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def test_a_typed_keyword_rule_shows_its_coverage_and_colours_the_map(app):
    wb, rules = app.session, app.rules
    truth = wb.items["truth"].to_numpy()
    rules.kind.value, rules.text.value = "keywords", "3, 8"
    rules.column.value, rules.label.value = "truth", "3 or 8"
    rid = rules.add_typed()
    want = int(np.isin(truth, ["3", "8"]).sum())
    settle(app, lambda: "wb-coverage" in rules.table.value)
    assert f"{want:,} (" in rules.table.value and rules.summary.value == "1 of 1 rules on"
    assert wb.rules["id"].to_list() == [rid] and rules.text.value == ""
    rules.colour_map()
    settle(app, lambda: (app.map.codes("rule") > 0).sum() == want)
    assert app.map.color_by == "rule"
    slot = app.slots.encode(np.array([wb.labels.class_id("3 or 8")]))[0]
    np.testing.assert_array_equal(app.map.codes("rule"),
                                  np.where(np.isin(truth, ["3", "8"]), slot, 0))
    # Accuracy on human labels as they come, and the conflicts in the gallery.
    three = np.flatnonzero(truth == "3")[:4]
    wb.label(three[:3], "3 or 8")
    wb.label(three[3:], "digit 3")  # a human disagrees with the rule here
    settle(app, lambda: "of 4" in rules.table.value)
    assert "75% (" in rules.table.value
    rules.show_conflicts()
    assert app.selection.tolist() == [int(three[3])]
    assert "Conflicts" in app.gallery.title


def test_on_off_remove_and_undo_from_the_panel(app):
    wb, rules = app.session, app.rules
    rules.text.value, rules.column.value, rules.label.value = "1", "truth", "digit 1"
    rid = rules.add_typed()
    rules.toggle_picked()
    assert wb.rules["enabled"].to_list() == [False]
    assert len(wb.rule_votes()[0]) == 0  # an off rule does not vote
    wb.undo()  # the switch was one action
    rules.refresh()
    assert wb.rules["enabled"].to_list() == [True]
    rules.remove_picked()
    assert wb.rules.height == 0 and rules.pick.options == ()
    wb.undo()
    rules.refresh()
    assert [o[1] for o in rules.pick.options] == [rid]


def test_bad_rules_say_why_on_the_error_line_and_names_are_data(app):
    wb, rules = app.session, app.rules
    rules.kind.value, rules.text.value, rules.label.value = "regex", "([", "x"
    rules._attempt(rules.add_typed)
    assert app.panel.error.value and wb.rules.height == 0
    rules.label.value = ""
    rules.text.value = "7"
    rules._attempt(rules.add_typed)
    assert "name the class" in app.panel.error.value
    xss = "<img src=x onerror=alert(1)>"
    rules.kind.value, rules.text.value, rules.column.value = "keywords", "7", "truth"
    rules.label.value = xss
    rules.add_typed()
    settle(app, lambda: "wb-coverage" in rules.table.value)
    assert xss not in rules.table.value and "&lt;img" in rules.table.value


def test_what_the_panel_fields_become():
    assert rule_fields("keywords", " cat, dog ,", "caption") == {
        "words": ["cat", "dog"], "column": "caption"}
    assert rule_fields("regex", r"\bcat\b") == {"pattern": r"\bcat\b"}
    assert rule_fields("prompt", "a cat; a kitten", threshold=0.3) == {
        "prompts": ["a cat", "a kitten"], "threshold": 0.3}
    expr = rule_fields("expression", "size > 10")["expr"]
    assert "size" in str(expr)
    with pytest.raises(ValueError, match="type the rule first"):
        rule_fields("keywords", "  ")
