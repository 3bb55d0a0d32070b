"""Decoding for the embedding loader: odd modes converted, broken files skipped with reasons."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from PIL import Image

from workbench._config import MAX_IMAGE_PIXELS
from workbench.embed.loader import (
    UnreadableImage,
    collate,
    make_image_loader,
    open_rgb,
    to_rgb,
)


def _save(path, im, **kw):
    im.save(path, **kw)
    return str(path)


def test_modes_become_rgb_with_alpha_on_white(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    out = np.asarray(to_rgb(rgba))
    assert out.shape == (8, 8, 3)
    assert tuple(out[1, 1]) == (255, 255, 255)  # transparent -> white, not black
    assert tuple(out[0, 0]) == (255, 0, 0)

    la = Image.new("LA", (4, 4), (0, 0))
    assert tuple(np.asarray(to_rgb(la))[0, 0]) == (255, 255, 255)

    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    assert tuple(np.asarray(to_rgb(pal))[0, 0]) == (0, 255, 0)
    pal.info["transparency"] = 1
    assert tuple(np.asarray(to_rgb(pal))[0, 0]) == (255, 255, 255)

    # 16-bit data spans 0..65535: its maximum must map to white, not clip everything.
    i16 = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    assert i16.mode.startswith("I;16")
    assert np.asarray(to_rgb(i16))[0, :, 0].tolist() == [0, 128, 255]

    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    r, g, b = np.asarray(to_rgb(cmyk))[0, 0]
    assert r > 200 and g < 50 and b < 50

    assert to_rgb(Image.new("1", (3, 3), 1)).mode == "RGB"
    assert to_rgb(Image.new("F", (3, 3), 0.5)).getpixel((0, 0)) == (128, 128, 128)


def test_files_in_odd_modes_decode(tmp_path):
    paths = [
        _save(tmp_path / "a.png", Image.new("RGBA", (10, 10), (0, 0, 255, 128))),
        _save(tmp_path / "b.png", Image.fromarray(np.full((10, 10), 60000, np.uint16))),
        _save(tmp_path / "c.jpg", Image.new("CMYK", (10, 10), (0, 0, 0, 0))),
        _save(tmp_path / "d.gif", Image.new("P", (10, 10), 3)),
        _save(tmp_path / "e.tif", Image.new("LA", (10, 10), (30, 200))),
    ]
    for p in paths:
        im = open_rgb(p)
        assert im.mode == "RGB" and im.size == (10, 10)


def test_broken_files_give_reasons(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image at all")
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (9, 9, 9)).save(buf, format="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    corrupt = bytearray(buf.getvalue())
    corrupt[200:600] = b"\xff" * 400
    (tmp_path / "corrupt.jpg").write_bytes(bytes(corrupt))

    reasons = {}
    for name in ("empty.jpg", "text.jpg", "truncated.jpg", "missing.jpg"):
        with pytest.raises(UnreadableImage) as e:
            open_rgb(str(tmp_path / name))
        reasons[name] = str(e.value)
    assert "zero-byte" in reasons["empty.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "not found" in reasons["missing.jpg"]
    # A file with garbage in its entropy-coded data either fails cleanly or decodes:
    # what matters is that it never raises anything but UnreadableImage.
    with contextlib.suppress(UnreadableImage):
        open_rgb(str(tmp_path / "corrupt.jpg"))


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    # Lower the limit instead of writing a real bomb: the same Pillow check fires.
    path = _save(tmp_path / "big.png", Image.new("L", (300, 300)))
    monkeypatch.setattr("workbench._images.MAX_IMAGE_PIXELS", 300 * 300 // 3)
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        open_rgb(path)  # more than 2x the limit: Pillow's error
    monkeypatch.setattr("workbench._images.MAX_IMAGE_PIXELS", 300 * 300 - 1)
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        open_rgb(path)  # just above the limit: Pillow only warns; we refuse all the same
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def test_jpeg_draft_decodes_at_reduced_size(tmp_path):
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8))
    path = _save(tmp_path / "big.jpg", big, quality=90)
    full = open_rgb(path)
    small = open_rgb(path, draft_size=224)
    assert full.size == (1920, 1080)
    # The smallest DCT scale keeping both sides >= 224 is 1/4: 480 x 270.
    assert small.size == (480, 270)
    assert min(small.size) >= 224
    # PNG has no draft mode: the size request is ignored, never an error.
    png = _save(tmp_path / "big.png", big.resize((640, 360)))
    assert open_rgb(png, draft_size=224).size == (640, 360)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees for display
    path = _save(tmp_path / "rot.jpg", im, exif=exif)
    assert open_rgb(path).size == (20, 40)


def _to_tensor(im):
    return torch.from_numpy(np.asarray(im.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1)


def test_loader_skips_and_reports_in_workers(tmp_path):
    paths = []
    for i in range(10):
        paths.append(_save(tmp_path / f"{i}.png", Image.new("RGB", (12 + i, 9), (i, 0, 0))))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    paths.insert(3, str(tmp_path / "bad.png"))
    loader = make_image_loader(paths, _to_tensor, batch_size=4, num_workers=2)
    seen, skipped = [], {}
    for positions, inputs, bad in loader:
        assert inputs.shape == (len(positions), 3, 8, 8)
        seen += positions
        skipped.update(bad)
    assert seen == [i for i in range(11) if i != 3]
    assert list(skipped) == [3] and "not an image" in skipped[3]


def test_collate_keeps_lists_for_non_tensor_inputs():
    positions, inputs, skipped = collate([(0, "a", None), (1, None, "broken"), (2, "c", None)])
    assert positions == [0, 2] and inputs == ["a", "c"] and skipped == {1: "broken"}
