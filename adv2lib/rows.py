"""The schema of the per-image rows every experiment returns, written once.

An experiment's table (:attr:`ExperimentResult.examples <adv2lib.experiments.ExperimentResult>`,
saved by :func:`adv2lib.report.save_experiment`) has one row per attacked input and
measurement. Each column holds one raw value of one kind: what was done is in ``attack``, how it
was varied in its own typed column (``variant``, ``budget``, ``eps_255``, ``level``, ``rule``,
``source_interpreter``, ...), never in a compound label that later code would split apart.
Labels for readers are applied by the presentation layer (:mod:`adv2lib.report.present`).

Experiment version 2 (:data:`adv2lib.experiments.EXPERIMENT_VERSION`) introduced this schema;
version 1 wrote ``"adv2 x2"``, ``"hold@0.9"``, ``"adv2 preset"``, ``"adv2 cam"`` and
``source``/``target`` instead.

>>> import pandas as pd
>>> check(pd.DataFrame({"attack": ["adv2"], "budget": [2.0]}))
>>> check(pd.DataFrame({"attack": ["adv2 x2"]}))
Traceback (most recent call last):
...
ValueError: column 'attack' holds values outside the schema: ['adv2 x2'] (allowed: adaptive, adv2, clean, deletion, floor, pgd)
"""
from __future__ import annotations

import pandas as pd

__all__ = ["COLUMNS", "ATTACKS", "VALUES", "check"]

#: What produced a row.
ATTACKS = ("pgd", "adv2", "adaptive", "floor", "deletion", "clean")

#: Every column an experiment's rows may hold: name -> (kind, meaning). Kinds: ``str``, ``int``,
#: ``float``, ``bool``. A map-metric column is named ``l1_<reference>`` or ``iou_<reference>_<k or mean>``.
COLUMNS = {
    "experiment": ("str", "the experiment (main, patch, random_class, transfer, budget, ...)"),
    "profile": ("str", "embedded or imagenet"),
    "victim": ("str", "the classifier attacked (resnet, densenet)"),
    "interpreter": ("str", "the interpreter whose map the row measures (none: the shared PGD run)"),
    "attack": ("str", "what produced the input: " + ", ".join(ATTACKS)),
    "source_interpreter": ("str", "the interpreter an ADV2 input was crafted against, when it is not `interpreter` "
                                  "(transfer, ensemble)"),
    "variant": ("str", "the ablation variant of the attack (preset, tau 1e-2, ...)"),
    "budget": ("float", "stage-2 iterations as a multiple of the preset's"),
    "stage2_steps": ("int", "stage-2 iterations"),
    "eps_255": ("float", "the L-inf budget in units of 1/255"),
    "rule": ("str", "confidence experiment: select (among the iterates of the argmax-only run) or hold"),
    "level": ("float", "confidence experiment: the required p(ct) (0: argmax only)"),
    "record": ("str", "confidence experiment: returned (the attack's output) or level (the selection rule's "
                      "record at `level` in the same run)"),
    "rts": ("str", "AID experiment: original or AID (the hardened RTS)"),
    "attacked": ("bool", "ensemble experiment: whether the adaptive attack attacked this interpreter"),
    "kind": ("str", "ensemble experiment: attack or detection"),
    "ensemble": ("str", "ensemble experiment: all (every member) or adaptive (the members the adaptive attack attacks)"),
    "score_kind": ("str", "ensemble experiment: the disagreement score (distance, rank)"),
    "split": ("str", "ensemble experiment: calibration (held-out clean images) or evaluation"),
    "index": ("int", "test-set index of the image"),
    "position": ("int", "rank of the image in the experiment's selection"),
    "true_class": ("int", "the image's class"),
    "target_class": ("int", "the attack's target class ct"),
    "prediction": ("int", "the victim's prediction on the returned input"),
    "success": ("bool", "prediction == ct"),
    "confidence": ("float", "p(ct) on the returned input"),
    "iteration": ("int", "the iteration the returned input comes from"),
    "selected": ("bool", "whether the attack's selection rule found an admissible iterate"),
    "linf": ("float", "L-inf distance of the returned input to the clean image"),
    "seconds": ("float", "wall time of the attack per image"),
    "cpu_seconds": ("float", "process CPU time of the attack per image"),
}

#: The values a categorical column may take (others are free).
VALUES = {"attack": ATTACKS, "rule": ("select", "hold"), "record": ("returned", "level"),
          "rts": ("original", "AID"), "kind": ("attack", "detection"), "ensemble": ("all", "adaptive"),
          "split": ("calibration", "evaluation")}


def check(frame: pd.DataFrame) -> None:
    """Raise :class:`ValueError` when a categorical column of ``frame`` holds a value outside
    :data:`VALUES` (missing values are allowed: a column a row does not use)."""
    for column, allowed in VALUES.items():
        if column in frame.columns:
            bad = sorted(set(frame[column].dropna().astype(str)) - set(allowed))
            if bad:
                raise ValueError(f"column {column!r} holds values outside the schema: {bad} "
                                 f"(allowed: {', '.join(sorted(allowed))})")
