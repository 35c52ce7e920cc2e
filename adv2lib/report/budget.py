"""The attack-budget chapter: ADV2 rerun with more stage-2 iterations, as tidy estimates and tests.

:func:`iteration_budgets` states from the presets how far the embedded profile's iteration
counts sit below the official code's. :func:`budget_estimates` summarises the budget
experiment (:func:`adv2lib.experiments.run_budget`) per victim x interpreter x attack x
``budget`` (the iteration factor as a number; NaN for PGD) with 95% intervals, and
:func:`budget_tests` tests, per victim and interpreter, whether the distance "levels off" (the
last step of the budget lowers it by less than :data:`LEVEL_OFF`, relative, on the same images)
and, per budget, whether ADV2 comes within the main experiment's criterion
(:data:`~adv2lib.report.ablation.CRITERION_BAR`). :func:`budget_table` and
:func:`budget_tests_table` show them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from ..names import INTERPRETERS, label
from .ablation import CRITERION_BAR, _ordered, _styled_wide, verdict_table
from .cells import Bar, judge
from .estimates import estimates, paired_ratio

__all__ = ["LEVEL_OFF", "LEVEL_OFF_BAR", "iteration_budgets", "budget_estimates", "budget_table", "budget_tests",
           "budget_tests_table"]

#: A step of the budget that lowers the L1 distance by less than this (relative) "levels off".
LEVEL_OFF = 0.05
LEVEL_OFF_BAR = Bar(-LEVEL_OFF, ">=", f"our bar: a larger budget that lowers the distance by less than "
                                      f"{LEVEL_OFF:.0%} (relative) no longer closes a gap worth its cost")
_METRICS = ["asr", "mc", "l1_benign", "iou_benign_mean"]


def iteration_budgets(profile: str = "embedded", reference: str = "imagenet", interpreters=INTERPRETERS) -> str:
    """A sentence stating, from the presets, each interpreter's ADV2 stage-2 iterations in
    ``profile`` against ``reference`` (the official code's values), e.g. "GRAD 100 stage-2 steps
    instead of 704, ..."; MASK counts outer iterations."""
    from ..attacks import preset_for

    parts = []
    for i in interpreters:
        ours, official = preset_for(profile, i).steps, preset_for(reference, i).steps
        unit = "outer iterations" if i == "mask" else "stage-2 steps"
        parts.append(f"{label(i)} {ours} {unit} instead of {official}")
    return ", ".join(parts)


def _parts(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ADV2 rows by increasing budget, PGD rows) in book order."""
    adv = _ordered(rows[rows["attack"] == "adv2"], ["budget"])
    return adv, _ordered(rows[rows["attack"] == "pgd"])


def budget_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim x interpreter x attack x ``budget`` x ``stage2_steps`` (both NaN for PGD): ASR,
    MC, L1 to and IoU with the benign map (successful attacks), ADV2's L1 ratio to PGD's on the
    same images (``l1_benign ratio``), each with its 95% interval, and ADV2's wall seconds per
    image (``seconds``, no interval). PGD first, then ADV2 by increasing budget."""
    adv, pgd = _parts(rows)
    by = ["victim", "interpreter", "attack", "budget", "stage2_steps"]
    parts = [estimates(pgd, by, _METRICS), estimates(adv, by, _METRICS)]
    if len(adv) and len(pgd):
        parts.append(paired_ratio(adv, by, a_rows=adv, b_rows=pgd.drop(columns=["budget", "stage2_steps"],
                                                                      errors="ignore")))
    if "seconds" in adv and len(adv):
        secs = adv.groupby([c for c in by if c in adv], sort=False, dropna=False)["seconds"].agg(["mean", "size"])
        parts.append(secs.reset_index().rename(columns={"mean": "estimate", "size": "n"})
                     .assign(metric="seconds", lo=np.nan, hi=np.nan))
    out = pd.concat(parts, ignore_index=True)
    return _ordered(out.assign(_p=(out["attack"] != "pgd").astype(int)), ["_p", "budget"]).drop(
        columns="_p").reset_index(drop=True)


def budget_table(rows: pd.DataFrame):
    """:func:`budget_estimates` as a table (Styler)."""
    return _styled_wide(budget_estimates(rows), ["victim", "interpreter", "attack", "budget", "stage2_steps"],
                        ["asr", "mc", "l1_benign", "l1_benign ratio", "iou_benign_mean", "seconds"])


def budget_tests(rows: pd.DataFrame) -> pd.DataFrame:
    """The budget chapter's tests (:func:`~adv2lib.report.cells.judge` rows): per victim x
    interpreter, "levels off" -- the relative change of ADV2's mean L1 from the second-largest
    to the largest budget on the same images (paired ratio - 1) against :data:`LEVEL_OFF_BAR`
    ("does not hold": it keeps falling) -- and per budget, "at most half of PGD's distance"
    (:data:`~adv2lib.report.ablation.CRITERION_BAR`)."""
    adv, pgd = _parts(rows)
    out = []
    for (v, i), g in adv.groupby(["victim", "interpreter"], sort=False):
        cell = {"victim": v, "interpreter": i}
        budgets = sorted(g["budget"].dropna().unique())
        if len(budgets) > 1:
            prev, last = budgets[-2], budgets[-1]
            r = paired_ratio(g, ["victim", "interpreter"], a_rows=g[g["budget"] == last],
                             b_rows=g[g["budget"] == prev].drop(columns=["budget", "stage2_steps"], errors="ignore"))
            if len(r):
                r = r.iloc[0]
                change = stats.Interval(r["estimate"] - 1, r["lo"] - 1, r["hi"] - 1, int(r["n"]))
                out.append(judge("levels off", {**cell, "budget": last},
                                 f"relative change of L1 from {prev:g}x to {last:g}x (same images)", change,
                                 LEVEL_OFF_BAR))
        ref = pgd[(pgd["victim"] == v) & (pgd["interpreter"] == i)].drop(columns=["budget", "stage2_steps"],
                                                                          errors="ignore")
        if ref.empty:
            continue
        for _, r in paired_ratio(g, ["victim", "interpreter", "budget"], a_rows=g, b_rows=ref).iterrows():
            out.append(judge("at most half of PGD's distance", {**cell, "budget": r["budget"]},
                             "L1 ADV2 / PGD (same images)",
                             stats.Interval(r["estimate"], r["lo"], r["hi"], int(r["n"])), CRITERION_BAR))
    return pd.DataFrame(out)


def budget_tests_table(rows: pd.DataFrame):
    """:func:`budget_tests` as a table (Styler)."""
    return verdict_table(budget_tests(rows), ["victim", "interpreter", "budget"], {"levels off": "{:+.1%}"})
