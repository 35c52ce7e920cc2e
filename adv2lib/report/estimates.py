"""Tidy estimates with their 95% intervals, from an experiment's saved rows (:mod:`adv2lib.rows`).

Every report function that shows a mean, a rate or a ratio gets it here, so every number in
the book comes with an interval computed the same way (:mod:`adv2lib.stats`). The frames are
long and keyed by raw values: the grouping columns, ``metric``, ``estimate``, ``lo``, ``hi``,
``n``; labels and formats are the presentation layer's (:mod:`.present`).

Metrics: ``asr`` (share of the group's rows with ``success``: Wilson), ``mc`` (mean ``confidence``
over successful rows) and any map column (``l1_*``, ``iou_*``: mean over successful rows; a
row without an attack outcome, e.g. a noise floor, counts as it is). ``successful_only=False``
averages over every row.

>>> import pandas as pd
>>> rows = pd.DataFrame({"victim": "resnet", "interpreter": "cam", "attack": ["adv2"] * 4 + ["pgd"] * 4,
...                      "position": [0, 1, 2, 3] * 2, "success": True, "confidence": 0.9,
...                      "l1_benign": [0.1, 0.2, 0.1, 0.2, 0.4, 0.4, 0.3, 0.5]})
>>> est = estimates(rows, ["victim", "interpreter", "attack"], ["asr", "l1_benign"])
>>> est[["attack", "metric", "estimate", "n"]].to_dict("records")[:2]
[{'attack': 'adv2', 'metric': 'asr', 'estimate': 1.0, 'n': 4}, {'attack': 'adv2', 'metric': 'l1_benign', 'estimate': 0.15000000000000002, 'n': 4}]
>>> r = paired_ratio(rows, ["victim", "interpreter"])
>>> round(float(r["estimate"].iloc[0]), 3), int(r["n"].iloc[0])
(0.375, 4)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .. import stats

__all__ = ["estimates", "paired_ratio", "paired_rate", "interval_of", "row_interval", "map_metrics", "successful", "RATES"]

COLUMNS = ("metric", "estimate", "lo", "hi", "n")

#: The metrics of estimates frames that are rates (Wilson intervals); the others are bootstrap means.
RATES = ("asr", "flagged", "top_hurts_more", "preserved_accuracy", "destroyed_accuracy", "pool_asr_first",
         "pool_asr_last")


def successful(rows: pd.DataFrame) -> pd.Series:
    """Whether each row is a successful attack (rows without an outcome count as successful)."""
    if "success" not in rows:
        return pd.Series(True, index=rows.index)
    return rows["success"].fillna(True).astype(bool)


def map_metrics(rows: pd.DataFrame) -> list[str]:
    """The map-metric columns of ``rows`` (``l1_*`` and the mean IoU columns)."""
    return [c for c in rows.columns if c.startswith("l1_") or (c.startswith("iou_") and c.endswith("_mean"))]


def _interval(group: pd.DataFrame, metric: str, successful_only: bool) -> stats.Interval:
    ok = successful(group)
    if metric == "asr":
        return stats.rate(ok.to_numpy())
    column = "confidence" if metric == "mc" else metric
    if column not in group:
        return stats.Interval(float("nan"), float("nan"), float("nan"), 0)
    values = group[column].where(ok) if successful_only else group[column]
    return stats.mean(values.to_numpy(dtype=float))


def _groups(rows: pd.DataFrame, by: Sequence[str]):
    by = [c for c in by if c in rows.columns]
    if not by:
        yield {}, rows
        return
    for key, group in rows.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key)), group


def estimates(rows: pd.DataFrame, by: Sequence[str], metrics: Sequence[str] | None = None,
              successful_only: bool = True) -> pd.DataFrame:
    """One row per group of ``by`` (columns missing from ``rows`` are skipped) and metric:
    ``estimate`` with its 95% interval ``[lo, hi]`` and ``n``, the images behind it."""
    metrics = list(metrics) if metrics is not None else ["asr", "mc", *map_metrics(rows)]
    out = []
    for key, group in _groups(rows, by):
        for metric in metrics:
            iv = _interval(group, metric, successful_only)
            out.append({**key, "metric": metric, "estimate": iv.estimate, "lo": iv.lo, "hi": iv.hi, "n": iv.n})
    return pd.DataFrame(out, columns=[c for c in by if c in rows.columns] + list(COLUMNS)) if not out \
        else pd.DataFrame(out)


def _values(rows: pd.DataFrame, metric: str, on: Sequence[str]) -> pd.Series:
    """``metric`` of successful rows (NaN for failed attacks), indexed by ``on``."""
    v = rows[metric].where(successful(rows))
    return pd.Series(v.to_numpy(dtype=float), index=pd.MultiIndex.from_frame(rows[list(on)]))


def _select(rows: pd.DataFrame, where: dict) -> pd.DataFrame:
    return rows[np.logical_and.reduce([rows[k] == v for k, v in where.items()])]


def _pairs(rows, by, metric, a, b, on, a_rows=None, b_rows=None):
    """Per group of ``by`` of the ``a`` rows: ``(key, a values, b values)``, the ``metric`` of successful
    rows (NaN otherwise) of the same images (matched on ``on``), ``b`` taken from the rows with the same
    values of the ``by`` columns that are not ``a``'s or ``b``'s own selectors."""
    a = {"attack": "adv2"} if a is None else a
    b = {"attack": "pgd"} if b is None else b
    a_rows = _select(rows, a) if a_rows is None else a_rows
    b_rows = _select(rows, b) if b_rows is None else b_rows
    for key, group in _groups(a_rows, by):
        match = b_rows
        for col, val in key.items():
            if col in match.columns and col not in a and col not in b:
                match = match[(match[col] == val) | (pd.isna(val) & match[col].isna())]
        va, vb = _values(group, metric, on), _values(match, metric, on)
        vb = vb[~vb.index.duplicated()].reindex(va.index)
        yield key, va.to_numpy(), vb.to_numpy()


def paired_ratio(rows: pd.DataFrame, by: Sequence[str], metric: str = "l1_benign", a: dict | None = None,
                 b: dict | None = None, on: Sequence[str] = ("position",), kind: str = "ratio",
                 a_rows: pd.DataFrame | None = None, b_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per group of ``by``: ``mean(metric | a) / mean(metric | b)`` (``kind="difference"``: minus) over
    the images (matched on ``on``) where both are successful, with a paired bootstrap interval.

    ``a`` and ``b`` select the two sets of rows by column values (default ADV2 and PGD:
    ``{"attack": "adv2"}``, ``{"attack": "pgd"}``); ``a_rows`` / ``b_rows`` give them directly
    (then ``by`` groups ``a_rows`` and each group is matched with the ``b_rows`` of the same key
    on the ``by`` columns ``b_rows`` has)."""
    out = []
    for key, va, vb in _pairs(rows, by, metric, a, b, on, a_rows, b_rows):
        iv = stats.paired(va, vb, kind)
        out.append({**key, "metric": f"{metric} {kind}", "estimate": iv.estimate, "lo": iv.lo, "hi": iv.hi, "n": iv.n})
    return pd.DataFrame(out)


def paired_rate(rows: pd.DataFrame, by: Sequence[str], metric: str = "l1_benign", a: dict | None = None,
                b: dict | None = None, on: Sequence[str] = ("position",)) -> pd.DataFrame:
    """Per group of ``by``: the share of images (where both are successful) on which ``metric``
    under ``a`` is below ``metric`` under ``b`` (default: ADV2's map closer than PGD's), Wilson."""
    out = []
    for key, va, vb in _pairs(rows, by, metric, a, b, on):
        both = np.isfinite(va) & np.isfinite(vb)
        iv = stats.rate((va < vb)[both])
        out.append({**key, "metric": f"{metric} closer", "estimate": iv.estimate, "lo": iv.lo, "hi": iv.hi,
                    "n": iv.n})
    return pd.DataFrame(out)


def row_interval(row) -> stats.Interval:
    """The :class:`~adv2lib.stats.Interval` of one row of an estimates frame, with its method
    (Wilson for the :data:`RATES`, else bootstrap)."""
    method = "wilson" if row.get("metric") in RATES else "bootstrap"
    return stats.Interval(float(row["estimate"]), float(row["lo"]), float(row["hi"]), int(row["n"]), method)


def interval_of(frame: pd.DataFrame, **where) -> stats.Interval:
    """The :class:`~adv2lib.stats.Interval` of the one row of an estimates frame matching ``where``
    (NaN-valued when none does)."""
    sel = frame
    for k, v in where.items():
        sel = sel[sel[k] == v]
    if sel.empty:
        return stats.Interval(float("nan"), float("nan"), float("nan"), 0)
    return row_interval(sel.iloc[0])
