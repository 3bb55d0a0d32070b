"""Embedding throughput: the whole path against the forward pass alone (BENCHMARKS.md §4).

Whole path: ``workbench.embed.embed_items`` on JPEG files with an empty cache: hash the
file, read, decode (Pillow ``draft`` for JPEG), resize/crop/normalise in DataLoader
workers, forward, write the cache. Forward only: the same model and batch size on the
same images already decoded and preprocessed into tensors. Their ratio says whether the
loader starves the model (goal: at least 0.8).

Images: crops of scikit-learn's two sample photographs (``load_sample_images``) saved as
JPEG at photo sizes, 500×375 and 1920×1080 by default, or ``--images FOLDER`` for your own.
The model is a real open_clip architecture (default ViT-B-32). Without ``--pretrained`` it
has random weights (nothing can be downloaded here); the forward cost is the same.

    python benchmarks/embed_throughput.py [--model ViT-B-32] [--n 64] [--batch-size 32]

Prints a table; the last line is the headline JSON; all figures go to
``benchmarks/results/embed_throughput.json``.

``--engine ray`` measures the same whole path through ``embed_items(..., engine="ray")``
(decoding in Ray tasks, the model in Ray actors) on a local Ray this script starts, against
the local engine on the same cores: at 1 and 2 model actors (``--workers N`` for one count),
each Ray run given N + 1 logical CPUs (N single-threaded actors and the decode tasks' CPU,
as :func:`workbench.embed.ray_engine.plan_run` keeps one for decoding). Each call starts its
actors and loads the model in them, as every ``embed_items`` call does: ``startup_s`` is
the time of a one-image call and ``steady_per_s`` the rate beyond it,
``(n - 1) / (t_n - t_1)``. Random weights are saved to a file first, so that every actor
builds the same model. Figures go to ``benchmarks/results/embed_throughput_ray.json``.

    python benchmarks/embed_throughput.py --engine ray [--workers N] [--n 32]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.embed import ClipEmbedder, Embedder, embed_items, make_embedder  # noqa: E402
from workbench.embed.device import available_cores, default_num_workers  # noqa: E402
from workbench.embed.loader import open_rgb  # noqa: E402
from workbench.items import from_folder  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "embed_throughput.json"
RESULTS_RAY = ROOT / "benchmarks" / "results" / "embed_throughput_ray.json"


def make_photos(folder: Path, size: tuple[int, int], n: int, seed: int = 0) -> None:
    """``n`` JPEGs of ``size`` (w, h): random crops of the two sample photos, rescaled."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(img) for img in load_sample_images().images]  # 640×427 each
    rng = np.random.default_rng(seed)
    w, h = size
    folder.mkdir(parents=True, exist_ok=True)
    seen = set()
    for i in range(n):
        src = photos[i % len(photos)]
        while True:  # distinct crops: identical files would share one cached vector
            # A window with the target's aspect ratio, 60-100% of the photo's height.
            ch = int(src.height * rng.uniform(0.6, 1.0))
            cw = min(src.width, int(ch * w / h))
            ch = int(cw * h / w)
            x0 = int(rng.integers(0, src.width - cw + 1))
            y0 = int(rng.integers(0, src.height - ch + 1))
            if (i % len(photos), x0, y0, cw, ch) not in seen:
                seen.add((i % len(photos), x0, y0, cw, ch))
                break
        crop = src.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.BICUBIC)
        crop.save(folder / f"photo{i:04d}.jpg", quality=90)


def forward_only(embedder: ClipEmbedder, tensors, batch_size: int) -> tuple[float, float]:
    """Images per second of ``embed_batch`` on ready tensors, and CPU seconds per image."""
    cpu, start = time.process_time(), time.perf_counter()
    for s in range(0, len(tensors), batch_size):
        embedder.embed_batch(torch.stack(tensors[s:s + batch_size]))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(tensors) / wall, cpu / len(tensors)


def whole_path(embedder: Embedder, folder: Path, batch_size: int, workers: int | None,
               engine: str = "local") -> float:
    """Images per second of ``embed_items`` from files, with an empty cache (``workers``:
    decode workers for the local engine, model actors for Ray)."""
    return _rate(_timed_call(embedder, folder, batch_size, workers, engine), folder)


def _timed_call(embedder: Embedder, folder: Path, batch_size: int, workers: int | None,
                engine: str) -> float:
    """Seconds of one ``embed_items`` call over ``folder`` with an empty cache."""
    items = from_folder(folder)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        result = embed_items(items, embedder, cache_dir=cache, batch_size=batch_size,
                             num_workers=workers, progress=False, engine=engine)
        seconds = time.perf_counter() - start
    assert result.n_computed == items.height and not result.skipped, result
    return seconds


def _rate(seconds: float, folder: Path) -> float:
    return sum(1 for p in folder.rglob("*") if p.is_file()) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture or folder")
    parser.add_argument("--pretrained", default=None,
                        help="pretrained tag or weights file (default: random weights)")
    parser.add_argument("--images", type=Path, default=None,
                        help="a folder of your own images instead of the generated photos")
    parser.add_argument("--sizes", default="500x375,1920x1080",
                        help="photo sizes to generate, WxH, comma-separated")
    parser.add_argument("--n", type=int, default=64, help="images per size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None,
                        help="decode workers (default: as embed_items picks for the device); "
                        "with --engine ray, model actors (default: 1 and 2, each measured)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="ray: Ray's whole path against the local engine's (see above)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results file (default {RESULTS.name}, or {RESULTS_RAY.name} "
                        "with --engine ray)")
    args = parser.parse_args(argv)
    if args.engine == "ray":
        return main_ray(args)
    args.out = args.out or RESULTS

    embedder = ClipEmbedder(args.model, pretrained=args.pretrained, device=args.device)
    workers = default_num_workers(None, embedder.device) if args.workers is None \
        else args.workers
    if args.pretrained:
        weights = args.pretrained
    elif Path(args.model).exists() or args.model.startswith(("local-dir:", "hf-hub:")):
        weights = "weights from the model folder"
    else:
        weights = "random weights (no download possible; same forward cost)"
    print(f"model {args.model} ({weights}), device {embedder.device}, batch {args.batch_size}, "
          f"{workers} decode workers, {available_cores()} cores, "
          f"torch threads {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        sets = photo_sets(args, Path(tmp))
        by_size = {}
        for label, folder in sets.items():
            paths = [str(p) for p in sorted(folder.rglob("*")) if p.is_file()]
            # The loader's own CPU cost: read, decode (draft), convert, preprocess, with one
            # torch thread as in a worker process (more would only add spin-waiting).
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            cpu = time.process_time()
            tensors = [embedder.preprocess(open_rgb(p, draft_size=embedder.draft_size))
                       for p in paths]
            loader_cpu = (time.process_time() - cpu) / len(paths)
            torch.set_num_threads(threads)
            forward_only(embedder, tensors[: args.batch_size], args.batch_size)  # warm-up
            fwd, whole, fwd_cpu = [], [], []
            for _ in range(args.repeats):  # interleaved, so both see the same machine load
                rate, cpu_per_image = forward_only(embedder, tensors, args.batch_size)
                fwd.append(rate)
                fwd_cpu.append(cpu_per_image)
                whole.append(whole_path(embedder, folder, args.batch_size, workers))
                print(f"  {label}: forward-only {fwd[-1]:.2f}/s, whole path {whole[-1]:.2f}/s",
                      flush=True)
            f_med, w_med = statistics.median(fwd), statistics.median(whole)
            f_cpu = statistics.median(fwd_cpu)
            by_size[label] = {
                "n_images": len(paths),
                "forward_only_per_s": round(f_med, 2),
                "whole_path_per_s": round(w_med, 2),
                "ratio": round(w_med / f_med, 3),
                "paired_ratio_median": round(statistics.median(
                    w / f for w, f in zip(whole, fwd)), 3),
                "forward_only_runs": [round(v, 2) for v in fwd],
                "whole_path_runs": [round(v, 2) for v in whole],
                # Load-independent view: CPU ms per image of each stage. On a CPU-bound
                # machine the loader and the model share the cores, so the whole path can
                # reach at most forward / (forward + loader) of the forward-only rate.
                "loader_cpu_ms_per_image": round(loader_cpu * 1000, 2),
                "forward_cpu_ms_per_image": round(f_cpu * 1000, 2),
                "cpu_bound_ratio": round(f_cpu / (f_cpu + loader_cpu), 3),
            }

    print(f"\n{'images':>12} {'n':>5} {'forward-only/s':>15} {'whole path/s':>13} "
          f"{'ratio':>6} {'loader ms/img':>14} {'forward ms/img':>15} {'cpu-bound':>10}")
    for label, r in by_size.items():
        print(f"{label:>12} {r['n_images']:>5} {r['forward_only_per_s']:>15.2f} "
              f"{r['whole_path_per_s']:>13.2f} {r['ratio']:>6.3f} "
              f"{r['loader_cpu_ms_per_image']:>14.1f} {r['forward_cpu_ms_per_image']:>15.1f} "
              f"{r['cpu_bound_ratio']:>10.3f}")
    print("(ms/img: CPU time; cpu-bound = forward / (forward + loader), the most the whole "
          "path can reach when both share the same cores)")
    # Headline: the size where the loader does worst (the conservative figure).
    worst = min(by_size, key=lambda k: by_size[k]["ratio"])
    headline = {
        "benchmark": "embed_throughput",
        "model": f"{args.model} ({weights})",
        "device": embedder.device,
        "whole_path_per_s": by_size[worst]["whole_path_per_s"],
        "forward_only_per_s": by_size[worst]["forward_only_per_s"],
        "ratio": by_size[worst]["ratio"],
        "images": worst,
        "by_size": {k: {key: v[key] for key in ("whole_path_per_s", "forward_only_per_s",
                                                  "ratio", "cpu_bound_ratio")}
                    for k, v in by_size.items()},
    }
    record = {
        **headline,
        "batch_size": args.batch_size,
        "workers": workers,
        "cores": available_cores(),
        "repeats": args.repeats,
        "machine": platform.platform(),
        "details": by_size,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(headline))
    return 0


def photo_sets(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    """{label: folder} of the images to measure: ``--images``, or photos made in ``tmp``."""
    if args.images is not None:
        return {args.images.name: args.images}
    sets = {}
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.lower().split("x"))
        sets[spec] = tmp / spec
        make_photos(sets[spec], (w, h), args.n)
    return sets


def rebuildable_clip(args: argparse.Namespace, tmp: Path) -> tuple[Embedder, str]:
    """The CLIP model as ``make_embedder`` builds it, so Ray workers build the same one, and
    a description of its weights. Random weights are saved to ``tmp`` first: each worker
    would otherwise draw its own."""
    import open_clip

    spec = f"clip:{args.model}"
    if args.pretrained:
        return make_embedder(spec, pretrained=args.pretrained, device=args.device), \
            args.pretrained
    if Path(args.model).exists() or args.model.startswith(("local-dir:", "hf-hub:")):
        return make_embedder(spec, device=args.device), "weights from the model folder"
    weights = tmp / "random-weights.pt"
    torch.save(open_clip.create_model(args.model, pretrained=None).state_dict(), weights)
    return make_embedder(spec, pretrained=str(weights), device=args.device), \
        "random weights (no download possible; same forward cost)"


def ray_cpus_for(actors: int) -> int:
    """Logical CPUs a local Ray needs for ``actors`` model actors and the decode tasks."""
    from workbench.embed.ray_engine import plan_run

    cpus = actors + 1
    while plan_run({"CPU": float(cpus)}, "image").actors < actors:
        cpus += 1
    return cpus


def measure_ray(embedder: Embedder, sets: dict[str, Path], tmp: Path, *, actors: int,
                batch_size: int, repeats: int) -> dict[str, dict]:
    """Ray's whole path at ``actors`` model actors on a local Ray started for it:
    {label: figures}."""
    import ray

    ray.init(num_cpus=ray_cpus_for(actors), include_dashboard=False, log_to_driver=False)
    try:
        out = {}
        for label, folder in sets.items():
            one = tmp / f"one-{label}"
            one.mkdir(exist_ok=True)
            first = next(p for p in sorted(folder.rglob("*")) if p.is_file())
            shutil.copy(first, one / first.name)
            startup = _timed_call(embedder, one, batch_size, actors, "ray")
            runs = [_timed_call(embedder, folder, batch_size, actors, "ray")
                    for _ in range(repeats)]
            n = sum(1 for p in folder.rglob("*") if p.is_file())
            seconds = statistics.median(runs)
            out[label] = {
                "whole_path_per_s": round(n / seconds, 2),
                "whole_path_runs": [round(n / t, 2) for t in runs],
                "startup_s": round(startup, 2),
                # None when the run took no longer than the one-image call (too few images).
                "steady_per_s": round((n - 1) / (seconds - startup), 2)
                if seconds > startup else None,
            }
            print(f"  {label}: Ray with {actors} actor(s) {out[label]['whole_path_per_s']:.2f}/s "
                  f"(startup {startup:.1f} s)", flush=True)
        return out
    finally:
        ray.shutdown()


def main_ray(args: argparse.Namespace) -> int:
    """``--engine ray``: Ray's whole path against the local engine's, on the same cores."""
    from workbench._ray import import_ray

    import_ray()
    counts = [args.workers] if args.workers else [1, 2]
    with tempfile.TemporaryDirectory() as tmp:
        embedder, weights = rebuildable_clip(args, Path(tmp))
        print(f"model {args.model} ({weights}), device {embedder.device}, batch "
              f"{args.batch_size}, {available_cores()} cores; Ray at {counts} actor(s)")
        sets = photo_sets(args, Path(tmp))
        # The local engine first, with no Ray running beside it.
        local = {}
        for label, folder in sets.items():
            whole_path(embedder, folder, args.batch_size, None)  # warm-up
            runs = [whole_path(embedder, folder, args.batch_size, None)
                    for _ in range(args.repeats)]
            local[label] = {"n_images": sum(1 for p in folder.rglob("*") if p.is_file()),
                            "whole_path_per_s": round(statistics.median(runs), 2),
                            "whole_path_runs": [round(v, 2) for v in runs]}
            print(f"  {label}: local {local[label]['whole_path_per_s']:.2f}/s", flush=True)
        by_actors = {}
        for n in counts:
            figures = measure_ray(embedder, sets, Path(tmp), actors=n,
                                  batch_size=args.batch_size, repeats=args.repeats)
            for label, f in figures.items():
                base = local[label]["whole_path_per_s"]
                f["ratio_to_local"] = round(f["whole_path_per_s"] / base, 3)
                f["steady_ratio_to_local"] = None if f["steady_per_s"] is None else \
                    round(f["steady_per_s"] / base, 3)
                f["ray_cpus"] = ray_cpus_for(n)
            by_actors[str(n)] = figures

    print(f"\n{'images':>12} {'actors':>6} {'local/s':>8} {'ray/s':>7} {'ratio':>6} "
          f"{'startup s':>9} {'steady/s':>9} {'steady ratio':>12}")
    for n, figures in by_actors.items():
        for label, f in figures.items():
            steady, steady_ratio = f["steady_per_s"], f["steady_ratio_to_local"]
            print(f"{label:>12} {n:>6} {local[label]['whole_path_per_s']:>8.2f} "
                  f"{f['whole_path_per_s']:>7.2f} {f['ratio_to_local']:>6.3f} "
                  f"{f['startup_s']:>9.1f} {'-' if steady is None else f'{steady:.2f}':>9} "
                  f"{'-' if steady_ratio is None else f'{steady_ratio:.3f}':>12}")
    headline = {
        "benchmark": "embed_throughput_ray",
        "model": f"{args.model} ({weights})",
        "cores": available_cores(),
        "local_per_s": {k: v["whole_path_per_s"] for k, v in local.items()},
        "ratio_to_local": {n: {k: v["ratio_to_local"] for k, v in f.items()}
                           for n, f in by_actors.items()},
        "steady_ratio_to_local": {n: {k: v["steady_ratio_to_local"] for k, v in f.items()}
                                  for n, f in by_actors.items()},
    }
    record = {**headline, "batch_size": args.batch_size, "repeats": args.repeats,
              "machine": platform.platform(), "local": local, "ray": by_actors}
    out = args.out or RESULTS_RAY
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
