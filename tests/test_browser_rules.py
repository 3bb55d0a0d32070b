"""The rules panel in a real JupyterLab, driven by headless Chromium: a person types a
keyword rule and its class, clicks "add rule", sees its coverage count in the panel's table,
and colours the map by the rule's votes (the map redraws, its pixels change, and the rule is
in the project's SQLite log as one action)."""

from __future__ import annotations

import sqlite3

import pytest
from browser_conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    jupyter_lab,
    skip_without_chromium,
    write_notebook,
)
from test_browser_team import open_notebook

pytestmark = pytest.mark.browser

skip_without_chromium()


def test_type_a_keyword_rule_see_its_coverage_and_the_map_recolour(tmp_path):
    from playwright.sync_api import sync_playwright

    from workbench import Workbench

    Workbench.demo(tmp_path / "project", background=False, layout="quick").close()
    source = ("from workbench import Workbench\n"
              "wb = Workbench.open('project', layout='quick')\n"
              "wb.show()")
    write_notebook(tmp_path / "rules.ipynb", source)
    with jupyter_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1300})
        page = open_notebook(context, lab, "rules.ipynb")
        panel = page.locator(".wb-rules").first
        panel.scroll_into_view_if_needed()
        panel.get_by_placeholder("words, comma-separated").fill("3")
        panel.get_by_placeholder("column (default: the text)").fill("truth")
        panel.get_by_placeholder("votes for class").fill("digit 3")
        panel.get_by_placeholder("votes for class").press("Enter")  # sync the last field
        panel.get_by_role("button", name="add rule").click()
        # 183 of the 1,797 digits are threes: the rule's coverage shows in its row.
        cell = panel.locator(".wb-coverage").first
        cell.wait_for(timeout=30_000)
        assert cell.inner_text().startswith("183 (10.2%)"), cell.inner_text()
        canvas = page.locator(".wb-map canvas").first
        canvas.scroll_into_view_if_needed()
        before = canvas.screenshot()
        draws = int(page.locator(".wb-map").first.get_attribute("data-draws"))
        panel.get_by_role("button", name="colour map").click()
        page.wait_for_function(
            "(n) => document.querySelector('.wb-map select.wb-mode').value === 'rule'"
            " && Number(document.querySelector('.wb-map').dataset.draws) > n",
            arg=draws, timeout=30_000)
        page.wait_for_timeout(500)
        after = canvas.screenshot()
        assert after != before, "the map did not recolour"
        browser.close()
    con = sqlite3.connect(tmp_path / "project" / "labels.sqlite")
    kinds = [k for (k,) in con.execute("SELECT kind FROM actions ORDER BY id")]
    con.close()
    assert kinds == ["create_class", "add_rule"]  # one action: the class and the rule
