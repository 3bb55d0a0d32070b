"""The lasso audit (issue 17): does it find what a lasso on the 2-D map got wrong?

For each class, the largest island of its points on the UMAP map (the project's own layout
code over the shared kNN graph) is lassoed as a person would: a polygon around the island,
and every point inside it is selected, other classes' points included. Two polygons:

* ``hull``: the island's convex hull (a quick loop around it);
* ``alpha``: a concave outline (the island's Delaunay triangles whose longest edge is under
  ``--alpha`` times the map's median neighbour spacing), closer to a careful lasso.

Against the truth, the audit (:func:`workbench.learn.audit.audit_selection`) is scored on
two questions: its *suspects* against the selected points of other classes, its *missed*
items against the class's points left outside (the class's other islands included), as
precision and recall per class and overall (pooled over classes), at several fractions.
Also reported: the selection's own precision and recall for the class before and after
applying the audit (drop the suspects, add the missed).

    .venv/bin/python benchmarks/lasso_audit.py --dataset mnist-test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import CACHE, add_data_arguments, load_from_args

from workbench._config import AUDIT_FRACTION, KNN_K
from workbench.layout import compute_layout
from workbench.learn.audit import audit_selection
from workbench.neighbors import build_knn_graph

RESULTS = Path(__file__).resolve().parent / "results"


def largest_island(xy: np.ndarray, eps: float) -> np.ndarray:
    """Positions (into ``xy``) of the largest connected group of points, points joined when
    closer than ``eps`` (DBSCAN, min 5 points)."""
    from sklearn.cluster import DBSCAN

    lab = DBSCAN(eps=eps, min_samples=5).fit_predict(xy)
    sizes = np.bincount(lab[lab >= 0])
    return np.flatnonzero(lab == int(np.argmax(sizes)))


def inside_polygon(xy_all: np.ndarray, island: np.ndarray, shape: str, alpha_len: float
                   ) -> np.ndarray:
    """(N,) bool: the points inside the lasso drawn around ``island`` (2-D points)."""
    from scipy.spatial import Delaunay

    tri = Delaunay(island)
    simplex = tri.find_simplex(xy_all)
    if shape == "hull":
        return simplex >= 0
    p = island[tri.simplices]                       # (T, 3, 2)
    edges = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2).max(axis=1)
    keep = edges < alpha_len
    return (simplex >= 0) & keep[np.maximum(simplex, 0)]


def prf(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float | int]:
    hit = int(np.isin(flagged, truth).sum())
    return {"flagged": int(flagged.size), "true": int(truth.size), "hits": hit,
            "precision": hit / flagged.size if flagged.size else float("nan"),
            "recall": hit / truth.size if truth.size else float("nan")}


def pooled(rows: list[dict]) -> dict[str, float | int]:
    f = sum(r["flagged"] for r in rows)
    t = sum(r["true"] for r in rows)
    h = sum(r["hits"] for r in rows)
    return {"flagged": f, "true": t, "hits": h, "precision": h / f if f else float("nan"),
            "recall": h / t if t else float("nan")}


def selection_quality(sel: np.ndarray, y: np.ndarray, c: int) -> dict[str, float]:
    members = y[sel] == c
    return {"size": int(sel.size), "precision": float(members.mean()) if sel.size else 0.0,
            "recall": float(members.sum() / (y == c).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--island", type=float, default=8.0,
                        help="points of a class closer than this many median spacings on the "
                        "map are one island (6-20 give the same islands on mnist-test)")
    parser.add_argument("--alpha", type=float, default=8.0,
                        help="alpha outline: longest triangle edge, in median spacings")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    args = parser.parse_args()
    name, x, y = load_from_args(args)
    t0 = time.perf_counter()
    graph = build_knn_graph(x, k=KNN_K, cache_dir=CACHE)
    coords = compute_layout(graph, x, cache_dir=CACHE)
    t_map = time.perf_counter() - t0
    from sklearn.neighbors import NearestNeighbors

    d, _ = NearestNeighbors(n_neighbors=2).fit(coords).kneighbors(coords)
    spacing = float(np.median(d[:, 1]))
    out: dict = {"dataset": name, "n": int(y.size), "k": KNN_K, "audit_fraction":
                 AUDIT_FRACTION, "map_seconds": round(t_map, 1), "spacing": spacing,
                 "island": args.island, "alpha": args.alpha, "shapes": {}}
    for shape in ("hull", "alpha"):
        per_class, audits = [], {f: ([], []) for f in args.fractions}
        for c in np.unique(y):
            cls = np.flatnonzero(y == c)
            island = cls[largest_island(coords[cls], args.island * spacing)]
            sel = np.flatnonzero(inside_polygon(coords, coords[island], shape,
                                                args.alpha * spacing))
            wrong_in = sel[y[sel] != c]
            left_out = np.setdiff1d(cls, sel)
            row = {"class": int(c), "island": int(island.size), "class_size": int(cls.size),
                   "selected": int(sel.size), "other_classes_inside": int(wrong_in.size),
                   "class_outside": int(left_out.size),
                   "lasso": selection_quality(sel, y, c), "by_fraction": {}}
            for f in args.fractions:
                a = audit_selection(graph, sel, fraction=f)
                s, m = prf(a.suspects, wrong_in), prf(a.missed, left_out)
                fixed = np.union1d(np.setdiff1d(sel, a.suspects), a.missed)
                row["by_fraction"][str(f)] = {"suspects": s, "missed": m,
                                              "after_fixes": selection_quality(fixed, y, c)}
                audits[f][0].append(s)
                audits[f][1].append(m)
            per_class.append(row)
            d0 = row["by_fraction"][str(args.fractions[0])]
            print(f"{shape} class {c}: selected {sel.size} ({wrong_in.size} wrong, "
                  f"{left_out.size} left out) suspects P={d0['suspects']['precision']:.2f} "
                  f"R={d0['suspects']['recall']:.2f} missed P={d0['missed']['precision']:.2f} "
                  f"R={d0['missed']['recall']:.2f}", flush=True)
        overall = {}
        for f in args.fractions:
            before = [r["lasso"] for r in per_class]
            after = [r["by_fraction"][str(f)]["after_fixes"] for r in per_class]
            overall[str(f)] = {
                "suspects": pooled(audits[f][0]), "missed": pooled(audits[f][1]),
                # what flagging at random would hit: the share of wrong points among the
                # selected, and of the class's points among those outside
                "suspects_base_rate": sum(r["other_classes_inside"] for r in per_class)
                / sum(r["selected"] for r in per_class),
                "missed_base_rate": sum(r["class_outside"] for r in per_class)
                / sum(y.size - r["selected"] for r in per_class),
                "lasso_precision_mean": float(np.mean([b["precision"] for b in before])),
                "lasso_recall_mean": float(np.mean([b["recall"] for b in before])),
                "fixed_precision_mean": float(np.mean([a["precision"] for a in after])),
                "fixed_recall_mean": float(np.mean([a["recall"] for a in after])),
            }
            o = overall[str(f)]
            print(f"{shape} overall fraction {f}: suspects P={o['suspects']['precision']:.3f} "
                  f"R={o['suspects']['recall']:.3f} (base {o['suspects_base_rate']:.3f}); missed P={o['missed']['precision']:.3f} "
                  f"R={o['missed']['recall']:.3f} (base {o['missed_base_rate']:.3f}); lasso P/R {o['lasso_precision_mean']:.3f}/"
                  f"{o['lasso_recall_mean']:.3f} -> fixed {o['fixed_precision_mean']:.3f}/"
                  f"{o['fixed_recall_mean']:.3f}", flush=True)
        out["shapes"][shape] = {"overall": overall, "per_class": per_class}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"lasso_audit_{name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
