"""Defaults: The project, its files and the label log: markers, annotators, label sources, the
label stores (SQLite, PostgreSQL), what a folder loader reads, seeds."""

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
