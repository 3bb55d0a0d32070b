"""Every notebook under notebooks/ runs top to bottom, unattended, in a fresh folder.

Each notebook reads its inputs from environment variables with offline-capable defaults;
here they point at small local stand-ins: the quick map (no UMAP compilation), a tiny
CLIP checkpoint saved by the test (no weight download), a few hundred texts.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import nbformat
import pytest
from _tiny_models import save_tiny_clip
from nbclient import NotebookClient

REPO = Path(__file__).parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
def _subjectivity_zip(path: Path) -> Path:
    """A small stand-in for the Cornell subjectivity zip: same file names, Latin-1 lines."""
    import zipfile

    opinions = ["a moving and beautifully acted film", "the funniest comedy in years",
                "a tedious, overlong mess", "i loved every minute of it", "utterly charming"]
    plots = ["the story follows a young man who moves to the city",
             "a detective investigates a murder in a small town",
             "two sisters inherit a farm after their father dies",
             "a crew of astronauts is sent to repair a satellite", "an old boxer trains a pupil"]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("quote.tok.gt9.5000", "\n".join(
            f"{o} , says critic n\xb0{i} ." for i in range(30) for o in opinions[i % 5:i % 5 + 1]
        ).encode("latin-1"))
        z.writestr("plot.tok.gt9.5000", "\n".join(
            f"{p} ( part {i} ) ." for i in range(30) for p in plots[i % 5:i % 5 + 1]
        ).encode("latin-1"))
    return path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_unattended(path, tmp_path, monkeypatch):
    # The kernel inherits the environment.
    monkeypatch.setenv("WORKBENCH_LAYOUT", "quick")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if path.stem == "images":
        save_tiny_clip(tmp_path / "tiny-clip")
        monkeypatch.setenv("WORKBENCH_MODEL", f"clip:{tmp_path / 'tiny-clip'}")
    if path.stem == "text":
        data = _subjectivity_zip(tmp_path / "subjectivity.zip")
        monkeypatch.setenv("WORKBENCH_TEXT_DATA", str(data))
        monkeypatch.setenv("WORKBENCH_TEXT_LIMIT", "0")
    work = tmp_path / path.name
    shutil.copy(path, work)
    nb = nbformat.read(work, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with _KernelMemory() as memory:
        client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    if path.stem == "quickstart":
        # it saw the map, made predictions and exported them
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   for c in nb.cells for o in c.get("outputs", []))
        assert (tmp_path / "projects" / "digits-labels.parquet").is_file()
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        assert "10 digits named" in text
        # The story it tells is true: >= 95% right, the estimate printed beside it, and the
        # exported machine labels' measured accuracy.
        measured = float(re.search(r"measured: ([\d.]+)% of all items are right", text)[1])
        assert measured >= 95.0, text
        est = re.search(r"estimate: ([\d.]+)% \(90% interval ([\d.]+)% to ([\d.]+)%\)", text)
        assert est, text
        low, high = float(est[2]), float(est[3])
        assert low <= float(est[1]) <= high
        exported = float(re.search(r"measured: ([\d.]+)% of the exported machine", text)[1])
        assert exported >= 90.0, text
        # Binder gives a kernel about 2 GB: the quickstart's own memory (anonymous pages,
        # not the shared libraries mapped from disk) stays well under it.
        assert 0 < memory.peak_anon_bytes < 1.0e9, memory.peak_anon_bytes


class _KernelMemory:
    """Peak anonymous memory (RssAnon) of the kernel processes this test starts."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.peak_anon_bytes = 0
        self._stop = threading.Event()

    def _poll(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.every):
            for child in me.children(recursive=True):
                try:
                    status = Path(f"/proc/{child.pid}/status").read_text()
                except OSError:
                    continue
                m = re.search(r"RssAnon:\s+(\d+) kB", status)
                if m:
                    self.peak_anon_bytes = max(self.peak_anon_bytes, int(m[1]) * 1024)

    def __enter__(self) -> _KernelMemory:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
