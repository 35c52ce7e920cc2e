"""The official-budget study (:mod:`adv2lib.studies.official_budget`): the L1 and IoU claims at the
paper's own iteration counts.

The study's rows have the budget experiment's columns (``budget``: a multiple of the preset's
stage-2 iterations; ``stage2_steps``), so the budget chapter's estimates, tests and curves
(:mod:`.budget`, :func:`adv2lib.plotting.budget_curves`) read them as they are. This module adds
what is particular to the official counts:

* :func:`at_official`: the PGD rows and the ADV2 rows at the official count of each interpreter
  (the largest share run: the smoke book runs a hundredth of it);
* :func:`claim_tests`: the comparison chapter's tests of the claims "l1" and "iou"
  (:mod:`.claims`, the same criteria and bars) on those rows;
* :func:`claim_line`: one line for the comparison chapter's L1 and IoU rows, saying what the
  verdict is at the paper's budget.
"""
from __future__ import annotations

import pandas as pd

from ..attacks import preset_for
from ..names import INTERPRETERS

__all__ = ["official_steps", "with_share", "top_share", "at_official", "claim_tests", "claim_line", "sample_sizes"]


def official_steps(interpreter: str) -> int:
    """The official code's stage-2 iterations of ADV2 against ``interpreter`` (the ImageNet preset
    copies them; MASK: outer iterations)."""
    return int(preset_for("imagenet", interpreter).steps)


def with_share(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``official_share``: each row's stage-2 iterations over the official count."""
    official = rows["interpreter"].map({i: official_steps(i) for i in INTERPRETERS if i in set(rows["interpreter"])})
    return rows.assign(official_share=rows["stage2_steps"] / official)


def _top(rows: pd.DataFrame) -> pd.Series:
    """Per interpreter, the largest share of its official count ADV2 ran at."""
    adv = with_share(rows[rows["attack"] == "adv2"])
    return adv.assign(s=adv["official_share"].round(6)).groupby("interpreter")["s"].max()


def top_share(rows: pd.DataFrame) -> float:
    """The smallest over interpreters of the largest share of the official count run (1 on the full
    book; the smoke book runs about a hundredth)."""
    top = _top(rows)
    return float(top.min()) if len(top) else float("nan")


def at_official(rows: pd.DataFrame) -> pd.DataFrame:
    """The PGD rows and, per interpreter, the ADV2 rows of its longest run (the official count on the
    full book), without the budget columns (so that the main experiment's tests pair them by image)."""
    share = with_share(rows)["official_share"].round(6)
    top = rows["interpreter"].map(_top(rows))
    keep = (rows["attack"] == "pgd") | ((rows["attack"] == "adv2") & (share == top))
    return rows[keep].drop(columns=["budget", "stage2_steps"], errors="ignore")


def claim_tests(rows: pd.DataFrame | None) -> pd.DataFrame:
    """The claims "l1" and "iou" judged on :func:`at_official` (the comparison chapter's criteria and
    bars, :mod:`.claims`)."""
    from . import claims

    if rows is None or rows.empty:
        return pd.DataFrame()
    official = at_official(rows)
    parts = [p for p in (claims._l1(official), claims._iou(official)) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def sample_sizes(rows: pd.DataFrame) -> str:
    """"20 images per victim (MASK 10)": the images ADV2 ran on at the official count."""
    official = at_official(rows)
    adv = official[official["attack"] == "adv2"]
    n = adv.groupby(["victim", "interpreter"])["position"].nunique()
    if n.empty:
        return "no images"
    common = int(n.max())
    fewer = {i: int(k) for (_, i), k in n.items() if k < common}
    return f"{common} images per victim" + (f" ({', '.join(f'{i.upper()} {k}' for i, k in fewer.items())})"
                                             if fewer else "")


def claim_line(rows: pd.DataFrame | None, claim: str) -> str:
    """The verdict of ``claim`` ("l1" or "iou") at the paper's iteration counts, in one line with its
    cells (or "" when the study is not in the record)."""
    from .cells import cell_verdicts, claim_verdict

    tests = claim_tests(rows)
    if tests.empty:
        return ""
    mine = tests[tests["claim"] == claim]
    if mine.empty:
        return ""
    verdict = claim_verdict(cell_verdicts(mine)["verdict"])
    share = top_share(rows)
    where = ("the paper's own iteration counts" if share == 1 else
             f"no less than {share:.0%} of the paper's iteration counts (not the official counts)")
    return (f"At {where} (appendix {{doc}}`ADV2 at the official budget <05d_official_budget>`, "
            f"{sample_sizes(rows)}): {verdict}")
