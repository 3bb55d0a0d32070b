"""Damaged caches never crash and never mislead: every cache file is checked on load, and
anything damaged is rebuilt with a logged warning that names it and says it is safe to
delete. Bit flips run in forked children, so a segfault shows as a negative exit status."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from workbench.items import from_vectors
from workbench.neighbors import KnnGraph, NeighborIndex, build_knn_graph
from workbench.project import Project

ROUNDS = 12
BITS = 3

# One process imports everything once and builds the clean caches; every round copies them,
# flips BITS random bits (seeded) in one file and opens the copy in a forked child.
# Single-threaded BLAS/OpenMP: deterministic rebuilds, and safe to fork.
_DRIVER = textwrap.dedent(
    """
    import json, os, shutil, sys
    import numpy as np
    import faiss
    from workbench.embed.cache import EmbeddingCache, text_key
    from workbench.neighbors import NeighborIndex, build_knn_graph, vectors_key

    faiss.omp_set_num_threads(1)
    base, rounds, bits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 16))
    x = (centres[rng.integers(0, 8, 700)] + 0.3 * rng.normal(size=(700, 16))).astype(np.float32)
    clean = os.path.join(base, "clean")
    graph = build_knn_graph(x, cache_dir=clean)
    index = NeighborIndex.build(x, kind="ivf", cache_dir=clean)
    expect_idx, _ = index.search(x[:100], 10)
    try:  # (so that the same script measures a workbench without checked layouts)
        from workbench.layout import _load_layout, _save_layout
        from workbench._files import load_cached
    except ImportError:
        _load_layout = None
    layout_key = vectors_key(graph.indices, graph.similarities, extra=("layout", 0, None, 0.1))
    coords = np.clip(x[:, :2] / np.abs(x[:, :2]).max(), -1, 1).astype(np.float32)
    if _load_layout is not None:
        from pathlib import Path
        _save_layout(Path(clean) / f"layout-{layout_key}.npy", coords)
    keys = [text_key(f"text {i}") for i in range(50)]
    emb = EmbeddingCache(clean, "tiny", 16)
    emb.add(keys[:25], x[:25])
    emb.add(keys[25:], x[25:50])

    def check(folder):
        from pathlib import Path
        g = build_knn_graph(x, cache_dir=folder)
        assert np.array_equal(g.indices, graph.indices), "graph indices differ"
        assert np.array_equal(g.similarities, graph.similarities), "similarities differ"
        g.to_csr()
        ix = NeighborIndex.build(x, kind="ivf", cache_dir=folder)
        assert ix.nprobe == index.nprobe, "nprobe differs"
        got, _ = ix.search(x[:100], 10)
        assert np.array_equal(got, expect_idx), "index answers differ"
        if _load_layout is not None:
            p = Path(folder) / f"layout-{layout_key}.npy"
            loaded = load_cached("map layout", (p, p.with_suffix(".json")),
                                 lambda: _load_layout(p, len(x)))
            assert loaded is None or np.array_equal(loaded, coords), "layout differs"
        e = EmbeddingCache(folder, "tiny", 16)
        for i, k in enumerate(keys):
            if k in e:
                assert np.array_equal(e.get([k])[0], x[i]), "embedding differs"

    files = sorted(os.path.relpath(os.path.join(d, f), clean)
                   for d, _, fs in os.walk(clean) for f in fs)
    print(json.dumps({"files": files}), flush=True)
    for name in files:
        for r in range(rounds):
            folder = os.path.join(base, "round")
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(clean, folder)
            target = os.path.join(folder, name)
            data = bytearray(open(target, "rb").read())
            flip = np.random.default_rng([r, len(name), sum(map(ord, name))])
            for pos in flip.integers(0, len(data) * 8, bits):
                data[pos // 8] ^= 1 << (pos % 8)
            open(target, "wb").write(bytes(data))
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    check(folder)
                    check(folder)  # and what was rebuilt reads back clean
                except AssertionError as e:
                    print(json.dumps({"file": name, "round": r, "mismatch": str(e)}), flush=True)
                    code = 1
                except BaseException as e:
                    print(json.dumps({"file": name, "round": r, "error": repr(e)}), flush=True)
                    code = 2
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(json.dumps({"file": name, "round": r, "status": code}), flush=True)
    """
)


@pytest.mark.slow
def test_random_bit_flips_in_every_cache_file_never_crash_or_mislead(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", _DRIVER, str(tmp_path), str(ROUNDS), str(BITS)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    files = lines[0]["files"]
    # Every kind of cache file is among those damaged.
    for part in ("-indices.npy", "-similarities.npy", ".faiss", ".faiss.json", "layout-",
                 "chunk-", "model.json"):
        assert any(part in f for f in files), (part, files)
    results = [x for x in lines[1:] if "status" in x]
    assert len(results) == len(files) * ROUNDS
    bad = [x for x in lines[1:] if x.get("status", 0) != 0 or "mismatch" in x or "error" in x]
    assert not bad, bad[:10]


def _project_with_graph(tmp_path) -> tuple[Path, np.ndarray, KnnGraph]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)).astype(np.float32)
    items, x = from_vectors(x)
    folder = tmp_path / "p"
    Project.create(folder, items, vectors=x).close()
    graph = build_knn_graph(x, cache_dir=folder / "cache")
    return folder, x, graph


def test_one_out_of_range_neighbour_does_not_crash_workbench_open(tmp_path):
    # A consistent checksum, so that the range check itself is what must catch it.
    folder, _, graph = _project_with_graph(tmp_path)
    cache = folder / "cache"
    name = next(cache.glob("knn-*.json")).stem
    bad = graph.indices.copy()
    bad[5, 3] = 10**9
    KnnGraph(bad, graph.similarities, graph.recall_estimate).save(cache, name)
    code = textwrap.dedent(
        """
        import sys, numpy as np
        from workbench.session import Workbench
        wb = Workbench.open(sys.argv[1], background=False, layout="quick")
        ref = np.load(sys.argv[2])
        print("same", np.array_equal(wb.graph.indices, ref))
        wb.close()
        """
    )
    np.save(tmp_path / "ref.npy", graph.indices)
    r = subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "ref.npy")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "same True" in r.stdout
    assert "is damaged" in r.stderr and "safe to delete" in r.stderr
    assert "outside -1..119" in r.stderr


def test_damaged_graph_is_rebuilt_with_a_warning_naming_the_file(tmp_path, caplog):
    folder, x, graph = _project_with_graph(tmp_path)
    cache = folder / "cache"
    indices = next(cache.glob("knn-*-indices.npy"))
    indices.write_bytes(indices.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING):
        again = build_knn_graph(x, cache_dir=cache)
    assert np.array_equal(again.indices, graph.indices)
    assert indices.name in caplog.text and "safe to delete" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_knn_graph(x, cache_dir=cache)  # rewritten: read back without a warning
    assert caplog.text == ""
    # A half-written entry (the JSON written last is missing) is rebuilt too.
    next(cache.glob("knn-*.json")).unlink()
    assert np.array_equal(build_knn_graph(x, cache_dir=cache).indices, graph.indices)


def test_bit_flipped_ivf_index_is_rebuilt_not_used(tmp_path, caplog):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1200, 16)).astype(np.float32)
    clean = NeighborIndex.build(x, kind="ivf", cache_dir=tmp_path)
    want, _ = clean.search(x[:50], 10)
    f = next(tmp_path.glob("index-*.faiss"))
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit inside the stored vectors or lists
    f.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = NeighborIndex.build(x, kind="ivf", cache_dir=tmp_path)
    got, _ = again.search(x[:50], 10)
    assert np.array_equal(got, want)
    assert f.name in caplog.text and "safe to delete" in caplog.text


def test_read_only_cache_folder_is_not_an_error(tmp_path, caplog):
    x = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING):
        g = build_knn_graph(x, cache_dir=blocked / "cache")
    assert g.n == 50 and "could not save" in caplog.text


def test_damaged_embedding_cache_metadata_and_file_memo(tmp_path, caplog):
    from PIL import Image

    from workbench.embed.cache import EmbeddingCache, FileKeys

    cache = EmbeddingCache(tmp_path, "m", 3)
    cache.add([b"k" * 16], np.ones((1, 3), np.float32))
    (cache.folder / "model.json").write_text('{"model": "m", "dim": ')
    with caplog.at_level(logging.WARNING):
        again = EmbeddingCache(tmp_path, "m", 3)
    assert len(again) == 1 and "model.json" in caplog.text
    img = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(img)
    memo = tmp_path / "file-keys.sqlite"
    keys = FileKeys(memo)
    first, _ = keys.keys([str(img)])
    keys.close()
    memo.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        keys = FileKeys(memo)
        assert keys.keys([str(img)])[0] == first
        keys.close()
    assert "file-keys.sqlite" in caplog.text and "safe to delete" in caplog.text
