"""The README's screenshots, taken from the quickstart's own flow as a person sees it.

    .venv/bin/python docs/screenshots/capture.py

Starts JupyterLab on a copy of ``notebooks/quickstart.ipynb`` (the UMAP map, as a user gets
it), runs every cell in headless Chromium (``make system-deps``), and writes, beside this
file, ``workbench.png``: the app after the quickstart's last cell (every digit named, the
review pages done, the map coloured by the workbench's labels, the status line with its
accuracy estimate). The browser tests take their own screenshots elsewhere.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

from browser_conftest import (  # noqa: E402 - the helpers live with the browser tests
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_missing_reason,
    jupyter_lab,
    run_all_cells,
)


def main() -> None:
    from playwright.sync_api import sync_playwright

    missing = chromium_missing_reason()
    if missing:
        raise SystemExit(missing)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copy(REPO / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")
        with jupyter_lab(root) as lab, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1250}).new_page()
            page.goto(lab.url("lab/tree/quickstart.ipynb"))
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            run_all_cells(page, "quickstart.ipynb", timeout_ms=900_000)
            page.wait_for_function(
                "() => Number(document.querySelector('.wb-map')?.dataset.draws) > 0",
                timeout=60_000)
            page.wait_for_timeout(2000)  # the last recolour
            page.evaluate("() => document.querySelector('.workbench-app').scrollIntoView()")
            page.wait_for_timeout(500)
            clip = page.locator(".jp-NotebookPanel").first.bounding_box()
            page.screenshot(path=str(HERE / "workbench.png"), clip=clip)
            browser.close()
    print(f"wrote {HERE / 'workbench.png'}")


if __name__ == "__main__":
    main()
