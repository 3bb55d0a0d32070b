"""Defaults: Learning: propagation, the probe, the mix and its held-out checks, many classes."""

from __future__ import annotations

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
