"""Level of detail of the map: samples that keep the map's look, views, lassos over all points.

The arithmetic (:mod:`workbench.widgets._lod`) against plain numpy and matplotlib references,
and the map widget above its budget through an in-memory comm: what a browser receives
(positions, coordinates, codes) and what its view and lasso messages do.
"""

from __future__ import annotations

import numpy as np
import pytest
from _comm import browser_says
from matplotlib.path import Path as MplPath

import workbench._config as config
from workbench.widgets import ScatterMap
from workbench.widgets._lod import Detail, ViewAnswers, in_polygon, in_rect, sample


def blobs(n=60_000, seed=0):
    """A dense blob, a sparse scatter far from it, and classes (one rare: 5 points)."""
    rng = np.random.default_rng(seed)
    dense = rng.normal(scale=0.05, size=(n - 500, 2))
    sparse = rng.uniform(0.5, 0.95, size=(500, 2))
    xy = np.clip(np.vstack([dense, sparse]), -1, 1).astype(np.float32)
    classes = rng.integers(1, 4, n).astype(np.uint16)
    rare = rng.choice(n - 500, 5, replace=False)
    classes[rare] = 7
    return xy, classes, rare


def numpy_in_polygon(xy, poly):
    """The reference: matplotlib's even-odd point-in-polygon over every point."""
    return np.flatnonzero(MplPath(np.asarray(poly, float)).contains_points(xy.astype(float)))


def test_sample_keeps_classes_labels_and_sparse_regions_within_the_budget():
    xy, classes, rare = blobs()
    labelled = np.zeros(len(xy), bool)
    labelled[np.random.default_rng(1).choice(len(xy), 700, replace=False)] = True
    budget = 5_000
    idx = sample(xy, budget, groups=[classes], must=labelled, per_group=50)
    assert idx.size <= budget and idx.size > 0.9 * budget
    assert np.all(np.diff(idx) > 0)
    assert set(classes[idx]) == set(classes)  # every class, the rare one whole
    assert set(rare) <= set(idx)
    assert set(np.flatnonzero(labelled)) <= set(idx)  # every labelled point
    sparse = np.arange(len(xy) - 500, len(xy))
    assert set(sparse) <= set(idx)  # a sparse region keeps all its points
    # dense: thinned out (~5% of the blob kept)
    assert np.isin(np.arange(len(xy) - 500), idx).mean() < 0.1
    # below the budget: everything, as before
    np.testing.assert_array_equal(sample(xy[:100], budget), np.arange(100))


def test_sample_thins_labelled_points_that_do_not_fit():
    xy, classes, _ = blobs(20_000)
    must = np.ones(len(xy), bool)
    idx = sample(xy, 1_000, groups=[classes], must=must, must_share=0.5)
    assert idx.size <= 1_000


def test_view_returns_exactly_the_points_in_the_rectangle_up_to_the_budget():
    xy, classes, _ = blobs()
    codes = {"human": np.zeros(len(xy), np.uint16), "machine": classes}
    detail = Detail(xy, 2_000, margin=0.0)
    rect = (0.6, 0.6, 0.9, 0.9)  # sparse: fewer than the budget, all of them
    pos, grown, total = detail.view(rect, codes, np.zeros(0, np.int64))
    x, y = xy[:, 0], xy[:, 1]
    ref = np.flatnonzero((x >= 0.6) & (x <= 0.9) & (y >= 0.6) & (y <= 0.9))
    np.testing.assert_array_equal(pos, ref)
    assert total == ref.size and grown == rect
    rect = (-0.05, -0.05, 0.05, 0.05)  # dense: a sample of the points inside
    pos, _, total = detail.view(rect, codes, np.zeros(0, np.int64))
    inside = in_rect(xy, rect)
    assert total == inside.size > 2_000
    assert pos.size <= 2_000 and set(pos) <= set(inside)
    # the margin grows the rectangle on every side
    wide = Detail(xy, 2_000, margin=0.25)
    assert wide.view((0.6, 0.6, 0.9, 0.9), codes, np.zeros(0, np.int64))[1] == \
        pytest.approx((0.525, 0.525, 0.975, 0.975))


@pytest.mark.parametrize("shape", ["lasso", "star", "box"])
def test_polygon_selection_equals_the_reference_over_all_points(shape):
    rng = np.random.default_rng(3)
    xy = rng.uniform(-1, 1, size=(300_000, 2)).astype(np.float32)
    t = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    if shape == "lasso":  # a wobbly freeform loop
        poly = np.c_[0.6 * np.cos(t) * (1 + 0.2 * np.sin(7 * t)), 0.5 * np.sin(t)]
    elif shape == "star":  # self-intersecting: the even-odd rule leaves the core out
        k = np.arange(5)
        poly = np.c_[0.8 * np.cos(4 * np.pi * k / 5), 0.8 * np.sin(4 * np.pi * k / 5)]
    else:
        poly = np.array([[-0.3, -0.2], [0.4, -0.2], [0.4, 0.35], [-0.3, 0.35]])
    got = in_polygon(xy, poly)
    np.testing.assert_array_equal(got, numpy_in_polygon(xy, poly))
    if shape == "star":
        assert got.size > 0 and not np.isin(in_rect(xy, (-0.05, -0.05, 0.05, 0.05)), got).any()


def test_stale_view_requests_are_dropped():
    answers = ViewAnswers(2)
    assert answers.fresh(1) and answers.fresh(3)
    assert not answers.fresh(2) and not answers.fresh(3)
    assert answers.dropped == 2
    for k in range(3):
        answers.put((k,), np.array([k]))
    assert answers.get((0,)) is None and answers.get((2,))[0] == 2


def test_a_map_above_its_budget_sends_samples_and_answers_views(wire, monkeypatch):
    monkeypatch.setattr(config, "MAP_POINT_BUDGET", 3_000)
    xy, classes, rare = blobs(30_000)
    m = ScatterMap(xy)
    assert m.budget == 3_000 and m.coords == b""  # the coordinates stay in the kernel
    m.update(human=np.where(np.arange(30_000) < 40, classes, 0), machine=classes)
    browser_says(m, {"type": "ready"})
    (first, first_bufs), (msg, bufs) = wire(m)[-2:]
    # above twice the budget: a quick tenth first, then the whole overview
    assert first["coarse"] and not msg["coarse"]
    assert 0 < first["count"] <= 300 and len(first_bufs[0]) == 4 * first["count"]
    assert msg["type"] == "points" and msg["kind"] == "overview" and msg["total"] == 30_000
    pos = np.frombuffer(bufs[0], np.uint32)
    assert 0 < pos.size <= 3_000 and msg["count"] == pos.size
    np.testing.assert_array_equal(np.frombuffer(bufs[1], np.float32).reshape(-1, 2), xy[pos])
    codes = dict(zip(msg["fields"], bufs[2:]))
    np.testing.assert_array_equal(np.frombuffer(codes["machine"], np.uint16), classes[pos])
    assert set(range(40)) <= set(pos) and set(rare) <= set(pos)
    # a view: the points of the (grown) rectangle, up to the budget
    browser_says(m, {"type": "view", "seq": 1, "rect": [0.6, 0.6, 0.9, 0.9]})
    msg, bufs = wire(m)[-1]
    assert msg["kind"] == "view" and msg["seq"] == 1 and msg["complete"]
    np.testing.assert_array_equal(np.frombuffer(bufs[0], np.uint32), in_rect(xy, msg["rect"]))
    np.testing.assert_array_equal(m.loaded, in_rect(xy, msg["rect"]))
    # an older request arriving late is not answered
    sent = len(wire(m))
    browser_says(m, {"type": "view", "seq": 0, "rect": [0.1, 0.1, 0.2, 0.2]})
    assert len(wire(m)) == sent
    browser_says(m, {"type": "view", "seq": 2, "rect": [0.2, 0.1, 0.1, 0.2]})  # x0 > x1
    assert wire(m)[-1][0]["type"] == "error"
    # a relabel: positions and codes, whatever is loaded
    human = m.codes("human")
    human[[5, 29_999]] = 2
    m.update(human=human)
    msg, bufs = wire(m)[-1]
    assert msg["type"] == "patch"
    np.testing.assert_array_equal(np.frombuffer(bufs[0], np.uint32), [5, 29_999])
    # a relabel bigger than a view: reload
    m.update(human=np.full(30_000, 3))
    assert wire(m)[-1][0]["type"] == "reload"


def test_a_lasso_above_the_budget_selects_every_point_inside(wire):
    xy, _, _ = blobs(40_000)
    m = ScatterMap(xy, budget=1_000)
    acks = []
    m.observe(lambda c: acks.append(m.selected.size), "selection")
    poly = [[-0.08, -0.08], [0.06, -0.1], [0.09, 0.07], [-0.05, 0.05]]
    browser_says(m, {"type": "lasso", "polygon": np.ravel(poly).tolist()})
    ref = numpy_in_polygon(xy, poly)
    assert ref.size > 1_000  # more than could ever be drawn
    np.testing.assert_array_equal(m.selected, ref)
    assert acks == [ref.size]
    # Alt subtracts, Ctrl adds
    box = [[-0.02, -0.02], [0.02, -0.02], [0.02, 0.02], [-0.02, 0.02]]
    browser_says(m, {"type": "lasso", "polygon": np.ravel(box).tolist(), "remove": True})
    np.testing.assert_array_equal(m.selected, np.setdiff1d(ref, numpy_in_polygon(xy, box)))
    browser_says(m, {"type": "lasso", "polygon": np.ravel(box).tolist(), "merge": True})
    np.testing.assert_array_equal(m.selected, ref)
    # points the filter charts hide are left out
    hidden = np.zeros(40_000, np.uint8)
    hidden[ref[:100]] = 1
    m.update(filtered=hidden)
    browser_says(m, {"type": "lasso", "polygon": np.ravel(poly).tolist()})
    np.testing.assert_array_equal(m.selected, ref[100:])
    browser_says(m, {"type": "lasso", "polygon": [0, 0, 1, 1]})
    assert wire(m)[-1][0]["type"] == "error"


def test_new_coordinates_above_the_budget_reload_the_views(wire):
    xy, _, _ = blobs(5_000)
    m = ScatterMap(xy, budget=1_000)
    browser_says(m, {"type": "ready"})
    moved = (xy * 0.5).astype(np.float32)
    m.coords = moved.tobytes()
    assert m.coords == b"" and wire(m)[-1][0]["type"] == "reload"
    browser_says(m, {"type": "ready"})
    bufs = wire(m)[-1][1]
    pos = np.frombuffer(bufs[0], np.uint32)
    np.testing.assert_array_equal(np.frombuffer(bufs[1], np.float32).reshape(-1, 2), moved[pos])


def test_below_the_budget_nothing_changes(wire):
    xy, _, _ = blobs(2_000)
    m = ScatterMap(xy, budget=5_000)
    assert len(m.coords) == xy.nbytes
    browser_says(m, {"type": "ready"})
    assert wire(m)[-1][0]["type"] == "codes"
    browser_says(m, {"type": "lasso", "polygon": [0, 0, 1, 0, 1, 1]})
    assert wire(m)[-1][0]["type"] == "error" and m.selected.size == 0
