"""How many decode workers and what batch size an embedding run gets (the device and the
core count come from the ground level, :mod:`workbench._device`)."""

from __future__ import annotations

from .._config import EMBED_BATCH_SIZE_CPU, EMBED_BATCH_SIZE_GPU, EMBED_MAX_WORKERS
from .._device import available_cores, best_device, cap_torch_threads

__all__ = [
    "available_cores",
    "best_device",
    "cap_torch_threads",
    "default_batch_size",
    "default_num_workers",
]


def default_num_workers(n_items: int | None = None, device: str = "cuda") -> int:
    """Decode worker processes for a run of ``n_items`` with the model on ``device``.

    ``min(EMBED_MAX_WORKERS, cores - 1)`` (at least 1) for an accelerator, which must be
    fed fast, the last core left to this process (hashing, regrouping, the cache);
    ``EMBED_CPU_WORKERS`` (1) when the model itself runs on the CPU, where extra decoders
    would only compete with the forward pass for the same cores; 0 for tiny jobs.
    """
    from .._config import EMBED_CPU_WORKERS, EMBED_MIN_ITEMS_FOR_WORKERS

    if n_items is not None and n_items < EMBED_MIN_ITEMS_FOR_WORKERS:
        return 0
    if str(device).startswith("cpu"):
        return min(EMBED_CPU_WORKERS, available_cores())
    return max(1, min(EMBED_MAX_WORKERS, available_cores() - 1))


def default_batch_size(device: str) -> int:
    """Items per forward pass for ``device`` (see ``EMBED_BATCH_SIZE_*`` in the config)."""
    return EMBED_BATCH_SIZE_CPU if str(device).startswith("cpu") else EMBED_BATCH_SIZE_GPU
