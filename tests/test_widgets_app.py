"""The workbench app over a real session (the digits demo): clicks and keys become label
events in the project's SQLite log, and session changes become small map patches."""

from __future__ import annotations

import shutil
import sqlite3
import threading

import comm
import numpy as np
import pytest
from comm.base_comm import BaseComm

from workbench.session import Workbench
from workbench.widgets import WorkbenchApp

XSS = "<img src=x onerror=alert(1)>"


class RecordingComm(BaseComm):
    """A comm whose far end is a list: every message published is kept."""

    def __init__(self, **kwargs):
        self.sent = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.sent.append((msg_type, data or {}, [bytes(b) for b in buffers or []]))


def browser_says(widget, content):
    """Deliver a message as the front end would: a comm message with method "custom"."""
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}},
                            "buffers": []})


def custom(widget):
    return [(d["content"], b) for kind, d, b in widget.comm.sent
            if kind == "comm_msg" and d.get("method") == "custom"]


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    return folder


@pytest.fixture
def app(demo_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    folder = tmp_path / "digits"
    shutil.copytree(demo_folder, folder)
    wb = Workbench.open(folder, background=False, layout="quick")
    app = WorkbenchApp(wb)
    yield app
    app.close()
    wb.close()


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
