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


# A FIFO blocks whoever opens it until a writer comes; /dev/zero never ends. Both must be
# skipped without being read, by the image check and by the embedding's content hashing.
# Run in a child process so that a hang fails the test instead of stopping the suite.
_SPECIAL_FILES = '''
import os, sys
from pathlib import Path
import numpy as np
from PIL import Image
from workbench.embed import CallableEmbedder, embed_items
from workbench.items import check_images, from_table
from workbench.project import Project

root = Path(sys.argv[1])
(root / "imgs").mkdir()
Image.new("RGB", (8, 8), (200, 10, 10)).save(root / "imgs" / "good.png")
os.mkfifo(root / "imgs" / "pipe.png")
os.symlink("/dev/zero", root / "imgs" / "zero.png")
(root / "t.csv").write_text("path\\nimgs/good.png\\nimgs/pipe.png\\nimgs/zero.png\\n")
items = from_table(root / "t.csv")
kept, report = check_images(items)
print("check", kept["id"].to_list(), sorted(report.skipped.values()))
emb = CallableEmbedder(lambda b: np.ones((len(b), 3), np.float32), name="ones")
result = embed_items(items, emb, cache_dir=root / "cache", progress=False, num_workers=0)
print("embed", result.ids, sorted(result.skipped.values()))
with Project.create(root / "p", items) as p:
    print("project", p.items["id"].to_list(), sorted(p.skipped.skipped))
'''


@pytest.mark.slow  # the child imports torch for the embedding's data loader
def test_fifo_and_dev_zero_in_a_table_are_skipped_not_read(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _SPECIAL_FILES, str(tmp_path)],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    fifo = "not a regular file (a FIFO (named pipe)); images are read only from regular files"
    device = "not a regular file (a device); images are read only from regular files"
    assert out["check"] == f"{['row-0']} {sorted([device, fifo])}"
    assert out["embed"] == f"{['row-0']} {sorted([device, fifo])}"
    assert out["project"] == f"{['row-0']} {['row-1', 'row-2']}"
