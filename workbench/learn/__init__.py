"""Learning from a few human labels: propagation, a linear probe, what to label next,
which labels look wrong, zero-shot pre-labels and groups to label in one action.

Every function takes arrays (labels as (N,) int64 class ids with -1 = unlabelled, vectors
as (N, D) float32, the shared :class:`~workbench.neighbors.KnnGraph`), never widgets or
stores, except :func:`accept_zero_shot`, which records into a ``LabelStore``.
"""

from ._common import NotEnoughLabels, Predictions
from .active import cluster_coverage_batch, suggest_batch, uncertainty
from .background import Retrainer
from .clusters import Group, density_groups, graph_groups, kmeans_groups, spectral_embedding
from .issues import LabelIssues, neighbour_vote, rank_label_issues
from .predict import (
    Combined,
    Mixing,
    best_labels,
    choose_weights,
    combine,
    fit_temperature,
    held_out_weights,
    mix,
)
from .probe import LinearProbe, best_device, probe_predictions
from .propagate import LabelSpreader, Propagation, propagate, spreading_operator
from .zeroshot import ZeroShot, accept_zero_shot, zero_shot

__all__ = [
    "Combined",
    "Group",
    "LabelIssues",
    "LabelSpreader",
    "LinearProbe",
    "Mixing",
    "NotEnoughLabels",
    "Predictions",
    "Propagation",
    "Retrainer",
    "ZeroShot",
    "accept_zero_shot",
    "best_device",
    "best_labels",
    "choose_weights",
    "cluster_coverage_batch",
    "combine",
    "density_groups",
    "fit_temperature",
    "graph_groups",
    "held_out_weights",
    "kmeans_groups",
    "mix",
    "neighbour_vote",
    "probe_predictions",
    "propagate",
    "rank_label_issues",
    "spectral_embedding",
    "spreading_operator",
    "suggest_batch",
    "uncertainty",
    "zero_shot",
]
