"""The widgets in a real JupyterLab, driven by headless Chromium through Playwright.

A JupyterLab server is started on a free port in a temporary folder holding a copy of the
quickstart notebook; Chromium opens it and runs all cells. Then, with the mouse and the
keyboard as a person would: a lasso on the map, a number key, the labels found in the
project's SQLite log; a hover that shows a thumbnail; a class named like an HTML tag shown
as text with nothing run. Screenshots go to ``$WORKBENCH_SHOTS`` (default a folder in the
system's temp dir): a test run never rewrites the README's images, which
``docs/screenshots/capture.py`` takes from the quickstart's own flow.

Needs /usr/bin/chromium (``make system-deps``). Skipped without it, except under CI=true,
where a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
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
)

pytestmark = pytest.mark.browser

REPO = Path(__file__).parent.parent
SHOTS = Path(os.environ.get("WORKBENCH_SHOTS")
             or Path(tempfile.gettempdir()) / "workbench-browser-shots")
XSS = "<img src=x onerror=alert(1)>"

skip_without_chromium()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")
    # The quick map only: the lasso must land on a map that does not move under it.
    with jupyter_lab(root, env={"WORKBENCH_LAYOUT": "quick"}) as server:
        yield server


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1250})
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.console = []
        page.on("console", lambda m: page.console.append(f"{m.type}: {m.text}"))
        page.goto(lab.url("lab/tree/quickstart.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
            "?.getAttribute('data-status') === 'idle'", timeout=120_000)
        try:
            run_all_cells(page, "quickstart.ipynb")
            page.wait_for_selector(".wb-map canvas", timeout=60_000)
            page.wait_for_function(
                "() => Number(document.querySelector('.wb-map')?.dataset.draws) > 0",
                timeout=60_000)
        except Exception:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(lab.root / "failure.png"))
            raise RuntimeError(
                "the quickstart notebook did not show a drawn map; console:\n"
                + "\n".join(page.console[-30:]) + f"\nserver log:\n{lab.log.read_text()[-3000:]}"
            ) from None
        yield page
        context.close()
        browser.close()


def _screenshot_app(page, name):
    """The app as a person sees it: the notebook scrolled to the panel's top."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => document.querySelector('.workbench-app').scrollIntoView()")
    page.wait_for_timeout(300)
    clip = page.locator(".jp-NotebookPanel").first.bounding_box()
    page.screenshot(path=str(SHOTS / name), clip=clip)


def _map_box(page):
    canvas = page.locator(".wb-map canvas").first
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    return canvas.bounding_box()


def _selected(page) -> int:
    text = page.locator(".wb-map .wb-selcount").first.inner_text()
    return int(text.split()[0])


def _wait_selected(page, timeout=20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _selected(page)
        if n > 0:
            return n
        page.wait_for_timeout(200)
    return 0


def _last_assign(project: Path):
    con = sqlite3.connect(project / "labels.sqlite")
    try:
        row = con.execute(
            "SELECT a.id, a.class_id, a.source FROM actions a WHERE a.kind = 'assign' "
            "ORDER BY a.id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        name = con.execute("SELECT name FROM actions WHERE kind IN ('create_class', "
                           "'rename_class') AND class_id = ? ORDER BY id DESC LIMIT 1",
                           (row[1],)).fetchone()[0]
        n = con.execute("SELECT count(*) FROM items WHERE action_id = ?", (row[0],)).fetchone()[0]
        return {"id": row[0], "name": name, "source": row[2], "n": n}
    finally:
        con.close()


def _wait_last_kind(project: Path, kind: str, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        con = sqlite3.connect(project / "labels.sqlite")
        try:
            row = con.execute("SELECT kind FROM actions ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            con.close()
        if row and row[0] == kind:
            return True
        time.sleep(0.2)
    return False


def test_lasso_and_number_key_write_labels_to_the_log(page, lab):
    project = lab.root / "projects" / "digits"
    before = _last_assign(project)
    # start from no selection (the notebook's last cell selected a queue)
    page.get_by_role("button", name="clear selection").click()
    page.wait_for_function(
        "() => document.querySelector('.wb-map .wb-selcount').textContent.startsWith('0 ')",
        timeout=20_000)
    box = _map_box(page)
    # the lower middle of the map: part of the digits, not all of them
    lasso(page, box, frac=(0.40, 0.70, 0.56, 0.95))
    n = _wait_selected(page)
    assert n > 0, "the lasso selected nothing"
    # the selection reached Python: the gallery lists it
    page.wait_for_function(
        "() => document.querySelector('.wb-gallery .wb-gtitle')?.textContent"
        f" === 'Selection: {n} items'",
        timeout=20_000)
    key1 = page.locator(".wb-map .wb-legend-row").first.locator(".wb-name").inner_text()
    seq = page.locator(".wb-map").first.get_attribute("data-seq")
    page.locator(".wb-map").first.focus()
    page.keyboard.press("1")
    deadline = time.monotonic() + 30
    last = _last_assign(project)
    while (last is None or last == before) and time.monotonic() < deadline:
        time.sleep(0.2)
        last = _last_assign(project)
    assert last is not None and last != before, (
        "no label reached the SQLite log; focus: "
        + page.evaluate("() => document.activeElement?.className") + "; panel error: "
        + page.locator(".wb-panel").first.inner_text()[-300:] + "\nconsole:\n"
        + "\n".join(page.console[-15:]))
    assert last == {**last, "name": key1, "source": "human", "n": n}
    # the map recoloured from the patch (a new draw with a newer sequence number)
    page.wait_for_function(
        f"() => document.querySelector('.wb-map').dataset.seq !== '{seq}'", timeout=20_000)
    # the notebook cells were not turned into markdown headings by the key press
    assert page.locator(".jp-Notebook .jp-CodeCell").count() >= 6
    # Ctrl+Z undoes, Shift+Ctrl+Z redoes: both are actions in the log
    page.keyboard.press("Control+z")
    assert _wait_last_kind(project, "undo"), "Ctrl+Z did not reach the log"
    page.keyboard.press("Control+Shift+z")
    assert _wait_last_kind(project, "redo"), "Shift+Ctrl+Z did not reach the log"
    _screenshot_app(page, "workbench.png")


def test_points_grow_with_zoom_below_the_budget(page):
    """Every point is drawn below the budget: zooming in enlarges them (above it, the
    kernel sends the view's detail instead and they keep their size, test_browser_lod)."""
    root = page.locator(".wb-map").first
    assert root.get_attribute("data-point-scale") == "asinh"
    assert root.get_attribute("data-loaded-kind") is None  # no level of detail here


def test_hover_shows_the_thumbnail(page):
    box = _map_box(page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    hover = page.locator(".wb-map .wb-hover img.wb-thumb")
    # walk a spiral from the centre until the cursor is over a point
    found = False
    for r in range(0, 200, 6):
        for k in range(8):
            import math

            a = k * math.pi / 4 + r / 40
            page.mouse.move(cx + r * math.cos(a), cy + r * math.sin(a))
            page.wait_for_timeout(60)
            if hover.count() and hover.first.is_visible():
                found = True
                break
        if found:
            break
    assert found, "no thumbnail appeared while hovering the map"
    page.wait_for_function(
        "() => { const i = document.querySelector('.wb-map .wb-hover img.wb-thumb');"
        " return i && i.complete && i.naturalWidth > 0 && i.src.startsWith('blob:'); }",
        timeout=10_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".wb-map .wb-canvas-wrap").first.screenshot(path=str(SHOTS / "hover.png"))


def test_class_name_with_html_is_shown_as_text(page, lab):
    page.locator(".wb-panel input[placeholder='class name']").fill(XSS)
    page.get_by_role("button", name="new class").click()
    legend = page.locator(".wb-map .wb-legend .wb-name", has_text=XSS)
    legend.wait_for(timeout=20_000)
    assert legend.inner_text() == XSS
    # label a few points with it, so it also shows on gallery cards
    box = _map_box(page)
    lasso(page, box, frac=(0.45, 0.45, 0.55, 0.55))
    if _wait_selected(page) > 0:
        rows = page.locator(".wb-map .wb-legend-row")
        key = next(i + 1 for i in range(rows.count())
                   if rows.nth(i).locator(".wb-name").inner_text() == XSS)
        if key <= 9:  # a number key labels with it
            page.locator(".wb-map").first.focus()
            page.keyboard.press(str(key))
        else:  # past key 9 (the quickstart names ten digits): pick it, then label
            page.locator(".wb-panel select").first.select_option(label=XSS)
            page.get_by_role("button", name="label as picked").click()
        page.locator(".wb-gallery .wb-lab", has_text=XSS).first.wait_for(timeout=20_000)
    page.wait_for_timeout(500)
    assert page.dialogs == []
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("() => document.body.innerHTML.includes('&lt;img src=x onerror')")
