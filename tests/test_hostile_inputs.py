"""Hostile files and values: a clear error or skip-and-report, never a hang or a crash."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.items import (
    ItemError,
    as_vectors,
    check_images,
    from_folder,
    from_table,
    image_problem,
)
from workbench.project import Project


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: the classic decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_fast(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_claiming(60_000, 60_000))
    assert "decompression bomb" in image_problem(str(bomb))


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=0, max_size=2048))
def test_random_bytes_never_crash_the_loader(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("rnd")
    (folder / "x.png").write_bytes(data)
    Image.new("RGB", (4, 4)).save(folder / "ok.png")
    items, report = check_images(from_folder(folder))
    assert "ok.png" in items["id"].to_list()
    assert ("x.png" in report.skipped) != ("x.png" in items["id"].to_list())


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "LA", "RGBA", "P", "1", "F"])
def test_odd_modes_are_readable(tmp_path, mode):
    Image.new(mode, (8, 8)).save(tmp_path / "img.tiff")
    assert image_problem(str(tmp_path / "img.tiff")) is None


def test_project_of_only_broken_images_is_a_clear_error(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ItemError, match="no readable images"):
        Project.create(tmp_path / "p", from_folder(tmp_path / "imgs"))
    assert not (tmp_path / "p" / "workbench.json").exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01\x02", b'text\n"unterminated', b"a,b\n1,2,3,4\n5", "é,ü\n\xff".encode("latin-1")],
)
def test_malformed_csv_gives_an_item_error(tmp_path, content):
    f = tmp_path / "t.csv"
    f.write_bytes(content)
    with pytest.raises(ItemError):
        from_table(f)


def test_truncated_parquet(tmp_path):
    f = tmp_path / "t.parquet"
    pl.DataFrame({"text": ["a", "b"]}).write_parquet(f)
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(ItemError, match="cannot read table"):
        from_table(f)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array([[1.0, np.inf]]), "NaN or infinity"),
        (np.array([[np.nan, 1.0]]), "NaN or infinity"),
        (np.zeros((0, 3)), "empty"),
        (np.zeros((3, 0)), "empty"),
        (np.array([["a", "b"]]), "numeric"),
        ([[1.0], [1.0, 2.0]], "same length"),
        (np.zeros((2, 2, 2)), "2-D"),
    ],
)
def test_bad_vectors(value, message):
    with pytest.raises(ItemError, match=message):
        as_vectors(value)


def test_very_long_and_nul_text_items_are_stored_as_given(tmp_path):
    long = "x" * 100_000
    df = pl.DataFrame({"text": [long, "a\x00b", "<script>alert(1)</script>"]})
    p = Project.create(tmp_path / "p", pl.DataFrame({"id": ["0", "1", "2"], "source": df["text"],
                                                     "kind": ["text"] * 3}))
    p.close()
    again = Project.open(tmp_path / "p")
    assert again.items["source"].to_list() == df["text"].to_list()
    again.close()
