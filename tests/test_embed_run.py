"""embed_items: cached, incremental, resumable after a kill, skipping broken images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from workbench.embed import CallableEmbedder, PrecomputedEmbedder, embed_items
from workbench.embed.cache import EmbeddingCache
from workbench.items import ItemError, from_folder

# Deterministic image "model": a 4x4 thumbnail's pixels. Shared, as source, with the child
# process of the kill test so both compute exactly the same vectors.
PIXELS_SRC = textwrap.dedent("""
    import time
    import numpy as np

    def pixels(batch, delay=0.0, log=None):
        if log is not None:
            log.append(len(batch))
        time.sleep(delay)
        return np.stack([np.asarray(im.resize((4, 4)), dtype=np.float32).ravel() + 1
                         for im in batch])
""")
_ns: dict = {}
exec(PIXELS_SRC, _ns)
pixels = _ns["pixels"]


def _images(folder: Path, n: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        arr = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{i:04d}.png")


def _counting(log, name="pixels-v1", delay=0.0):
    return CallableEmbedder(lambda b: pixels(b, delay, log), name=name)


def test_second_call_costs_nothing_and_new_items_only(tmp_path):
    _images(tmp_path / "imgs", 12)
    items = from_folder(tmp_path / "imgs")
    log: list[int] = []
    r1 = embed_items(items, _counting(log), cache_dir=tmp_path / "cache", progress=False,
                     num_workers=0, batch_size=5)
    assert r1.vectors.shape == (12, 48) and r1.n_computed == 12 and sum(log) == 12
    np.testing.assert_allclose(np.linalg.norm(r1.vectors, axis=1), 1, rtol=1e-5)
    assert r1.ids == items["id"].to_list()

    log.clear()
    r2 = embed_items(items, _counting(log), cache_dir=tmp_path / "cache", progress=False)
    assert sum(log) == 0 and r2.n_computed == 0
    np.testing.assert_array_equal(r2.vectors, r1.vectors)

    _images(tmp_path / "imgs", 3, start=12)
    r3 = embed_items(from_folder(tmp_path / "imgs"), _counting(log),
                     cache_dir=tmp_path / "cache", progress=False, num_workers=0)
    assert sum(log) == 3 and r3.vectors.shape == (15, 48)
    np.testing.assert_array_equal(r3.vectors[:12], r1.vectors)

    # A changed file gets a new vector; a different model name never reuses the old ones.
    Image.new("RGB", (6, 6), (1, 2, 3)).save(tmp_path / "imgs" / "img0000.png")
    log.clear()
    r4 = embed_items(from_folder(tmp_path / "imgs"), _counting(log),
                     cache_dir=tmp_path / "cache", progress=False, num_workers=0)
    assert sum(log) == 1 and not np.allclose(r4.vectors[0], r1.vectors[0])
    log.clear()
    embed_items(from_folder(tmp_path / "imgs"), _counting(log, name="pixels-v2"),
                cache_dir=tmp_path / "cache", progress=False, num_workers=0)
    assert sum(log) == 15


def test_broken_images_are_skipped_and_the_run_continues(tmp_path):
    _images(tmp_path / "imgs", 8)
    (tmp_path / "imgs" / "zero.png").write_bytes(b"")
    (tmp_path / "imgs" / "junk.jpg").write_text("hello")
    Image.new("RGBA", (6, 6), (0, 0, 0, 0)).save(tmp_path / "imgs" / "alpha.png")
    Image.fromarray(np.full((6, 6), 40000, np.uint16)).save(tmp_path / "imgs" / "deep.png")
    items = from_folder(tmp_path / "imgs")
    log: list[int] = []
    r = embed_items(items, _counting(log), cache_dir=tmp_path / "cache", progress=False,
                    num_workers=2, batch_size=4)
    assert set(r.skipped) == {"zero.png", "junk.jpg"}
    assert "zero-byte" in r.skipped["zero.png"] and "not an image" in r.skipped["junk.jpg"]
    assert len(r.ids) == 10 and "alpha.png" in r.ids and "deep.png" in r.ids
    assert np.isfinite(r.vectors).all()
    full, mask = r.aligned(items.height)
    assert mask.sum() == 10 and not mask[items["id"].to_list().index("junk.jpg")]
    np.testing.assert_array_equal(full[mask], r.vectors)
    assert not full[~mask].any()
    # Second call: still reported, nothing recomputed.
    log.clear()
    r2 = embed_items(items, _counting(log), cache_dir=tmp_path / "cache", progress=False)
    assert sum(log) == 0 and r2.skipped == r.skipped


def test_keyboard_interrupt_keeps_finished_work(tmp_path):
    _images(tmp_path / "imgs", 30)
    items = from_folder(tmp_path / "imgs")
    calls = []

    def interrupted(batch):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(len(batch))
        return pixels(batch)

    with pytest.raises(KeyboardInterrupt):
        embed_items(items, CallableEmbedder(interrupted, name="pixels-v1"),
                    cache_dir=tmp_path / "cache", progress=False, num_workers=0,
                    batch_size=4, chunk_size=1000)
    log: list[int] = []
    r = embed_items(items, _counting(log), cache_dir=tmp_path / "cache", progress=False,
                    num_workers=0, batch_size=4)
    assert sum(log) == 30 - 12  # the 3 finished batches were saved on the way out
    clean = embed_items(items, _counting([]), cache_dir=None, progress=False, num_workers=0)
    np.testing.assert_array_equal(r.vectors, clean.vectors)


KILL_CHILD = """
import sys
sys.path.insert(0, {root!r})
{pixels}
from workbench.embed import CallableEmbedder, embed_items
from workbench.items import from_folder
items = from_folder({folder!r})
emb = CallableEmbedder(lambda b: pixels(b, 0.15), name="pixels-v1")
embed_items(items, emb, cache_dir={cache!r}, progress=False, num_workers=0,
            batch_size=5, chunk_size=10)
print("FINISHED")
"""


def test_killed_run_resumes_without_redoing_finished_chunks(tmp_path):
    n = 200
    _images(tmp_path / "imgs", n)
    cache = tmp_path / "cache"
    root = str(Path(__file__).resolve().parents[1])
    script = KILL_CHILD.format(root=root, pixels=PIXELS_SRC, folder=str(tmp_path / "imgs"),
                               cache=str(cache))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    chunks: list[Path] = []
    while time.monotonic() < deadline and child.poll() is None:
        chunks = list(cache.glob("embeddings/*/chunk-*.npz"))
        if len(chunks) >= 3:
            break
        time.sleep(0.02)
    assert child.poll() is None, f"child ended early: {child.communicate()}"
    os.kill(child.pid, signal.SIGKILL)  # no cleanup, no flush: as if the machine died
    child.wait()
    assert child.returncode == -signal.SIGKILL

    # What finished chunks hold is exactly what the resumed run must not redo.
    emb_log: list[int] = []
    emb = _counting(emb_log)
    done = len(EmbeddingCache(cache, emb.name, None))
    assert 30 <= done < n
    r = embed_items(from_folder(tmp_path / "imgs"), emb, cache_dir=cache, progress=False,
                    num_workers=0, batch_size=7)
    assert sum(emb_log) == n - done
    clean = embed_items(from_folder(tmp_path / "imgs"), _counting([]), cache_dir=None,
                        progress=False, num_workers=0)
    np.testing.assert_array_equal(r.vectors, clean.vectors)
    assert r.ids == clean.ids and len(r.ids) == n


def test_texts_and_duplicates_embed_once(tmp_path):
    seen: list[str] = []

    def fn(texts):
        seen.extend(texts)
        return np.array([[len(t), t.count("a") + 1.0] for t in texts])

    items = pl.DataFrame({"id": ["1", "2", "3"], "source": ["banana", "apple", "banana"],
                          "kind": ["text"] * 3})
    r = embed_items(items, CallableEmbedder(fn, name="len", kind="text"),
                    cache_dir=tmp_path, progress=True)  # the tqdm bar must not get in the way
    assert sorted(seen) == ["apple", "banana"]
    np.testing.assert_array_equal(r.vectors[0], r.vectors[2])
    with pytest.raises(ItemError, match="takes image items but the items are text"):
        embed_items(items, _counting([]), cache_dir=tmp_path, progress=False)


def test_precomputed_vectors_are_looked_up_by_id():
    vecs = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    emb = PrecomputedEmbedder(vecs, ids=["a", "b", "c", "d"])
    items = pl.DataFrame({"id": ["c", "a"], "source": ["c", "a"], "kind": ["vector"] * 2})
    r = embed_items(items, emb, cache_dir=None, progress=False)
    expected = vecs[[2, 0]] / np.linalg.norm(vecs[[2, 0]], axis=1, keepdims=True)
    np.testing.assert_allclose(r.vectors, expected, rtol=1e-6)
    with pytest.raises(ItemError, match="'zz'"):
        emb.embed_batch(["zz"])


def test_callable_with_wrong_shape_says_so(tmp_path):
    _images(tmp_path / "imgs", 3)
    bad = CallableEmbedder(lambda b: np.zeros((1, 2)), name="bad")
    with pytest.raises(RuntimeError, match=r"returned shape \(1, 2\) for a batch of 3"):
        embed_items(from_folder(tmp_path / "imgs"), bad, cache_dir=None, progress=False,
                    num_workers=0)


def test_micro_batches_regroup_to_exact_model_batches(tmp_path):
    _images(tmp_path / "imgs", 23)
    (tmp_path / "imgs" / "img0005.png").write_bytes(b"broken")
    sizes: list[int] = []
    r = embed_items(from_folder(tmp_path / "imgs"), _counting(sizes), cache_dir=None,
                    progress=False, num_workers=2, batch_size=5)
    # 22 readable images from micro-batches of 3 (5 / 2 workers, rounded up), regrouped.
    assert sizes == [5, 5, 5, 5, 2] and len(r.ids) == 22
    clean = embed_items(from_folder(tmp_path / "imgs"), _counting([]), cache_dir=None,
                        progress=False, num_workers=0, batch_size=7)
    np.testing.assert_array_equal(r.vectors, clean.vectors)
