"""The comparison chapter (paper vs this reproduction): what it reads and how it shows the verdicts.

It reads every experiment's one saved table (:func:`adv2lib.report.load`), the same tables the
experiment chapters read back, judges the paper's claims (:mod:`.claims`) and shows, claim by
claim, the tests with their 95% intervals, the bars with their sources and the sensitivity of the
verdicts to our bars.
"""
from __future__ import annotations

import pandas as pd

from ..errors import ResultsNotFoundError
from . import claims
from .files import Table, load

__all__ = ["EXPERIMENTS", "load_all", "sources", "show_evidence", "verdict_counts", "magnitudes", "bar_table",
           "interventions"]

#: Every experiment the comparison chapter reads, in book order.
EXPERIMENTS = ("main", "patch", "random_class", "transfer", "cross_model", "budget", "official_budget", "confidence",
               "ablation", "robustness", "ensemble", "ensemble_designs", "aid", "aid_premise", "aid_variants")


def load_all(profile: str = "embedded", smoke: bool = False, results_dir=None) -> dict[str, Table]:
    """Every saved table at this scale (a missing one is left out: its claims are "not tested")."""
    out = {}
    for name in EXPERIMENTS:
        try:
            out[name] = load(name, profile, smoke, results_dir)
        except (ResultsNotFoundError, FileNotFoundError):
            pass
    return out


def rows(tables: dict[str, Table]) -> dict[str, pd.DataFrame]:
    return {name: t.rows for name, t in tables.items()}


def sources(tables: dict[str, Table], smoke: bool) -> str:
    """Markdown: which files were read (scale, when, with which versions), and the smoke warning."""
    lines = [f"* `{name}`: {t.scale}; written {t.meta['written_at']} (torch {t.meta['versions']['torch']}, "
             f"adv2lib {t.meta['versions']['adv2lib']})" for name, t in tables.items()]
    missing = [n for n in EXPERIMENTS if n not in tables]
    text = "Result files read:\n\n" + "\n".join(lines)
    if missing:
        text += f"\n\nMissing (their claims are marked *not tested*): {', '.join(missing)}"
    if smoke:
        text += ("\n\n:::{warning}\nThis is the **smoke** build: a handful of images and about a tenth of the attack "
                 "iterations. It checks that the pipeline runs end to end; the numbers and verdicts below are not "
                 "evidence for or against the paper (most say *inconclusive*). Build the full book (`make book`) for "
                 "those.\n:::")
    return text


def verdict_counts(verdicts: pd.DataFrame) -> dict:
    """How many claims hold, do not hold, hold partly, are inconclusive or not tested."""
    kinds = verdicts["verdict"].map(lambda v: "inconclusive" if v.startswith("inconclusive")
                                    else "partly" if v.startswith("partly") else v)
    return {k: int((kinds == k).sum()) for k in ("holds", "partly", "inconclusive", "does not hold", "not tested")}


def show_evidence(tests: pd.DataFrame, verdicts: pd.DataFrame) -> None:
    """Display, claim by claim, the verdict, the claim, the criterion and the table of its tests."""
    from IPython.display import Markdown, display

    for _, row in verdicts.iterrows():
        head = f"**{row['item']}: {row['verdict']}.** {row['claim (paper)']}\n\n*Criterion:* {row['criterion'].rstrip('.')}."
        if row["sensitivity"]:
            head += f" *With our bars 20% stricter / looser:* {row['sensitivity']}."
        if row.get("alternative designs"):
            head += f" *{row['alternative designs']}.*"
        display(Markdown(head))
        table = claims.evidence_table(tests, row["claim"])
        if table is not None:
            display(table)


def magnitudes(tables: dict[str, Table]) -> dict:
    """Where our distances sit against the paper's (Tables 7 and 9): the cells of the paper's tables that
    our ResNet's mean exceeds, as counts, for the chapter's prose (glued)."""
    from .. import paper_numbers as paper

    out = {"table9_larger": "n/a", "table9_cells": "n/a", "table7_larger": "n/a", "table7_cells": "n/a"}
    if "transfer" in tables:
        rows_ = tables["transfer"].rows
        rows_ = rows_[(rows_["victim"] == "resnet") & rows_["success"].astype(bool)]
        src = rows_["source_interpreter"].where(rows_["attack"] != "pgd", "pgd")
        means = rows_.assign(source=src).groupby(["source", "interpreter"])["l1_benign"].mean()
        values = paper.TABLE9["values"]
        cells = [(s, t) for s in values for t in values[s] if (s, t) in means.index]
        out["table9_larger"] = int(sum(means[(s, t)] > values[s][t] for s, t in cells))
        out["table9_cells"] = len(cells)
    if "patch" in tables:
        rows_ = tables["patch"].rows
        rows_ = rows_[(rows_["victim"] == "resnet") & (rows_["attack"] == "adv2") & rows_["success"].astype(bool)]
        means = rows_.groupby("interpreter")[["l1_benign", "l1_target"]].mean()
        larger = total = 0
        for reading in ("A", "B"):
            table = paper.TABLE7["readings"][reading]
            for metric, column in (("delta_b", "l1_benign"), ("delta_t", "l1_target")):
                for i, v in table[metric].items():
                    if i in means.index:
                        larger += means.loc[i, column] > v
                        total += 1
        out["table7_larger"], out["table7_cells"] = int(larger), total
    return out


def bar_table(tests: pd.DataFrame):
    """Every bar the verdicts use, once (pandas Styler)."""
    from .present import SIDES, TableSpec, styled

    bars = claims.bar_sources(tests)
    bars = bars.assign(bar=[f"{SIDES.get(s, s)} {b:g}" for s, b in zip(bars["side"], bars["bar"])])
    return styled(bars, TableSpec(["claim", "statistic", "bar", "bar source"]))


def interventions(rows: dict, tests: pd.DataFrame):
    """``(table, caption)``: for the main experiment's L1 and IoU cells that do not hold, the
    interventions measured on the same victim, interpreter and images (the confidence and ablation
    chapters: :func:`adv2lib.report.ablation.measured_effects`). These are measurements of what the
    intervention changes in that cell, not causes attached to other experiments' cells."""
    from . import ablation
    from .present import TableSpec, styled

    if "confidence" not in rows and "ablation" not in rows:
        return None, "*The confidence and ablation chapters have not been run at this scale.*"
    effects = ablation.measured_effects(rows.get("confidence"), rows.get("ablation"))
    failing = claims.cell_verdicts(tests[tests["claim"].isin(["l1", "iou"])]) if len(tests) else pd.DataFrame()
    if failing.empty or effects is None or effects.empty:
        return None, "*No intervention was measured on a failing cell.*"
    failing = failing[failing["verdict"] != "holds"][["victim", "interpreter"]].drop_duplicates()
    mine = effects.merge(failing, on=["victim", "interpreter"])
    if mine.empty:
        return None, "*No intervention was measured on a cell of the L1 or IoU claims that does not hold.*"
    return ablation.effects_view(mine), (
        "**Interventions measured on the cells of the L1 and IoU claims that do not hold** (same victim, interpreter "
        "and images as the main experiment; the confidence and ablation chapters): ADV2's L1 ratio to PGD before "
        "and after each intervention with 95% intervals, the paired change and its verdict against our bar. They "
        "say what each intervention changes in that cell; they are not attached to other experiments' cells.")
