"""Each qualitative claim of the paper's evaluation, with our verdict and the evidence for it.

The claims (``paper-spec.md`` section (g), stored in :data:`adv2lib.paper_numbers.CLAIMS`)
are judged by the rules of :data:`CLAIM_RULES`, one per claim, in the paper's order. A rule
names the experiment whose saved rows test the claim, the criterion every *cell* must meet (a
victim x interpreter pair, or an entry of the transfer table) and the function that lists the
cells with their outcome. One function, :func:`verdicts`, applies every rule the same way:

* **holds** when every cell passes, **does not hold** when none does, **partly** otherwise;
* **not tested** when the experiment has not been run at this scale, gave no cell, or when the
  reproduction has no experiment for the claim (the rule then says why).

The criteria were fixed before looking at the full results; they translate the paper's words
("close to", "much closer", "about as large") into numbers.
"""
from __future__ import annotations

import re

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from .. import paper_numbers as paper
from ..names import INTERPRETERS, label
from . import defences
from .tables import cell, summarize_examples, transfer_matrices, victims_in
from .text import fmt

__all__ = ["Cell", "ClaimRule", "CLAIM_RULES", "RULES", "verdicts", "verdicts_markdown", "verdict"]


@dataclass(frozen=True)
class Cell:
    """One cell a claim was checked on: its label (``"ResNet/GRAD"``), the outcome and the numbers."""

    label: str
    passed: bool
    text: str

    def note(self) -> str:
        return f"{self.label}: {self.text} {'✓' if self.passed else '✗'}"


class Evidence:
    """The saved rows of one experiment, with the summaries the rules read (computed once)."""

    def __init__(self, examples: pd.DataFrame):
        self.examples = examples

    @cached_property
    def summary(self) -> pd.DataFrame:
        return summarize_examples(self.examples)

    @cached_property
    def transfer_matrices(self) -> dict:
        return transfer_matrices(self.examples)

    def value(self, victim: str, interpreter: str, attack: str, column: str) -> float:
        return cell(self.summary, victim, interpreter, attack, column)


#: A check of one victim x interpreter cell: ``(passed, numbers)``, or None when the cell has no evidence.
CellCheck = Callable[[Evidence, str, str], "tuple[bool, str] | None"]


@dataclass(frozen=True)
class ClaimRule:
    """How one claim of :data:`adv2lib.paper_numbers.CLAIMS` is judged.

    ``experiment`` is the experiment whose rows test it (None: no experiment here can);
    ``criterion`` is what each cell must meet, in words; ``cells`` lists the cells of that
    experiment's :class:`Evidence` with their outcome; ``untested`` says why the claim is not
    tested when no cell is available.
    """

    claim: str
    experiment: str | None = None
    criterion: str = ""
    cells: Callable[[Evidence], Iterable[Cell]] | None = None
    untested: str = "The experiment that tests this claim has not been run at this scale."


def per_victim_interpreter(check: CellCheck) -> Callable[[Evidence], Iterator[Cell]]:
    """The cells of ``check`` over every victim x interpreter of the evidence (paper order)."""
    def cells(ev: Evidence) -> Iterator[Cell]:
        present = set(ev.summary["interpreter"])
        for v in victims_in(ev.summary):
            for i in [i for i in INTERPRETERS if i in present]:
                outcome = check(ev, v, i)
                if outcome is not None:
                    yield Cell(f"{label(v)}/{label(i)}", bool(outcome[0]), outcome[1])
    return cells


# --------------------------------------------------------------------------- the cell checks
def _effective(ev: Evidence, v: str, i: str):
    a, p, mc = ev.value(v, i, "adv2", "asr"), ev.value(v, i, "pgd", "asr"), ev.value(v, i, "adv2", "mc")
    if not np.isfinite(a):
        return None
    return (a >= p - 0.05 and np.isfinite(mc) and mc >= 0.9), f"ASR {fmt(a, True)} (PGD {fmt(p, True)}), MC {fmt(mc)}"


def _l1(ev: Evidence, v: str, i: str):
    a, p = ev.value(v, i, "adv2", "l1_benign"), ev.value(v, i, "pgd", "l1_benign")
    if not (np.isfinite(a) and np.isfinite(p)):
        return None
    return a <= 0.5 * p, f"L1 ADV2 {fmt(a)} vs PGD {fmt(p)}"


def _iou(ev: Evidence, v: str, i: str):
    a, p = ev.value(v, i, "adv2", "iou_benign_mean"), ev.value(v, i, "pgd", "iou_benign_mean")
    if not (np.isfinite(a) and np.isfinite(p)):
        return None
    return (a >= 0.5 and a > p), f"IoU ADV2 {fmt(a)} vs PGD {fmt(p)}"


def _qualitative(ev: Evidence, v: str, i: str):
    df = ev.examples[(ev.examples["victim"] == v) & (ev.examples["interpreter"] == i)]
    wide = df.pivot_table(index="position", columns="attack", values=["l1_benign", "success"], aggfunc="first")
    if wide.empty or ("l1_benign", "adv2") not in wide.columns or ("l1_benign", "pgd") not in wide.columns:
        return None
    both = wide[("success", "adv2")].astype(bool) & wide[("success", "pgd")].astype(bool)
    if not both.any():
        return None
    closer = (wide.loc[both, ("l1_benign", "adv2")] < wide.loc[both, ("l1_benign", "pgd")]).mean()
    return closer >= 0.9, f"ADV2 closer on {fmt(closer, True)} of {int(both.sum())} images"


def _patch(ev: Evidence, v: str, i: str):
    db, dt = ev.value(v, i, "adv2", "l1_benign"), ev.value(v, i, "adv2", "l1_target")
    ib, it = ev.value(v, i, "adv2", "iou_benign_mean"), ev.value(v, i, "adv2", "iou_target_mean")
    if not (np.isfinite(db) and np.isfinite(dt)):
        return None
    return (dt < db and it > ib), f"Δt {fmt(dt)} vs Δb {fmt(db)}, IoU target {fmt(it)} vs benign {fmt(ib)}"


def _random_class(ev: Evidence, v: str, i: str):
    a, mc = ev.value(v, i, "adv2", "asr"), ev.value(v, i, "adv2", "mc")
    if not np.isfinite(a):
        return None
    return (a >= 0.95 and np.isfinite(mc) and mc >= 0.9), f"ASR {fmt(a, True)}, MC {fmt(mc)}"


def _transfer_columns(ev: Evidence):
    """``(victim, target interpreter, its column of the transfer matrix without gaps)``."""
    for v, m in ev.transfer_matrices.items():
        for t in [c for c in INTERPRETERS if c in m.columns]:
            yield v, t, m[t].dropna()


def _transfer_diagonal(ev: Evidence) -> Iterator[Cell]:
    for v, t, col in _transfer_columns(ev):
        if t in col.index:
            yield Cell(f"{label(v)}/{label(t)}", bool(col[t] <= col.min()),
                       f"diagonal {fmt(col[t])}, column min {fmt(col.min())}")


def _transfer_off_diagonal(ev: Evidence) -> Iterator[Cell]:
    for v, t, col in _transfer_columns(ev):
        if "pgd" in col.index:
            for s in [s for s in col.index if s not in (t, "pgd")]:
                yield Cell(f"{label(v)}/{label(s)}→{label(t)}", bool(col[s] >= 0.5 * col["pgd"]),
                           f"{fmt(col[s])} vs PGD {fmt(col['pgd'])}")


def _defence_cells(fn: Callable) -> Callable[[Evidence], Iterator[Cell]]:
    """Cells from one of :mod:`.defences`' ``*_cells`` functions (``[(label, passed, text)]``)."""
    def cells(ev: Evidence) -> Iterator[Cell]:
        for name, passed, text in fn(ev.examples):
            yield Cell(name, bool(passed), text)
    return cells


# --------------------------------------------------------------------------- the rules
#: One rule per claim of :data:`adv2lib.paper_numbers.CLAIMS`, in the same order.
CLAIM_RULES: tuple[ClaimRule, ...] = (
    ClaimRule("effective", "main",
              "per victim x interpreter: ADV2's ASR is at least PGD's minus 5 points, and ADV2's MC >= 0.9",
              per_victim_interpreter(_effective)),
    ClaimRule("l1", "main",
              "per victim x interpreter: mean L1 of ADV2 maps to the benign map <= half of PGD's",
              per_victim_interpreter(_l1)),
    ClaimRule("iou", "main",
              "per victim x interpreter: mean IoU (over k) of ADV2 maps with the benign map >= 0.5 and above PGD's",
              per_victim_interpreter(_iou)),
    ClaimRule("qualitative", "main",
              "per victim x interpreter: on >= 90 % of the images attacked successfully by both, the ADV2 "
              "map is closer (L1) to the benign map than the PGD map of the same image",
              per_victim_interpreter(_qualitative)),
    ClaimRule("isic", untested="No ISIC (skin lesion) classifier or data in this reproduction."),
    ClaimRule("patch", "patch",
              "per victim x interpreter: Δt < Δb and IoU with the target > IoU with the benign map (ADV2)",
              per_victim_interpreter(_patch)),
    ClaimRule("random_class", "random_class",
              "per victim x interpreter: ADV2's ASR >= 0.95 and MC >= 0.9 (paper: 100 %, 0.99)",
              per_victim_interpreter(_random_class)),
    ClaimRule("transfer_diagonal", "transfer",
              "per victim x column: the diagonal entry is the smallest of its column (PGD row included)",
              _transfer_diagonal),
    ClaimRule("transfer_off_diagonal", "transfer",
              "per off-diagonal entry: L1 >= half the PGD entry of the same column",
              _transfer_off_diagonal),
    ClaimRule("ensemble", "ensemble",
              f"per victim x single-interpreter ADV2: the full ensemble ({defences.PRIMARY_SCORE} score) flags at "
              f"least {defences.DETECTED:.0%} of its successful inputs at 5 % false positives on held-out clean images",
              _defence_cells(defences.ensemble_cells)),
    ClaimRule("ensemble_adaptive", "ensemble",
              f"per victim: adaptive ADV2 against the ensemble is flagged on at least {defences.DETECTED:.0%} of its "
              f"successful inputs, or its L1 to some attacked interpreter's benign map is at least "
              f"{defences.DISTANCE_RAISE:g}x the single-interpreter attack's on the same images",
              _defence_cells(defences.adaptive_cells)),
    ClaimRule("aid", "aid",
              f"per victim: against the AID-hardened RTS, ADV2's L1 ratio to PGD rises by at least "
              f"{defences.AID_RATIO_RISE:g} or its ASR drops by at least {defences.AID_ASR_DROP:.0%} (preset budget)",
              _defence_cells(defences.aid_cells)),
    ClaimRule("disparate", "robustness",
              f"per victim: the interpreters' L1 ratios to PGD at the preset budget span a factor of at least "
              f"{defences.DISPARATE_SPREAD:g}, or their smallest robust L-inf budgets (ADV2 ASR >= "
              f"{defences.ROBUST_ASR:.0%} and L1 <= {defences.ROBUST_FRACTION:g} x PGD's at the preset) lie two or "
              f"more grid steps apart",
              _defence_cells(defences.disparate_cells)),
    ClaimRule("gap", untested="The paper's analysis of the prediction-interpretation gap was not recovered; its two "
                              "observable consequences are judged above (transferability, disparate robustness)."),
)

#: The experiments whose failing map cells the measured causes of the ablation chapter explain.
_ATTACK_EXPERIMENTS = ("main", "patch", "random_class", "transfer")

#: The per-cell criterion of every tested claim, by claim id.
RULES = {rule.claim: rule.criterion for rule in CLAIM_RULES if rule.criterion}


def verdict(passed: Sequence[bool]) -> str:
    """``"holds"``, ``"partly"``, ``"does not hold"`` or (no cell) ``"not tested"``."""
    passed = [bool(p) for p in passed]
    if not passed:
        return "not tested"
    if all(passed):
        return "holds"
    return "partly" if any(passed) else "does not hold"


def _interpreters_of(cell_label: str) -> list[str]:
    """The interpreter labels a cell names: ``"ResNet/GRAD"`` -> GRAD, ``"ResNet/GRAD→CAM"`` -> both."""
    tail = cell_label.split("/", 1)[-1]
    return [part.strip() for part in tail.split("→")]


def verdicts(tables: dict[str, pd.DataFrame], causes: dict | None = None) -> pd.DataFrame:
    """Every claim of paper-spec (g) with our verdict and the evidence behind it.

    ``tables`` maps experiment name (``main``, ``patch``, ``random_class``, ``transfer``) to
    its saved per-example rows; a missing experiment makes its claims "not tested".
    ``causes`` (``{claim id or "*": {interpreter label: sentence}}``, from
    :func:`adv2lib.report.ablation.claim_causes`) gives a claim that does not fully hold its
    measured causes: column ``measured cause``, one entry per interpreter of its failing cells.
    """
    evidence = {name: Evidence(rows) for name, rows in tables.items() if rows is not None}
    claims = {c.id: c for c in paper.CLAIMS}
    out = []
    for rule in CLAIM_RULES:
        ev = evidence.get(rule.experiment)
        cells = list(rule.cells(ev)) if ev is not None and rule.cells is not None else []
        claim = claims[rule.claim]
        failing = [i for c in cells if not c.passed for i in _interpreters_of(c.label)]
        # the map causes ("*") explain the attack experiments' map claims, not the countermeasures'
        fallback = (causes or {}).get("*", {}) if rule.experiment in _ATTACK_EXPERIMENTS else {}
        mine = (causes or {}).get(rule.claim, fallback)
        cause = "; ".join(f"{i}: {mine[i]}" for i in dict.fromkeys(failing) if i in mine)
        out.append({"item": claim.item, "claim (paper)": f"{claim.text} {claim.provenance}",
                    "verdict": verdict([c.passed for c in cells]), "criterion": rule.criterion,
                    "evidence (ours)": "; ".join(c.note() for c in cells) if cells else rule.untested,
                    "measured cause": cause})
    return pd.DataFrame(out)


def verdicts_markdown(table: pd.DataFrame) -> str:
    """The verdicts as MyST Markdown: one short section per claim with its evidence, cell by cell."""
    parts = []
    for _, row in table.iterrows():
        evidence = row["evidence (ours)"]
        # every cell's note ends with its mark, so a ";" inside a note does not split it
        cells = [e.strip() for e in re.split(r"(?<=[✓✗]);", evidence)] if ("✓" in evidence or "✗" in evidence) else []
        body = [f"**{row['item']}: {row['verdict']}.** {row['claim (paper)']}"]
        if row["criterion"]:
            body.append(f"*Criterion:* {row['criterion']}.")
        body.append("\n".join(f"- {c}" for c in cells) if cells else evidence)
        if row.get("measured cause"):
            body.append("*Measured causes of the failing cells:* "
                        + "; ".join(f"{part}" for part in [row["measured cause"]]) + ".")
        parts.append("\n\n".join(body))
    return "\n\n---\n\n".join(parts)
