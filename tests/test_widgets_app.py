"""The workbench app over a real session (the digits demo): clicks and keys become label
events in the project's SQLite log, and session changes become small map patches."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest
from _comm import browser_says
from _comm import custom_messages as custom

from workbench.labels import effective_labels
from workbench.session import Workbench
from workbench.widgets import _threads

XSS = "<img src=x onerror=alert(1)>"


def browser_sets(widget, **state):
    """Deliver a state update as the front end would: bytes travel as binary buffers."""
    paths, buffers = [], []
    for name, value in list(state.items()):
        if isinstance(value, bytes):
            paths.append([name])
            buffers.append(memoryview(value))
            state[name] = None
    widget.comm.handle_msg({"content": {"data": {"method": "update", "state": state,
                                                 "buffer_paths": paths}},
                            "buffers": buffers})


def logged_assigns(folder):
    """{item id: class name} of the human assigns in the project's SQLite log, read with
    plain sqlite3 (oldest first, so later assigns win)."""
    con = sqlite3.connect(folder / "labels.sqlite")
    try:
        names = dict(con.execute(
            "SELECT class_id, name FROM actions WHERE kind = 'create_class'"))
        rows = con.execute(
            "SELECT i.item_id, a.class_id FROM actions a JOIN items i ON i.action_id = a.id "
            "WHERE a.kind = 'assign' AND a.source = 'human' ORDER BY a.id")
        return {item: names[cid] for item, cid in rows}
    finally:
        con.close()


def test_map_shows_session_coordinates_and_clusters(app):
    wb = app.session
    xy = np.frombuffer(app.map.coords, np.float32).reshape(-1, 2)
    np.testing.assert_allclose(xy, wb.coords, atol=1e-6)
    cl = app.map.codes("cluster")
    assert cl.max() == len(wb.clusters)
    assert set(np.flatnonzero(cl == 1)) == set(wb.clusters[0].members.tolist())
    assert app.panel.cluster_pick.options[0][1] == 0


def test_number_key_labels_selection_and_patch_is_small(app):
    wb = app.session
    wb.create_class("zero")  # key 1; key 2 makes a new class
    app.selection = wb.clusters[1].members
    before = len(custom(app.map))
    browser_says(app.map, {"type": "label_key", "key": 2})  # a new class on key 2
    sel = app.selection
    assert set(app.labels[sel]) == {"class 2"}
    patches = [(c, b) for c, b in custom(app.map)[before:] if c["type"] == "patch"
               and c["field"] == "human"]
    assert len(patches) == 1
    idx = np.frombuffer(patches[0][1][0], np.uint32)
    assert set(idx.tolist()) == set(sel.tolist())
    assert sum(len(b) for b in patches[0][1]) == sel.size * 6  # uint32 + uint16 per point
    by_id = logged_assigns(wb.project.path)
    ids = wb.items["id"].to_list()
    assert all(by_id[ids[i]] == "class 2" for i in sel)
    assert [c["name"] for c in app.map.classes] == ["zero", "class 2"]
    assert app.map.classes[1]["human"] == sel.size
    assert app.map.classes[0]["human"] == 0


def test_undo_redo_and_remove_by_keys(app):
    wb = app.session
    app.selection = wb.clusters[2].members[:5]
    app.label("five")
    browser_says(app.map, {"type": "undo"})
    assert all(app.labels[app.selection] == None)  # noqa: E711 - object array
    browser_says(app.map, {"type": "redo"})
    assert set(app.labels[app.selection]) == {"five"}
    browser_says(app.map, {"type": "remove_labels"})
    assert (wb.labels.state.human[app.selection] == -1).all()


def test_any_class_past_key_nine_labels_through_the_picked_class(app):
    wb = app.session
    for i in range(11):
        wb.create_class(f"c{i}")
    app.refresh()
    app.selection = wb.clusters[0].members[:4]
    app.panel.class_pick.value = wb.labels.class_id("c10")  # the 11th class: no key for it
    app.panel.label_picked.click()
    assert app.panel.error.value == ""
    assert set(app.labels[app.selection]) == {"c10"}


def test_key_without_class_explains(app):
    app.selection = [0, 1]
    browser_says(app.map, {"type": "label_key", "key": 5})
    assert "no class on key 5" in app.panel.error.value
    assert (app.session.labels.state.human[[0, 1]] == -1).all()


def test_gallery_relabel_and_drop(app):
    wb = app.session
    sel = np.sort(wb.clusters[0].members[:6])
    app.label("a", items=sel)
    wb.create_class("b")
    app.selection = sel
    assert app.gallery.total == 6 and [c["index"] for c in app.gallery.cards] == sorted(sel.tolist())
    assert app.gallery.cards[0]["label"] == "a" and app.gallery.cards[0]["source"] == "human"
    slot_b = next(c["slot"] for c in app.map.classes if c["name"] == "b")
    browser_says(app.gallery, {"type": "relabel", "index": int(sel[0]), "slot": slot_b})
    assert app.labels[sel[0]] == "b"
    browser_says(app.gallery, {"type": "drop", "index": int(sel[1])})
    assert sel[1] not in app.selection and app.gallery.total == 5
    # number key in the gallery labels what is left of the selection
    browser_says(app.gallery, {"type": "label_key", "key": 2})
    assert set(app.labels[app.selection]) == {"b"}
    assert app.labels[sel[1]] == "a"


def test_class_names_are_data(app):
    app.selection = [3, 4]
    app.label(XSS)
    entry = app.map.classes[0]
    assert entry["name"] == XSS
    assert app.panel.class_pick.options[0][0] == XSS
    assert app.panel.label_buttons.children[0].description == f"1 {XSS}"
    assert app.gallery.classes[0]["name"] == XSS


def test_palette_rename_merge_delete(app):
    p = app.panel
    members0 = app.session.clusters[0].members[:3]
    app.label("a", items=members0)
    app.label("b", items=app.session.clusters[1].members[:3])
    p.class_name.value = "c"
    p.create.click()
    assert [c["name"] for c in app.map.classes] == ["a", "b", "c"]
    p.class_pick.value = next(c["id"] for c in app.map.classes if c["name"] == "a")
    p.class_name.value = "alpha"
    p.rename.click()
    assert app.map.classes[0]["name"] == "alpha"
    p.class_name.value = "b"
    p.merge.click()  # alpha into b
    assert [c["name"] for c in app.map.classes] == ["b", "c"]
    assert set(app.labels[members0]) == {"b"}
    p.class_pick.value = next(c["id"] for c in app.map.classes if c["name"] == "c")
    p.delete.click()
    assert [c["name"] for c in app.map.classes] == ["b"]
    p.class_name.value = ""
    p.create.click()
    assert "type a class name" in p.error.value


def test_predictions_recolour_and_status(app):
    wb = app.session
    for k in range(2):  # 10 labels of 2 classes: the smallest set the probe trains on
        app.label(f"c{k}", items=wb.clusters[k].members[:5])
    assert wb.predictions is not None and wb.probe_predictions is not None
    pred = app.map.codes("predicted")
    assert (pred > 0).mean() > 0.5
    conf = app.map.codes("confidence")
    assert conf.max() > 0 and conf.dtype == np.uint8
    assert "device: cpu" in app.panel.status.value
    app.color_by = "review"  # ranks label issues in a worker thread
    app.wait()
    assert app.map.codes("review").max() >= 1
    app.show_queue("errors")  # the same fit, for the queue: the selection follows
    app.wait()
    assert app.gallery.title == "Suspected label errors" and app.selection.size == 10
    assert (wb.labels.state.human[app.selection] >= 0).all()


def test_queues_search_and_more_like_this(app):
    app.show_queue("next")  # nothing labelled: the first proposed cluster's core
    first = app.session.clusters[0]
    assert set(app.selection.tolist()) == set(first.core().tolist())
    assert app.gallery.title.startswith("Label next: cluster 1")
    assert app.panel.cluster_pick.value == first.id
    app.label("first cluster")  # names the selection: the core, not the mixed outskirts
    human = app.session.labels.state.human
    assert (human[first.core()] >= 0).all() and (human[first.members] >= 0).sum() < first.size
    app.select_cluster(1, core=True)
    assert set(app.selection.tolist()) == set(app.session.clusters[1].core().tolist())
    app.selection = [5]
    app.more_like_this(k=10)
    assert 5 not in app.selection
    assert app.selection.size == 10
    app.panel.query.value = "a zero"
    app.panel.search.click()  # the digits demo has no text encoder: a clear message
    assert "text encoder" in app.panel.error.value


def test_session_events_from_a_worker_thread_update_the_map(app):
    wb = app.session
    members = wb.clusters[3].members
    t = threading.Thread(target=lambda: wb.label(members, "from worker"))
    t.start()
    t.join()
    slot = next(c["slot"] for c in app.map.classes if c["name"] == "from worker")
    assert (app.map.codes("human")[members] == slot).all()


LAYER_SOURCE = {1: "human", 2: "machine", 3: "predicted"}


def label_two_classes(app):
    wb = app.session
    for k in range(2):  # 10 labels of 2 classes: the smallest set the probe trains on
        app.label(f"c{k}", items=wb.clusters[k].members[:5])


def test_colours_legend_cards_and_status_follow_the_one_label_rule(app):
    wb = app.session
    label_two_classes(app)
    accepted = wb.clusters[2].members[:6]
    assert app.accept_predictions(items=accepted) == 6
    eff = effective_labels(wb.labels.state, wb.predictions)
    assert set(eff.layer.tolist()) == {1, 2, 3}  # every layer is on the map
    names = wb.labels.classes
    slot = {c["id"]: c["slot"] for c in app.map.classes}

    def codes(keep):
        return np.array([slot.get(int(c), 0) if k else 0 for c, k in zip(eff.label, keep)])

    np.testing.assert_array_equal(app.map.codes("human"), codes(eff.layer == 1))
    np.testing.assert_array_equal(app.map.codes("machine"), codes(eff.layer >= 2))
    for c in app.map.classes:
        mine = eff.label == c["id"]
        assert c["human"] == int((mine & (eff.layer == 1)).sum())
        assert c["machine"] == int((mine & (eff.layer >= 2)).sum())
    shown = np.r_[wb.clusters[0].members[:2], accepted[:2], np.flatnonzero(eff.layer == 3)[:2]]
    app.selection = shown
    cards = {c["index"]: c for c in app.gallery.cards}
    for i in shown:
        name = names[int(eff.label[i])]
        assert cards[i]["label"] == name and cards[i]["source"] == LAYER_SOURCE[eff.layer[i]]
        hover = app.thumbnail(int(i))["label"]
        assert hover == (name if eff.layer[i] == 1 else f"{name} (machine)")
    counts = [int((eff.layer == k).sum()) for k in (1, 2, 3)]
    assert (f"labels: {counts[0]:,} human, {counts[1]:,} accepted, {counts[2]:,} predicted"
            in app.panel.status.value)
    # accepted machine labels are labels; live predictions are not
    assert app.labels[accepted].tolist() == [names[int(c)] for c in eff.label[accepted]]
    assert app.labels[shown[-1]] is None


def test_accept_predictions_is_one_action_and_one_undo(app):
    wb = app.session
    label_two_classes(app)
    app.selection = np.ones(wb.n, bool)  # everything, as a mask
    count = app.accept_predictions()
    machine = wb.labels.state.machine
    assert count > 100 and len(set(machine[machine >= 0].tolist())) == 2  # both classes
    assert f"accepted {count} predictions" in app.panel.status.value
    app.panel.undo.click()
    assert (wb.labels.state.machine == -1).all()
    assert (wb.labels.state.human >= 0).sum() == 10  # the human labels stay


def test_export_result_and_error_reach_the_status_line(app):
    app.label("a", items=[0, 1, 2])
    app.panel.export.click()
    target = app.session.project.path.parent / "digits-labels.parquet"
    assert target.exists() and app.panel.error.value == ""
    assert f"exported to {target}" in app.panel.status.value
    app.panel.export.click()  # the button's own file: replaced, not refused
    assert f"exported to {target}" in app.panel.status.value
    target.unlink()
    target.mkdir()  # something that is not our file is in the way
    app.panel.export.click()
    assert "export failed" in app.panel.status.value and app.panel.error.value
    with pytest.raises(Exception, match="project"):  # never inside the project folder
        app.export(app.session.project.path / "labels.parquet")
    assert "export failed" in app.panel.status.value


def test_status_shows_the_estimate_never_the_probe_accuracy(app, monkeypatch):
    wb = app.session
    label_two_classes(app)
    assert wb.probe_accuracy is not None
    status = app.panel.status.value
    assert "probe" not in status
    est = wb.estimate()
    assert f"accuracy ≈ {est['accuracy']:.0%} ({est['low']:.0%}–{est['high']:.0%})" in status

    def broken():
        raise RuntimeError("no estimate today")

    monkeypatch.setattr(wb, "estimate", broken)
    app.label("c0", items=wb.clusters[3].members[:3])  # new predictions, no estimate
    assert "accuracy" not in app.panel.status.value and "probe" not in app.panel.status.value
    monkeypatch.setattr(wb, "estimate", None)  # a session without one
    app.label("c1", items=wb.clusters[4].members[:3])
    assert "accuracy" not in app.panel.status.value


def test_status_is_current_after_wait(background_app):
    app, wb = background_app, background_app.session
    label_two_classes(app)
    assert "running: retrain" in app.panel.status.value
    wb.wait()
    eff = effective_labels(wb.labels.state, wb.predictions)
    status = app.panel.status.value
    assert status.startswith("idle")
    assert f"{int((eff.layer == 3).sum()):,} predicted" in status
    assert "accuracy ≈" in status and "probe" not in status


def test_status_is_current_after_wait_in_a_kernel(background_app, monkeypatch):
    from tornado.ioloop import IOLoop

    loop = IOLoop(make_current=False)  # the kernel's loop, busy with this cell
    monkeypatch.setattr(_threads, "kernel_loop", lambda: loop)
    app, wb = background_app, background_app.session
    try:
        label_two_classes(app)
        wb.wait()  # the results wait for the loop, which runs after the cell
        eff = effective_labels(wb.labels.state, wb.predictions)
        status = app.status
        assert status.startswith("idle")
        assert f"{int((eff.layer == 3).sum()):,} predicted" in status
        assert app.panel.status.value == status
    finally:
        loop.close()


def test_masks_and_floats_name_exactly_their_items(app):
    wb = app.session
    n = wb.n
    mask = np.zeros(n, bool)
    mask[[10, 500, n - 1]] = True
    app.label("m", items=mask)
    assert np.flatnonzero(wb.labels.state.human >= 0).tolist() == [10, 500, n - 1]
    app.selection = mask
    assert app.selection.tolist() == [10, 500, n - 1]
    app.label("f", items=[3.0, 4.0])
    assert (wb.labels.state.human[[3, 4]] >= 0).all()
    human = wb.labels.state.human.copy()
    for bad, err in (([True, False], ValueError), (mask[:-1], ValueError),
                     ([2.5], ValueError), ([-1], IndexError), ([n], IndexError),
                     ([np.inf], ValueError), (np.ones((2, n), bool), ValueError)):
        with pytest.raises(err):
            app.label("bad", items=bad)
        with pytest.raises(err):
            app.selection = bad
        with pytest.raises(err):
            app.remove_labels(items=bad)
        np.testing.assert_array_equal(wb.labels.state.human, human)
        assert app.selection.tolist() == [10, 500, n - 1]
    app.remove_labels(items=mask)
    assert np.flatnonzero(wb.labels.state.human >= 0).tolist() == [3, 4]
    browser_says(app.gallery, {"type": "drop", "index": 500.0})  # a whole float from JSON
    assert app.selection.tolist() == [10, n - 1]


def test_bad_traits_from_the_browser_leave_the_app_working(app):
    wb = app.session
    wb.create_class("one")
    app.selection = [5, 6]
    browser_sets(app.map, selection=np.array([5, 6, 7], np.uint32).tobytes()[:10])
    browser_sets(app.map, selection=np.array([5, wb.n], np.uint32).tobytes())
    browser_sets(app.map, n=10**9)
    assert app.map.n == wb.n and app.selection.tolist() == [5, 6]
    assert [c["index"] for c in app.gallery.cards] == [5, 6]
    errors = [c for c, _ in custom(app.map) if c["type"] == "error"]
    assert len(errors) == 3
    browser_says(app.map, {"type": "label_key", "key": 1})
    assert set(app.labels[[5, 6]]) == {"one"}
    browser_sets(app.map, selection=np.array([8], np.uint32).tobytes())
    assert [c["index"] for c in app.gallery.cards] == [8]
    browser_says(app.map, {"type": "label_key", "key": 1})
    assert app.labels[8] == "one"
    assert app.map.codes("human")[[5, 6, 8]].min() > 0  # the map still updates


def test_disagreements_queue_and_annotator_in_the_status(app):
    # Two annotators disagree on some items: the "disagreements" button selects them, the
    # least sure consensus first; the status line says who is labelling here.
    wb = app.session
    folder = wb.project.path
    y = np.array([int(v) for v in wb.items["truth"]])
    zeros, ones = np.flatnonzero(y == 0)[:30], np.flatnonzero(y == 1)[:30]
    wb.labels.assign_many([(zeros, "zero"), (ones, "one")])
    other = Workbench.open(folder, background=False, layout="quick", annotator="bob")
    other.labels.assign_many([(zeros[:20], "zero"), (ones[:12], "zero")])
    other.close()
    wb.refresh()
    app.refresh()
    assert f"annotator: {wb.labels.annotator}" in app.panel.status.value
    app.panel.queue_disagreements.click()
    picked = app.selection
    table = wb.consensus()
    assert set(picked) == set(ones[:12])  # the items the two labelled differently
    assert not table["flagged"].to_numpy()[picked].any()  # their consensus is sure anyway
    quality = table["quality"].to_numpy()
    assert np.all(np.diff(quality[picked]) >= 0)  # least sure first
    assert app.gallery.title.startswith("Disagreements: 12 items")


def test_the_annotator_is_shown_and_settable_in_the_widget(app):
    # Who labels is in the panel; typing another name makes the next actions theirs, and
    # undo then takes back only that annotator's own.
    wb = app.session
    assert app.panel.annotator.value == wb.annotator
    wb.label([0, 1], "digit 0")
    app.panel.annotator.value = "adjudicator"
    assert wb.annotator == "adjudicator" and "annotator: adjudicator" in app.panel.status.value
    wb.label([2], "digit 0")
    assert wb.labels.log.read()[-1].annotator == "adjudicator"
    assert wb.labels.undo() and not wb.labels.undo()  # theirs only: the first label stays
    assert (wb.labels.state.human[:3] >= 0).tolist() == [True, True, False]
    wb.annotator = "ann"  # set from the notebook: the field follows
    assert app.panel.annotator.value == "ann"
    app.panel.annotator.value = "  "
    assert wb.annotator == "ann" and "non-empty" in app.panel.error.value
