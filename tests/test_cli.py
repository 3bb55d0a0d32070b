"""The command line, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys

import polars as pl


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_demo_label_export_roundtrip(tmp_path):
    proj = tmp_path / "demo"
    r = run("demo", str(proj))
    assert r.returncode == 0, r.stderr
    assert "items=1797" in r.stdout
    from workbench.project import Project

    with Project.open(proj) as p:
        p.labels.assign(p.items["id"].head(5).to_list(), "five")
    r = run("export", str(proj), str(tmp_path / "out.csv"), "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert pl.read_csv(tmp_path / "out.csv")["label"].to_list() == ["five"] * 5
    r = run("info", str(proj))
    assert "'five': 5" in r.stdout


def test_errors_are_one_clear_line(tmp_path):
    r = run("info", str(tmp_path))
    assert r.returncode == 2
    assert "not a workbench project" in r.stderr
    assert "Traceback" not in r.stderr
