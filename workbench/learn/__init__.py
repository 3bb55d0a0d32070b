"""Learning from a few human labels: propagation, a linear probe, what to label next,
which labels look wrong, zero-shot pre-labels, groups to label in one action, and how
likely each machine label is right.

Every function takes arrays (labels as (N,) int64 class ids with -1 = unlabelled, vectors
as (N, D) float32, the shared :class:`~workbench.neighbors.KnnGraph`), never widgets or
stores, except :func:`accept_zero_shot`, which records into a ``LabelStore``.
"""

from ._common import NotEnoughLabels, Predictions, side_by_side
from .active import cluster_coverage_batch, suggest_batch, uncertainty
from .background import Retrainer
from .calibrate import (
    Calibrator,
    estimate_accuracy,
    expected_calibration_error,
    fit_calibrator,
)
from .clusters import Group, density_groups, graph_groups, kmeans_groups, spectral_embedding
from .consensus import Consensus, consensus, majority_vote
from .heldout import HeldOut, held_out_predictions, held_out_weights, mixing_from_held_out
from .issues import LabelIssues, neighbour_vote, rank_label_issues
from .label_model import LabelModel, RuleCheck, check_rules, fit_label_model, weak_labels
from .mixing import Combined, Mixing, calibrated, choose_weights, fit_temperature, mix
from .probe import LinearProbe, best_device, probe_predictions
from .propagate import LabelSpreader, Propagation, propagate, spreading_operator
from .zeroshot import ZeroShot, accept_zero_shot, zero_shot

__all__ = [
    "Calibrator",
    "Combined",
    "Consensus",
    "Group",
    "HeldOut",
    "LabelIssues",
    "LabelModel",
    "LabelSpreader",
    "LinearProbe",
    "Mixing",
    "NotEnoughLabels",
    "Predictions",
    "Propagation",
    "Retrainer",
    "RuleCheck",
    "ZeroShot",
    "accept_zero_shot",
    "best_device",
    "calibrated",
    "check_rules",
    "choose_weights",
    "cluster_coverage_batch",
    "consensus",
    "density_groups",
    "estimate_accuracy",
    "expected_calibration_error",
    "fit_calibrator",
    "fit_label_model",
    "fit_temperature",
    "graph_groups",
    "held_out_predictions",
    "held_out_weights",
    "kmeans_groups",
    "majority_vote",
    "mix",
    "mixing_from_held_out",
    "neighbour_vote",
    "probe_predictions",
    "propagate",
    "rank_label_issues",
    "side_by_side",
    "spectral_embedding",
    "spreading_operator",
    "suggest_batch",
    "uncertainty",
    "weak_labels",
    "zero_shot",
]
