"""Fail the Binder build loudly if pip took a CUDA build of torch.

binder/requirements.txt asks for torch from PyTorch's CPU wheels. When that index cannot
be reached, pip silently falls back to PyPI's default (CUDA) build, and the image grows by
about 4 GB of CUDA libraries that Binder, which has no GPU, can never use: stop instead.
"""

from __future__ import annotations

import sys
from typing import Any


def check(torch: Any) -> str | None:
    """None when ``torch`` is a CPU build, else the message the build stops with."""
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    if cuda is None:
        return None
    return (
        f"binder: pip installed torch {torch.__version__} built for CUDA {cuda}, not the CPU "
        "build that binder/requirements.txt asks for (the CPU wheel index was probably "
        "unreachable). That adds ~4 GB of CUDA libraries Binder cannot use; rebuild when "
        "the index is reachable."
    )


def main() -> int:
    import torch

    message = check(torch)
    if message:
        print(message, file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} is a CPU build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
