"""Each qualitative claim of the paper's evaluation, judged with intervals, with the source of every bar.

The claims (``paper-spec.md`` section (g), stored in :data:`adv2lib.paper_numbers.CLAIMS`) are
judged by the rules of :data:`CLAIM_RULES`, one per claim, in the paper's order. A rule names the
experiment whose saved table (:func:`adv2lib.report.load`) tests the claim and a function that
returns its *tests*: one row per cell (a victim x interpreter pair, an entry of the transfer
table, a victim) and statistic, each a 95% interval against a :class:`~adv2lib.report.cells.Bar`
that names its source (a number of the paper, or "our bar" with a reason). :mod:`.cells` turns
them into verdicts: **holds**, **does not hold**, **inconclusive at n = ...**, or **partly** with
the counts; for our bars also the verdict at the bar moved by -20 % and +20 %.

The rules were fixed before looking at the full results; they translate the paper's words
("close to", "much closer", "about as large") into bars, and say so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .. import paper_numbers as paper
from .. import stats
from ..names import INTERPRETERS
from . import defences, designs, official_budget, present
from .cells import LOOSER, STRICTER, Bar, cell_verdicts, claim_verdict, judge
from .estimates import estimates, interval_of, paired_rate, paired_ratio, successful
from .tables import paper_l1_ratios

__all__ = ["ClaimRule", "CLAIM_RULES", "RULES", "claim_tests", "verdicts", "BARS", "verdict_table", "evidence_table",
           "bar_sources"]


def _ordered_interpreters(rows: pd.DataFrame, column: str = "interpreter") -> list[str]:
    return present.in_order(rows[column] if column in rows else [], INTERPRETERS)


def _cells(rows: pd.DataFrame):
    """``(victim, interpreter, rows of that cell)`` in book order."""
    for v in dict.fromkeys(rows["victim"]):
        for i in _ordered_interpreters(rows[rows["victim"] == v]):
            yield v, i, rows[(rows["victim"] == v) & (rows["interpreter"] == i)]


def _numbers(values: dict, fmt: str = "{:.2f}") -> str:
    return " / ".join(fmt.format(v) for v in values.values())


# --------------------------------------------------------------------------- the bars and their sources
#: Every bar of the attack claims, with its source. The countermeasure claims' bars are in
#: :mod:`.defences`.
BARS = {
    "effective_asr": Bar(-0.05, ">=", "our bar: the paper's 'about as effective as PGD' (its main table was not "
                                      "recovered) read as ADV2's ASR at most 5 points below PGD's on the same images"),
    "effective_mc": Bar(0.9, ">=", f"our bar: the paper reports MC {_numbers(paper.TABLE8['mc'])} for ADV2 (Table 8, "
                                   f"GRAD / CAM / MASK / RTS); 'close to 1' read as at least 0.9", bounded=True),
    "l1": Bar(0.5, "<=", "our bar: 'much closer' read as at most half of PGD's distance on the same images; the "
                         f"paper's Table 9 diagonal over its PGD row gives {_numbers(paper_l1_ratios('B'))} (GRAD / "
                         "CAM / MASK / RTS) under reading B of its CAM and MASK cells, all below the bar, but "
                         f"{_numbers(paper_l1_ratios('A'))} under reading A: the paper's own numbers meet this "
                         "bar only under reading B"),
    "iou_level": Bar(0.5, ">=", "our bar: 'overlap strongly' read as a mean IoU with the benign map of at least 0.5 "
                                "(the paper's IoU numbers were not recovered)"),
    "iou_pgd": Bar(0.0, ">", "the claim itself: ADV2's IoU with the benign map above PGD's on the same images"),
    "qualitative": Bar(0.9, ">=", "our bar: 'ADV2 maps look like the benign maps while PGD maps do not' read as "
                                  "ADV2's map closer than PGD's on at least 9 images in 10", bounded=True),
    "patch_l1": Bar(0.0, "<", "paper: Table 7, Δt below Δb for every interpreter under both readings of its CAM and "
                              "MASK cells"),
    "patch_iou": Bar(0.0, ">", "the claim itself: IoU with the target above IoU with the benign map (the paper's "
                               "IoU panel is of uncertain attribution, paper-results.md)"),
    "random_class_asr": Bar(0.95, ">=", f"our bar: the paper's ASR {_numbers(paper.TABLE8['asr'], '{:.0%}')} "
                                        f"(Table 8) less 5 points", bounded=True),
    "random_class_mc": Bar(0.9, ">=", f"our bar: the paper's MC {_numbers(paper.TABLE8['mc'])} (Table 8) read as "
                                      f"at least 0.9", bounded=True),
    "transfer_diagonal": Bar(0.0, "<", "paper: Table 9, each diagonal entry the smallest of its column "
                                       f"({_numbers({i: paper.TABLE9['values'][i][i] for i in paper.TABLE9['columns']})})"),
    "transfer_off_diagonal": Bar(0.5, ">=", "our bar: 'about as large as PGD's' read as at least half of PGD's entry "
                                            "of the same column on the same images"),
}


# --------------------------------------------------------------------------- tests of the attack claims
def _effective(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for v, i, cell in _cells(rows):
        adv, pgd = cell[cell["attack"] == "adv2"], cell[cell["attack"] == "pgd"]
        if adv.empty or pgd.empty:
            continue
        a = adv.set_index("position")["success"].astype(float)
        b = pgd.set_index("position")["success"].astype(float).reindex(a.index)
        where = {"victim": v, "interpreter": i}
        out.append(judge("effective", where, "ASR ADV2 − ASR PGD (same images)",
                         stats.paired(a.to_numpy(), b.to_numpy(), "difference"), BARS["effective_asr"]))
        mc = stats.mean(adv["confidence"].where(successful(adv)).to_numpy(dtype=float))
        out.append(judge("effective", where, "MC of ADV2", mc, BARS["effective_mc"]))
    return pd.DataFrame(out)


def _ratio_tests(claim: str, rows: pd.DataFrame, bar: Bar) -> pd.DataFrame:
    ratios = paired_ratio(rows, ["victim", "interpreter"])
    return pd.DataFrame([judge(claim, {"victim": r.victim, "interpreter": r.interpreter},
                               "L1 to benign, ADV2 / PGD (same images)", interval_of(ratios, victim=r.victim,
                                                                                    interpreter=r.interpreter), bar)
                         for r in ratios.itertuples()])


def _l1(rows: pd.DataFrame) -> pd.DataFrame:
    return _ratio_tests("l1", rows, BARS["l1"])


def _iou(rows: pd.DataFrame) -> pd.DataFrame:
    level = estimates(rows[rows["attack"] == "adv2"], ["victim", "interpreter"], ["iou_benign_mean"])
    diff = paired_ratio(rows, ["victim", "interpreter"], "iou_benign_mean", kind="difference")
    out = []
    for r in level.itertuples():
        where = {"victim": r.victim, "interpreter": r.interpreter}
        out.append(judge("iou", where, "mean IoU of ADV2 with benign", interval_of(level, **where),
                         BARS["iou_level"]))
        out.append(judge("iou", where, "IoU ADV2 − IoU PGD (same images)", interval_of(diff, **where),
                         BARS["iou_pgd"]))
    return pd.DataFrame(out)


def _qualitative(rows: pd.DataFrame) -> pd.DataFrame:
    closer = paired_rate(rows, ["victim", "interpreter"])
    return pd.DataFrame([judge("qualitative", {"victim": r.victim, "interpreter": r.interpreter},
                               "share of images where ADV2's map is closer than PGD's",
                               interval_of(closer, victim=r.victim, interpreter=r.interpreter), BARS["qualitative"])
                         for r in closer.itertuples()])


def _patch(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for v, i, cell in _cells(rows[rows["attack"] == "adv2"]):
        ok = successful(cell)
        where = {"victim": v, "interpreter": i}
        dt, db = cell["l1_target"].where(ok).to_numpy(float), cell["l1_benign"].where(ok).to_numpy(float)
        out.append(judge("patch", where, "Δt − Δb of ADV2 (same images)", stats.paired(dt, db, "difference"),
                         BARS["patch_l1"]))
        if {"iou_target_mean", "iou_benign_mean"} <= set(cell.columns):
            it, ib = cell["iou_target_mean"].where(ok).to_numpy(float), cell["iou_benign_mean"].where(ok).to_numpy(float)
            out.append(judge("patch", where, "IoU with target − IoU with benign (same images)",
                             stats.paired(it, ib, "difference"), BARS["patch_iou"]))
    return pd.DataFrame(out)


def _random_class(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for v, i, cell in _cells(rows[rows["attack"] == "adv2"]):
        where = {"victim": v, "interpreter": i}
        out.append(judge("random_class", where, "ASR of ADV2", stats.rate(successful(cell).to_numpy()),
                         BARS["random_class_asr"]))
        out.append(judge("random_class", where, "MC of ADV2",
                         stats.mean(cell["confidence"].where(successful(cell)).to_numpy(float)),
                         BARS["random_class_mc"]))
    return pd.DataFrame(out)


def _transfer_pairs(rows: pd.DataFrame):
    """``(victim, target interpreter, source name, rows of the target column, rows of that source)``."""
    for v in dict.fromkeys(rows["victim"]):
        vrows = rows[rows["victim"] == v]
        for t in _ordered_interpreters(vrows):
            col = vrows[vrows["interpreter"] == t]
            sources = [("pgd", col[col["attack"] == "pgd"])]
            adv = col[col["attack"] == "adv2"]
            sources += [(s, adv[adv["source_interpreter"] == s]) for s in _ordered_interpreters(adv, "source_interpreter")]
            yield v, t, col, dict(sources)


def _ratio(a: pd.DataFrame, b: pd.DataFrame, kind: str) -> stats.Interval:
    va = a.set_index("position")["l1_benign"].where(successful(a).to_numpy())
    vb = b.set_index("position")["l1_benign"].where(successful(b).to_numpy())
    vb = vb[~vb.index.duplicated()].reindex(va.index)
    return stats.paired(va.to_numpy(float), vb.to_numpy(float), kind)


def _transfer_diagonal(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for v, t, _, sources in _transfer_pairs(rows):
        if t not in sources:
            continue
        for s, srows in sources.items():
            if s == t:
                continue
            out.append(judge("transfer_diagonal", {"victim": v, "interpreter": t, "source_interpreter": s},
                             f"diagonal − entry of {'PGD' if s == 'pgd' else s.upper()} (same images)",
                             _ratio(sources[t], srows, "difference"), BARS["transfer_diagonal"]))
    return pd.DataFrame(out)


def _transfer_off_diagonal(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for v, t, _, sources in _transfer_pairs(rows):
        if "pgd" not in sources:
            continue
        for s, srows in sources.items():
            if s in (t, "pgd"):
                continue
            out.append(judge("transfer_off_diagonal", {"victim": v, "interpreter": t, "source_interpreter": s},
                             "entry / PGD's entry of the column (same images)", _ratio(srows, sources["pgd"], "ratio"),
                             BARS["transfer_off_diagonal"]))
    return pd.DataFrame(out)


def _gap(rows: pd.DataFrame, robustness: pd.DataFrame) -> pd.DataFrame:
    """The prediction-interpretation gap, judged per victim from the two observations the paper
    names for it (abstract and section 7 of arXiv:1812.00891; paper-spec (g) 12): **low
    transferability** (every off-diagonal entry of the transfer matrix at least half of PGD's
    entry of its column: :func:`_transfer_off_diagonal`) and **disparate robustness**
    (:func:`adv2lib.report.defences.disparate_tests`). The cell is the victim; its tests are those
    of both observations, so it holds when every one holds and does not hold when one does not
    (:func:`.cells.combine`)."""
    out = []
    parts = ((_transfer_off_diagonal(rows), "low transferability"),
             (defences.disparate_tests(robustness), "disparate robustness"))
    for v in dict.fromkeys(rows["victim"]):
        for frame, observation in parts:
            for r in (frame[frame["victim"] == v].to_dict("records") if len(frame) else []):
                pair = f" {r['source_interpreter'].upper()}→{r['interpreter'].upper()}" \
                    if isinstance(r.get("source_interpreter"), str) else ""
                out.append({**r, "claim": "gap", "interpreter": None, "source_interpreter": None,
                            "statistic": f"{observation}{pair}: {r['statistic']}"})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- the rules
@dataclass(frozen=True)
class ClaimRule:
    """How one claim of :data:`adv2lib.paper_numbers.CLAIMS` is judged: the ``experiment`` whose
    table tests it (None: none here can), the ``criterion`` in words, ``tests`` (its table's rows,
    and those of the ``also`` experiments, -> test rows, :func:`adv2lib.report.cells.judge`) and
    why it is ``untested`` otherwise."""

    claim: str
    experiment: str | None = None
    criterion: str = ""
    tests: Callable[..., pd.DataFrame] | None = None
    untested: str = "The experiment that tests this claim has not been run at this scale."
    also: tuple[str, ...] = ()
    # every table (experiment -> rows) -> one line: whether another design, budget or measurement moves the verdict
    alternatives: Callable[[dict], str] | None = None


CLAIM_RULES: tuple[ClaimRule, ...] = (
    ClaimRule("effective", "main", "per victim x interpreter: ADV2's ASR at most 5 points below PGD's on the same "
                                   "images, and ADV2's MC at least 0.9", _effective),
    ClaimRule("l1", "main", "per victim x interpreter: ADV2's mean L1 to the benign map at most half of PGD's on the "
                            "same images", _l1, alternatives=lambda tables: official_budget.claim_line(
                                tables.get("official_budget"), "l1")),
    ClaimRule("iou", "main", "per victim x interpreter: ADV2's mean IoU (over k) with the benign map at least 0.5 and "
                             "above PGD's on the same images", _iou, alternatives=lambda tables: official_budget.claim_line(
                                 tables.get("official_budget"), "iou")),
    ClaimRule("qualitative", "main", "per victim x interpreter: ADV2's map closer (L1) to the benign map than PGD's "
                                     "on at least 90 % of the images both attack successfully", _qualitative),
    ClaimRule("isic", untested="No ISIC (skin lesion) classifier or data in this reproduction."),
    ClaimRule("patch", "patch", "per victim x interpreter: Δt below Δb and IoU with the target above IoU with the "
                                "benign map (ADV2, same images)", _patch),
    ClaimRule("random_class", "random_class", "per victim x interpreter: ADV2's ASR at least 95 % and MC at least 0.9",
              _random_class),
    ClaimRule("transfer_diagonal", "transfer", "per victim x column: the diagonal entry below every other entry of "
                                               "its column, PGD's included (same images)", _transfer_diagonal),
    ClaimRule("transfer_off_diagonal", "transfer", "per off-diagonal entry: at least half of the PGD entry of its "
                                                   "column (same images)", _transfer_off_diagonal),
    ClaimRule("ensemble", "ensemble", "per victim x single-interpreter ADV2: the full ensemble (distance score: the "
                                      "primary design, fixed in advance) flags at least half of its successful "
                                      "inputs at 5 % false positives on held-out clean images; a failure counts only "
                                      "if the same detector flags at least half of PGD's inputs (the control) "
                                      "(bars and sources: the ensemble chapter)",
              lambda rows: defences.ensemble_tests(rows),
              alternatives=lambda tables: designs.design_line(tables["ensemble"], tables.get("ensemble_designs"))),
    ClaimRule("ensemble_adaptive", "ensemble", "per victim: the adaptive ADV2 against the ensemble pays in "
                                               "detection or in distance (bars and sources: the ensemble chapter)",
              lambda rows: defences.adaptive_tests(rows)),
    ClaimRule("aid", "aid", "per victim: against the AID-hardened RTS, ADV2's L1 ratio to PGD rises, or with twice "
                            "the iterations it stays above the ratio it reaches against the original RTS (the "
                            "attacker's cost); an ASR arm cannot fire with a frozen victim and a required confidence "
                            "(bars and sources: the AID chapter)", lambda rows: defences.aid_tests(rows),
              alternatives=lambda tables: "; ".join(line for line in (
                  designs.premise_line(tables.get("aid_premise")),
                  designs.variant_line(tables.get("aid_variants"), tables.get("aid"))) if line)),
    ClaimRule("disparate", "robustness", "per victim: the interpreters' robustness differs widely (bars and "
                                         "sources: the robustness chapter)",
              lambda rows: defences.disparate_tests(rows)),
    ClaimRule("gap", "transfer", "per victim: both observations the paper names for the gap hold: low "
                                 "transferability (every off-diagonal transfer entry at least half of PGD's) and "
                                 "disparate robustness (as judged above)", _gap, also=("robustness",)),
)

#: The criterion of every tested claim, by claim id.
RULES = {rule.claim: rule.criterion for rule in CLAIM_RULES if rule.criterion}


def claim_tests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every test of every claim whose experiment's rows are in ``tables`` (experiment name ->
    saved rows): one frame of :func:`~adv2lib.report.cells.judge` rows, in the paper's order."""
    frames = []
    for rule in CLAIM_RULES:
        rows = tables.get(rule.experiment) if rule.experiment else None
        others = [tables.get(name) for name in rule.also]
        if rows is None or rule.tests is None or rows.empty or any(o is None or o.empty for o in others):
            continue
        tests = rule.tests(rows, *others)
        if tests is not None and len(tests):
            frames.append(tests.assign(claim=rule.claim))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["claim", "verdict"])


def _sensitivity(tests: pd.DataFrame) -> str:
    """The claim's verdict with its bars moved (our bars only), or "" when every bar is the paper's."""
    if tests.empty or not tests["ours"].any():
        return ""
    parts = []
    for name, column in (("stricter", STRICTER), ("looser", LOOSER)):
        moved = tests.assign(verdict=tests[column].where(tests["ours"], tests["verdict"]))
        parts.append(f"20% {name}: {claim_verdict(cell_verdicts(moved)['verdict'])}")
    return "; ".join(parts)


def _alternatives(rule: ClaimRule, tables: dict[str, pd.DataFrame]) -> str:
    if rule.alternatives is None or tables.get(rule.experiment) is None:
        return ""
    return rule.alternatives(tables)


def verdicts(tables: dict[str, pd.DataFrame], tests: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim of paper-spec (g): ``claim`` (id), ``item``, ``claim (paper)``,
    ``verdict``, ``criterion``, ``bar sources``, ``sensitivity`` (our bars moved by -20 % / +20 %),
    ``alternative designs`` (whether another design of the record moves the verdict), ``cells`` and ``n`` (the fewest images behind a test). ``tables`` maps experiment name to its
    saved rows; ``tests`` (:func:`claim_tests`) is computed when not given."""
    tests = claim_tests(tables) if tests is None else tests
    claims = {c.id: c for c in paper.CLAIMS}
    out = []
    for rule in CLAIM_RULES:
        mine = tests[tests["claim"] == rule.claim] if len(tests) else tests
        cells = cell_verdicts(mine) if len(mine) else pd.DataFrame(columns=["verdict"])
        claim = claims[rule.claim]
        verdict = claim_verdict(cells["verdict"]) if len(cells) else "not tested"
        out.append({"claim": rule.claim, "item": claim.item, "claim (paper)": f"{claim.text} {claim.provenance}",
                    "verdict": verdict, "criterion": rule.criterion or rule.untested,
                    "bar sources": "; ".join(dict.fromkeys(mine["bar source"])) if len(mine) else "",
                    "sensitivity": _sensitivity(mine) if len(mine) else "",
                    "alternative designs": _alternatives(rule, tables) if len(mine) else "",
                    "cells": len(cells), "n": int(mine["n"].min()) if len(mine) else 0})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- display
def verdict_table(verdicts_: pd.DataFrame):
    """The verdicts, one row per claim, for the comparison chapter (pandas Styler)."""
    from .present import TableSpec, styled

    return styled(verdicts_, TableSpec(["item", "verdict", "criterion", "sensitivity", "cells", "n"],
                                       names={"sensitivity": "verdict with our bars 20% stricter / looser",
                                              "n": "fewest images behind a test"}))


def evidence_table(tests: pd.DataFrame, claim: str):
    """The tests of one claim: the cell, the statistic with its 95% interval, the bar and the verdict
    (and, for our bars, the verdicts at the moved bars), as a pandas Styler."""
    from .present import SIDES, TableSpec, interval_text, styled

    mine = tests[tests["claim"] == claim].copy()
    if mine.empty:
        return None
    pct = mine["statistic"].str.contains("ASR|share", regex=True)
    mine["95% interval"] = [interval_text(r.estimate, r.lo, r.hi, "{:.0%}" if p else "{:.3f}")
                            for r, p in zip(mine.itertuples(), pct)]
    mine["bar"] = [f"{SIDES[r.side]} {r.bar:.0%}" if p and r.bar != 0 else f"{SIDES[r.side]} {r.bar:g}"
                   for r, p in zip(mine.itertuples(), pct)]
    columns = [c for c in ("victim", "interpreter", "source_interpreter") if c in mine and mine[c].notna().any()]
    shifted = [c for c in (STRICTER, LOOSER) if c in mine and (mine[c] != "").any()]
    return styled(mine, TableSpec([*columns, "statistic", "95% interval", "n", "bar", "verdict", *shifted],
                                  names={"interpreter": "column" if claim.startswith("transfer") else "interpreter",
                                         "source_interpreter": "row (crafted against)"}))


def bar_sources(tests: pd.DataFrame) -> pd.DataFrame:
    """Every bar the verdicts use, once: claim, bar, side and source (a number of the paper or our bar)."""
    if tests.empty:
        return pd.DataFrame(columns=["claim", "statistic", "bar", "bar source"])
    return (tests[["claim", "statistic", "side", "bar", "bar source"]].drop_duplicates(["claim", "statistic"])
            .reset_index(drop=True))
