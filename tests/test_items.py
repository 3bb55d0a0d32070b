"""Loading items from every supported input, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from PIL import Image

from workbench.items import (
    ItemError,
    check_images,
    demo_digits,
    from_dataframe,
    from_folder,
    from_paths,
    from_table,
    from_vectors,
)


def test_folder_recursive_with_subfolder_labels(image_folder):
    items = from_folder(image_folder, labels_from_subfolders=True)
    assert items["id"].to_list() == [
        "cats/0.png", "cats/1.png", "cats/2.png", "dogs/0.png", "dogs/1.png", "dogs/2.png",
        "loose.jpg",
    ]
    assert items["label"].to_list() == ["cats"] * 3 + ["dogs"] * 3 + [None]
    assert set(items["kind"]) == {"image"}
    assert all(Image.open(p).size for p in items["source"])
    assert "label" not in from_folder(image_folder).columns


def test_folder_errors(tmp_path):
    with pytest.raises(ItemError, match="does not exist"):
        from_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ItemError, match="holds no images"):
        from_folder(tmp_path / "empty")
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(ItemError, match="is a file"):
        from_folder(tmp_path / "f.png")


def test_paths_and_duplicates(image_folder):
    paths = sorted(str(p) for p in image_folder.rglob("*.png") if ".hidden" not in str(p))
    assert from_paths(paths).height == 6
    with pytest.raises(ItemError, match="duplicate path"):
        from_paths([paths[0], paths[0]])
    with pytest.raises(ItemError, match="does not exist"):
        from_paths([paths[0], "/nope/x.png"])


def test_broken_images_are_skipped_and_listed(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (10, 10)).save(good)
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, not a png")
    data = good.read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    items, report = check_images(from_folder(tmp_path))
    assert items["id"].to_list() == ["good.png"]
    assert set(report.skipped) == {"zero.png", "text.png", "trunc.png"}
    assert "zero-byte" in report.skipped["zero.png"]
    assert "zero.png" in str(report)


def test_csv_and_parquet_tables(tmp_path, image_folder):
    df = pl.DataFrame({"id": ["a", "b"], "text": ["hello", "world"], "label": ["x", None],
                       "extra": [1, 2]})
    df.write_csv(tmp_path / "t.csv")
    df.write_parquet(tmp_path / "t.parquet")
    for f in ("t.csv", "t.parquet"):
        items = from_table(tmp_path / f)
        assert items["kind"].to_list() == ["text", "text"]
        assert items["source"].to_list() == ["hello", "world"]
        assert items["label"].to_list() == ["x", None]
        assert items["extra"].to_list() == [1, 2]
    # Relative image paths resolve against the table's folder.
    pl.DataFrame({"path": ["images/cats/0.png"]}).write_csv(tmp_path / "imgs.csv")
    items = from_table(tmp_path / "imgs.csv")
    assert items["kind"][0] == "image" and items["id"][0] == "row-0"
    assert items["source"][0] == str((image_folder / "cats/0.png").resolve())


def test_table_errors(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(ItemError, match="cannot read table"):
        from_table(tmp_path / "bad.parquet")
    with pytest.raises(ItemError, match="does not exist"):
        from_table(tmp_path / "nope.csv")
    with pytest.raises(ItemError, match="duplicate id 'a'"):
        from_dataframe(pl.DataFrame({"id": ["a", "a"], "text": ["x", "y"]}))
    with pytest.raises(ItemError, match="no source column"):
        from_dataframe(pl.DataFrame({"foo": [1]}))
    with pytest.raises(ItemError, match="row 1 has an empty 'text'"):
        from_dataframe(pl.DataFrame({"text": ["x", None]}))


def test_pandas_dataframe():
    items = from_dataframe(pd.DataFrame({"text": ["a", "b"], "label": ["p", "q"]}, index=[5, 9]))
    assert items["id"].to_list() == ["row-0", "row-1"]
    assert items["label"].to_list() == ["p", "q"]


def test_vectors(rng):
    items, x = from_vectors(rng.normal(size=(5, 3)), labels=[1, None, 2, 2, 1])
    assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape == (5, 3)
    assert items["label"].to_list() == ["1", None, "2", "2", "1"]
    _, x = from_vectors(pl.Series([[1.0, 2.0], [3.0, 4.0]]))
    assert x.shape == (2, 2)
    with pytest.raises(ItemError, match="row 1 has 3 values but row 0 has 2"):
        from_vectors([[1.0, 2.0], [1.0, 2.0, 3.0]])
    bad = rng.normal(size=(4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ItemError, match="row 2 contains NaN"):
        from_vectors(bad)
    with pytest.raises(ItemError, match="2 ids for 4 vectors"):
        from_vectors(rng.normal(size=(4, 3)), ids=["a", "b"])
    with pytest.raises(ItemError, match="must be 2-D"):
        from_vectors(np.zeros(3))


def test_demo_digits_are_real_pngs(tmp_path):
    items = demo_digits(tmp_path)
    assert items.height == 1797
    assert items["truth"].n_unique() == 10
    with Image.open(items["source"][0]) as im:
        assert im.format == "PNG" and im.size == (64, 64)
    again = demo_digits(tmp_path)  # idempotent, reuses the files
    assert again.equals(items)
