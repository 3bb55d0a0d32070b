"""In the browser: the workbench map against jupyter-scatter, same points, same run.

A real JupyterLab server and headless Chromium (Debian's ``chromium`` through Playwright)
run a generated notebook that shows the same N points twice: in the workbench's map
(``ScatterMap``) and in jupyter-scatter (``jscatter.Scatter``), the peer. Measured for each:

* time to first paint: from pressing Shift+Enter on the cell that shows the widget to the
  first screenshot of its canvas with the points drawn (the same screenshot probe for
  both widgets, so neither needs instrumenting);
* relabel of 10,000 points: the bytes that reach the browser over the kernel websocket
  while the cell runs, and the time until the canvas shows the new colours;
* lasso to Python (workbench only): from releasing the mouse after a Shift+drag lasso to
  the kernel's acknowledgement that the selection arrived (a round trip, so an upper bound).

Medians over ``--repeats`` relabels. The last line printed is the headline JSON (one line
per size); the full figures go to ``benchmarks/results/browser-<n>.json``.

    python benchmarks/browser.py --n 100000 --n 1000000
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from browser_conftest import (  # noqa: E402 - the shared JupyterLab/Chromium helpers
    CHROMIUM,
    CHROMIUM_ARGS,
    accept_kernel_dialog,
    chromium_missing_reason,
    jupyter_lab,
)

RELABEL = 10_000
N_CLASSES = 10


def make_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) float32 in [-1, 1] from a seeded mixture of 10 Gaussians, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.6, 0.6, size=(N_CLASSES, 2))
    labels = rng.integers(0, N_CLASSES, n)
    xy = centres[labels] + rng.normal(scale=0.12, size=(n, 2))
    return np.clip(xy, -1, 1).astype(np.float32), labels.astype(np.int64)


def bench_notebook(folder: Path) -> Path:
    cells = [
        # 0: data and the relabel, shared by both widgets
        "import numpy as np, pandas as pd\n"
        "xy = np.load('xy.npy'); labels = np.load('labels.npy')\n"
        f"changed = np.random.default_rng(1).choice(len(xy), {RELABEL}, replace=False)\n"
        "df = pd.DataFrame({'x': xy[:, 0], 'y': xy[:, 1],\n"
        "                   'label': pd.Categorical([f'c{k}' for k in labels])})\n"
        "round_ = 0",
        # 1: the workbench map
        "from workbench.widgets import ScatterMap\n"
        "m = ScatterMap(xy, height=500)\n"
        "m.update(human=labels + 1)\n"
        "m.observe(lambda c: m.send({'type': 'ack', 'n': int(m.selected.size)}), 'selection')\n"
        "m",
        # 2: the peer
        "import jscatter\n"
        "s = jscatter.Scatter(data=df, x='x', y='y', color_by='label', height=500,\n"
        "                     x_scale=(-1, 1), y_scale=(-1, 1))\n"
        "s.show()",
        # 3: relabel in the workbench map: 10k points to another class
        "round_ += 1\n"
        "codes = labels + 1\n"
        "codes[changed] = (labels[changed] + round_) % 10 + 1\n"
        "m.update(human=codes)",
        # 4: relabel in the peer: the same 10k points, the documented way (new data)
        "new = ((labels + 0) % 10).copy(); new[changed] = (labels[changed] + round_) % 10\n"
        "df['label'] = pd.Categorical([f'c{k}' for k in new], categories=df['label'].cat.categories)\n"
        "s.data(df)",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    path = folder / "bench.ipynb"
    nbformat.write(nb, path)
    return path


class Wire:
    """Counts bytes the page receives over its websockets, with time stamps."""

    def __init__(self, page):
        self.frames: list[tuple[float, int, bytes | str]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._got))

    def _got(self, payload):
        data = payload if isinstance(payload, (bytes, str)) else payload.get("payload", b"")
        size = len(data.encode() if isinstance(data, str) else data)
        self.frames.append((time.perf_counter(), size, data))

    def bytes_between(self, t0: float, t1: float) -> int:
        return sum(s for t, s, _ in self.frames if t0 <= t <= t1)


def _painted(png: bytes, *, background_tol: int = 40) -> int:
    """Number of pixels that differ clearly from the image's most common colour."""
    from PIL import Image

    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)
    values, counts = np.unique(im, axis=0, return_counts=True)
    bg = values[counts.argmax()]
    return int((np.abs(im - bg).sum(axis=1) > background_tol).sum())


def _cell(page, k):
    return page.locator(".jp-Notebook .jp-CodeCell").nth(k)


def run_cell(page, k) -> float:
    """Select code cell ``k`` and press Shift+Enter; return the time of the key press."""
    cell = _cell(page, k)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-prompt").click()
    t0 = time.perf_counter()
    page.keyboard.press("Shift+Enter")
    return t0


def wait_cell_done(page, k, timeout_s=600):
    deadline = time.monotonic() + timeout_s
    prompt = _cell(page, k).locator(".jp-InputArea-prompt")
    while time.monotonic() < deadline:
        text = prompt.inner_text()
        if "[" in text and "*" not in text and any(ch.isdigit() for ch in text):
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"cell {k} did not finish in {timeout_s} s")


def wait_painted(page, canvas, t0, *, min_pixels=500, timeout_s=600) -> float:
    """Seconds from ``t0`` to the first screenshot of ``canvas`` with points drawn."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if canvas.count() and canvas.first.is_visible():
            try:
                png = canvas.first.screenshot(timeout=30_000)
            except Exception:  # resized or re-attached while we looked
                png = None
            if png is not None and _painted(png) >= min_pixels:
                return time.perf_counter() - t0
        page.wait_for_timeout(50)
    raise TimeoutError("the canvas was never painted")


def wait_changed(page, canvas, before: bytes, t0, *, min_pixels=50, timeout_s=300) -> float:
    """Seconds from ``t0`` until the canvas differs from ``before`` (the recolour)."""
    from PIL import Image

    ref = np.asarray(Image.open(io.BytesIO(before)).convert("RGB")).astype(int)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        png = canvas.first.screenshot(timeout=30_000)
        now = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        if now.shape == ref.shape and int((np.abs(now - ref).sum(axis=2) > 40).sum()) >= min_pixels:
            return time.perf_counter() - t0
        page.wait_for_timeout(30)
    raise TimeoutError("the canvas never changed after the relabel")


def measure(n: int, *, repeats: int, keep: Path | None) -> dict:
    xy, labels = make_points(n)
    root = Path(tempfile.mkdtemp(prefix=f"wb-browser-{n}-"))
    np.save(root / "xy.npy", xy)
    np.save(root / "labels.npy", labels)
    bench_notebook(root)
    from playwright.sync_api import sync_playwright

    out: dict = {"benchmark": "browser", "n": n, "relabel_points": RELABEL}
    with jupyter_lab(root) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        wire = Wire(page)
        page.goto(lab.url("lab/tree/bench.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
        accept_kernel_dialog(page, wait_ms=8000)
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
            "?.getAttribute('data-status') === 'idle'", timeout=120_000)
        run_cell(page, 0)
        accept_kernel_dialog(page)
        wait_cell_done(page, 0)

        ours = _cell(page, 1).locator(".wb-map canvas")
        t0 = run_cell(page, 1)
        out["first_paint_s"] = wait_painted(page, ours, t0)
        wait_cell_done(page, 1)
        out["first_paint_bytes"] = wire.bytes_between(t0, time.perf_counter())

        peer = _cell(page, 2).locator("canvas")
        t0 = run_cell(page, 2)
        out["first_paint_s_peer"] = wait_painted(page, peer, t0)
        wait_cell_done(page, 2)
        out["first_paint_bytes_peer"] = wire.bytes_between(t0, time.perf_counter())

        rel, rel_peer, b, b_peer, js_ms = [], [], [], [], []
        for _ in range(repeats):
            for k, canvas, times, sizes in ((3, ours, rel, b), (4, peer, rel_peer, b_peer)):
                canvas.first.scroll_into_view_if_needed()
                before = canvas.first.screenshot()
                t0 = run_cell(page, k)
                times.append(wait_changed(page, canvas, before, t0))
                wait_cell_done(page, k)
                if k == 3:
                    js_ms.append(float(_cell(page, 1).locator(".wb-map").first
                                       .get_attribute("data-patch-to-draw-ms") or "nan"))
                page.wait_for_timeout(300)  # late frames of this relabel still count
                sizes.append(wire.bytes_between(t0, time.perf_counter()))
        out["relabel_to_recolour_s"] = statistics.median(rel)
        out["relabel_to_recolour_s_peer"] = statistics.median(rel_peer)
        out["relabel_to_recolour_s_all"] = rel
        out["relabel_to_recolour_s_peer_all"] = rel_peer
        out["relabel_patch_to_draw_ms"] = statistics.median(js_ms)
        out["relabel_bytes"] = int(statistics.median(b))
        out["relabel_bytes_peer"] = int(statistics.median(b_peer))

        # lasso to Python: Shift+drag on our map, wait for the kernel's "ack" frame
        ours.first.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        box = ours.first.bounding_box()
        lat = []
        for r in range(repeats):
            f = 0.30 + 0.05 * r
            x0, y0 = box["x"] + box["width"] * f, box["y"] + box["height"] * f
            x1, y1 = box["x"] + box["width"] * (1 - f), box["y"] + box["height"] * (1 - f)
            page.keyboard.down("Shift")
            page.mouse.move(x0, y0)
            page.mouse.down()
            px, py = x0, y0
            for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 2)):
                for t in range(1, 9):
                    page.mouse.move(px + (x - px) * t / 8, py + (y - py) * t / 8)
                    page.wait_for_timeout(15)
                px, py = x, y
            start = len(wire.frames)
            t0 = time.perf_counter()
            page.mouse.up()
            page.keyboard.up("Shift")
            deadline = time.monotonic() + 60
            got = None
            while got is None and time.monotonic() < deadline:
                for t, _, data in wire.frames[start:]:
                    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
                    if '"ack"' in text:
                        got = t
                        break
                page.wait_for_timeout(10)
            if got is not None:
                lat.append(got - t0)
            page.keyboard.press("Escape")  # deselect before the next lasso
            page.wait_for_timeout(500)
        out["lasso_to_python_s"] = statistics.median(lat) if lat else None
        out["device"] = "headless Chromium, SwiftShader (software WebGL), no GPU"
        if keep is not None:
            ours.first.scroll_into_view_if_needed()
            page.screenshot(path=str(keep))
        browser.close()
    shutil.rmtree(root, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, action="append",
                    help="number of points (repeatable); default 100000")
    ap.add_argument("--repeats", type=int, default=3, help="relabels and lassos per widget")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    reason = chromium_missing_reason()
    if reason:
        sys.exit(f"cannot run the browser benchmark: {reason}")
    sizes = args.n or [100_000]
    args.out.mkdir(parents=True, exist_ok=True)
    heads = []
    for n in sizes:
        res = measure(n, repeats=args.repeats, keep=None)
        (args.out / f"browser-{n}.json").write_text(json.dumps(res, indent=1))
        print(f"n={n:>9,}  first paint {res['first_paint_s']:.2f} s (peer "
              f"{res['first_paint_s_peer']:.2f} s)  relabel {res['relabel_bytes']:,} B "
              f"(peer {res['relabel_bytes_peer']:,} B)  recolour "
              f"{res['relabel_to_recolour_s']:.2f} s (peer "
              f"{res['relabel_to_recolour_s_peer']:.2f} s)  lasso->python "
              f"{res['lasso_to_python_s']}")
        heads.append({k: res[k] for k in (
            "benchmark", "n", "first_paint_s", "first_paint_s_peer", "relabel_bytes",
            "relabel_bytes_peer", "relabel_to_recolour_s", "lasso_to_python_s")})
    for h in heads:
        print(json.dumps(h))


if __name__ == "__main__":
    main()
