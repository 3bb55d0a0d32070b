"""Defaults: Embeddings, neighbours and layout, the session, export, calibration, damaged files."""

from __future__ import annotations

# -- embeddings ---------------------------------------------------------------------------

#: CLIP default: ViT-B-32 on LAION-2B, the usual quality/speed point (fast enough on a CPU).
CLIP_MODEL = "ViT-B-32"
CLIP_PRETRAINED = "laion2b_s34b_b79k"
#: DINOv2 default: the small ViT (21M parameters), strong image-to-image neighbours on a CPU.
DINO_MODEL = "vit_small_patch14_dinov2.lvd142m"
#: DINOv2 input side: the paper's linear-probe resolution; timm's 518 costs ~5x more compute.
DINO_IMAGE_SIZE = 224
#: Text default: sentence-transformers' all-round small model, bundled offline as a package.
TEXT_MODEL = "all-MiniLM-L6-v2"
#: Items per forward pass: small on CPU (latency, memory), large on a GPU (fill the device).
EMBED_BATCH_SIZE_CPU = 32
EMBED_BATCH_SIZE_GPU = 256
#: Decode workers at most, with the model on an accelerator (which takes every core but one:
#: the main process hashes, regroups and writes). A GPU outruns a few decoders by far: on an
#: H200 with 16 cores ViT-B-32 embeds ~4,000 ready images/s, and the whole path from 500×375
#: JPEGs ran 557 images/s with 4 workers and ~1,000 with 15 (benchmarks/results/
#: embed_throughput_gpu.json).
EMBED_MAX_WORKERS = 32
#: Decode workers when the model runs on the CPU: decoding costs ~5 ms of CPU per photo
#: against ~170 ms for a ViT-B-32 forward, so one worker keeps up; more only take cores
#: from the forward pass (measured in benchmarks/embed_throughput.py).
EMBED_CPU_WORKERS = 1
#: Below this many images, starting worker processes costs more than it saves.
EMBED_MIN_ITEMS_FOR_WORKERS = 64
#: Items per cache chunk: a kill loses at most one chunk of work; fewer files to read back.
EMBED_CHUNK_SIZE = 512
#: ...or this many seconds of work, whichever comes first, so a slow CPU run also resumes.
EMBED_CHUNK_SECONDS = 30.0
#: After a run, more chunk files than this are merged into one, so reopening stays fast.
EMBED_CACHE_MAX_CHUNKS = 64
#: engine="ray": share of the cluster's CPUs left to the image decode tasks, at least one;
#: the rest run model actors. Decoding a photo costs ~5 ms of CPU against ~170 ms for a
#: ViT-B-32 forward on one core, so a tenth of the CPUs keeps single-threaded actors fed.
EMBED_RAY_DECODE_SHARE = 0.1
#: engine="ray": CPUs each model actor reserves (and torch threads it runs): on a CPU-only
#: cluster single-threaded actors side by side use the cores best; on a GPU cluster it is
#: the host thread that feeds the actor's GPU.
EMBED_RAY_ACTOR_CPUS = 1
#: engine="ray": memory (bytes) a decode task reserves: its worker process, which has
#: imported torch and torchvision (~570 MiB measured), and per image of its block a
#: preprocessed 224² input (0.6 MB) and its serialised copy. The request also keeps Ray Data
#: from fusing the decode tasks into the model actors, which would decode in the model's
#: process, in turn with its forward passes.
EMBED_RAY_DECODE_TASK_BYTES = 768 * 2**20
EMBED_RAY_DECODE_BYTES_PER_ITEM = 2 * 2**20

# -- neighbours and layout (neighbors.py, layout.py) -----------------------------------------
#: Up to this many items the index and graph are exact (flat inner product): an exact graph of
#: 20k × 512 takes seconds on 2 cores, and exact answers need no recall check.
EXACT_INDEX_MAX_ITEMS = 20_000
#: Approximate graphs and indexes must find at least this share of the true k neighbours,
#: checked on a sample after every build (the graph scans the cells that clear it by two
#: standard errors; an index doubles its cells scanned until it holds). 0.99: with balanced
#: cells and threads the graph reaches it at 100k × 512 in about pynndescent's time
#: (benchmarks/knn_vs_pynndescent.py), and UMAP's own neighbours reach 0.998.
GRAPH_TARGET_RECALL = 0.99
#: Below 1, the graph's cell pass scans only the cells that give this recall on the sample
#: and neighbour-of-neighbour rounds do the rest. Off (1.0): at 100k × 512 a round costs more
#: than the extra cells (pass at 0.98 + a round to 0.990: 8 s; a pass to 0.996: 4 s), as
#: the cell pass runs at matrix-product speed and the round at memory-latency speed.
GRAPH_CELL_PASS_RECALL = 1.0
#: Neighbour-of-neighbour rounds at most after the cell pass; each stops early once the
#: sample's recall clears the target.
GRAPH_REFINE_ROUNDS = 2
#: Reverse neighbours (items listing it) an item expands in a round, beside its own k:
#: NN-descent's reverse edges reach the neighbours the forward lists miss.
GRAPH_REFINE_REVERSE = 15
#: k-means cells over this many times the mean size are split: a cell costs its size times
#: its candidates', and uneven cells (16 to 2,000 items for a mean of 300) made the big
#: cells most of the graph's time.
GRAPH_CELL_MAX_RATIO = 2.0
#: Items whose exact neighbours are computed to check recall: 1,000 gives a standard error of
#: ~0.001 at recall 0.99 with k=15 (500 read 0.993 on a 1M graph whose recall was 0.988), for
#: ~2 s of work at 100k × 512 and ~20 s at 1M (one pass over the vectors per thread).
GRAPH_RECALL_SAMPLE = 1000
#: Ray tasks per cluster CPU for the graph's cell pass (engine="ray"), each a run of cells of
#: about equal cost, costliest first: with 4 per CPU a CPU idles at most ~1/4 of a task's
#: time at the end, and at 1M items a task is still seconds of work against Ray's ~ms. At
#: 1M × 512 on 2 cores the Ray pass took 5% longer than the threaded one
#: (benchmarks/knn_ray.py).
GRAPH_RAY_TASKS_PER_CPU = 4
#: On a GPU (torch, ``build_knn_graph(device=...)``), the graph is exact up to this many items
#: and an IVF build beyond (its cell pass on the GPU): see benchmarks/knn_gpu.py for the
#: times of both on an H200.
GRAPH_GPU_EXACT_MAX_ITEMS = 1_000_000
#: Largest block of float16 similarities a GPU search holds at once (its top-k adds little).
GRAPH_GPU_BLOCK_BYTES = 512 * 2**20
#: Candidates beyond k that a GPU search ranks by float16 products keeps, to rank again by
#: float32 similarities: float16 rounding moves a similarity of unit 512-d vectors by ~1e-3,
#: so the true k are among the float16 top k + 16 unless more than 16 items tie that closely.
GRAPH_GPU_RESCORE_EXTRA = 16
#: Seconds to wait for a TCP answer from a Ray address before saying it cannot be reached:
#: ray.init itself retries an unreachable address for minutes without a word.
RAY_CONNECT_SECONDS = 10.0
#: Cells (of ~sqrt(N)) an IVF index scans per query to start with; 8 reached recall 0.99 on
#: clustered 512-d data in measurements, and the recall check doubles it when data are harder.
IVF_START_NPROBE = 8
#: Largest similarity block held at once while building graphs (its top-k scratch adds 2x
#: more), so the graph costs ~100 MiB beyond the vectors whatever N is.
NEIGHBOR_BLOCK_BYTES = 32 * 2**20
#: Cosine similarity above which two items count as near-duplicates: re-encodes, resizes and
#: crops of one image sit above 0.97 with CLIP, distinct photos of one scene below.
NEAR_DUPLICATE_SIMILARITY = 0.97
#: Seed of the 2-D map, so a reopened project shows the same picture.
LAYOUT_SEED = 0
#: UMAP's default: tight enough to see clusters, loose enough to lasso inside them.
LAYOUT_MIN_DIST = 0.1
#: Epochs of the first, quick map shown while the full one runs (UMAP's default is 200-500).
QUICK_LAYOUT_EPOCHS = 30

#: Longest side of a hover/gallery thumbnail in pixels: legible, and ~2-6 kB as WebP.
THUMBNAIL_SIZE = 128
#: WebP is several times smaller than PNG for photos and every current browser shows it.
THUMBNAIL_FORMAT = "webp"
#: WebP quality: thumbnails are for recognising an item, not for pixel inspection.
THUMBNAIL_QUALITY = 80
#: Height of the map in pixels: fits a laptop screen beside the palette and legend.
MAP_HEIGHT = 520
#: Point size in pixels at the default zoom; smaller points for big collections keep
#: structure visible instead of one solid blob (see widgets.scatter.default_point_size).
MAP_POINT_SIZE = 6
#: Cards per gallery page: two rows on a wide notebook, few enough thumbnails to send fast.
GALLERY_PAGE_SIZE = 24

# -- session ---------------------------------------------------------------------------------

#: Proposed clusters: about one per this many items, so a cluster fits a few gallery pages,
#: between these bounds (fewer than 2 says nothing; more than 64 no longer fits a legend).
CLUSTER_ITEMS_PER_CLUSTER = 60
CLUSTER_COUNT_MIN = 2
CLUSTER_COUNT_MAX = 64
#: Human labels before the probe trains: below this, its held-out accuracy is noise and
#: propagation alone predicts better.
PROBE_MIN_LABELS = 10
#: Grid step of the mixing weights of the models (propagation over the vectors' graph and
#: over the map's, the probe), chosen on held-out human labels: 0.25 tries 15 mixes of 3.
MIX_WEIGHT_STEP = 0.25
#: Folds of human labels (whole clusters at a time) hidden in turn to choose the mixing
#: weights; above MIX_FOLDS_MAX_ITEMS items a single MIX_HOLDOUT_FRACTION is hidden instead
#: (each propagation over a million items takes half a minute).
MIX_FOLDS = 5
#: The mix's temperature grid, np.geomspace(*TEMPERATURE_GRID): bounded, as held-out items no
#: mix can get right pushed an open grid to its top (50), flattening everything (issue 12).
TEMPERATURE_GRID = (0.25, 4.0, 41)
MIX_FOLDS_MAX_ITEMS = 200_000
MIX_HOLDOUT_FRACTION = 0.2
#: Rows scored per block by the probe: 64k x 512 float32 is 128 MB of temporaries, so
#: rescoring a million memory-mapped items stays far below the size of the vectors.
PROBE_SCORE_BLOCK_ROWS = 65_536

# -- export ------------------------------------------------------------------------------------

#: Sidecar of a table export: ``out.csv`` gets ``out.csv.meta.json`` (the whole file name kept,
#: so ``out.csv`` and ``out.parquet`` exported side by side never share one).
EXPORT_META_SUFFIX = ".meta.json"
#: Metadata file inside a folder export (ImageFolder, Hugging Face); its presence is also what
#: lets ``overwrite=True`` replace that folder (any other non-empty folder is refused).
EXPORT_FOLDER_META = "workbench-export.json"
#: CSV/TSV cells starting with = + - @ tab or CR get a leading quote (OWASP CSV injection):
#: spreadsheets open label exports, and label names are free text typed by anyone.
EXPORT_CSV_SAFE = True

# -- calibration (learn/calibrate.py, Workbench.estimate) -------------------------------------

#: Bootstrap refits of the confidence calibrator over held-out clusters: enough for the
#: spread of an expected count (a 90% interval), few enough to cost ~0.1 s per retrain.
CAL_BOOTSTRAP = 40
#: Ridge strength of the calibrator (standardised features, summed loss): held-out items of
#: one cluster are alike, so the effective sample is small and the model must stay simple.
CAL_L2 = 3.0
#: Range of a fitted calibrator's probabilities: a few dozen held-out clusters never
#: justify certainty either way (one confident miss costs its check a log loss of 10).
CAL_BOUNDS = (0.005, 0.995)
#: Held-out clusters below which the calibrator is a constant (the shrunk hit rate): with
#: fewer, a slope over features is fitted to two or three coin flips.
CAL_MIN_GROUPS = 4
#: (items x labelled items) above which the distance to the nearest labelled vector is not
#: computed (brute force; the label mass alone marks items far from the labels).
CAL_DISTANCE_MAX_PAIRS = 300_000_000
#: Below this calibrated confidence, an item far from every label is flagged "none of the
#: known classes": more likely wrong than right.
CAL_UNKNOWN_CONFIDENCE = 0.5
#: Least error assumed of the calibrator in a mean confidence (standard deviation): the
#: held-out labelled items it learns from lie nearer the labels than the unlabelled ones,
#: and on the benchmark sets its estimates drift by about this much (1-1.5 points).
CAL_MODEL_ERROR = 0.01
#: Normal quantile of the accuracy interval of Workbench.estimate: a 90% interval.
CAL_INTERVAL_Z = 1.645
#: Default threshold of Workbench.estimate's "machine" figures: what an export at this
#: min_confidence would contain.
CAL_EXPORT_MIN_CONFIDENCE = 0.9

# -- spot checks (learn/spot_checks.py, Workbench.suggestions) -------------------------------

#: Share of each page of suggestions drawn at random from the unlabelled items: labelled,
#: they show how often the machine labels are right over the items nobody chose (the chosen
#: ones are harder), and the calibrator and the estimate learn from them. 0 turns them off.
SPOT_CHECK_SHARE = 0.25
#: ... and this share until SPOT_CHECK_FIRST checks are labelled: a dozen checks cannot
#: tell 0.8 right from 0.9, and early in a session the held-out calibrator is least sure.
SPOT_CHECK_SHARE_FIRST = 0.5
SPOT_CHECK_FIRST = 30
#: ... and this share once SPOT_CHECK_ENOUGH are labelled: enough to keep them fresh, while
#: the rest of each page goes back to the items that teach most (subjectivity, 100
#: actions: 0.949 of the items right with one check a page from then on, 0.946 with three).
SPOT_CHECK_SHARE_LATER = 1 / 12
SPOT_CHECK_ENOUGH = 120
#: The labelled spot checks are held out in this many folds (fewer with fewer checks), each
#: hiding nothing else: a class whose few labels are mostly checks keeps most of them in
#: every fold (mnist, 12 actions: with three folds the folds got .72 of the checks right
#: where .93 of the unlabelled items were).
SPOT_CHECK_FOLDS = 8
#: ... and each check's this many nearest fellow checks are in other folds (an unlabelled
#: item is predicted with every check present; see learn/spot_checks.spread_folds).
SPOT_CHECK_APART = 3
#: A spot check this many checks older weighs half as much: checks drawn long ago came from
#: a pool that still held the hard items labelled since.
SPOT_CHECK_HALF_LIFE = 100.0
#: Ridge precision (intercept, slopes on standardised features) pulling the spot-checked
#: calibrator towards the held-out one: about a dozen checks' worth for the intercept, so a
#: first page moves the confidences a little, a few pages carry them.
SPOT_CHECK_PRIOR = (2.0, 8.0)
#: Seed of the spot-check draws (with the count of labels, so each page draws anew).
SPOT_CHECK_SEED = 20_261_130

# -- damaged files (project.py, _files.py) ----------------------------------------------------

#: Staging folder a create builds the project in before moving it into place; hidden (folder
#: loaders skip it) and named so that a user who finds one left by a kill knows what it is.
STAGING_PREFIX = ".workbench-creating-"
