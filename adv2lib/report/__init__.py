"""Result tables the book reads, and the paper-vs-this-reproduction comparison.

An experiment chapter runs its experiment with one call, :func:`run_chapter`, which saves
every per-example row the experiment returned (:func:`save_experiment`):
``<results>/tables/<profile>-<smoke|full>/<experiment>_examples.csv`` plus a JSON of what
produced them (``<experiment>.json``). The comparison chapter reads only those files
(:func:`load_experiment`), recomputes the summaries with the same code
(:func:`adv2lib.metrics.summarize`) and puts them beside the paper's numbers
(:mod:`adv2lib.paper_numbers`).

=====================  ==================================================================
:mod:`.files`          saving and loading the tables (:func:`save_experiment`,
                       :func:`load_experiment`, :func:`available`)
:mod:`.tables`         :func:`table7`, :func:`table8`, :func:`table9` (every table of
                       ``paper-results.md``), :func:`main_table` (our PGD-vs-ADV2 table),
                       :func:`attack_times`, :func:`confidence_profile`, :func:`l1_ratios`
:mod:`.claims`         each qualitative claim of ``paper-spec.md`` section (g) with a verdict
                       judged with intervals (holds / does not hold / inconclusive / partly), by the rules in
                       :data:`CLAIM_RULES`
:mod:`.budget`         the attack-budget chapter's estimates and tests
:mod:`.ablation`       the confidence trade-off and the ablations: estimates, tests and
                       the measured effects of each intervention (:func:`~.ablation.measured_effects`)
:mod:`.defences`       disparate robustness, the ensemble detector and its adaptive attack,
                       AID: estimates and the tests of their claims
:mod:`.text`           :func:`scale_text`, the caption sentence of a run's scale
:mod:`.cards`          the model cards of the victims and RTS networks
:mod:`.chapter`        :func:`run_chapter`, the run-and-save step of every experiment chapter
=====================  ==================================================================
"""
from __future__ import annotations

from ..names import INTERPRETERS, LABELS, VICTIMS
from .budget import LEVEL_OFF, budget_table, budget_tests, iteration_budgets
from .cards import card_table, rts_cards, victim_cards
from .chapter import ChapterRun, run_chapter
from .files import EXPERIMENT_NAMES, Table, available, load, load_experiment, save_experiment, scale_label, tables_dir
from . import cells, estimates, present
from .tables import (PAPER_ROW, attack_times, build_speedup, confidence_profile, l1_ratios, main_table,
                     summarize_examples, table7, table7_readings, table8, table9, transfer_matrices)
from . import ablation, defences
from .text import scale_text
from .claims import CLAIM_RULES, RULES, ClaimRule, claim_tests, verdicts

#: Display labels (the chapters' name for :data:`adv2lib.names.LABELS`).
LABEL = LABELS

__all__ = [
    "EXPERIMENT_NAMES", "Table", "load", "cells", "estimates", "present", "RULES", "CLAIM_RULES", "ClaimRule", "scale_label", "tables_dir", "save_experiment",
    "load_experiment", "available", "summarize_examples", "table7", "table7_readings", "ablation", "defences", "table8", "table9", "transfer_matrices",
    "main_table", "verdicts", "victim_cards", "rts_cards", "scale_text", "card_table", "claim_tests",
    "attack_times", "build_speedup", "confidence_profile", "budget_table", "budget_tests", "l1_ratios", "iteration_budgets",
    "LEVEL_OFF", "PAPER_ROW", "run_chapter", "ChapterRun", "LABEL", "VICTIMS", "INTERPRETERS",
]
