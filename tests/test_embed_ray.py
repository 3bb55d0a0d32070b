"""embed_items(..., engine="ray") and ``workbench embed --ray`` against a real Ray head on
127.0.0.1 (the session's ``ray_cluster``, tests/ray_conftest.py; 2 CPUs: one model actor,
one CPU decoding): the local engine's vectors and cache, a killed worker retried without a
key written twice, a killed driver resumed without redoing finished chunks, and clear
errors."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _tiny_models import save_tiny_clip
from PIL import Image

from workbench.embed import CallableEmbedder, Embedder, EmbedError, embed_items, make_embedder
from workbench.embed.cache import EmbeddingCache
from workbench.embed.ray_engine import consume_results, plan_run, worker_recipe
from workbench.items import from_folder

# A deterministic, slow image "model" (a 4x4 thumbnail's pixels) that logs the pid of the
# process running it. Source text, so that the driver killed in a subprocess runs the same
# function, and so that Ray pickles it by value (a test module is not importable on workers).
SLOW_PIXELS_SRC = '''
import os
import time

import numpy as np


def slow_pixels(batch, delay=0.0, pid_log=None):
    if pid_log is not None:
        with open(pid_log, "a") as f:
            f.write(f"{os.getpid()}\\n")
    time.sleep(delay)
    return np.stack([np.asarray(im.resize((4, 4)), dtype=np.float32).ravel() + 1
                     for im in batch])
'''
_ns: dict = {"__name__": "slow_pixels_src"}  # no such module: Ray pickles it by value
exec(SLOW_PIXELS_SRC, _ns)
slow_pixels = _ns["slow_pixels"]


def pixels_embedder(delay: float = 0.0, pid_log: Path | None = None) -> CallableEmbedder:
    fn = functools.partial(slow_pixels, delay=delay,
                           pid_log=None if pid_log is None else str(pid_log))
    return CallableEmbedder(fn, name="pixels-v1")


@pytest.fixture(scope="module")
def ray_address(ray_cluster):
    """The test cluster; this process is disconnected from it (the cluster left up) after."""
    yield ray_cluster
    import ray

    if ray.is_initialized():
        ray.shutdown()  # a driver's shutdown leaves a cluster it joined running


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-clip")
    save_tiny_clip(folder, seed=0)
    return folder


def photos(folder: Path, n: int) -> Path:
    """``n`` small images, PNG and JPEG of assorted sizes, all distinct."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (20 + i % 7, 24 + i % 5, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"p{i:03d}.{'png' if i % 2 else 'jpg'}")
    return folder


def chunk_keys(cache_dir: Path) -> list[bytes]:
    """Every key of every chunk file of the cache, duplicates included."""
    keys: list[bytes] = []
    for f in sorted(cache_dir.glob("embeddings/*/chunk-*.npz")):
        with np.load(f) as z:
            keys += [k.tobytes() for k in z["keys"]]
    return keys


# -- without a cluster ----------------------------------------------------------------------

def test_the_plan_follows_the_cluster():
    cpu = plan_run({"CPU": 2.0, "memory": 8e9}, "image")
    assert (cpu.actors, cpu.batch_size, cpu.device, cpu.actor_gpus) == (1, 32, "cpu", 0.0)
    assert plan_run({"CPU": 16.0}, "image").actors == 14  # a tenth of the CPUs decode
    assert plan_run({"CPU": 4.0}, "text").actors == 4  # texts need no decoding
    gpu = plan_run({"CPU": 16.0, "GPU": 2.0}, "image")
    assert (gpu.actors, gpu.batch_size, gpu.device, gpu.actor_gpus) == (2, 256, "cuda", 1.0)
    assert plan_run({"CPU": 2.0}, "image", actors=1, batch_size=8).batch_size == 8
    # a lone actor on CPUs runs the node's cores in torch threads; a GPU actor one thread
    assert plan_run({"CPU": 2.0}, "image", actors=1).threads == 2
    assert plan_run({"CPU": 3.0}, "image", actors=2).threads == 1
    assert plan_run({"CPU": 16.0}, "image", actors=2, nodes=2).threads == 8
    assert plan_run({"CPU": 16.0, "GPU": 2.0}, "image").threads == 1
    # A request that cannot run says so instead of waiting for resources forever.
    with pytest.raises(EmbedError, match=r"at most 1 \(num_workers= / --workers\)"):
        plan_run({"CPU": 2.0}, "image", actors=2)
    with pytest.raises(EmbedError, match="at most 2"):
        plan_run({"CPU": 16.0, "GPU": 2.0}, "image", actors=3)
    with pytest.raises(EmbedError, match="too few for a model actor"):
        plan_run({"CPU": 1.0}, "image")
    # The decode tasks never ask for more memory than a CPU's share of the cluster's.
    assert plan_run({"CPU": 2.0, "memory": 1e9}, "image").decode_memory == 500_000_000


def test_clear_errors_before_any_cluster(tmp_path, monkeypatch):
    items = pl.DataFrame({"id": ["a"], "source": ["hello"], "kind": ["text"]})
    emb = CallableEmbedder(lambda b: np.ones((len(b), 2)), name="ones", kind="text")
    with pytest.raises(ValueError, match="engine must be one of 'local', 'ray', not 'spark'"):
        embed_items(items, emb, cache_dir=tmp_path, engine="spark")

    class Opaque(Embedder):
        name, kind, dim = "opaque", "text", 2

    with pytest.raises(EmbedError, match=r"cannot rebuild .* make_embedder"):
        worker_recipe(Opaque())
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ImportError, match=r"pip install 'workbench\[ray\]'"):
        embed_items(items, emb, cache_dir=tmp_path, engine="ray")


def test_results_are_written_once_each_and_kept_on_interrupt(tmp_path):
    """What the driver does with the actors' batches, fed by hand: a block Ray ran twice,
    an unreadable item, a non-finite vector, then an interrupt."""
    keys = [bytes([i]) * 16 for i in range(6)]
    todo = [(k, i) for i, k in enumerate(keys)]
    vec = np.arange(4, dtype=np.float32)

    def block(ks, reasons=None, bad=()):
        reasons = reasons or [""] * len(ks)
        return {"key": np.array([k.hex() for k in ks], dtype=object),
                "vector": np.array([b"" if r else (vec * np.nan if k in bad else vec + k[0])
                                    .tobytes() for k, r in zip(ks, reasons)], dtype=object),
                "reason": np.array(reasons, dtype=object)}

    def results():
        yield block(keys[:2])
        yield block(keys[:2])  # the same block again, as after a worker died
        yield block(keys[2:4], reasons=["", "file not found"])
        yield block(keys[4:5], bad=keys[4:5])
        raise KeyboardInterrupt

    emb = CallableEmbedder(lambda b: b, name="by-hand")
    cache = EmbeddingCache(tmp_path, emb.name, None)
    skipped: dict[int, str] = {}
    with pytest.raises(KeyboardInterrupt):
        consume_results(results(), todo, emb, cache, skipped, progress=False, desc="",
                        chunk_size=100, chunk_seconds=1e9)
    assert skipped == {3: "file not found", 4: "the model produced NaN or infinite values"}
    assert chunk_keys(tmp_path) == keys[:3]  # flushed on the way out, each key once
    np.testing.assert_array_equal(EmbeddingCache(tmp_path, emb.name, None).get(keys[:3]),
                                  [vec, vec + 1, vec + 2])


# -- on the cluster -------------------------------------------------------------------------

def test_ray_gives_the_local_vectors_and_shares_the_cache(ray_address, tiny_clip, tmp_path):
    folder = photos(tmp_path / "imgs", 40)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    items = from_folder(folder)
    emb = make_embedder(f"clip:{tiny_clip}")
    start = time.perf_counter()
    remote = embed_items(items, emb, cache_dir=tmp_path / "cache", engine="ray",
                         address=ray_address, chunk_size=8, progress=False)
    print(f"40 images on Ray: {time.perf_counter() - start:.1f} s")
    local = embed_items(items, emb, cache_dir=None, progress=False, num_workers=0)
    assert remote.ids == local.ids and len(remote.ids) == 40
    np.testing.assert_allclose(remote.vectors, local.vectors, rtol=0, atol=1e-5)
    assert remote.skipped == local.skipped == {"broken.jpg": "not an image Pillow can read"}
    assert remote.n_computed == 40 and remote.device == "ray:cpu"
    # One cache for both engines: a local run over it computes nothing.
    again = embed_items(items, emb, cache_dir=tmp_path / "cache", progress=False)
    assert again.n_computed == 0
    np.testing.assert_array_equal(again.vectors, remote.vectors)
    keys = chunk_keys(tmp_path / "cache")
    assert len(keys) == len(set(keys)) == 40


def test_ray_texts_skip_non_finite_vectors_and_embed_duplicates_once(ray_address, tmp_path):
    texts = [f"text number {i}" for i in range(30)] + ["text number 3", "nan here"]
    items = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "source": texts,
                          "kind": ["text"] * len(texts)})

    def lengths(batch):
        return np.array([[len(t), t.count("e") + 1.0, np.nan if "nan" in t else 1.0]
                         for t in batch])

    # Not normalised: normalising would turn the NaN row into zeros before the check.
    emb = CallableEmbedder(lengths, name="lengths", kind="text", normalize=False)
    remote = embed_items(items, emb, cache_dir=tmp_path / "cache", engine="ray",
                         address=ray_address, batch_size=8, progress=True)
    local = embed_items(items, CallableEmbedder(lengths, name="lengths", kind="text",
                                                normalize=False),
                        cache_dir=None, progress=False)
    assert remote.skipped == local.skipped == {"31": "the model produced NaN or infinite values"}
    assert remote.n_computed == 31  # 30 distinct texts and the NaN one
    np.testing.assert_allclose(remote.vectors, local.vectors, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(remote.vectors[3], remote.vectors[30])


def test_ray_text_model_gives_the_local_vectors(ray_address, tmp_path):
    pytest.importorskip("sentence_transformers")
    texts = ["a cat on a mat", "a dog in the fog", "stock prices fell", "rain tomorrow"] * 3
    texts = [f"{t} ({i})" for i, t in enumerate(texts)]
    emb = make_embedder("text", device="cpu")
    remote = embed_items(texts, emb, cache_dir=tmp_path / "cache", engine="ray",
                         address=ray_address, progress=False)
    local = embed_items(texts, emb, cache_dir=None, progress=False)
    assert remote.n_computed == len(texts) and remote.model == local.model
    np.testing.assert_allclose(remote.vectors, local.vectors, rtol=0, atol=1e-5)


def test_a_killed_worker_is_replaced_and_no_key_is_written_twice(ray_address, tmp_path):
    n = 40
    items = from_folder(photos(tmp_path / "imgs", n))
    cache, pid_log = tmp_path / "cache", tmp_path / "pids.txt"
    killed: list[tuple[int, str]] = []

    def kill_the_actor_after_the_first_chunk() -> None:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if pid_log.exists() and pid_log.read_text().split() and chunk_keys(cache):
                pid = int(pid_log.read_text().split()[0])
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, cmdline.decode(errors="replace")))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_actor_after_the_first_chunk, daemon=True)
    killer.start()
    r = embed_items(items, pixels_embedder(delay=0.4, pid_log=pid_log), cache_dir=cache,
                    engine="ray", address=ray_address, batch_size=4, chunk_size=8,
                    progress=False)
    killer.join(timeout=5)
    assert killed, "the run ended before the worker could be killed"
    pid, cmdline = killed[0]
    assert "EmbedActor" in cmdline  # the model actor (ray::MapWorker(MapBatches(EmbedActor)))
    assert pid_log.read_text().split()[-1] != str(pid)  # its work was redone by a new actor
    assert len(r.ids) == n and r.n_computed == n and not r.skipped
    local = embed_items(items, pixels_embedder(), cache_dir=None, progress=False,
                        num_workers=0)
    np.testing.assert_allclose(r.vectors, local.vectors, rtol=0, atol=1e-6)
    keys = chunk_keys(cache)
    assert len(keys) == len(set(keys)) == n  # every key in exactly one chunk file


DRIVER = """
import sys
{src}
import functools
from workbench.embed import CallableEmbedder, embed_items
from workbench.items import from_folder
emb = CallableEmbedder(functools.partial(slow_pixels, delay=0.4), name="pixels-v1")
embed_items(from_folder({folder!r}), emb, cache_dir={cache!r}, engine="ray",
            address={address!r}, batch_size=4, chunk_size=8, progress=False)
print("FINISHED")
"""


def test_a_killed_driver_resumes_without_redoing_finished_chunks(ray_address, tmp_path):
    n = 48
    folder = photos(tmp_path / "imgs", n)
    cache = tmp_path / "cache"
    script = DRIVER.format(src=SLOW_PIXELS_SRC, folder=str(folder), cache=str(cache),
                           address=ray_address)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and child.poll() is None and not chunk_keys(cache):
        time.sleep(0.02)
    assert child.poll() is None, f"the driver ended early: {child.communicate()}"
    os.kill(child.pid, signal.SIGKILL)  # no flush, no goodbye to the cluster
    child.wait()

    emb = pixels_embedder()
    done = len(EmbeddingCache(cache, emb.name, None))
    assert 8 <= done < n
    r = embed_items(from_folder(folder), emb, cache_dir=cache, engine="ray",
                    address=ray_address, batch_size=4, progress=False)
    assert r.n_computed == n - done
    local = embed_items(from_folder(folder), pixels_embedder(), cache_dir=None,
                        progress=False, num_workers=0)
    assert r.ids == local.ids and len(r.ids) == n
    np.testing.assert_allclose(r.vectors, local.vectors, rtol=0, atol=1e-6)
    keys = chunk_keys(cache)
    assert len(keys) == len(set(keys)) == n


def test_cli_embed_on_ray_then_locally_from_the_same_cache(ray_address, tiny_clip, tmp_path,
                                                           capsys):
    from workbench.cli import main

    folder = photos(tmp_path / "imgs", 12)
    assert main(["embed", str(folder), "--model", f"clip:{tiny_clip}", "--ray", ray_address,
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"on Ray ({ray_address})" in out and "12 vectors (12 computed, 0 from" in out
    assert main(["embed", str(folder), "--model", f"clip:{tiny_clip}", "--no-progress"]) == 0
    assert "12 vectors (0 computed, 12 from the cache)" in capsys.readouterr().out


def test_a_worker_seeing_other_weights_refuses(ray_address, tmp_path):
    folder = tmp_path / "clip"
    save_tiny_clip(folder, seed=0)
    emb = make_embedder(f"clip:{folder}")
    save_tiny_clip(folder, seed=1)  # the workers will read other weights than the driver
    items = from_folder(photos(tmp_path / "imgs", 4))
    with pytest.raises(EmbedError, match=r"on a Ray worker: .* its files differ there"):
        embed_items(items, emb, cache_dir=tmp_path / "cache", engine="ray",
                    address=ray_address, progress=False)
    assert not chunk_keys(tmp_path / "cache")
