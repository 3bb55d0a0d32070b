"""The filter charts beside the map (no browser): every bin and bar count is numpy's count of
the same column, the filter's mask is what a range or a set of bars keeps (and both
combined), the map fades exactly the items the filter hides, the gallery pages through only
the items it keeps, the charts follow labels, and clearing brings everything back."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _comm import RecordingComm, browser_says
from ipywidgets import comm

from workbench.session import Workbench
from workbench.widgets import WorkbenchApp
from workbench.widgets import _contract as contract
from workbench.widgets.charts import FilterCharts

JS = Path(__file__).resolve().parent.parent / "js"


@pytest.fixture
def demo(demo_folder, tmp_path, monkeypatch):
    """The digits demo's app with its filter charts, as the app constructs them."""
    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    folder = tmp_path / "digits"
    shutil.copytree(demo_folder, folder)
    wb = Workbench.open(folder, background=False, layout="quick")
    app = WorkbenchApp(wb)
    charts = FilterCharts(app)
    charts.wait()
    yield app, charts
    charts.close()
    app.close()
    wb.close()


@pytest.fixture
def small(tmp_path, monkeypatch):
    """A project of 90 vector items with imported columns: a float score (with two missing),
    a 1-5 rating, a site of three values and a name per item."""
    from workbench.items import from_vectors

    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    rng = np.random.default_rng(3)
    items, vectors = from_vectors(rng.normal(size=(90, 8)).astype(np.float32))
    score = rng.normal(10.0, 3.0, 90)
    score[[5, 40]] = np.nan
    items = items.with_columns(
        pl.Series("score", score).fill_nan(None),
        pl.Series("rating", rng.integers(1, 6, 90)),
        pl.Series("site", rng.choice(["north", "south", "east"], 90)),
        pl.Series("name", [f"item number {k}" for k in range(90)]),
    )
    wb = Workbench.create(tmp_path / "p", items, vectors=vectors, background=False,
                          layout="quick")
    app = WorkbenchApp(wb)
    charts = FilterCharts(app)
    charts.wait()
    yield app, charts, score
    charts.close()
    app.close()
    wb.close()


def chart(charts, name):
    return next(c for c in charts.charts if c["name"] == name)


def test_demo_bars_and_histograms_are_numpys_counts(demo):
    app, charts = demo
    truth = app.session.items["truth"].to_numpy()
    sizes = np.array([Path(s).stat().st_size for s in app.session.items["source"]], float)
    assert charts.columns() == ["truth", "file_size", "prediction confidence",
                                "label source", "annotator", "predicted class"]
    # ids and paths have one value per item; every digit is in one folder, of one kind
    assert charts.skipped == {"id": "one value per item", "source": "one value per item",
                              "kind": "one value", "folder": "one value"}
    bars = chart(charts, "truth")
    values, counts = np.unique(truth, return_counts=True)
    assert bars["categories"] == [str(v) for v in range(10)] == values.tolist()
    assert bars["counts"] == bars["kept"] == counts.tolist()
    hist = chart(charts, "file_size")
    edges = np.histogram_bin_edges(sizes, bins=20)
    assert np.allclose(hist["edges"], edges)
    assert hist["counts"] == np.histogram(sizes, bins=edges)[0].tolist()
    assert sum(hist["counts"]) == app.session.n == charts.total == charts.kept == 1797
    # before any label: every item is "none", nobody annotated, no prediction
    assert chart(charts, "label source")["counts"] == [0, 0, 0, 1797]
    assert chart(charts, "annotator")["categories"] == [None]
    assert chart(charts, "prediction confidence")["missing"] == 1797


def test_a_range_and_bars_make_the_mask_and_the_kept_counts(demo):
    app, charts = demo
    truth = app.session.items["truth"].to_numpy()
    sizes = np.array([Path(s).stat().st_size for s in app.session.items["source"]], float)
    edges = np.array(chart(charts, "file_size")["edges"])
    lo, hi = edges[8], edges[14]
    charts.set_range("file_size", lo, hi)
    in_range = (sizes >= lo) & (sizes <= hi)
    assert np.array_equal(charts.mask, in_range) and charts.kept == in_range.sum()
    charts.set_categories("truth", ["3", "8"])
    keep = in_range & np.isin(truth, ["3", "8"])
    assert np.array_equal(charts.mask, keep) and 0 < charts.kept == keep.sum() < 1797 // 5
    # each chart: all items per bin, and over them those the two filters keep
    assert chart(charts, "file_size")["kept"] == np.histogram(sizes[keep], bins=edges)[0].tolist()
    bars = chart(charts, "truth")
    assert bars["kept"] == [int((truth[keep] == str(d)).sum()) for d in range(10)]
    assert bars["chosen"] == ["3", "8"] and chart(charts, "file_size")["range"] == [lo, hi]
    # the map fades exactly what the filters hide; the gallery pages through what they keep
    assert np.array_equal(app.map.codes("filtered"), (~keep).astype(np.uint8))
    app.selection = np.arange(300)
    assert app.gallery.items.tolist() == np.flatnonzero(keep[:300]).tolist()
    assert app.gallery.total + app.gallery.hidden == 300 and app.gallery.hidden > 0
    assert charts.keep(np.arange(300)).tolist() == app.gallery.items.tolist()
    charts.clear("truth")
    assert np.array_equal(charts.mask, in_range)
    charts.clear()
    assert charts.mask.all() and charts.kept == 1797
    assert not app.map.codes("filtered").any()
    assert app.gallery.total == 300 and app.gallery.hidden == 0


def test_the_browser_brushes_toggles_and_clears_through_messages(demo):
    app, charts = demo
    truth = app.session.items["truth"].to_numpy()
    browser_says(charts, {"type": "toggle", "column": "truth", "category": "7"})
    browser_says(charts, {"type": "toggle", "column": "truth", "category": "1"})
    assert np.array_equal(charts.mask, np.isin(truth, ["7", "1"]))
    browser_says(charts, {"type": "toggle", "column": "truth", "category": "7"})
    assert np.array_equal(charts.mask, truth == "1")
    edges = chart(charts, "file_size")["edges"]
    browser_says(charts, {"type": "brush", "column": "file_size", "lo": edges[0],
                          "hi": edges[10]})
    assert chart(charts, "file_size")["range"] == [edges[0], edges[10]]
    browser_says(charts, {"type": "clear", "column": None})
    assert charts.mask.all()
    # refused: named, answered with an error, nothing changed
    sent = charts.comm.sent
    said = []
    for bad in ({"type": "brush", "column": "truth", "lo": 0, "hi": 1},
                {"type": "brush", "column": "file_size", "lo": 5, "hi": float("nan")},
                {"type": "brush", "column": "file_size", "lo": True, "hi": 9},
                {"type": "toggle", "column": "truth", "category": "eleven"},
                {"type": "toggle", "column": "nope", "category": "1"},
                {"type": "drop", "column": "truth"}):
        before = len(sent)
        browser_says(charts, bad)
        errors = [d["content"]["message"] for _t, d, _b in sent[before:]
                  if d.get("method") == "custom" and d["content"].get("type") == "error"]
        assert len(errors) == 1, bad
        said.append(errors[0])
        assert charts.mask.all()
    assert "chart 'truth' is a bar chart: it takes categories" in said[0]
    assert "two finite numbers" in said[1] and "two finite numbers" in said[2]
    assert "chart 'truth' has no bar 'eleven'" in said[3]
    assert "no chart 'nope'" in said[4] and "'brush', 'toggle', 'clear'" in said[5]


def test_python_errors_name_the_chart_and_what_it_takes(demo):
    _app, charts = demo
    with pytest.raises(ValueError, match=r"chart 'truth' is a bar chart: it takes categories"):
        charts.set_range("truth", 0, 1)
    with pytest.raises(ValueError, match=r"chart 'truth' has no bar 'eleven'; its bars are"):
        charts.set_categories("truth", ["eleven"])
    with pytest.raises(ValueError, match=r"no chart 'id'.*not charted: one value per item"):
        charts.set_categories("id", ["x"])
    with pytest.raises(ValueError, match="lo <= hi"):
        charts.set_range("file_size", 900, 800)
    assert charts.mask.all()


def test_labels_and_predictions_update_the_derived_charts(demo):
    app, charts = demo
    wb = app.session
    truth = wb.items["truth"].to_numpy()
    for digit in ("0", "1", "2"):
        wb.label(np.flatnonzero(truth == digit)[:6], f"digit {digit}")
    app.refresh()
    charts.wait()
    assert wb.predictions is not None
    source = chart(charts, "label source")
    human = 18
    predicted = int((wb.predictions.label >= 0).sum()) - human  # human labels win
    assert source["counts"] == [human, 0, predicted, 1797 - human - predicted]
    assert chart(charts, "annotator")["categories"] == [wb.annotator, None]
    assert chart(charts, "annotator")["counts"] == [human, 1797 - human]
    conf = np.asarray(wb.predictions.confidence, float)
    hist = chart(charts, "prediction confidence")
    assert hist["edges"] == np.linspace(0, 1, 21).tolist()
    assert hist["counts"] == np.histogram(conf[np.isfinite(conf)], bins=hist["edges"])[0].tolist()
    pred = chart(charts, "predicted class")
    assert pred["categories"] == ["digit 0", "digit 1", "digit 2", None]
    ids = list(wb.labels.classes)
    assert pred["counts"][:3] == [int((wb.predictions.label == c).sum()) for c in ids]
    # a filter on a derived column follows the labels: keep the human-labelled items
    charts.set_categories("label source", ["human"])
    assert np.array_equal(charts.mask, wb.labels.state.human >= 0)
    wb.label(np.flatnonzero(truth == "3")[:4], "digit 3")
    app.refresh()
    charts.wait()
    assert charts.kept == 22 and np.array_equal(charts.mask, wb.labels.state.human >= 0)


def test_imported_numbers_categories_and_missing_values(small):
    app, charts, score = small
    items = app.session.items
    assert charts.columns()[:3] == ["score", "rating", "site"]
    assert charts.skipped["name"] == "90 distinct values"
    hist = chart(charts, "score")
    finite = score[np.isfinite(score)]
    assert np.allclose(hist["edges"], np.histogram_bin_edges(finite, bins=20))
    assert hist["counts"] == np.histogram(finite, bins=hist["edges"])[0].tolist()
    assert hist["missing"] == 2
    # whole numbers spanning fewer than 20: one bin per number
    rating = items["rating"].to_numpy()
    r = chart(charts, "rating")
    assert r["edges"] == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    assert r["counts"] == [int((rating == v).sum()) for v in range(1, 6)]
    charts.set_range("score", 8.0, 12.0)
    with np.errstate(invalid="ignore"):
        keep = (score >= 8) & (score <= 12)  # NaN: outside any range
    assert np.array_equal(charts.mask, keep) and chart(charts, "score")["missing_kept"] == 0
    charts.set_range("rating", 3.5, 5.5)
    charts.set_categories("site", ["north"])
    keep &= (rating >= 4) & (items["site"].to_numpy() == "north")
    assert np.array_equal(charts.mask, keep)
    assert chart(charts, "site")["kept"][chart(charts, "site")["categories"].index("north")] \
        == keep.sum()
    assert np.array_equal(app.map.codes("filtered"), (~keep).astype(np.uint8))


def test_the_filtered_field_travels_as_a_patch(demo):
    app, charts = demo
    sent = app.map.comm.sent
    before = len(sent)
    charts.set_categories("truth", ["0", "1", "2", "3", "4", "5", "6", "7", "8"])
    msgs = [d["content"] for _t, d, _b in sent[before:] if d.get("method") == "custom"]
    assert [m["type"] for m in msgs] == ["patch"] and msgs[0]["field"] == "filtered"
    buffers = next(b for _t, d, b in sent[before:] if d.get("method") == "custom")
    hidden = np.frombuffer(buffers[0], np.uint32)
    truth = app.session.items["truth"].to_numpy()
    assert hidden.tolist() == np.flatnonzero(truth == "9").tolist()  # 174 nines, no more


def test_the_front_end_follows_the_message_table():
    text = (JS / "charts.js").read_text()
    sent = set(re.findall(r"send\(\{\s*type:\s*'(\w+)'", text))
    assert sent == set(contract.CHART_MESSAGES)
    assert not re.findall(r"model\.set\('(\w+)'", text) and not contract.CHART_BROWSER_SETS
    read = set(re.findall(r"model\.get\('(\w+)'\)", text))
    assert read <= set(FilterCharts.class_trait_names(sync=True))
    assert "filtered: Uint8Array" in (JS / "scatter.js").read_text()
    assert contract.CODE_FIELDS["filtered"] == np.uint8


def test_a_key_labels_only_the_items_the_filters_keep(demo_folder, tmp_path, monkeypatch):
    # A selection made before brushing (or by a search) can hold faded points: a number
    # key labels only what the person sees.
    import shutil

    import comm
    from _comm import RecordingComm, browser_says

    from workbench.session import Workbench
    from workbench.widgets import WorkbenchApp

    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    shutil.copytree(demo_folder, tmp_path / "digits")
    wb = Workbench.open(tmp_path / "digits", background=False, layout="quick")
    app = WorkbenchApp(wb)
    try:
        truth = wb.items["truth"].to_numpy()
        app.selection = np.arange(40)
        app.filters.set_categories("truth", ["3"])
        app.panel.class_name.value = "three"
        browser_says(app.map, {"type": "label_key", "key": 1})
        labelled = np.flatnonzero(wb.labels.state.human >= 0)
        assert labelled.tolist() == [i for i in range(40) if truth[i] == "3"]
        app.label("three", items=[0])  # items named from Python are labelled as given
        assert wb.labels.state.human[0] >= 0
    finally:
        app.close()
        wb.close()
