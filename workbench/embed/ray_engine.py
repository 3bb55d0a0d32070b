"""Embedding on a Ray cluster: ``embed_items(..., engine="ray")``, ``workbench embed --ray``.

Only the computation of the missing vectors leaves this process (the driver). Content keys,
the list of keys no finished chunk holds, the chunks themselves and the result are the
local engine's (:mod:`.run`), so a Ray run and a local run share one cache, and a run
resumed after the driver was killed embeds only what no finished chunk holds.

The work is a Ray Dataset of ``(key hex, source)`` rows, in blocks of one model batch:

* images: :func:`decode_batch` in Ray tasks of one CPU each reads, decodes and preprocesses
  a block (the local loader's :class:`~.loader.ImageDataset`, so unreadable files get the
  same reasons); inputs travel pickled, with an empty one and the reason for each
  unreadable file. Each task reserves memory for its block
  (:data:`EMBED_RAY_DECODE_TASK_BYTES`), which also keeps Ray Data from fusing the
  decoding into the model actors;
* :class:`EmbedActor`, a fixed pool of actors (``ActorPoolStrategy(size=n)``, never more
  than there are blocks), runs the model: one GPU each when the cluster has GPUs, else
  :data:`EMBED_RAY_ACTOR_CPUS` CPUs;
* the driver reads the results as they come (``iter_batches``) and writes chunks with
  :meth:`EmbeddingCache.add` every ``chunk_size`` items or ``chunk_seconds``, dropping any
  key it already holds: a block Ray runs again after a worker died never writes a key twice.

Workers rebuild the model: an embedder from :func:`~.factory.make_embedder` is rebuilt from
its ``factory_args`` on the worker's own device (CUDA when the actor has a GPU), and must
come out with the driver's ``name`` (which hashes local checkpoint files: a worker that
sees other files refuses to run); a :class:`~.vectors.CallableEmbedder` travels as it is
(pickled by Ray, so its function must be picklable). Paths, model folders and checkpoints
must be readable on every node (a shared filesystem), and workers need ``workbench`` and
the model libraries importable (the same environment as the driver, or a Ray
``runtime_env``). Batch size and actor count follow ``ray.cluster_resources()`` (see
:func:`plan_run`) unless given.

Connection: as the graph's Ray engine (:func:`workbench._ray.connect`):
``address=None`` lets ``ray.init()`` choose (``RAY_ADDRESS``, a running local cluster, else
a new local one), a process already connected keeps its connection, and a cluster joined is
left running.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._config import (
    EMBED_BATCH_SIZE_CPU,
    EMBED_BATCH_SIZE_GPU,
    EMBED_RAY_ACTOR_CPUS,
    EMBED_RAY_DECODE_BYTES_PER_ITEM,
    EMBED_RAY_DECODE_SHARE,
    EMBED_RAY_DECODE_TASK_BYTES,
)
from .base import Embedder, EmbedError
from .cache import EmbeddingCache
from .loader import ImageDataset, collate
from .vectors import CallableEmbedder

__all__ = ["EmbedActor", "RayPlan", "compute_on_ray", "consume_results", "decode_batch",
           "plan_run", "worker_recipe"]

@dataclass(frozen=True)
class RayPlan:
    """How a run uses the cluster: ``actors`` model actors of ``actor_cpus`` CPUs and
    ``actor_gpus`` GPUs each, ``batch_size`` items per forward pass (and per block), the
    model on ``device`` (``"cuda"`` or ``"cpu"``) in each actor running ``threads`` torch
    threads; each image decode task reserves ``decode_memory`` bytes."""

    batch_size: int
    actors: int
    actor_cpus: float
    actor_gpus: float
    device: str
    decode_memory: int
    threads: int = 1


def plan_run(resources: Mapping[str, float], kind: str, *, batch_size: int | None = None,
             actors: int | None = None, nodes: int = 1) -> RayPlan:
    """The :class:`RayPlan` for a cluster offering ``resources`` (``ray.cluster_resources()``).

    One actor per GPU when there are GPUs (batches of ``EMBED_BATCH_SIZE_GPU``), else one
    per CPU (batches of ``EMBED_BATCH_SIZE_CPU``); for images, :data:`EMBED_RAY_DECODE_SHARE`
    of the CPUs, at least one, stay free for the decode tasks. ``actors`` and
    ``batch_size`` override the defaults; EmbedError when the actors cannot all run.
    On CPUs, fewer actors than fit (``actors``) share a node's CPUs in torch threads
    (``threads``; the ``nodes`` of the cluster are taken as equal): the decode tasks use a
    tenth of what the model does, so a lone actor leaving the rest idle would run at
    half speed on two cores.
    """
    cpus = int(resources.get("CPU", 0))
    gpus = int(resources.get("GPU", 0))
    decode = max(1, math.ceil(cpus * EMBED_RAY_DECODE_SHARE)) if kind == "image" else 0
    most = int((cpus - decode) // EMBED_RAY_ACTOR_CPUS)
    if gpus:
        most = min(most, gpus)
    if most < 1:
        raise EmbedError(
            f"the Ray cluster offers {cpus} CPU(s): too few for a model actor of "
            f"{EMBED_RAY_ACTOR_CPUS} CPU(s)" + (" and a task decoding images beside it"
                                                 if decode else "")
            + "; add CPUs to the cluster (ray start --num-cpus) or embed locally"
        )
    n = most if actors is None else int(actors)
    if not 1 <= n <= most:
        where = f"{gpus} GPU(s), {cpus} CPU(s)" if gpus else f"{cpus} CPU(s)"
        raise EmbedError(
            f"{n} model actors do not fit on the Ray cluster ({where}"
            + (f", {decode} kept for decoding images" if decode else "")
            + f"); ask for at most {most} (num_workers= / --workers), or none to let the "
            "cluster decide"
        )
    size = int(batch_size or (EMBED_BATCH_SIZE_GPU if gpus else EMBED_BATCH_SIZE_CPU))
    if size < 1:
        raise EmbedError(f"batch_size must be at least 1, not {size}")
    # Never more than the cluster's memory per CPU: a request no node can meet would hang.
    memory = EMBED_RAY_DECODE_TASK_BYTES + size * EMBED_RAY_DECODE_BYTES_PER_ITEM
    memory = min(memory, int(resources.get("memory", memory * cpus) // max(1, cpus)))
    threads = int(EMBED_RAY_ACTOR_CPUS)
    if not gpus:
        per_node = max(1, -(-n // max(1, nodes)))  # actors on the busiest node
        threads = max(threads, int(cpus // max(1, nodes)) // per_node)
    return RayPlan(batch_size=size, actors=n, actor_cpus=EMBED_RAY_ACTOR_CPUS,
                   actor_gpus=1.0 if gpus else 0.0, device="cuda" if gpus else "cpu",
                   decode_memory=memory, threads=threads)


def worker_recipe(embedder: Embedder) -> dict[str, Any]:
    """What an actor needs to build ``embedder`` again (picklable)."""
    factory_args = getattr(embedder, "factory_args", None)
    if factory_args is not None:
        return {"factory_args": dict(factory_args), "name": embedder.name}
    if isinstance(embedder, CallableEmbedder):
        return {"embedder": embedder, "name": embedder.name}
    raise EmbedError(
        f"engine='ray' cannot rebuild {embedder!r} on the workers: create it with "
        "make_embedder('clip' | 'dino' | 'text' | 'BACKEND:MODEL', ...), which records how, "
        "or wrap your own model in a CallableEmbedder; or embed with engine='local'"
    )


def rebuild(recipe: Mapping[str, Any]) -> Embedder:
    """The embedder of :func:`worker_recipe`'s ``recipe``, on this worker's device."""
    if "embedder" in recipe:
        return recipe["embedder"]
    from .factory import make_embedder

    embedder = make_embedder(**recipe["factory_args"])
    if embedder.name != recipe["name"]:
        import socket

        raise EmbedError(
            f"the model built on Ray worker {socket.gethostname()} is {embedder.name!r}, not "
            f"the driver's {recipe['name']!r}: its files differ there; give every node the "
            "same checkpoint (a shared folder), or embed with engine='local'"
        )
    return embedder


def decode_batch(batch: dict[str, np.ndarray], *, transform: Any,
                 draft_size: int | None) -> dict[str, np.ndarray]:
    """A Ray task's work: read, decode and preprocess one block of images.

    Returns the block's ``key``s, ``input`` (each model input pickled; empty bytes for an
    unreadable file) and ``reason`` (why a file is unreadable; empty when it is not).
    """
    import torch

    torch.set_num_threads(1)  # as the local loader's workers: one core per task
    data = ImageDataset([str(s) for s in batch["source"]], transform, draft_size=draft_size)
    inputs: list[bytes] = []
    reasons: list[str] = []
    for i in range(len(data)):
        _, x, reason = data[i]
        inputs.append(b"" if reason else pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL))
        reasons.append(reason or "")
    return {"key": batch["key"], "input": np.array(inputs, dtype=object),
            "reason": np.array(reasons, dtype=object)}


class EmbedActor:
    """The model in one Ray actor: built once, then one batch per call.

    Returns each batch's ``key``s, ``vector`` (float32 bytes; empty for an unreadable item)
    and ``reason``.
    """

    def __init__(self, recipe: dict[str, Any], kind: str, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.embedder = rebuild(recipe)
        self.kind = kind

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["key"])
        if self.kind == "image":
            reasons = [str(r) for r in batch["reason"]]
            ok = [i for i in range(n) if not reasons[i]]
            _, inputs, _ = collate([(i, pickle.loads(batch["input"][i]), None) for i in ok])
        else:
            reasons, ok, inputs = [""] * n, list(range(n)), [str(s) for s in batch["source"]]
        vectors = [b""] * n
        if ok:
            vecs = np.asarray(self.embedder.embed_batch(inputs), dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[0] != len(ok):
                raise EmbedError(f"{self.embedder.name} returned {vecs.shape[0]} vectors for "
                                 f"{len(ok)} items")
            for i, v in zip(ok, vecs):
                vectors[i] = v.tobytes()
        return {"key": batch["key"], "vector": np.array(vectors, dtype=object),
                "reason": np.array(reasons, dtype=object)}


def compute_on_ray(todo: list[tuple[bytes, int]], sources: Sequence[str], embedder: Embedder,
                   cache: EmbeddingCache, skipped: dict[int, str], *, address: str | None,
                   batch_size: int | None, actors: int | None, progress: bool,
                   chunk_size: int, chunk_seconds: float) -> tuple[int, str]:
    """Embed the ``todo`` (key, position) items on Ray into ``cache``.

    Unreadable items and non-finite vectors go to ``skipped`` ({position: reason}) as in
    the local engine. Returns (vectors computed, ``"ray:<device>"`` of the actors). On
    KeyboardInterrupt or an error, what arrived is written to the cache first.
    """
    from .._ray import connect

    recipe = worker_recipe(embedder)  # before connecting: an embedder Ray cannot rebuild
    ray = connect(address)
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    plan = plan_run(ray.cluster_resources(), embedder.kind, batch_size=batch_size,
                    actors=actors, nodes=nodes)
    # No more actors than blocks: an actor with nothing to do would still load the model.
    plan = replace(plan, actors=min(plan.actors, -(-len(todo) // plan.batch_size)))
    with _quiet_data(ray):
        results = _dataset(ray, todo, sources, embedder, recipe, plan).iter_batches(
            batch_size=None, batch_format="numpy")
        n_done = consume_results(
            results, todo, embedder, cache, skipped, progress=progress,
            desc=f"embedding on Ray ({plan.actors} {plan.device} actor(s))",
            chunk_size=chunk_size, chunk_seconds=chunk_seconds,
        )
    return n_done, f"ray:{plan.device}"


def _dataset(ray: Any, todo: list[tuple[bytes, int]], sources: Sequence[str],
             embedder: Embedder, recipe: dict[str, Any], plan: RayPlan) -> Any:
    rows = [{"key": k.hex(), "source": sources[p]} for k, p in todo]
    ds = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // plan.batch_size))
    if embedder.kind == "image":
        ds = ds.map_batches(
            decode_batch, batch_size=None, batch_format="numpy", num_cpus=1,
            memory=plan.decode_memory,
            fn_kwargs={"transform": embedder.transform(), "draft_size": embedder.draft_size},
        )
    return ds.map_batches(
        EmbedActor, batch_size=plan.batch_size, batch_format="numpy",
        fn_constructor_kwargs={"recipe": recipe, "kind": embedder.kind,
                               "threads": plan.threads},
        compute=ray.data.ActorPoolStrategy(size=plan.actors), num_cpus=plan.actor_cpus,
        num_gpus=plan.actor_gpus or None,
    )


def consume_results(results: Iterable[dict[str, np.ndarray]],
                    todo: list[tuple[bytes, int]], embedder: Embedder, cache: EmbeddingCache,
                    skipped: dict[int, str], *, progress: bool, desc: str, chunk_size: int,
                    chunk_seconds: float) -> int:
    """Write the vectors of ``results`` (the actors' output batches) to ``cache`` as they
    arrive: each key once, whatever Ray ran twice; unreadable items and non-finite vectors
    into ``skipped``. Returns the count of vectors computed."""
    from .run import ChunkWriter, progress_bar

    pos_of = dict(todo)
    seen: set[bytes] = set()  # keys answered, once: a re-run block's answers are dropped
    writer = ChunkWriter(cache, skipped, pos_of, chunk_size=chunk_size,
                         chunk_seconds=chunk_seconds)
    bar = progress_bar(embedder, len(todo), progress, desc)
    n_done = 0
    try:
        for batch in results:
            keys, vecs = [], []
            for key_hex, blob, reason in zip(batch["key"], batch["vector"], batch["reason"]):
                key = bytes.fromhex(str(key_hex))
                if key not in pos_of or key in seen:
                    continue
                seen.add(key)
                if reason:
                    skipped[pos_of[key]] = str(reason)
                else:
                    keys.append(key)
                    vecs.append(np.frombuffer(blob, dtype=np.float32))
            if keys:
                if len({v.shape for v in vecs}) != 1:
                    raise EmbedError(f"{embedder.name} returned vectors of different lengths "
                                     f"({sorted({v.size for v in vecs})})")
                writer.add(keys, np.stack(vecs))
                n_done += len(keys)
            bar.update(len(seen) - bar.n)
        bar.update(len(todo) - bar.n)
    except Exception as err:
        explained = _worker_error(err)
        if explained is None:
            raise
        raise explained from err
    finally:
        # Also on KeyboardInterrupt: what arrived is kept, the next call resumes.
        writer.flush()
        bar.close()
    if not embedder.dim and cache.dim:
        embedder.dim = cache.dim  # a callable backend learns its dim from the vectors
    return n_done


def _worker_error(err: Exception) -> EmbedError | None:
    """The EmbedError a worker raised, out of the Ray error that carries it as text (Ray
    wraps it with the worker's traceback); None for any other error."""
    if isinstance(err, EmbedError):
        return None
    for line in reversed(str(err).splitlines()):
        _, marker, message = line.partition("EmbedError: ")
        if marker:
            return EmbedError(f"on a Ray worker: {message.strip()}")
    return None


@contextmanager
def _quiet_data(ray: Any) -> Iterator[None]:
    """No Ray Data progress bars or plan printout while it runs (ours is the bar)."""
    ctx = ray.data.DataContext.get_current()
    names = [n for n in ("enable_progress_bars", "print_on_execution_start") if hasattr(ctx, n)]
    saved = {n: getattr(ctx, n) for n in names}
    for n in names:
        setattr(ctx, n, False)
    try:
        yield
    finally:
        for n, value in saved.items():
            setattr(ctx, n, value)
