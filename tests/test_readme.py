"""The README's code is a promise: its "Use it on your data" Python block and its
command-line block run verbatim, here offline, on a small folder of real images.

``model="clip"`` and ``--model dino:small`` load through the real loading code from a
Hugging Face cache that the test fills with random weights in the hub's own layout
(``_hub_cache``): no download, nothing stubbed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _hub_cache import seed_default_clip, seed_dino

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _block_after(heading: str, lang: str = "") -> str:
    """The first fenced code block (of language ``lang``) after ``heading``."""
    start = README.index(heading)
    m = re.compile(rf"^```{lang}\n(.*?)^```", re.S | re.M).search(README, start)
    assert m, f"no ```{lang} block after {heading!r} in the README"
    return m.group(1)


def _photos(folder: Path, per_colour: int = 8) -> None:
    """Real PNGs of three colours with noise: three groups a map can show."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir()
    for name, colour in (("red", (200, 40, 40)), ("green", (40, 180, 60)),
                         ("blue", (40, 60, 200))):
        for i in range(per_colour):
            px = np.clip(np.array(colour) + rng.normal(0, 25, (48, 48, 3)), 0, 255)
            Image.fromarray(px.astype(np.uint8)).save(folder / f"{name}-{i}.png")


@pytest.fixture(scope="module")
def user_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf")
    seed_default_clip(home)
    seed_dino(home)
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "WORKBENCH_ANNOTATOR": "readme"}
    return env


@pytest.mark.slow
def test_readme_python_then_command_line_blocks_run_verbatim(tmp_path, user_env):
    _photos(tmp_path / "photos")
    code = _block_after("## Use it on your data", "python")
    assert 'model="clip"' in code and "wb.export(" in code
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=user_env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    exported = pl.read_parquet(tmp_path / "labels.parquet")
    assert "cat" in exported["label"].to_list()
    assert (tmp_path / "my-project" / "workbench.json").is_file()

    commands = _block_after("From the command line")
    lines = [ln for ln in commands.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("workbench ") for ln in lines)
    for line in lines:
        r = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=user_env,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    # The exports the block promises exist and agree with each other.
    assert (tmp_path / "out" / "train").is_dir() and (tmp_path / "out" / "val").is_dir()
    table = pl.read_csv(tmp_path / "labels.csv")
    assert table.height >= exported.filter(pl.col("label_source") == "human").height
    assert set(table["label"].to_list()) == {"cat"}  # the one class the block named
