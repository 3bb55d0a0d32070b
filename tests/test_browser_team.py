"""Two annotators in two JupyterLab kernels on one project, driven by headless Chromium.

Each notebook opens the same project folder under its own annotator name and shows the
workbench. A lasso and a number key in one notebook reach the other's legend within two
seconds (no refresh: the session reads the log every ``LIVE_POLL_SECONDS``); an undo in the
second notebook takes back its own label only.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from browser_conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    jupyter_lab,
    lasso,
    run_all_cells,
    skip_without_chromium,
    write_notebook,
)

pytestmark = pytest.mark.browser

skip_without_chromium()


def notebook_source(annotator: str) -> str:
    return ("from workbench import Workbench\n"
            f"wb = Workbench.open('project', annotator={annotator!r}, layout='quick')\n"
            "wb.show()")


def open_notebook(context, lab, name: str):
    page = context.new_page()
    page.goto(lab.url(f"lab/tree/{name}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    run_all_cells(page, name)
    page.wait_for_function(
        "() => Number(document.querySelector('.wb-map')?.dataset.draws) > 0", timeout=60_000)
    return page


def lasso_and_key(page, key: str, frac) -> None:
    canvas = page.locator(".wb-map canvas").first
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    lasso(page, canvas.bounding_box(), frac=frac)
    page.wait_for_function(
        "() => !document.querySelector('.wb-map .wb-selcount').textContent.startsWith('0 ')",
        timeout=20_000)
    page.locator(".wb-map").first.focus()
    page.keyboard.press(key)


def human_labels(project: Path) -> dict[str, int]:
    """{annotator: items with a human label written by them and not undone}, from SQLite."""
    con = sqlite3.connect(project / "labels.sqlite")
    try:
        undone = {r[0] for r in con.execute(
            "SELECT target FROM actions WHERE kind = 'undo'")}
        out: dict[str, int] = {}
        for aid, who in con.execute("SELECT id, annotator FROM actions WHERE kind = 'assign' "
                                    "AND source = 'human'"):
            if aid in undone:
                continue
            n = con.execute("SELECT count(*) FROM items WHERE action_id = ?",
                            (aid,)).fetchone()[0]
            out[who] = out.get(who, 0) + n
        return out
    finally:
        con.close()


def test_two_annotators_see_each_others_labels_live(tmp_path):
    from playwright.sync_api import sync_playwright

    from workbench import Workbench

    Workbench.demo(tmp_path / "project", background=False, layout="quick").close()
    for who in ("ann", "bob"):
        write_notebook(tmp_path / f"{who}.ipynb", notebook_source(who))
    with jupyter_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1250})
        ann = open_notebook(context, lab, "ann.ipynb")
        bob = open_notebook(context, lab, "bob.ipynb")
        # ann names a class with key 1 (the first key past no classes creates one)
        lasso_and_key(ann, "1", (0.30, 0.30, 0.50, 0.50))
        ann.locator(".wb-map .wb-legend-row").first.wait_for(timeout=20_000)
        t0 = time.monotonic()
        bob.locator(".wb-map .wb-legend-row").first.wait_for(timeout=10_000)
        seconds = time.monotonic() - t0
        print(f"bob saw ann's label after {seconds:.2f} s")
        assert seconds < 2.0, f"bob saw ann's label after {seconds:.1f} s"
        # bob labels other points with the same class, then undoes: only bob's label goes
        lasso_and_key(bob, "1", (0.55, 0.55, 0.75, 0.75))
        deadline = time.monotonic() + 20
        while human_labels(tmp_path / "project").get("bob", 0) == 0 \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        before = human_labels(tmp_path / "project")
        assert before.get("ann", 0) > 0 and before.get("bob", 0) > 0, before
        bob.keyboard.press("Control+z")
        deadline = time.monotonic() + 20
        while human_labels(tmp_path / "project").get("bob", 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        after = human_labels(tmp_path / "project")
        assert after.get("bob", 0) == 0 and after.get("ann") == before["ann"], (before, after)
        browser.close()
