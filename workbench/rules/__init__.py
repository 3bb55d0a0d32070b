"""Rules as labellers (weak supervision): rule specs and their checks
(:mod:`~workbench.rules.spec`), where each rule votes (:mod:`~workbench.rules.votes`) and
how good each rule is against the human labels (:mod:`~workbench.rules.analysis`).

Rules are stored as data in the label log (:class:`~workbench.labels.LabelStore`'s
``add_rule``); a session applies them (``Workbench.add_rule``, ``rule_votes``,
``rule_analysis``).
"""

from .analysis import class_coverage, rule_flags, rule_stats, wilson_interval
from .spec import (
    KIND_FIELDS,
    RULE_KINDS,
    STORED_KINDS,
    check_spec,
    describe,
    load_expr,
    rule_title,
    spec_json,
)
from .votes import ABSTAIN, DERIVED_COLUMNS, item_text, rule_mask, vote_matrix, with_derived

__all__ = [
    "ABSTAIN",
    "DERIVED_COLUMNS",
    "KIND_FIELDS",
    "RULE_KINDS",
    "STORED_KINDS",
    "check_spec",
    "class_coverage",
    "describe",
    "item_text",
    "load_expr",
    "rule_flags",
    "rule_mask",
    "rule_stats",
    "rule_title",
    "spec_json",
    "vote_matrix",
    "wilson_interval",
    "with_derived",
]
