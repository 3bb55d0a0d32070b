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

Above the map's point budget (``MAP_POINT_BUDGET``, 1M) the workbench map draws samples
(level of detail; above twice the budget a quick tenth of the overview first, then all of it:
``overview_drawn_s``) and measures besides: the zoomed-in repaint with full detail (mouse-wheel
notches into a dense region until the view holds every point of it: from the last notch to
those points drawn), the lasso's exactness (the kernel's selection against matplotlib's
point-in-polygon over all points), the kernel's memory (RSS) and the page's JavaScript heap
(CDP). The peer goes last there, so that its time, or its failure, is recorded without
stopping the rest.

Medians over ``--repeats`` relabels. The last line printed is the headline JSON (one line
per size); the full figures go to ``benchmarks/results/browser-<n>.json``.

    python benchmarks/browser.py --n 100000 --n 1000000
"""

from __future__ import annotations

import argparse
import contextlib
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
        # 5: the lasso's exactness and the kernel's memory
        "import json, resource\n"
        "from matplotlib.path import Path as _P\n"
        "_ref = (int(_P(m.lasso_polygon.astype(float)).contains_points(xy.astype(float)).sum())\n"
        "        if m.lasso_polygon is not None else None)\n"
        "_rss = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')][0]\n"
        "json.dump({'selected': int(m.selected.size), 'reference': _ref,\n"
        "           'lasso_kernel_s': m._detail.last_lasso_s,\n"
        "           'kernel_rss_mb': _rss / 1024,\n"
        "           'kernel_maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},\n"
        "          open('kernel.json', 'w'))",
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


def js_heap_mb(page) -> float:
    """The page's used JavaScript heap (CDP Performance metrics), in MB."""
    client = page.context.new_cdp_session(page)
    client.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in client.send("Performance.getMetrics")["metrics"]}
    client.detach()
    return metrics.get("JSHeapUsedSize", float("nan")) / 2**20


def zoomed_repaint(page, canvas, *, notches: int = 40) -> dict:
    """Wheel into the map's middle a notch at a time until a view with every point of its
    rectangle is drawn; seconds from that last notch to its points drawn."""
    root = page.locator(".wb-map").first

    def attr(name):
        return root.get_attribute(f"data-{name}") or ""

    canvas.first.scroll_into_view_if_needed()
    box = canvas.first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    for _ in range(notches):
        draws, asked = attr("draws"), attr("asked-seq")
        t0 = time.perf_counter()
        page.mouse.wheel(0, -100)
        deadline = time.monotonic() + 60
        answered = False
        while time.monotonic() < deadline:
            page.wait_for_timeout(20)
            if attr("loaded-kind") == "view" and attr("draws") != draws \
                    and attr("asked-seq") != asked and attr("loaded-seq") == attr("asked-seq"):
                answered = True
                break
            if attr("loaded-kind") == "overview" and time.perf_counter() - t0 > 1.5:
                break  # still the overview: zoom on
        if answered and attr("complete") == "true":
            return {"zoom_repaint_s": time.perf_counter() - t0,
                    "zoom_view_to_draw_ms": float(attr("view-to-draw-ms") or "nan"),
                    "zoom": float(attr("zoom") or "nan"), "zoom_points": int(attr("loaded")),
                    "zoom_rect": attr("view-rect")}
    return {"zoom_repaint_s": None, "zoom_error": "no complete view after all notches"}


def lasso_latencies(page, canvas, wire, repeats) -> list[float]:
    """Shift+drag lassos on our map; seconds from the mouse release to the kernel's "ack"."""
    canvas.first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = canvas.first.bounding_box()
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
        deadline = time.monotonic() + 120
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
        if r < repeats - 1:
            page.keyboard.press("Escape")  # deselect before the next lasso
            page.wait_for_timeout(500)
    return lat


def relabels(page, k, canvas, wire, repeats, js_ms=None) -> tuple[list[float], list[int]]:
    """Run relabel cell ``k`` ``repeats`` times: seconds to the recolour, bytes received."""
    times, sizes = [], []
    for _ in range(repeats):
        canvas.first.scroll_into_view_if_needed()
        before = canvas.first.screenshot()
        t0 = run_cell(page, k)
        times.append(wait_changed(page, canvas, before, t0))
        wait_cell_done(page, k)
        if js_ms is not None:
            js_ms.append(float(_cell(page, 1).locator(".wb-map").first
                               .get_attribute("data-patch-to-draw-ms") or "nan"))
        page.wait_for_timeout(300)  # late frames of this relabel still count
        sizes.append(wire.bytes_between(t0, time.perf_counter()))
    return times, sizes


def measure(n: int, *, repeats: int, keep: Path | None, peer: bool = True) -> dict:
    from workbench._config import MAP_POINT_BUDGET

    xy, labels = make_points(n)
    root = Path(tempfile.mkdtemp(prefix=f"wb-browser-{n}-"))
    np.save(root / "xy.npy", xy)
    np.save(root / "labels.npy", labels)
    bench_notebook(root)
    from playwright.sync_api import sync_playwright

    out: dict = {"benchmark": "browser", "n": n, "relabel_points": RELABEL,
                 "budget": MAP_POINT_BUDGET, "level_of_detail": n > MAP_POINT_BUDGET}
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
        wait_cell_done(page, 0, timeout_s=1200)

        ours = _cell(page, 1).locator(".wb-map canvas")
        t0 = run_cell(page, 1)
        out["first_paint_s"] = wait_painted(page, ours, t0)
        if out["level_of_detail"]:  # the first paint is a quick overview; then all of it
            page.wait_for_function(
                "() => { const d = document.querySelector('.wb-map').dataset;"
                " return d.loadedKind === 'overview' && d.coarse === 'false'"
                " && d.drawn === d.loaded; }", timeout=600_000, polling=50)
            out["overview_drawn_s"] = time.perf_counter() - t0
            out["overview_points"] = int(_cell(page, 1).locator(".wb-map").first
                                         .get_attribute("data-loaded"))
        wait_cell_done(page, 1)
        out["first_paint_bytes"] = wire.bytes_between(t0, time.perf_counter())
        if out["level_of_detail"]:
            page.wait_for_timeout(1000)
            out.update(zoomed_repaint(page, ours))
            _cell(page, 1).locator(".wb-map .wb-reset").first.click()
            page.wait_for_function(
                "() => document.querySelector('.wb-map').dataset.loadedKind === 'overview'",
                timeout=120_000)
            page.wait_for_timeout(1500)

        js_ms: list[float] = []
        rel, b = relabels(page, 3, ours, wire, repeats, js_ms)
        out["relabel_to_recolour_s"] = statistics.median(rel)
        out["relabel_to_recolour_s_all"] = rel
        out["relabel_patch_to_draw_ms"] = statistics.median(js_ms)
        out["relabel_bytes"] = int(statistics.median(b))

        lat = lasso_latencies(page, ours, wire, repeats)
        out["lasso_to_python_s"] = statistics.median(lat) if lat else None
        out["lasso_to_python_s_all"] = lat
        run_cell(page, 5)
        wait_cell_done(page, 5, timeout_s=600)
        kernel = json.loads((root / "kernel.json").read_text())
        out.update({f"lasso_{k}" if k in ("selected", "reference") else k: v
                    for k, v in kernel.items()})
        if kernel["reference"] is not None:
            out["lasso_exact"] = kernel["selected"] == kernel["reference"]
        out["browser_js_heap_mb"] = js_heap_mb(page)
        out["device"] = "headless Chromium, SwiftShader (software WebGL), no GPU"
        if keep is not None:
            ours.first.scroll_into_view_if_needed()
            page.screenshot(path=str(keep))

        # the peer, last: its time or its failure
        peer_canvas = _cell(page, 2).locator("canvas")
        try:
            if not peer:
                raise RuntimeError("skipped (--skip-peer)")
            t0 = run_cell(page, 2)
            out["first_paint_s_peer"] = wait_painted(page, peer_canvas, t0, timeout_s=900)
            wait_cell_done(page, 2)
            out["first_paint_bytes_peer"] = wire.bytes_between(t0, time.perf_counter())
            rel_peer, b_peer = relabels(page, 4, peer_canvas, wire, repeats)
            out["relabel_to_recolour_s_peer"] = statistics.median(rel_peer)
            out["relabel_to_recolour_s_peer_all"] = rel_peer
            out["relabel_bytes_peer"] = int(statistics.median(b_peer))
            out["browser_js_heap_mb_with_peer"] = js_heap_mb(page)
        except Exception as e:  # a timeout, a crashed tab: what the peer did at this size
            out["peer_error"] = f"{type(e).__name__}: {str(e)[:300]}"
        with contextlib.suppress(Exception):  # the peer may have taken the browser down
            browser.close()
    shutil.rmtree(root, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, action="append",
                    help="number of points (repeatable); default 100000")
    ap.add_argument("--repeats", type=int, default=3, help="relabels and lassos per widget")
    ap.add_argument("--skip-peer", action="store_true",
                    help="leave jupyter-scatter out (its 10M run takes minutes)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    reason = chromium_missing_reason()
    if reason:
        sys.exit(f"cannot run the browser benchmark: {reason}")
    sizes = args.n or [100_000]
    args.out.mkdir(parents=True, exist_ok=True)
    heads = []
    for n in sizes:
        res = measure(n, repeats=args.repeats, keep=None, peer=not args.skip_peer)
        (args.out / f"browser-{n}.json").write_text(json.dumps(res, indent=1))
        print(f"n={n:>9,}  first paint {res['first_paint_s']:.2f} s (peer "
              f"{res.get('first_paint_s_peer', res.get('peer_error'))})  relabel "
              f"{res['relabel_bytes']:,} B (peer {res.get('relabel_bytes_peer')} B)  recolour "
              f"{res['relabel_to_recolour_s']:.2f} s (peer "
              f"{res.get('relabel_to_recolour_s_peer')})  lasso->python "
              f"{res['lasso_to_python_s']}  zoomed repaint {res.get('zoom_repaint_s')}")
        heads.append({k: res.get(k) for k in (
            "benchmark", "n", "first_paint_s", "first_paint_s_peer", "relabel_bytes",
            "relabel_bytes_peer", "relabel_to_recolour_s", "lasso_to_python_s",
            "overview_drawn_s", "zoom_repaint_s", "lasso_exact", "kernel_rss_mb", "browser_js_heap_mb",
            "peer_error")})
    for h in heads:
        print(json.dumps(h))


if __name__ == "__main__":
    main()
