"""Defaults: Several annotators, adjudication, rules as labellers and their label model."""

from __future__ import annotations

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
#: A rule is flagged for "not shown better than chance" only once it voted on this many
#: human-labelled items (rules.rule_flags); with fewer, only a rule whose whole accuracy
#: interval lies below its class's share is: twenty votes are too few to tell 65% from 50%.
RULE_CHECK_MIN_VOTES = 20
#: Steps of the rules' share of the held-out mix (0, 1/8, ..., 1; heldout.with_optional):
#: eighths let a small share come out (a quarter was best at 25 actions on subjectivity) at
#: the cost of 9 mixes scored.
RULES_MIX_STEPS = 8

# -- rules (workbench/rules) ------------------------------------------------------------------

#: Items whose vectors a prompt rule compares with its prompts at once: 65,536 x 512 float32
#: is 128 MiB, so even a memory-mapped million items is read in bounded steps.
RULE_PROMPT_CHUNK = 65_536
#: The normal quantile of a rule's accuracy interval (Wilson): 90% two-sided. Which end is
#: compared with its class's share of the human labels to flag it: rules.analysis.rule_flags.
RULE_ACCURACY_Z = 1.6448536269514722

#: The label model's labels an unlabelled item needs this probability to train the rules'
#: probe on (below it the item stays unlabelled there; a human label always wins).
RULES_MIN_CONFIDENCE = 0.8
