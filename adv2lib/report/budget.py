"""The attack-budget chapter: ADV2 rerun with more stage-2 iterations, as a table and in words.

:func:`iteration_budgets` states from the presets how far the embedded profile's iteration
counts sit below the official code's; :func:`budget_table` summarises the budget experiment
(:func:`adv2lib.experiments.run_budget`) and :func:`budget_sentences` says, per victim and
interpreter, whether more iterations still bring the ADV2 map closer to the benign one.
"""
from __future__ import annotations

import pandas as pd

from ..names import INTERPRETERS, label
from .tables import victims_in

__all__ = ["LEVEL_OFF", "iteration_budgets", "budget_table", "budget_sentences"]

#: A doubling of the budget that changes the L1 distance by less than this (relative) "levels off".
LEVEL_OFF = 0.05


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


def budget_table(examples: pd.DataFrame) -> pd.DataFrame:
    """The budget experiment (:func:`adv2lib.experiments.run_budget`) per victim x interpreter x
    budget: stage-2 iterations, ASR, MC, mean L1 to the benign map, its ratio to PGD's on the same
    images, mean IoU and wall seconds per image (PGD first, then ADV2 by increasing budget)."""
    from ..metrics import summarize

    s = summarize(examples, by=("victim", "interpreter", "attack", "budget"))
    steps = examples.groupby(["victim", "interpreter", "attack"])["stage2_steps"].first() \
        if "stage2_steps" in examples else None
    secs = examples.groupby(["victim", "interpreter", "attack"])["seconds"].mean()
    rows = []
    for v in victims_in(s):
        for i in [i for i in INTERPRETERS if i in set(s["interpreter"])]:
            sub = s[(s["victim"] == v) & (s["interpreter"] == i)].sort_values("budget")
            pgd = sub[sub["attack"] == "pgd"]
            pgd_l1 = float(pgd["l1_benign"].iloc[0]) if len(pgd) else float("nan")
            for _, r in sub.iterrows():
                is_pgd = r["attack"] == "pgd"
                n_steps = None if is_pgd or steps is None else steps.get((v, i, r["attack"]))
                rows.append({"victim": label(v), "interpreter": label(i),
                             "attack": "PGD" if is_pgd else f"ADV2, {r['budget']:g}x",
                             "stage-2 iterations": "–" if n_steps is None or pd.isna(n_steps) else int(n_steps),
                             "ASR": r["asr"], "MC": r["mc"], "L1 to benign": r["l1_benign"],
                             "L1 / PGD": r["l1_benign"] / pgd_l1 if pgd_l1 > 0 else float("nan"),
                             "IoU (mean over k)": r.get("iou_benign_mean", float("nan")),
                             "wall s / image": float("nan") if is_pgd else float(secs.get((v, i, r["attack"]))),
                             "_budget": r["budget"]})
    return pd.DataFrame(rows)



def budget_sentences(table: pd.DataFrame) -> str:
    """One Markdown line per victim x interpreter of :func:`budget_table`: how the L1 distance and
    its ratio to PGD move as the budget grows, and whether the last step of the budget still
    lowered the distance by at least :data:`LEVEL_OFF` (relative) -- "keeps falling" -- or not --
    "levels off"."""
    lines = []
    for (v, i), sub in table.groupby(["victim", "interpreter"], sort=False):
        adv = sub[sub["attack"] != "PGD"].sort_values("_budget")
        if adv.empty:
            continue
        path = " → ".join(f"{r['L1 to benign']:.3f} ({r['_budget']:g}x)" for _, r in adv.iterrows())
        first, last = adv.iloc[0], adv.iloc[-1]
        change = (last["L1 to benign"] - first["L1 to benign"]) / first["L1 to benign"]
        pgd = sub[sub["attack"] == "PGD"]
        ref = f"; PGD {pgd['L1 to benign'].iloc[0]:.3f}, ratio to PGD {first['L1 / PGD']:.2f} → " \
              f"{last['L1 / PGD']:.2f}" if len(pgd) else ""
        trend = ""
        if len(adv) > 1:
            prev = adv.iloc[-2]
            step = (last["L1 to benign"] - prev["L1 to benign"]) / prev["L1 to benign"]
            trend = (f" It **levels off**: {prev['_budget']:g}x → {last['_budget']:g}x changed it by {step:+.0%}."
                     if step > -LEVEL_OFF else
                     f" It **keeps falling**: {prev['_budget']:g}x → {last['_budget']:g}x changed it by {step:+.0%}.")
        lines.append(f"- **{v} / {i}**: L1 to the benign map {path}, a change of {change:+.0%} from "
                     f"{first['_budget']:g}x to {last['_budget']:g}x{ref}; MC {first['MC']:.2f} → {last['MC']:.2f}."
                     + trend)
    return "\n".join(lines)

