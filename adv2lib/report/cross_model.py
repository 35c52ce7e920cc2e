"""The cross-model transfer study (:mod:`adv2lib.studies.cross_model`): estimates with intervals.

Per fed victim, source victim, interpreter and attack (PGD or ADV2), over the inputs that fooled
the source victim (``source_success``):

* ``hit``: the share the fed victim classifies as the target class they were crafted for (Wilson);
* ``transfer_asr``: the same among every input crafted, so that a source failure counts as a miss;
* ``l1_benign``: the mean L1 distance of the fed victim's map of the input (for the target class)
  to its own benign map of the clean image (:func:`adv2lib.stats.mean`);

and per interpreter the paired ratio of ADV2's L1 to PGD's on the same images
(:func:`.estimates.paired_ratio`): below 1 when ADV2's map manipulation carries over to the other
model, about 1 when it does not.
"""
from __future__ import annotations

import pandas as pd

from .. import stats
from ..names import INTERPRETERS, VICTIMS
from . import present
from .estimates import paired_ratio

__all__ = ["BY", "estimates", "table"]

BY = ("victim", "source_victim", "interpreter", "attack")


def _fooled_source(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["source_success"].astype(bool)]


def estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Long estimates (``metric``, ``estimate``, ``lo``, ``hi``, ``n``) per :data:`BY` group, and
    ``l1_benign ratio`` (ADV2 over PGD, paired) per victim, source victim and interpreter."""
    out = []
    for key, g in rows.groupby(list(BY), sort=False):
        where = dict(zip(BY, key))
        fooled = _fooled_source(g)
        for metric, iv in (("hit", stats.rate(fooled["success"].astype(bool).to_numpy())),
                           ("transfer_asr", stats.rate((g["success"].astype(bool) & g["source_success"].astype(bool))
                                                       .to_numpy())),
                           ("l1_benign", stats.mean(fooled["l1_benign"].to_numpy(float)))):
            out.append({**where, "metric": metric, "estimate": iv.estimate, "lo": iv.lo, "hi": iv.hi, "n": iv.n})
    frame = pd.DataFrame(out)
    maps = _fooled_source(rows).assign(success=True)
    ratio = paired_ratio(maps, ["victim", "source_victim", "interpreter"])
    if len(ratio):
        ratio.insert(3, "attack", "adv2")
        frame = pd.concat([frame, ratio], ignore_index=True)
    order = {"victim": VICTIMS, "source_victim": VICTIMS, "interpreter": INTERPRETERS, "attack": ("pgd", "adv2")}
    ranks = pd.DataFrame({c: frame[c].map({v: i for i, v in enumerate(present.in_order(frame[c], o))})
                          for c, o in order.items()})
    return frame.loc[ranks.sort_values(list(order), kind="stable").index].reset_index(drop=True)


def table(rows: pd.DataFrame):
    """:func:`estimates` shown: one row per source -> fed victim, interpreter and attack."""
    est = estimates(rows)
    if est.empty:
        return pd.DataFrame({"": ["no rows at this scale"]}).style.hide(axis="index")
    shown = present.wide(est, ["source_victim", "victim", "interpreter", "attack"],
                         ["hit", "transfer_asr", "l1_benign", "l1_benign ratio"],
                         {"hit": "{:.0%}", "transfer_asr": "{:.0%}", "l1_benign ratio": "{:.2f}"}, with_n=True)
    shown = shown.rename(columns={"source_victim": "crafted on", "victim": "fed to",
                                  "hit": "target hit (fooled the source)", "transfer_asr": "target hit (all inputs)",
                                  present.METRIC_LABELS["l1_benign"]: "L1 to the fed victim's benign map",
                                  present.METRIC_LABELS["l1_benign ratio"]: "L1 ADV2 / PGD (same images)"})
    return shown.style.hide(axis="index")
