"""Device choice, thread cap and worker defaults for embedding."""

from __future__ import annotations

import pytest
import torch

import workbench.embed as embed
from workbench.embed.device import (
    available_cores,
    best_device,
    cap_torch_threads,
    default_batch_size,
    default_num_workers,
)


def test_best_device_prefers_accelerators_and_refuses_missing_ones():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert best_device() == expected
    assert best_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            best_device("cuda")


def test_threads_and_workers_respect_the_cores():
    cores = available_cores()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(cores * 4)
        assert cap_torch_threads() == cores
    finally:
        torch.set_num_threads(before)
    assert default_num_workers(10) == 0  # tiny jobs decode in-process
    # an accelerator gets every core but the one this process needs (at least one worker)
    assert default_num_workers(10_000, "cuda") == max(1, min(32, cores - 1))
    assert default_num_workers(10_000, "cpu") == 1  # a CPU forward needs one decoder
    assert default_batch_size("cpu") < default_batch_size("cuda")


def test_public_names_are_exactly_the_intended_ones():
    assert sorted(embed.__all__) == sorted(
        name for name in dir(embed)
        if not name.startswith("_") and name not in {
            "annotations", "base", "cache", "clip", "device", "dino", "factory", "loader",
            "run", "text", "vectors", "cli", "ray_engine",
        }
    )
