"""Selections (issue 17): the lasso audit on a planted graph, the duplicates and outliers
queues on planted data, union / intersection / difference as exact sets (from Python and
from the panel's combine dropdown with a lasso as the browser sends it), saved selections
that survive a reopen, an export subset that the API and the CLI write alike, and the
threshold search whose count is the number of items at or above it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import comm
import numpy as np
import polars as pl
import pytest
from _comm import RecordingComm

from workbench import Workbench
from workbench.export import ExportError, export_project
from workbench.items import from_vectors
from workbench.learn.audit import audit_selection
from workbench.neighbors import KnnGraph, outlier_scores


def planted_graph() -> KnnGraph:
    """Two groups of 10 (0-9, 10-19), every item's 4 neighbours inside its own group, and
    item 20 with neighbours 0, 1 (group A) and 11, 12 (group B)."""
    rows = []
    for i in range(20):
        base = 0 if i < 10 else 10
        rows.append([base + (i - base + d) % 10 for d in (1, 2, 3, 4)])
    rows.append([0, 1, 11, 12])
    idx = np.array(rows, np.int64)
    return KnnGraph(idx, np.full(idx.shape, 0.9, np.float32))


def test_audit_flags_the_planted_suspect_and_the_planted_missed_items():
    g = planted_graph()
    # a lasso over group A that took in item 10 (group B) and left out items 3 and 7
    selected = [i for i in range(10) if i not in (3, 7)] + [10]
    a = audit_selection(g, selected)
    assert a.suspects.tolist() == [10]          # all 4 neighbours outside
    assert a.suspect_share.tolist() == [1.0]
    # 7 (neighbours 8, 9, 0, 1): all inside; 3 (4, 5, 6, 7): 3 of 4; item 20: 2 of 4 (not
    # "mostly"); B items: 1 of 4 at most
    assert a.missed.tolist() == [7, 3]
    assert a.missed_share.tolist() == [1.0, 0.75]
    # a mask gives the same; a lower bar takes in item 20 as well
    mask = np.zeros(g.n, bool)
    mask[selected] = True
    assert audit_selection(g, mask).missed.tolist() == a.missed.tolist()
    assert 20 in audit_selection(g, selected, fraction=0.4).missed
    # a selection of exactly group A is clean
    clean = audit_selection(g, range(10))
    assert clean.suspects.size == 0 and clean.missed.size == 0
    with pytest.raises(IndexError, match="21"):
        audit_selection(g, [21])


def vectors_project(tmp_path, n=120, d=16, seed=0):
    """Items from vectors: three blobs, row 7 copied exactly into row 50, item 99 far out."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 2  # cosine within a blob about 0.8
    x = centres[np.arange(n) % 3] + rng.normal(size=(n, d))
    x[50] = x[7]
    far = rng.normal(size=d)
    basis = np.linalg.qr(centres.T)[0]
    x[99] = far - basis @ (basis.T @ far)  # at right angles to every blob
    items, vectors = from_vectors(x.astype(np.float32))
    return Workbench.create(tmp_path / "vec", items, vectors=vectors, background=False,
                            layout="quick")


def test_duplicates_find_the_planted_pair_and_outliers_the_planted_outlier(tmp_path):
    wb = vectors_project(tmp_path)
    try:
        groups = wb.duplicates()
        assert [g.tolist() for g in groups] == [[7, 50]]
        out = wb.outliers(5)
        assert out[0] == 99
        scores = outlier_scores(wb.graph)
        assert np.all(np.diff(scores[out]) <= 0)           # most isolated first
        assert scores[out[-1]] >= np.sort(scores)[-5]      # and exactly the top 5
        assert wb.outliers(0).size == 0
    finally:
        wb.close()


def test_combine_gives_the_exact_sets():
    a, b = [1, 2, 3, 5], [3, 4, 5, 5]
    assert Workbench.combine(a, b, "replace").tolist() == [3, 4, 5]
    assert Workbench.combine(a, b, "union").tolist() == [1, 2, 3, 4, 5]
    assert Workbench.combine(a, b, "intersection").tolist() == [3, 5]
    assert Workbench.combine(a, b, "difference").tolist() == [1, 2]
    with pytest.raises(ValueError, match="xor"):
        Workbench.combine(a, b, "xor")


def lasso_from_browser(app, items) -> None:
    """The selection trait set as the front end sets it after a lasso (binary buffer)."""
    data = np.unique(np.asarray(items)).astype(np.uint32).tobytes()
    app.map.comm.handle_msg({"content": {"data": {"method": "update",
                                                  "state": {"selection": None},
                                                  "buffer_paths": [["selection"]]}},
                             "buffers": [memoryview(data)]})


def test_app_select_and_the_combine_dropdown_give_exact_sets(app):
    panel = app.selections
    a, b = np.arange(0, 60), np.arange(40, 100)
    app.select(a)
    assert app.select(b, mode="union").tolist() == list(range(100))
    assert app.selection.tolist() == list(range(100))
    panel.select(a)
    assert panel.select(b, "intersection").tolist() == list(range(40, 60))
    panel.select(a)
    assert panel.select(b, "difference").tolist() == list(range(40))
    # the dropdown applies to the next lasso, once
    app.selection = a
    panel.combine.value = "intersection"
    lasso_from_browser(app, b)
    assert app.selection.tolist() == list(range(40, 60))
    assert app.gallery.items.tolist() == list(range(40, 60))
    assert panel.combine.value == "replace"
    lasso_from_browser(app, b)
    assert app.selection.tolist() == b.tolist()
    # a search (more like this) subtracted from a lasso
    lasso_from_browser(app, a)
    panel.combine.value = "difference"
    like = app.session.more_like_this(a, k=30)
    app.more_like_this(k=30)
    assert app.selection.tolist() == np.setdiff1d(a, like).tolist()
    # a gallery drop is never combined: it takes the one card out
    panel.combine.value = "union"
    app.controls.run({"type": "drop", "index": int(app.selection[0])})
    assert app.selection.tolist() == np.setdiff1d(a, like)[1:].tolist()


def test_audit_in_the_panel_counts_and_fixes_the_selection(app):
    wb, panel = app.session, app.selections
    truth = wb.items["truth"].cast(pl.Int64).to_numpy()
    threes = np.flatnonzero(truth == 3)
    lasso = np.union1d(threes[10:], np.flatnonzero(truth == 8)[:5])
    lasso_from_browser(app, lasso)
    audit = wb.audit_selection(lasso)
    assert panel.info.value == (f"audit: {audit.suspects.size} of {lasso.size} selected "
                                f"probably not like the rest, {audit.missed.size} outside "
                                "probably belong")
    assert audit.suspects.size >= 3 and audit.missed.size >= 5
    assert set(truth[audit.suspects[:3]]) == {8}          # the planted eights, first
    assert np.isin(threes[:10], audit.missed).sum() >= 8  # the threes left out
    panel.audit.click()
    assert app.gallery.items.tolist() == [*audit.suspects, *audit.missed]
    panel.drop_suspects.click()
    assert app.selection.tolist() == np.setdiff1d(lasso, audit.suspects).tolist()
    panel.audit.click()
    again = wb.audit_selection(app.selection)
    panel.add_missed.click()
    assert app.selection.tolist() == np.union1d(
        np.setdiff1d(lasso, audit.suspects), again.missed).tolist()
    assert app.panel.error.value == ""


def test_duplicates_queue_shows_a_group_and_marks_its_copies_after_asking(tmp_path,
                                                                          monkeypatch):
    from workbench.widgets import WorkbenchApp

    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    wb = vectors_project(tmp_path)
    app = WorkbenchApp(wb)
    try:
        panel = app.selections
        panel.duplicates.click()
        assert app.selection.tolist() == [7, 50]
        assert app.gallery.title.startswith("Duplicates: group 1 of 1, 2 items")
        panel.mark_copies.click()   # asks first
        assert wb.labels.state.human.max() == -1
        assert panel.mark_copies.description == "confirm: mark 1"
        panel.mark_copies.click()
        human = wb.labels.state.human
        assert wb.labels.classes[int(human[50])] == "duplicate" and human[7] == -1
        assert (human >= 0).sum() == 1
        panel.outliers.click()
        assert app.gallery.items[0] == 99
    finally:
        app.close()
        wb.close()


def test_threshold_count_is_the_number_of_items_at_or_above_it(app):
    wb, panel = app.session, app.selections
    app.selection = [0, 10, 20]
    panel.score_selection.click()
    unit = wb.vectors / np.linalg.norm(wb.vectors, axis=1, keepdims=True)
    q = unit[[0, 10, 20]].mean(axis=0)
    sims = unit @ (q / np.linalg.norm(q))
    for t in (0.9, 0.8, 0.6):
        panel.threshold.value = t
        assert panel.count.value == f"{int((sims >= t - 1e-6).sum()):,} items"
    panel.select_above.click()
    expect = np.flatnonzero(sims >= 0.6 - 1e-6)
    assert app.selection.tolist() == expect.tolist()
    assert app.gallery.items[0] == expect[np.argmax(sims[expect])]
    assert wb.search_above(0.6, items=[0, 10, 20]).tolist() == panel.above().tolist()
    with pytest.raises(ValueError, match="text encoder"):
        wb.similarity(query="a three")


def test_saved_selections_persist_across_reopen_and_make_rules(demo_folder, tmp_path):
    folder = tmp_path / "digits"
    shutil.copytree(demo_folder, folder)
    wb = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    assert wb.save_selection("threes", [5, 3, 3, 40]) == 4
    assert wb.save_selection("few", wb.items["id"][:2].to_list()) == 2
    wb.close()
    wb = Workbench.open(folder, background=False, layout="quick")
    try:
        assert wb.saved_selection("threes").tolist() == [3, 5, 40]
        table = wb.saved_selections
        assert table["name"].to_list() == ["threes", "few"]
        assert table["items"].to_list() == [4, 2] and table["annotator"][0] == "ann"
        saved = json.loads((folder / "selections.json").read_text())
        assert saved["selections"]["few"]["ids"] == wb.items["id"][:2].to_list()
        rid = wb.add_rule("region", "three", items=wb.saved_selection("threes"))
        ids, votes = wb.rule_votes()
        assert np.flatnonzero(votes[:, ids.tolist().index(rid)] >= 0).tolist() == [3, 5, 40]
        wb.delete_selection("few")
        assert wb.saved_selections["name"].to_list() == ["threes"]
        with pytest.raises(KeyError, match=r"'few'.*saved: 'threes'"):
            wb.saved_selection("few")
        with pytest.raises(ValueError, match="select items first"):
            wb.save_selection("empty", [])
    finally:
        wb.close()


def test_export_subset_api_equals_cli(demo_folder, tmp_path):
    folder = tmp_path / "digits"
    shutil.copytree(demo_folder, folder)
    wb = Workbench.open(folder, background=False, layout="quick")
    try:
        truth = wb.items["truth"].cast(pl.Int64).to_numpy()
        wb.label(np.flatnonzero(truth == 1)[:30], "one")
        wb.label(np.flatnonzero(truth == 2)[:30], "two")
        subset = np.concatenate([np.flatnonzero(truth == 1)[:10], np.arange(5)])
        wb.save_selection("part", subset)
        api = wb.export(tmp_path / "api.csv", selection="part")
        by_items = wb.export(tmp_path / "items.csv", items=subset)
        everything = wb.export(tmp_path / "all.csv")
        with pytest.raises(KeyError, match="'nope'"):
            wb.export(tmp_path / "bad.csv", items=["nope"])
        with pytest.raises(ExportError, match="'nope'"):
            export_project(wb.project, tmp_path / "bad.csv", items=["nope"])
    finally:
        wb.close()
    r = subprocess.run([sys.executable, "-m", "workbench", "export", str(folder),
                        str(tmp_path / "cli.csv"), "--selection", "part"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    a, b, c = (pl.read_csv(p) for p in (api, tmp_path / "cli.csv", by_items))
    assert a.equals(b) and a.equals(c)
    ids = wb.items["id"].to_numpy()
    labelled = set(np.flatnonzero(truth == 1)[:30]) | set(np.flatnonzero(truth == 2)[:30])
    expect = [ids[i] for i in sorted(set(subset.tolist()) & labelled)]
    assert a["id"].to_list() == expect and set(a["label"]) <= {"one", "two"}
    assert pl.read_csv(everything).height == 60
    meta = json.loads((tmp_path / "api.csv.meta.json").read_text())
    assert meta["subset"] == {"items": np.unique(subset).size} and meta["rows"] == len(expect)
    r = subprocess.run([sys.executable, "-m", "workbench", "export", str(folder),
                        str(tmp_path / "cli2.csv"), "--selection", "none-such"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "none-such" in r.stderr


def test_a_damaged_selections_file_is_named_and_the_app_still_opens(app):
    from workbench.widgets import WorkbenchApp

    wb = app.session
    (wb.project.path / "selections.json").write_text('{"version": 1, "selections": [')
    with pytest.raises(ValueError, match=r"selections.json.*damaged"):
        wb.saved_selections  # noqa: B018
    again = WorkbenchApp(wb)
    try:
        assert "selections.json" in again.selections.info.value
        assert again.selections.saved.options == ()
    finally:
        again.close()
