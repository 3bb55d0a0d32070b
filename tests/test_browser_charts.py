"""The filter charts in a real JupyterLab, driven by headless Chromium: a person lassoes
part of the map, drags across the file-size histogram, and the map fades what the brush
leaves out (its count of shown points is numpy's count of the brushed bins), the gallery
keeps only the selected items inside the range, a new lasso takes no faded point, and
"clear" brings every point back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from browser_conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_missing_reason,
    jupyter_lab,
    lasso,
    write_notebook,
)
from test_browser_team import open_notebook

pytestmark = pytest.mark.browser

_missing = chromium_missing_reason()
if _missing:
    import os

    if os.environ.get("CI") == "true":
        raise RuntimeError(f"browser tests must run under CI=true: {_missing}")
    pytest.skip(_missing, allow_module_level=True)

# The app shows its filter charts once app.py constructs them; until then, beside the map.
SOURCE = """from workbench import Workbench
from workbench.widgets.charts import FilterCharts
import ipywidgets as w
wb = Workbench.open('project', layout='quick')
app = wb.show()
filters = getattr(app, 'filters', None)
if filters is None:
    filters = FilterCharts(app)
    view = w.VBox([app.panel, filters.beside(app.map), app.gallery])
else:
    view = app
view"""


def _number(page, selector: str, key: str) -> int:
    return int(page.locator(selector).first.get_attribute(f"data-{key}"))


def _cards(page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all(
        ".wb-gallery .wb-card", "cards => cards.map(c => c.dataset.index)")]


def _wait_selected(page, previous: str) -> int:
    page.wait_for_function(
        "(p) => { const t = document.querySelector('.wb-map .wb-selcount').textContent;"
        " return !t.startsWith('0 ') && t !== p; }", arg=previous, timeout=20_000)
    return int(page.locator(".wb-map .wb-selcount").first.inner_text().split()[0])


def test_brush_a_histogram_to_filter_the_map_and_the_gallery(tmp_path):
    from playwright.sync_api import sync_playwright

    from workbench import Workbench

    wb = Workbench.demo(tmp_path / "project", background=False, layout="quick")
    sizes = np.array([Path(s).stat().st_size for s in wb.items["source"]], float)
    wb.close()
    edges = np.histogram_bin_edges(sizes, bins=20)
    # The drag below runs from 41% to 69% of the chart's width: bins 8 to 13.
    lo, hi = edges[8], edges[14]
    inside = (sizes >= lo) & (sizes <= hi)
    expected = int(inside.sum())
    assert 0 < expected < sizes.size
    write_notebook(tmp_path / "charts.ipynb", SOURCE)
    with jupyter_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1300})
        page = open_notebook(context, lab, "charts.ipynb")
        hist = page.locator('.wb-charts svg[data-column="file_size"]').first
        hist.wait_for(timeout=60_000)
        assert _number(page, ".wb-charts", "kept") == sizes.size
        # a lasso over the middle of the map: all of it in the gallery, nothing hidden
        canvas = page.locator(".wb-map canvas").first
        canvas.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        lasso(page, canvas.bounding_box(), frac=(0.2, 0.2, 0.8, 0.8))
        selected = _wait_selected(page, "0 selected")
        page.wait_for_function(
            "(n) => Number(document.querySelector('.wb-gallery').dataset.total) === n",
            arg=selected, timeout=20_000)
        before = canvas.screenshot()
        draws = _number(page, ".wb-map", "draws")

        # drag across the histogram
        hist.scroll_into_view_if_needed()
        box = hist.bounding_box()
        y = box["y"] + box["height"] * 0.6
        page.mouse.move(box["x"] + box["width"] * 0.41, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.69, y, steps=10)
        page.mouse.up()
        page.wait_for_function(
            "([n, d]) => Number(document.querySelector('.wb-charts').dataset.kept) === n"
            " && Number(document.querySelector('.wb-map').dataset.kept) === n"
            " && Number(document.querySelector('.wb-map').dataset.draws) > d",
            arg=[expected, draws], timeout=30_000)
        assert page.locator(".wb-charts .wb-csum").first.inner_text() == \
            f"{expected:,} of {sizes.size:,} items pass the filters"
        canvas.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        assert canvas.screenshot() != before, "the map did not fade the filtered points"
        # the gallery: only the selected items inside the range, the rest counted as hidden
        page.wait_for_function(
            "() => Number(document.querySelector('.wb-gallery').dataset.hidden) > 0",
            timeout=20_000)
        shown, hidden = _number(page, ".wb-gallery", "total"), _number(page, ".wb-gallery", "hidden")
        assert shown + hidden == selected and shown > 0
        cards = _cards(page)
        assert cards and inside[cards].all()

        # a new lasso over the same region takes no faded point
        lasso(page, canvas.bounding_box(), frac=(0.25, 0.25, 0.75, 0.75))
        again = _wait_selected(page, f"{selected} selected")
        page.wait_for_function(
            "(n) => Number(document.querySelector('.wb-gallery').dataset.total) === n"
            " && document.querySelector('.wb-gallery').dataset.hidden === '0'",
            arg=again, timeout=20_000)
        assert 0 < again <= expected
        assert inside[_cards(page)].all()

        # "clear" brings every point back
        page.locator('.wb-charts .wb-chart[data-column="file_size"] .wb-cclear').click()
        page.wait_for_function(
            "(n) => Number(document.querySelector('.wb-charts').dataset.kept) === n"
            " && Number(document.querySelector('.wb-map').dataset.kept) === n",
            arg=int(sizes.size), timeout=30_000)
        browser.close()
