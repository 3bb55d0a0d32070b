"""A team's export (issue 15): the long table of every annotator's label and each
adjudication beside a table export, the same bytes from ``wb.export`` and ``workbench
export``."""

from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest

from workbench.cli import main
from workbench.export import ExportError, ExportWarning


@pytest.fixture(scope="module")
def team_folder(tmp_path_factory):
    """The digits demo labelled by ann and bob (who disagree on 10 ones), and judged."""
    from workbench import Workbench

    folder = tmp_path_factory.mktemp("team") / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    ann = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    bob = Workbench.open(folder, background=False, layout="quick", annotator="bob")
    judge = Workbench.open(folder, background=False, layout="quick", annotator="judge")
    y = np.array([int(v) for v in ann.items["truth"]])
    zeros, ones = np.flatnonzero(y == 0)[:30], np.flatnonzero(y == 1)[:30]
    ann.labels.assign_many([(zeros, "zero"), (ones, "one")])
    bob.labels.assign_many([(zeros[:20], "zero"), (ones[:10], "zero")])
    judge.refresh()
    judge.adjudicate(ones[:10], "one")
    for s in (ann, bob, judge):
        s.close()
    return folder, zeros, ones


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl", "tsv"])
def test_the_annotations_table_beside_an_export_is_the_same_from_the_command_line(
        team_folder, tmp_path, suffix):
    from workbench import Workbench

    folder, _, ones = team_folder
    wb = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    out = wb.export(tmp_path / f"api.{suffix}", annotations=True)
    long_path = tmp_path / f"api.annotations.{suffix}"
    assert long_path.is_file()
    read = {"csv": pl.read_csv, "parquet": pl.read_parquet, "jsonl": pl.read_ndjson,
            "tsv": lambda p: pl.read_csv(p, separator="\t")}[suffix]
    long = read(long_path)
    assert long.columns == ["id", "annotator", "label", "source", "time"]
    # the annotations are wb.annotations(), in the same order; then the 10 decisions
    human = long.filter(pl.col("source") == "human")
    assert human.select("id", "annotator", "label").equals(wb.annotations())
    assert human.height == 60 + 30
    decided = long.filter(pl.col("source") == "adjudicated")
    ids = wb.items["id"].to_numpy()
    assert sorted(decided["id"].to_list()) == sorted(ids[ones[:10]].tolist())
    assert set(decided["annotator"]) == {"judge"} and set(decided["label"]) == {"one"}
    item = ids[ones[0]]
    assert long.filter(pl.col("id") == item)["annotator"].to_list() == ["ann", "bob", "judge"]
    assert long.filter(pl.col("id") == item)["label"].to_list() == ["one", "zero", "one"]
    meta = json.loads((tmp_path / f"api.{suffix}.meta.json").read_text())
    assert meta["annotations"] == {"file": long_path.name, "rows": 100}
    # the row of a decided item in the export itself says so
    rows = read(out)
    row = rows.filter(pl.col("id") == item)
    assert row["label_source"].to_list() == ["adjudicated"] and row["label"][0] == "one"
    wb.close()
    assert main(["export", str(folder), str(tmp_path / f"cli.{suffix}"), "--annotations"]) == 0
    assert (tmp_path / f"cli.annotations.{suffix}").read_bytes() == long_path.read_bytes()
    assert (tmp_path / f"cli.{suffix}").read_bytes() == out.read_bytes()


def test_an_existing_annotations_table_is_never_replaced_unasked(team_folder, tmp_path):
    from workbench import Workbench

    folder, _, _ = team_folder
    wb = Workbench.open(folder, background=False, layout="quick", annotator="ann")
    (tmp_path / "out.annotations.csv").write_text("mine")
    with pytest.raises(ExportError, match="already exists"):
        wb.export(tmp_path / "out.csv", annotations=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.annotations.csv"]
    wb.export(tmp_path / "out.csv")  # without the long table it is not in the way
    wb.export(tmp_path / "out.csv", annotations=True, overwrite=True)
    assert pl.read_csv(tmp_path / "out.annotations.csv").height == 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExportWarning)
        wb.export(tmp_path / "images", format="imagefolder", annotations=True)
    assert any("annotations" in str(w.message) for w in caught)
    assert not list((tmp_path / "images").glob("*.annotations*"))
    wb.close()
