"""``workbench export`` writes exactly what ``Workbench.export`` writes (one export path),
and neither ``export`` nor ``info`` creates a file in the project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench import Workbench


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=300)


def read(path: Path) -> pl.DataFrame:
    suffix = path.suffix
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".jsonl":
        return pl.read_ndjson(path)
    return pl.read_csv(path, separator="\t" if suffix == ".tsv" else ",")


def label_clusters(wb: Workbench, n: int = 4) -> None:
    truth = wb.items["truth"].cast(pl.Int64).to_numpy()
    for c in wb.clusters[:n]:
        members = c.members[:8]
        wb.label(members, f"digit {np.bincount(truth[members]).argmax()}")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-cli")
    wb = Workbench.demo(root / "demo", layout="quick")
    label_clusters(wb)
    wb.wait()
    yield root, wb
    wb.close()


@pytest.mark.parametrize("suffix", [".csv", *(pytest.param(s, marks=pytest.mark.slow)
                                              for s in (".parquet", ".tsv", ".jsonl"))])
def test_cli_writes_the_rows_the_api_writes(session, suffix):
    root, wb = session
    api = wb.export(root / f"api{suffix}", include="all", min_confidence=0.9)
    cli = root / f"cli{suffix}"
    r = run("export", str(root / "demo"), str(cli), "--include", "all",
            "--min-confidence", "0.9")
    assert r.returncode == 0, r.stderr
    a, b = read(api), read(cli)
    assert a.height > 32  # live predictions, not only the 32 human labels
    assert set(a["layer"]) == {"human", "predicted"}
    assert a.equals(b)


def test_api_metadata_holds_the_session_estimate_or_null(session, monkeypatch):
    root, wb = session
    out = wb.export(root / "estimate.parquet", include="all", min_confidence=0.9)
    meta = json.loads(Path(f"{out}.meta.json").read_text(encoding="utf-8"))
    assert meta["counts"]["human"] == 32 and meta["counts"]["predicted"] > 0
    if callable(getattr(wb, "estimate", None)):
        assert isinstance(meta["estimate"], dict)

    def broken(**_kw):
        raise RuntimeError("no fit")

    monkeypatch.setattr(wb, "estimate", broken, raising=False)
    out = wb.export(root / "no-estimate.parquet")
    assert json.loads(Path(f"{out}.meta.json").read_text(encoding="utf-8"))["estimate"] is None


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_cli_project_gets_predictions_and_export_and_info_create_nothing(tmp_path):
    proj = tmp_path / "demo"
    assert run("demo", str(proj)).returncode == 0
    wb = Workbench.open(proj, background=False, layout="quick")
    label_clusters(wb)
    wb.close()
    before = snapshot(proj)
    r = run("export", str(proj), str(tmp_path / "all.csv"), "--include", "all")
    assert r.returncode == 0, r.stderr
    assert pl.read_csv(tmp_path / "all.csv").height == 1797
    r = run("info", str(proj))
    assert r.returncode == 0, r.stderr
    assert "labelled (human): 32" in r.stdout
    assert snapshot(proj) == before


def test_cli_warns_about_options_that_do_nothing(session):
    root, _ = session
    r = run("export", str(root / "demo"), str(root / "warn.csv"), "--min-confidence", "0.5",
            "--split", "0.2")
    assert r.returncode == 0, r.stderr
    assert "warning: min_confidence applies to machine labels only" in r.stderr
    assert "warning: split: options of ImageFolder exports only" in r.stderr
    assert "Traceback" not in r.stderr and "warnings.warn" not in r.stderr
