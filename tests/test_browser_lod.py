"""Level of detail in a real JupyterLab: a map over its point budget, zoomed and lassoed.

300,000 points and a budget of 50,000 (the ``MAP_POINT_BUDGET`` default overridden in the
notebook): the browser first draws an overview; zoomed into the dense middle it draws the
points of the view, points the overview did not have; a lasso selects every point inside
its polygon, drawn or not, exactly the set a numpy reference finds.

Needs /usr/bin/chromium (``make system-deps``); skipped without it, except under CI=true.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from browser_conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    accept_kernel_dialog,
    jupyter_lab,
    lasso,
    skip_without_chromium,
)
from matplotlib.path import Path as MplPath

pytestmark = pytest.mark.browser

N, BUDGET = 300_000, 50_000

skip_without_chromium()

CELLS = [
    # 0: a dense blob in the middle, a sparse background; the budget set low
    "import json, numpy as np\n"
    "import workbench._config as config\n"
    f"config.MAP_POINT_BUDGET = {BUDGET}\n"
    "from workbench.widgets import ScatterMap\n"
    "xy = np.load('xy.npy')\n"
    "m = ScatterMap(xy, height=500)\n"
    "m.update(human=np.load('labels.npy'))\n"
    "m",
    # 1: what the kernel sent last, for the test to compare with the page
    "json.dump({'loaded': int(m.loaded.size), 'sum': int(m.loaded.astype(np.uint64).sum() % 2**32),\n"
    "           'new': int(np.setdiff1d(m.loaded, m.overview).size),\n"
    "           'overview': int(m.overview.size)}, open('loaded.json', 'w'))",
    # 2: the lasso as the kernel resolved it
    "np.savez('lasso.npz', polygon=m.lasso_polygon, selected=m.selected)",
]


def make_data(root: Path) -> None:
    rng = np.random.default_rng(7)
    dense = rng.normal(scale=0.08, size=(N - 50_000, 2))
    sparse = rng.uniform(-0.95, 0.95, size=(50_000, 2))
    xy = np.clip(np.vstack([dense, sparse]), -1, 1).astype(np.float32)
    labels = np.zeros(N, np.int64)
    labels[rng.choice(N, 2_000, replace=False)] = rng.integers(1, 4, 2_000)
    np.save(root / "xy.npy", xy)
    np.save(root / "labels.npy", labels)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nbformat.write(nb, root / "lod.ipynb")


def run_cell(page, k: int, timeout_s: float = 120) -> None:
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(k)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    deadline = time.monotonic() + timeout_s
    page.wait_for_timeout(300)
    while time.monotonic() < deadline:
        text = prompt.inner_text()
        if "[" in text and "*" not in text and any(ch.isdigit() for ch in text):
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"cell {k} did not finish")


def data(page, name: str) -> str:
    return page.locator(".wb-map").first.get_attribute(f"data-{name}") or ""


def test_zoom_loads_new_points_and_a_lasso_selects_exactly(tmp_path):
    from playwright.sync_api import sync_playwright

    make_data(tmp_path)
    with jupyter_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        console = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(lab.url("lab/tree/lod.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
        accept_kernel_dialog(page, wait_ms=8000)
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
            "?.getAttribute('data-status') === 'idle'", timeout=120_000)
        run_cell(page, 0)
        accept_kernel_dialog(page)
        page.wait_for_function(
            "() => document.querySelector('.wb-map')?.dataset.loadedKind === 'overview'"
            " && Number(document.querySelector('.wb-map').dataset.draws) > 0", timeout=120_000)
        assert 0 < int(data(page, "loaded")) <= BUDGET
        assert int(data(page, "total")) == N
        # zooming in brings detail, not bigger points
        assert data(page, "point-scale") == "constant"
        overview_sum = data(page, "position-sum")

        # zoom into the dense middle until the view holds every point of it
        canvas = page.locator(".wb-map canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        for _ in range(30):  # a notch at a time, each time letting the camera settle
            page.mouse.wheel(0, -100)
            page.wait_for_timeout(1200)
            if data(page, "loaded-kind") == "view" and data(page, "complete") == "true":
                break
        page.wait_for_function(
            "() => { const d = document.querySelector('.wb-map').dataset;"
            " return d.loadedKind === 'view' && d.complete === 'true'; }", timeout=60_000)
        page.wait_for_timeout(1500)  # let the last answer land and draw
        run_cell(page, 1)
        kernel = json.loads((tmp_path / "loaded.json").read_text())
        assert data(page, "loaded-kind") == "view", console[-10:]
        assert int(data(page, "loaded")) == kernel["loaded"]
        assert data(page, "position-sum") == str(kernel["sum"]) != overview_sum
        # the rectangle asked for is the visible one: centred where we zoomed, and as
        # tall as the first view (2 x camera distance 1.08) divided by the zoom
        x0, y0, x1, y1 = (float(v) for v in data(page, "view-rect").split(","))
        assert abs(x0 + x1) < 0.02 and abs(y0 + y1) < 0.02
        assert (y1 - y0) * float(data(page, "zoom")) == pytest.approx(2.16, rel=0.1)
        assert kernel["new"] > 0, "the zoomed view drew no point the overview lacked"
        assert int(data(page, "total")) == kernel["loaded"]  # complete: all points in it
        assert int(data(page, "view-to-draw-ms")) > 0

        # zoom back out: the overview again, and lasso over far more than is drawn
        page.locator(".wb-map .wb-reset").first.click()
        page.wait_for_function(
            "() => document.querySelector('.wb-map').dataset.loadedKind === 'overview'",
            timeout=60_000)
        page.wait_for_timeout(500)
        lasso(page, box, frac=(0.35, 0.35, 0.65, 0.65))
        page.wait_for_function(
            "() => Number(document.querySelector('.wb-map .wb-selcount')"
            ".textContent.split(' ')[0]) > 0", timeout=60_000)
        run_cell(page, 2)
        got = np.load(tmp_path / "lasso.npz")
        xy = np.load(tmp_path / "xy.npy")
        ref = np.flatnonzero(MplPath(got["polygon"]).contains_points(xy.astype(float)))
        np.testing.assert_array_equal(got["selected"], ref)
        shown = int(page.locator(".wb-map .wb-selcount").first.inner_text().split()[0])
        assert shown == ref.size > int(data(page, "loaded"))  # more than is drawn
        browser.close()
