"""How many decode workers feed the model: the whole embedding path's steady rate by worker
count (and with or without page-locked batches), on the best device.

    python benchmarks/embed_workers.py --workers 4 15 --n 3072

``embed_items`` (ViT-B-32, random weights, batch 256 on a GPU) over ``--small`` and ``--n``
500×375 JPEGs (embed_throughput.py's photos), each call with an empty cache: the steady rate
is ``(n - small) / (t_n - t_small)``, free of the workers' start and stop. Two repeats of
each setting. Written to ``benchmarks/results/embed_workers_{device}.json``; the figures
behind ``EMBED_MAX_WORKERS`` came from an H200 with 16 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import save_result
from embed_throughput import make_photos

from workbench.embed import ClipEmbedder, embed_items
from workbench.embed import run as run_module
from workbench.embed.device import available_cores
from workbench.items import from_folder


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[4, 15])
    p.add_argument("--n", type=int, default=3072)
    p.add_argument("--small", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    make_photos(tmp / "photos", (500, 375), args.n)
    embedder = ClipEmbedder("ViT-B-32", pretrained=None, device=args.device)
    items = from_folder(tmp / "photos")
    real = run_module.make_image_loader
    pin = [True]

    def loader(*a, **kw):
        kw["pin_memory"] = pin[0] and str(embedder.device).startswith("cuda")
        return real(*a, **kw)

    run_module.make_image_loader = loader

    def seconds(n: int, workers: int) -> float:
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            embed_items(items[:n], embedder, cache_dir=cache, batch_size=args.batch_size,
                        num_workers=workers, progress=False)
            return time.perf_counter() - t

    seconds(min(512, args.n), max(args.workers))  # warm-up
    runs = []
    for pin[0] in (True, False):
        for w in args.workers:
            for _ in range(2):
                t_small, t_n = seconds(args.small, w), seconds(args.n, w)
                runs.append({"pin": pin[0], "workers": w, "t_small_s": round(t_small, 2),
                             "t_n_s": round(t_n, 2), "per_s": round(args.n / t_n),
                             "steady_per_s": round((args.n - args.small) / (t_n - t_small))})
                print(runs[-1], flush=True)
    return save_result(f"embed_workers_{str(embedder.device).split(':')[0]}", {
        "benchmark": "embed_workers", "device": str(embedder.device),
        "cores": available_cores(), "n": args.n, "small": args.small,
        "batch_size": args.batch_size, "runs": runs,
    })


if __name__ == "__main__":
    main()
