"""The embedding cache: content keys, atomic chunks, never another model's vectors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from workbench.embed.cache import EmbeddingCache, FileKeys, text_key


def _keys(n, start=0):
    return [text_key(f"item {i}") for i in range(start, start + n)]


def test_chunks_round_trip_and_survive_reopening(tmp_path):
    rng = np.random.default_rng(0)
    cache = EmbeddingCache(tmp_path, "m1", 4)
    v1, v2 = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    cache.add(_keys(3), v1)
    cache.add(_keys(2, 3), v2)
    again = EmbeddingCache(tmp_path, "m1", 4)
    assert len(again) == 5 and again.n_files == 2
    np.testing.assert_array_equal(again.get(_keys(5)), np.concatenate([v1, v2]))
    assert not list(again.folder.glob(".*tmp"))  # no temporary files left behind


def test_another_model_never_sees_the_vectors(tmp_path):
    a = EmbeddingCache(tmp_path, "clip:ViT-B-32-laion", 4)
    a.add(_keys(2), np.ones((2, 4), np.float32))
    b = EmbeddingCache(tmp_path, "clip:ViT-B-32-openai", 4)
    assert len(b) == 0 and _keys(1)[0] not in b
    # A chunk copied into the wrong model's folder is refused, not served.
    chunk = next(a.folder.glob("chunk-*.npz"))
    b.folder.mkdir(parents=True, exist_ok=True)
    (b.folder / chunk.name).write_bytes(chunk.read_bytes())
    with pytest.warns(UserWarning, match="holds vectors of"):
        assert len(EmbeddingCache(tmp_path, "clip:ViT-B-32-openai", 4)) == 0


def test_damaged_chunk_is_ignored_and_its_items_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", 3)
    cache.add(_keys(2), np.ones((2, 3), np.float32))
    cache.add(_keys(2, 2), np.ones((2, 3), np.float32))
    first = sorted(cache.folder.glob("chunk-*.npz"))[0]
    first.write_bytes(first.read_bytes()[:40])  # as if the disk filled up during a copy
    with pytest.warns(UserWarning, match="damaged"):
        again = EmbeddingCache(tmp_path, "m", 3)
    assert len(again) == 2
    assert _keys(1)[0] not in again and _keys(1, 3)[0] in again


def test_compaction_merges_chunks(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", 2)
    for i in range(5):
        cache.add(_keys(1, i), np.full((1, 2), i, np.float32))
    assert not cache.compact(max_files=5)
    assert cache.compact(max_files=4)
    again = EmbeddingCache(tmp_path, "m", 2)
    assert again.n_files == 1
    np.testing.assert_array_equal(again.get(_keys(5))[:, 0], np.arange(5))


def test_file_keys_follow_content_not_metadata(tmp_path):
    fk = FileKeys(tmp_path / "keys.sqlite")
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    (ka, kb), problems = fk.keys([str(a), str(b)])
    assert ka == kb and not problems  # a copy shares its vector
    st = os.stat(a)
    a.write_bytes(b"SAME BYTES")  # same size...
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))  # ...and the old mtime forged back
    (ka2,), _ = fk.keys([str(a)])
    assert ka2 != ka  # the ctime (not settable by utime) still tells the memo it changed
    (kmissing,), problems = fk.keys([str(tmp_path / "gone.bin")])
    assert kmissing is None and problems == {0: "file not found"}
    fk.close()


def test_file_keys_memo_avoids_rereading(tmp_path, monkeypatch):
    f = tmp_path / "x.bin"
    f.write_bytes(b"x" * 1000)
    fk = FileKeys(tmp_path / "keys.sqlite")
    (k1,), _ = fk.keys([str(f)])
    calls = []
    import workbench.embed.cache as cache_mod

    real = cache_mod._file_digest
    monkeypatch.setattr(cache_mod, "_file_digest", lambda p: calls.append(p) or real(p))
    (k2,), _ = fk.keys([str(f)])
    assert k1 == k2 and calls == []
    fk.close()


def test_leftovers_of_a_killed_writer_are_ignored_then_removed(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", 2)
    cache.add(_keys(1), np.ones((1, 2), np.float32))
    fresh = cache.folder / ".chunk-x.npz.123.tmp"
    old = cache.folder / ".chunk-y.npz.456.tmp"
    fresh.write_bytes(b"half a chunk")
    old.write_bytes(b"half a chunk")
    os.utime(old, (1, 1))
    again = EmbeddingCache(tmp_path, "m", 2)
    assert len(again) == 1
    assert fresh.exists() and not old.exists()  # a live writer's file is left alone
