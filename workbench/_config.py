"""Every default in one place, each with the reason it was chosen.

Modules import these names instead of repeating literals, so that a change of default is
one edit and the reason travels with the number.
"""

from __future__ import annotations

#: File that marks a folder as a workbench project; JSON, human-readable on purpose.
PROJECT_FILE = "workbench.json"
#: Bumped when the on-disk layout changes incompatibly; opening checks it.
PROJECT_FORMAT_VERSION = 1

#: Who is labelling when nobody says: the OS user, overridable for shared machines.
ANNOTATOR_ENV = "WORKBENCH_ANNOTATOR"
DEFAULT_ANNOTATOR = "anonymous"

#: Where a label came from. Only "human" labels are ground truth; the others are machine
#: labels kept beside them and never allowed to overwrite a human label.
LABEL_SOURCES = ("human", "propagated", "probe", "zeroshot", "adjudicated")
MACHINE_SOURCES = ("propagated", "probe", "zeroshot")

#: Seconds-scale waits are normal when two kernels label one project; 30 s avoids spurious
#: "database is locked" while still failing loudly if a writer hangs.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: A PostgreSQL label store (a team on several machines): give up connecting after this
#: long per try, and keep reopening a dropped connection for this long before an action
#: fails (a server restart or a network blip takes seconds; labels are never lost meanwhile).
POSTGRES_CONNECT_TIMEOUT_S = 5
POSTGRES_RECONNECT_S = 30

#: Suffixes read as images by the folder loader (lower-cased). Anything else is ignored
#: (listed in the load report), so a stray .txt or .DS_Store never breaks a load.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: Pillow's decompression-bomb guard, set explicitly (≈ 179 Mpx, Pillow's own default) so
#: that a hostile file fails fast with a clear message instead of exhausting memory.
MAX_IMAGE_PIXELS = 178_956_970

#: Neighbours per item in the one kNN graph: UMAP's default, and enough for propagation.
KNN_K = 15

#: Side of the demo digit PNGs: scikit-learn's 8×8 digits upscaled so thumbnails are legible.
DEMO_DIGITS_SIZE = 64

#: Seed for train/val splits in exports, so an export is reproducible unless asked otherwise.
SPLIT_SEED = 0
#: Seed of the probe's held-out folds: one seed per purpose (export splits never move models).
PROBE_FOLD_SEED = 0
#: Seed of the held-out checks that choose the mix and fit the confidence calibrator.
HELD_OUT_SEED = 0
#: The quick first map: PCA axes fitted on at most this many rows (instant at a million).
PCA_LAYOUT_SAMPLE = 20_000

# -- learning (workbench.learn) ------------------------------------------------------------------

#: Label-spreading weight of the neighbours against the item's own label (Zhou et al. 2004):
#: near 1 lets labels travel far along the graph, which is what few labels need.
PROPAGATION_ALPHA = 0.99
#: Relative residual at which the conjugate-gradient spreading stops: well below the gaps
#: between class scores that decide a label, so further iterations change no prediction.
PROPAGATION_TOL = 1e-4
#: Safety cap on spreading iterations; CG converges in ~sqrt(1/(1-alpha)) · few = ~100.
PROPAGATION_MAX_ITER = 500

#: L2 strengths tried for the linear probe (on standardised features, mean loss): from
#: almost none (thousands of labels) to strong (a handful of labels).
PROBE_L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: Folds for choosing the L2 strength and for out-of-fold probabilities (label issues).
PROBE_CV_FOLDS = 5
#: Above this many human labels one held-out split replaces k folds: the choice of L2 is
#: already stable and k-fold would cost k times a retrain the user is waiting for.
PROBE_KFOLD_MAX_LABELS = 5000
#: Above PROBE_KFOLD_MAX_LABELS, the L2 strength is chosen on a subsample of this many
#: labels (one held-out split), then rescaled: selection costs a fraction of the final fit.
PROBE_SELECT_LABELS = 2000
#: L-BFGS iterations per probe fit: softmax regression converges well within this.
PROBE_MAX_ITER = 100
#: A fit of less work (labelled x dims x classes x L2 values) runs on one thread: below
#: it, thread hand-offs cost more than they save (see ``_device.fit_threads``).
FIT_THREADS_MIN_WORK = 20_000_000

#: Seconds the background retrainer waits after a label change before fitting, so a burst
#: of clicks costs one retrain, not one per click.
RETRAIN_DELAY_S = 0.5

#: Items per "what to label next" batch and review queue: one screen of thumbnails.
ACTIVE_BATCH_SIZE = 12
#: Uncertain candidates considered per slot of a batch before picking diverse ones.
ACTIVE_POOL_FACTOR = 10
#: Members shown of a proposed group before labelling it as a whole (one screen).
GROUP_SAMPLE_SIZE = 12
#: Seed of k-means and of the samples shown, so proposals are reproducible.
CLUSTER_SEED = 0
#: Eigenvectors of the kNN graph used to cluster along it: a few per expected class.
SPECTRAL_DIMS = 32
#: Above this many items, proposed clusters come from k-means on the vectors instead of the
#: graph's spectral embedding (its eigenvectors take too long to wait for in a notebook).
SPECTRAL_MAX_ITEMS = 50_000
#: Share of a cluster (its most typical members) labelled when it is labelled as a whole:
#: the outskirts are where clusters mix (MNIST, 60-80 groups: cores 96-98% pure, whole 92%).
CLUSTER_CORE_FRACTION = 0.5
#: Labelled neighbours that vote on whether a human label looks wrong.
ISSUES_KNN_K = 10

#: Prompt templates averaged per class for CLIP zero-shot (a subset of CLIP's ImageNet
#: set: averaging a few templates is worth several points over one).
ZEROSHOT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a bright photo of a {}.",
    "a drawing of a {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
)

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
#: Decode workers at most: beyond 4, JPEG decoding outpaces a ViT-B forward on any CPU/GPU pair.
EMBED_MAX_WORKERS = 4
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

# -- neighbours and layout (neighbors.py, layout.py) -----------------------------------------
#: Up to this many items the index and graph are exact (flat inner product): an exact graph of
#: 20k × 512 takes seconds on 2 cores, and exact answers need no recall check.
EXACT_INDEX_MAX_ITEMS = 20_000
#: Approximate graphs and indexes must find at least this share of the true k neighbours;
#: checked on a sample after every build, cells scanned are doubled until it holds.
GRAPH_TARGET_RECALL = 0.95
#: Items whose exact neighbours are computed to check recall: a standard error of ~0.003 at
#: recall 0.95 with k=15, for under a second of work at 100k × 512.
GRAPH_RECALL_SAMPLE = 500
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

# -- damaged files (project.py, _files.py) ----------------------------------------------------

#: Staging folder a create builds the project in before moving it into place; hidden (folder
#: loaders skip it) and named so that a user who finds one left by a kill knows what it is.
STAGING_PREFIX = ".workbench-creating-"

# -- many classes (learn/propagate.py, learn/probe.py) -----------------------------------------

#: Above this many classes, propagation and the probe warn (warnings.warn, once per class
#: count, at LabelSpreader.fit / propagate and LinearProbe.fit): a retrain's time and memory
#: then grow with the classes, each model keeping an (N, C) float32 table (4 MB per 1,000
#: items at 1,000 classes) and propagation one sparse product per class and iteration.
MANY_CLASSES = 200
#: Classes solved together by propagation's conjugate gradients: its (N, block) work arrays
#: (6 of them) stay ~150 MB at 100k items however many classes there are, and 64 columns
#: already make each sparse product run near memory speed.
PROPAGATION_BLOCK_COLUMNS = 64
#: Rows of propagation scores made probabilities at a time (~2 MB at 1,000 classes).
NORMALISE_ROW_BLOCK = 256
#: Rows the mix of models combines at a time: its float64 work arrays stay 8,192 x C (64 MB
#: at 1,000 classes) instead of a whole (N, C) float64 table (800 MB at 100k x 1,000).
MIX_BLOCK_ROWS = 8_192
#: Above this many (labels x classes x L2 values x PROBE_CV_FOLDS), the probe chooses its L2
#: strength on one held-out split instead of k folds (as above PROBE_KFOLD_MAX_LABELS):
#: 5,000 labels of 50 classes still get k folds; 2,000 labels of 1,000 classes would cost
#: 25 fits of 2,000 x 1,000 logits for a choice that one split makes as well.
PROBE_SELECT_CELLS = 10_000_000
#: Largest (labels x problems x classes) fitted in one joint L-BFGS run: every step moves
#: that many logits (and several copies for the gradient) and the run lasts until the
#: slowest problem converges; 5,000 labels x 25 problems x 50 classes still go at once.
PROBE_BATCH_CELLS = 8_000_000
#: Relative residual of a held-out fold's propagation above MANY_CLASSES (the retrain's own
#: propagation keeps PROPAGATION_TOL): the fold only ranks classes at the hidden items; at
#: 30k items x 1,000 classes 1e-3 took 2.0 s against 3.5 s (same argmax, 8e-4 apart).
HELD_OUT_PROPAGATION_TOL = 1e-3

# -- several annotators (learn/consensus.py) --------------------------------------------------

#: A labelled item whose consensus label is right with less than this chance goes to the
#: adjudicator's queue.
CONSENSUS_ADJUDICATE_BELOW = 0.7
CONSENSUS_MAX_ITER = 50  # EM iterations (it settles in 10-30 on 10k items)
#: A "label next" page is its annotator's for this long (or until their next page): other
#: annotators are served other items meanwhile. Five minutes covers a page of 12 at a
#: careful pace; an annotator who walked away blocks nothing for longer.
PAGE_CLAIM_SECONDS = 300.0
#: How often a session looks for labels written by others (one indexed read of the log).
LIVE_POLL_SECONDS = 0.5
#: Exponents tried on the model's probabilities as each item's prior (0: annotators alone;
#: the best predictor of held-out annotations wins). Above 1: a probe fitted on noisy
#: majority labels learns their noise as doubt (subjectivity chose 2-4).
CONSENSUS_MODEL_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Pseudo-counts per annotator confusion matrix: one per cell plus one more on the diagonal
#: per class, so an annotator with few labels starts as "mostly right".
CONSENSUS_SMOOTHING = 1.0

# -- adjudication -----------------------------------------------------------------------------

#: The label source of an adjudicator's decision: a human label that is final (the consensus
#: takes it as the item's true class, annotators' later labels do not replace it).
ADJUDICATED = "adjudicated"
#: The sources that write the human layer (every other source is a machine label).
HUMAN_SOURCES = ("human", ADJUDICATED)

# -- rules as labellers: the label model (learn/label_model.py) ----------------------------

#: EM iterations of the label model at most (it settles in 20-60 on 10k items x 20 rules).
LABEL_MODEL_MAX_ITER = 200
#: EM stops once no item's posterior moves by more than this in an iteration (argmaxes and
#: estimated accuracies are settled to the third decimal well before).
LABEL_MODEL_TOL = 1e-4
#: Pseudo-counts per true class in each rule's confusion row, spread like the rule's own
#: outcome frequencies plus as many again on "votes right": a rule with ten votes starts as
#: "mostly right when it votes" and cannot swing the posterior alone; with 10k items it is
#: negligible next to the data.
LABEL_MODEL_SMOOTHING = 2.0
#: Two rules whose votes agree on this share of the items either votes on count as one
#: (each weighs 1/2 in the posterior): a rule written twice must not double its say.
LABEL_MODEL_DUPLICATE = 0.9
#: Folds of the held-out check of each rule (check_rules): each refits the label model.
RULE_CHECK_FOLDS = 5
#: A rule is judged (flagged or not) only once it voted on this many human-labelled items.
RULE_CHECK_MIN_VOTES = 20
#: A rule whose left-out run improves the held-out human labels by this many standard errors
#: (of the per-item log-likelihood gain) hurts, and is flagged.
RULE_CHECK_T = 2.0
#: A rule is flagged unless its hits on human-labelled items beat votes drawn at the labelled
#: classes' frequencies by this many standard errors: one-sided 1%, so a rule voting at random
#: is flagged 99 times in 100, while a keyword rule right 56% of the time on a class of 30%
#: passes with 50 votes (z = 3.9).
RULE_CHECK_Z = 2.33

# -- rules (workbench/rules) ------------------------------------------------------------------

#: Items whose vectors a prompt rule compares with its prompts at once: 65,536 x 512 float32
#: is 128 MiB, so even a memory-mapped million items is read in bounded steps.
RULE_PROMPT_CHUNK = 65_536
#: The normal quantile of a rule's accuracy interval (Wilson): 90% two-sided. A rule is
#: flagged only when even the upper end is below its class's share of the human labels.
RULE_ACCURACY_Z = 1.6448536269514722

#: The label model's labels an unlabelled item needs this probability to train the rules'
#: probe on (below it the item stays unlabelled there; a human label always wins).
RULES_MIN_CONFIDENCE = 0.8

#: Every UPPER_CASE name above: the defaults are the module.
__all__ = sorted(n for n in dict(globals()) if n.isupper() and not n.startswith("_"))
