"""Which device embeds, how many CPU threads and decode workers it gets."""

from __future__ import annotations

import os

from .._config import EMBED_BATCH_SIZE_CPU, EMBED_BATCH_SIZE_GPU, EMBED_MAX_WORKERS

__all__ = [
    "available_cores",
    "best_device",
    "cap_torch_threads",
    "default_batch_size",
    "default_num_workers",
]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, so containers count right)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def best_device(device: str | None = None) -> str:
    """The device to embed on: ``device`` when given, else ``cuda``, then ``mps``, then ``cpu``.

    Raises ValueError when an explicitly requested accelerator is not available, so a
    batch job asked to run on a GPU never silently crawls on the CPU instead.
    """
    import torch

    if device is not None:
        kind = str(device).split(":")[0]
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was requested but torch sees no CUDA GPU; "
                "install a CUDA build of torch or pass device='cpu'"
            )
        if kind == "mps" and not _mps_available():
            raise ValueError(f"device {device!r} was requested but MPS is not available")
        return str(device)
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available():
        return "mps"
    return "cpu"


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cap_torch_threads() -> int:
    """Limit torch's intra-op threads to the cores we may use; returns the thread count.

    torch defaults to the machine's core count, which in a container or under a CPU
    affinity mask oversubscribes the cores and slows everything down.
    """
    import torch

    cores = available_cores()
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch.get_num_threads()


def default_num_workers(n_items: int | None = None, device: str = "cuda") -> int:
    """Decode worker processes for a run of ``n_items`` with the model on ``device``.

    ``min(EMBED_MAX_WORKERS, cores)`` for an accelerator, which must be fed fast;
    ``EMBED_CPU_WORKERS`` (1) when the model itself runs on the CPU, where extra decoders
    would only compete with the forward pass for the same cores; 0 for tiny jobs.
    """
    from .._config import EMBED_CPU_WORKERS, EMBED_MIN_ITEMS_FOR_WORKERS

    if n_items is not None and n_items < EMBED_MIN_ITEMS_FOR_WORKERS:
        return 0
    if str(device).startswith("cpu"):
        return min(EMBED_CPU_WORKERS, available_cores())
    return min(EMBED_MAX_WORKERS, available_cores())


def default_batch_size(device: str) -> int:
    """Items per forward pass for ``device`` (see ``EMBED_BATCH_SIZE_*`` in the config)."""
    return EMBED_BATCH_SIZE_CPU if str(device).startswith("cpu") else EMBED_BATCH_SIZE_GPU
