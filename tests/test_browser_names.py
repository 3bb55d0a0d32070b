"""Cluster names on the map in a real JupyterLab, driven by headless Chromium: the coarse
names are drawn over the map (DOM text at their clusters' places), and zooming in with the
scroll wheel on the canvas shows the fine names instead."""

from __future__ import annotations

import pytest
from browser_conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_missing_reason,
    jupyter_lab,
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

#: The names drawn now: level and the visible labels' text.
SHOWN = """() => {
  const root = document.querySelector('.wb-map');
  const names = [...root.querySelectorAll('.wb-cluster-name')]
    .filter((el) => el.style.display !== 'none').map((el) => el.textContent);
  return { level: root.dataset.namesLevel, names };
}"""


def test_names_on_the_map_change_with_zoom(tmp_path):
    from playwright.sync_api import sync_playwright

    from workbench import Workbench

    wb = Workbench.demo(tmp_path / "project", background=False, layout="quick")
    fine, coarse = wb.cluster_names("fine"), wb.cluster_names("coarse")
    wb.close()
    assert len(coarse) < len(fine)
    source = ("from workbench import Workbench\n"
              "wb = Workbench.open('project', layout='quick')\n"
              "wb.show()")
    write_notebook(tmp_path / "names.ipynb", source)
    with jupyter_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1300})
        page = open_notebook(context, lab, "names.ipynb")
        canvas = page.locator(".wb-map canvas").first
        canvas.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => Number(document.querySelector('.wb-map').dataset.namesShown) > 0",
            timeout=60_000)
        zoomed_out = page.evaluate(SHOWN)
        assert zoomed_out["level"] == "coarse"
        assert zoomed_out["names"] and set(zoomed_out["names"]) <= set(coarse), zoomed_out
        # the text is the name itself (text, not markup), drawn over the canvas
        label = page.locator(".wb-map .wb-cluster-name.coarse").first
        assert label.evaluate("(el) => el.children.length") == 0
        box, area = canvas.bounding_box(), page.locator(".wb-map .wb-names").bounding_box()
        assert abs(box["x"] - area["x"]) < 3 and abs(box["width"] - area["width"]) < 3
        # scroll-wheel zoom on the canvas: the fine names
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        root = page.locator(".wb-map").first
        for _ in range(20):  # one notch at a time, until the map is zoomed in enough
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(300)
            if root.get_attribute("data-names-level") == "fine":
                break
        page.wait_for_function(
            "() => document.querySelector('.wb-map').dataset.namesLevel === 'fine'"
            " && Number(document.querySelector('.wb-map').dataset.namesShown) > 0",
            timeout=30_000)
        assert float(root.get_attribute("data-zoom")) >= 1.6
        zoomed_in = page.evaluate(SHOWN)
        assert zoomed_in["names"] and set(zoomed_in["names"]) <= set(fine), zoomed_in
        assert page.locator(".wb-map .wb-cluster-name.fine").count() == len(fine)
        # reset view: the coarse names again
        page.locator(".wb-map .wb-reset").first.click()
        page.wait_for_function(
            "() => document.querySelector('.wb-map').dataset.namesLevel === 'coarse'",
            timeout=30_000)
        browser.close()
