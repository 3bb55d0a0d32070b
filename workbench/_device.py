"""The ground level for devices and cores: which device computes, how many cores this
process may use, and how many threads a fit gets. Imported by embedding and learning alike
(neither imports the other for it)."""

from __future__ import annotations

import os

from ._config import FIT_THREADS_MIN_WORK

__all__ = ["available_cores", "best_device", "cap_torch_threads", "fit_threads"]


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


def fit_threads(work: int) -> int:
    """CPU threads for a fit of ``work`` ≈ labelled × dims × classes × L2 values.

    One for small fits: L-BFGS on a few hundred labels is thousands of tiny operations,
    where thread hand-offs cost more than they save (25x slower on a busy 2-core machine).
    Otherwise one core fewer than this process may use: the fit runs in the background
    beside the kernel, the map and propagation, and a torch thread pool that wants every
    core stalls at each of its many small parallel steps whenever one core is busy
    elsewhere (measured on 2 shared cores: 10k labels took 34 s with 2 threads, 4 s with 1).
    """
    return 1 if work < FIT_THREADS_MIN_WORK else max(1, available_cores() - 1)
