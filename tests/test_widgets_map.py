"""The map and gallery widgets on the Python side: buffers, patches, message handling.

The widgets talk through an in-memory comm that records what would go to the browser,
so the tests see the exact messages and binary buffers a front end would receive.
"""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
from _comm import browser_says
from PIL import Image

from workbench.thumbnails import ThumbnailCache, ThumbnailError, make_thumbnail
from workbench.widgets import Gallery, ScatterMap
from workbench.widgets._palette import ClassSlots
from workbench.widgets._threads import OffMainThread, call_on_main
from workbench.widgets.scatter import normalize_coords


@pytest.fixture
def coords():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, size=(500, 2)).astype(np.float32)


def test_coordinates_travel_once_as_float32_buffer(wire, coords):
    m = ScatterMap(coords)
    kind, opened, buffers = m.comm.sent[0]
    assert kind == "comm_open"
    state = opened["state"]
    assert ["coords"] in opened["buffer_paths"]
    assert not isinstance(state.get("coords"), (list, str))  # a buffer, not JSON
    xy = np.frombuffer(buffers[0], np.float32).reshape(-1, 2)
    np.testing.assert_array_equal(xy, coords)
    # a relabel afterwards never sends the coordinates again
    m.update(human=np.r_[np.ones(10, int), np.zeros(490, int)])
    for _, _, bufs in m.comm.sent[1:]:
        assert all(len(b) != coords.nbytes for b in bufs)


def test_normalize_coords_keeps_unit_box_and_fits_others():
    inside = np.array([[0.5, -0.5], [1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(normalize_coords(inside), inside)
    far = np.array([[0, 0], [100, 50], [50, 10]], np.float64)
    out = normalize_coords(far)
    assert out.dtype == np.float32 and np.abs(out).max() <= 1.0
    # aspect ratio kept: x span is twice the y span
    np.testing.assert_allclose(out.max(0) - out.min(0), [1.9, 0.95], rtol=1e-5)
    with pytest.raises(ValueError, match="row 1"):
        normalize_coords([[0, 0], [np.nan, 1]])
    with pytest.raises(ValueError, match="shape"):
        normalize_coords(np.zeros((3, 3)))


def test_ready_gets_the_code_fields_as_binary(wire, coords):
    m = ScatterMap(coords)
    human = np.zeros(500, int)
    human[:7] = 2
    m.update(human=human)
    browser_says(m, {"type": "ready"})
    content, buffers = wire(m)[-1]
    assert content["type"] == "codes"
    assert content["fields"] == ["human"]  # all-zero fields are not sent
    got = dict(zip(content["fields"], buffers))
    assert np.frombuffer(got["human"], np.uint16).tolist() == human.tolist()
    m.update(confidence=np.full(500, 7))
    browser_says(m, {"type": "ready"})
    content, buffers = wire(m)[-1]
    assert content["fields"] == ["human", "confidence"]
    assert len(buffers[1]) == 500  # uint8


def test_relabel_sends_only_a_patch_of_changed_codes(wire, coords):
    m = ScatterMap(coords)
    before = len(wire(m))
    human = np.zeros(500, int)
    changed = np.array([3, 77, 400])
    human[changed] = 5
    sent = m.update(human=human)
    msgs = wire(m)[before:]
    assert len(msgs) == 1
    content, (idx, codes) = msgs[0]
    assert content["type"] == "patch" and content["field"] == "human"
    np.testing.assert_array_equal(np.frombuffer(idx, np.uint32), changed)
    np.testing.assert_array_equal(np.frombuffer(codes, np.uint16), [5, 5, 5])
    assert sent == len(json.dumps(content)) + 3 * 4 + 3 * 2
    assert sent < 200
    # nothing changed: nothing sent
    assert m.update(human=human) == 0
    assert len(wire(m)) == before + 1


def test_relabel_of_most_points_sends_the_field_whole(wire, coords):
    m = ScatterMap(coords)
    sent = m.update(human=np.full(500, 3))
    content, buffers = wire(m)[-1]
    assert content["type"] == "codes" and content["fields"] == ["human"]
    assert len(buffers[0]) == 500 * 2
    assert sent < 500 * 6  # smaller than a patch of every point would be


def test_several_fields_redraw_once(wire, coords):
    m = ScatterMap(coords)
    m.update(human=np.r_[1, np.zeros(499, int)], machine=np.r_[0, 2, np.zeros(498, int)])
    patches = [c for c, _ in wire(m) if c["type"] == "patch"]
    assert [p["last"] for p in patches] == [False, True]
    assert len({p["seq"] for p in patches}) == 1


def test_update_rejects_bad_codes(coords, wire):
    m = ScatterMap(coords)
    with pytest.raises(ValueError, match="shape"):
        m.update(human=np.zeros(3, int))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        m.update(confidence=np.full(500, 300))
    with pytest.raises(ValueError, match="unknown code field"):
        m.update(colour=np.zeros(500, int))


def test_selection_round_trip(wire, coords):
    m = ScatterMap(coords)
    # the browser sends the selection as a uint32 buffer (a memoryview here)
    m.set_state({"selection": memoryview(np.array([9, 2, 4], np.uint32).tobytes())})
    assert m.selected.tolist() == [9, 2, 4]
    m.select([10, 3])
    assert m.selected.tolist() == [3, 10]
    with pytest.raises(IndexError, match="out of range"):
        m.select([500])
    m.select([])
    assert m.selected.size == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"type": "explode"}, "unknown message type"),
        ({"kind": "ready"}, "string 'type'"),
        (["ready"], "string 'type'"),
        ({"type": "label_key", "key": 12}, "key from 1 to 9"),
        ({"type": "label_key", "key": "1"}, "key from 1 to 9"),
        ({"type": "label_key", "key": True}, "key from 1 to 9"),
        ({"type": "thumb", "id": "a", "index": 500}, "index must be an integer"),
        ({"type": "thumb", "id": "a", "index": -1}, "index must be an integer"),
        ({"type": "thumb", "id": "a", "index": 1.5}, "index must be an integer"),
        ({"type": "thumb", "index": 3}, "needs a string 'id'"),
    ],
)
def test_bad_messages_are_rejected_and_logged(wire, coords, caplog, content, reason):
    actions = []
    m = ScatterMap(coords, on_action=actions.append, thumbnail=lambda i: {"kind": "text"})
    m.update(human=np.r_[1, np.zeros(499, int)])
    before = m.codes("human").copy(), m.selection
    with caplog.at_level(logging.ERROR, logger="workbench.widgets"):
        browser_says(m, content)
    assert reason in caplog.text
    reply, _ = wire(m)[-1]
    assert reply["type"] == "error" and reason in reply["message"]
    if isinstance(content, dict) and "id" in content:
        assert reply["id"] == content["id"]
    assert actions == []
    np.testing.assert_array_equal(m.codes("human"), before[0])
    assert m.selection == before[1]


def test_key_actions_reach_the_app(wire, coords):
    actions = []
    m = ScatterMap(coords, on_action=actions.append)
    for msg in ({"type": "label_key", "key": 3}, {"type": "undo"}, {"type": "redo"},
                {"type": "remove_labels"}):
        browser_says(m, msg)
    assert actions == [{"type": "label_key", "key": 3}, {"type": "undo"}, {"type": "redo"},
                       {"type": "remove_labels"}]


def test_failing_action_is_reported_not_raised(wire, coords, caplog):
    def boom(action):
        raise ValueError("no class on key 4")

    m = ScatterMap(coords, on_action=boom)
    with caplog.at_level(logging.ERROR, logger="workbench.widgets"):
        browser_says(m, {"type": "label_key", "key": 4})
    reply, _ = wire(m)[-1]
    assert reply["type"] == "error" and "no class on key 4" in reply["message"]


def _png(path, size=(40, 30)):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return path


def test_thumbnail_reply_is_binary_and_cached(tmp_path, wire, coords):
    src = _png(tmp_path / "a.png")
    cache = ThumbnailCache(tmp_path / "cache")
    m = ScatterMap(coords, thumbnail=lambda i: {
        "kind": "image", "data": cache.get(f"item{i}", str(src)), "mime": cache.mime,
        "text": "a.png", "label": "<b>cat</b>"})
    browser_says(m, {"type": "thumb", "id": "r1", "index": 4})
    reply, buffers = wire(m)[-1]
    assert reply == {"type": "thumb", "id": "r1", "index": 4, "kind": "image",
                     "mime": "image/webp", "text": "a.png", "label": "<b>cat</b>"}
    assert buffers[0][:4] == b"RIFF" and buffers[0][8:12] == b"WEBP"
    stored = list((tmp_path / "cache" / "thumbnails").rglob("*.webp"))
    assert len(stored) == 1
    # made once: a second request reads the stored file
    mtime = stored[0].stat().st_mtime_ns
    browser_says(m, {"type": "thumb", "id": "r2", "index": 4})
    assert stored[0].stat().st_mtime_ns == mtime


def test_thumbnail_sizes_and_errors(tmp_path):
    src = _png(tmp_path / "big.png", size=(400, 200))
    data = make_thumbnail(src, size=64, format="png")
    from io import BytesIO

    with Image.open(BytesIO(data)) as im:
        assert im.size == (64, 32)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ThumbnailError, match=r"bad\.png"):
        make_thumbnail(tmp_path / "bad.png")
    with pytest.raises(ThumbnailError, match="no longer exists"):
        make_thumbnail(tmp_path / "gone.png")
    with pytest.raises(ValueError, match="format"):
        ThumbnailCache(tmp_path, format="gif")


def test_failed_thumbnail_answers_with_a_reason(wire, coords):
    def broken(i):
        raise ThumbnailError("cannot make a thumbnail of 'x.png'")

    m = ScatterMap(coords, thumbnail=broken)
    browser_says(m, {"type": "thumb", "id": "q", "index": 1})
    reply, buffers = wire(m)[-1]
    assert reply["kind"] == "error" and "x.png" in reply["text"] and buffers == []


def test_class_slots_are_stable():
    slots = ClassSlots()
    assert slots.sync({10: "a", 20: "b"}) == {10: 1, 20: 2}
    assert slots.sync({20: "b", 30: "c"}) == {20: 2, 30: 1}  # c takes a's free slot
    codes = slots.encode(np.array([-1, 20, 30, 99, 20]))
    assert codes.dtype == np.uint16 and codes.tolist() == [0, 2, 1, 0, 2]
    assert slots.class_of_slot(2) == 20 and slots.class_of_slot(7) is None


def test_gallery_pages_and_validates(wire):
    actions = []
    g = Gallery(describe=lambda idx: [{"index": int(i), "kind": "text", "text": f"t{i}",
                                       "label": "", "source": ""} for i in idx],
                on_action=actions.append, page_size=4)
    g.show(np.arange(10, 20), title="Selection")
    assert (g.total, g.pages, g.page) == (10, 3, 0)
    assert [c["index"] for c in g.cards] == [10, 11, 12, 13]
    g.page = 2
    assert [c["index"] for c in g.cards] == [18, 19]
    g.page = 7  # beyond the last page: clamped
    assert g.page == 2
    browser_says(g, {"type": "drop", "index": 18})
    browser_says(g, {"type": "relabel", "index": 19, "slot": 2})
    assert actions == [{"type": "drop", "index": 18},
                       {"type": "relabel", "index": 19, "slot": 2}]
    browser_says(g, {"type": "drop", "index": 3})  # not shown in the gallery
    browser_says(g, {"type": "relabel", "index": 19, "slot": -1})
    browser_says(g, {"type": "nope"})
    errors = [c for c, _ in wire(g) if c["type"] == "error"]
    assert len(errors) == 3 and len(actions) == 2


def test_call_on_main_marshals_worker_threads_onto_the_loop():
    from tornado.ioloop import IOLoop

    loop = IOLoop(make_current=False)
    ran_on = []
    done = threading.Event()

    def work():
        ran_on.append(threading.current_thread().name)
        loop.add_callback(loop.stop)
        done.set()

    worker = threading.Thread(target=lambda: call_on_main(work, loop=loop), name="worker")
    worker.start()
    worker.join()
    assert ran_on == []  # scheduled, not run on the worker
    loop.start()  # the main thread's loop runs it
    assert done.is_set() and ran_on == [threading.main_thread().name]
    loop.close()
    # on the main thread, it runs at once
    call_on_main(lambda: ran_on.append("now"))
    assert ran_on[-1] == "now"


def browser_sets(widget, **state):
    """Deliver a state update as the front end would: bytes travel as binary buffers."""
    paths, buffers = [], []
    for name, value in list(state.items()):
        if isinstance(value, (bytes, memoryview)):
            paths.append([name])
            buffers.append(memoryview(bytes(value)))
            state[name] = None
    widget.comm.handle_msg({"content": {"data": {"method": "update", "state": state,
                                                 "buffer_paths": paths}},
                            "buffers": buffers})


def sent_state(widget):
    """Trait values sent to the browser after opening: [(name, value or buffer)]."""
    out = []
    for kind, d, bufs in widget.comm.sent[1:]:
        if kind == "comm_msg" and d.get("method") == "update":
            for name, value in d["state"].items():
                out.append((name, value))
            for path, buf in zip(d.get("buffer_paths", []), bufs):
                out.append((path[0], buf))
    return out


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"selection": np.array([1, 2], np.uint32).tobytes()[:6]}, "multiple of 4 bytes"),
        ({"selection": np.array([3, 500], np.uint32).tobytes()}, "out of range"),
        ({"selection": np.array([2**32 - 1], np.uint32).tobytes()}, "out of range"),
        ({"n": 10**9}, "cannot set 'n'"),
        ({"coords": np.zeros(4, np.float32).tobytes()}, "cannot set 'coords'"),
        ({"classes": [{"slot": 1}]}, "cannot set 'classes'"),
        ({"color_by": "rainbow"}, "color_by"),
        ({"lasso_type": 3}, "lasso_type"),
    ],
)
def test_bad_trait_values_from_the_browser_are_refused(wire, coords, caplog, state, reason):
    actions = []
    m = ScatterMap(coords, on_action=actions.append)
    m.select([7, 9])
    before = {k: getattr(m, k) for k in ("selection", "n", "coords", "classes", "color_by",
                                         "lasso_type")}
    with caplog.at_level(logging.ERROR, logger="workbench.widgets"):
        browser_sets(m, **state)
    assert reason in caplog.text
    reply, _ = wire(m)[-1]
    assert reply["type"] == "error" and reason in reply["message"]
    assert {k: getattr(m, k) for k in before} == before  # no state change
    name = next(iter(state))
    assert name in [k for k, _ in sent_state(m)]  # the browser gets our value back
    # and everything keeps working afterwards
    assert m.selected.tolist() == [7, 9]
    browser_sets(m, selection=np.array([4, 1], np.uint32).tobytes())
    assert m.selected.tolist() == [4, 1]
    assert m.update(human=np.r_[np.ones(3, int), np.zeros(497, int)]) > 0
    browser_says(m, {"type": "label_key", "key": 2})
    assert actions == [{"type": "label_key", "key": 2}]
    m.select([499])
    assert m.selected.tolist() == [499]


def test_map_positions_masks_and_floats(wire, coords):
    m = ScatterMap(coords)
    mask = np.zeros(500, bool)
    mask[[0, 250, 499]] = True
    m.select(mask)
    assert m.selected.tolist() == [0, 250, 499]
    m.select([3.0, 1.0])
    assert m.selected.tolist() == [1, 3]
    for bad, err in (([True, False], ValueError), ([2.5], ValueError), ([-1], IndexError),
                     ([500], IndexError), ([np.nan], ValueError), (["a"], ValueError)):
        with pytest.raises(err):
            m.select(bad)
        assert m.selected.tolist() == [1, 3]
    browser_says(m, {"type": "thumb", "id": "f", "index": 4.0})  # JSON may carry 4.0
    reply, _ = wire(m)[-1]
    assert reply["type"] == "error" and "no thumbnails" in reply["message"]  # index accepted


def test_gallery_page_from_the_browser_is_kept_in_range(wire, caplog):
    g = Gallery(describe=lambda idx: [{"index": int(i), "kind": "text", "text": "",
                                       "label": "", "source": ""} for i in idx], page_size=4)
    g.show(np.arange(10))
    browser_sets(g, page=10**9)
    assert g.page == 2 and [c["index"] for c in g.cards] == [8, 9]
    assert ("page", 2) in sent_state(g)  # the browser is told the page it is on
    browser_sets(g, page=-5)
    assert g.page == 0 and [c["index"] for c in g.cards] == [0, 1, 2, 3]
    with caplog.at_level(logging.ERROR, logger="workbench.widgets"):
        browser_sets(g, total=10**9, cards=[{"index": 99}])
    assert "cannot set 'total'" in caplog.text and "cannot set 'cards'" in caplog.text
    assert g.total == 10 and [c["index"] for c in g.cards] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="boolean mask"):
        Gallery(describe=lambda idx: [], n=10).show([True, False])


def test_off_main_thread_work_is_applied_on_the_main_loop_newest_first():
    from tornado.ioloop import IOLoop

    loop = IOLoop(make_current=False)
    started, release = threading.Event(), threading.Event()
    computed, applied = [], []

    def compute(k):
        computed.append((k, threading.current_thread() is threading.main_thread()))
        if k == 1:
            started.set()
            release.wait(10)
        return k * 10

    job = OffMainThread(compute, lambda r: applied.append(
        (r, threading.current_thread().name)), loop=loop)
    job.submit(1)
    assert started.wait(10)
    job.submit(2)
    job.submit(3)  # supersedes 2 before it starts, and 1 while it runs
    assert job.busy
    release.set()
    job._job.wait(10)
    assert applied == []  # results wait for the main thread's loop
    loop.add_callback(loop.stop)
    loop.start()
    assert applied == [(30, threading.main_thread().name)] and not job.busy
    assert [k for k, _ in computed] == [1, 3] and not any(main for _, main in computed)
    errors = []
    failing = OffMainThread(lambda: 1 / 0, applied.append, on_error=errors.append, loop=loop)
    failing.submit()
    failing.wait(10)  # on the main thread, wait also applies
    assert isinstance(errors[0], ZeroDivisionError) and not failing.busy
    job.close()
    failing.close()
    loop.close()
