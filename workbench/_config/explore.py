"""Defaults: Exploring the map: selections (audit, duplicates, outliers, saved), linked filters,
cluster names."""

from __future__ import annotations

# -- selections: audit, duplicates, outliers, saved (workbench/_selections) ------------------
#: A lasso member is a suspect when more than this share of its kNN-graph neighbours lie
#: outside the selection (an outside item missed when more lie inside): the best recall on
#: mnist-test (benchmarks/lasso_audit.py: 20% of wrong points at 36% precision, 6x chance).
AUDIT_FRACTION = 0.5
#: The outliers queue: one gallery page of the most isolated items.
OUTLIER_QUEUE_SIZE = 40
#: The class "mark copies" gives a duplicate group's extra copies: an ordinary, undoable label.
DUPLICATE_CLASS = "duplicate"
#: Saved selections: their own file (can hold 100,000 ids; workbench.json stays small).
SELECTIONS_FILE = "selections.json"
#: The similarity slider's start: a cosine most unrelated items stay below.
SEARCH_THRESHOLD = 0.5

# -- linked filters (workbench/widgets/charts.py) ---------------------------------------------

#: Bins of a numeric column's histogram beside the map: 20 shows a distribution's shape
#: (modes, tails) in a chart 300 px wide, each bar still wide enough to brush.
CHART_BINS = 20
#: A text column is charted (bars) only with at most this many distinct values: more (ids,
#: paths, free text) would not fit one small chart, and is listed as not charted instead.
CHART_MAX_CATEGORIES = 30

# -- cluster names (workbench/learn/cluster_names.py, workbench/_names.py) -------------------

#: Terms in a text cluster's name: three say what it is about without becoming a sentence.
CLUSTER_NAME_TERMS = 3
#: Vocabulary names in an image cluster's name: a third is mostly zero-shot noise.
CLUSTER_NAME_VOCABULARY_TERMS = 2
#: A term names a cluster only if this many of its items hold it (once is an accident).
CLUSTER_NAME_MIN_COUNT = 2
#: ... and it is this many times more common there than overall (else it names everything).
CLUSTER_NAME_MIN_LIFT = 1.5
#: A file-name word or metadata value needs this share of the cluster (not a minority's).
CLUSTER_NAME_MIN_SHARE = 0.3
#: Members read per cluster to name it (seeded): term shares within ~2 points at any size.
CLUSTER_NAME_SAMPLE = 2_000
#: Members per cluster scored by refine_names: a name's hit rate within ~3 points.
CLUSTER_NAME_REFINE_SAMPLE = 300
#: Rounds of refine_names; the third still settles a few names at 30 clusters.
CLUSTER_NAME_REFINE_SWEEPS = 3
#: TF-IDF candidates per text cluster for refine_names; beyond 15 they are single-sentence.
CLUSTER_NAME_CANDIDATES = 15
#: One prompt per vocabulary name: a few hundred names stay one text-tower batch.
CLUSTER_NAME_TEMPLATES = ("a photo of a {}.",)
#: Truth-like metadata columns, preferred in this order for fallback names.
CLUSTER_NAME_TRUTH_COLUMNS = ("truth", "label", "class", "category", "target", "y")
#: The project setting (workbench.json) with extra vocabulary names for image clusters.
CLUSTER_VOCABULARY_SETTING = "cluster_vocabulary"

# -- level of detail (issue 19) ----------------------------------------------------------------

#: Most points the browser draws at once: the overview, and each zoomed-in view. 1M draws in
#: ~4 s in software WebGL (README, benchmarks/browser.py); above it the kernel keeps every
#: point and sends a density-aware overview, then the points of the visible region.
MAP_POINT_BUDGET = 1_000_000
#: Cells per side of the grid that spreads the budget: sparse cells keep all their points,
#: dense ones are capped alike; 256 gives cells of ~2 px on a 500 px map.
MAP_LOD_GRID = 256
#: Points each class, prediction and cluster keeps in the overview (all of a smaller one),
#: so a rare class never vanishes from the drawing.
MAP_LOD_MIN_PER_GROUP = 200
#: Share of the budget the labelled and selected points may take (all of them if fewer):
#: the rest keeps the density of the unlabelled map.
MAP_LOD_LABELLED_SHARE = 0.5
#: A view request covers the visible rectangle grown by this share of its size on each side,
#: so a small pan is answered from what is loaded.
MAP_VIEW_MARGIN = 0.25
#: View answers the kernel keeps (positions only; codes are read fresh each time).
MAP_VIEW_CACHE = 8
#: Above twice the budget the overview comes in two steps: first this share of it (a
#: first paint in about a second in software WebGL), then all of it while the map is seen.
MAP_LOD_FIRST_SHARE = 0.1
