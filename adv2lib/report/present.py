"""The presentation layer: labels, formats and captions, applied in one place.

Report functions return tidy frames keyed by raw values (``"resnet"``, ``"adv2"``, ``budget = 2.0``,
an estimate with ``lo``/``hi``/``n``). This module turns them into what a reader sees:

* :func:`interval_table`: a long estimates frame (:mod:`.estimates`) pivoted to one column per
  metric, each cell ``0.412 [0.371, 0.455]`` (the 95% interval), rendered with pandas' Styler;
* :func:`styled`: any tidy frame with display labels and per-column formats (a :class:`TableSpec`);
* :func:`show` (a figure, a Styler or Markdown, with its caption), :func:`caption`;
* :func:`glue`: a number for the chapter's prose through myst-nb's ``glue`` (the text then reads
  ``{glue:text}`name``` and never holds a typed result).

>>> import pandas as pd
>>> est = pd.DataFrame({"victim": ["resnet"], "attack": ["adv2"], "metric": ["asr"], "estimate": [0.9],
...                     "lo": [0.83], "hi": [0.95], "n": [100]})
>>> wide(est, ["victim", "attack"]).iloc[0].to_dict()
{'victim': 'ResNet', 'attack': 'ADV2', 'ASR': '90% [83%, 95%]'}
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd

from ..names import LABELS
from ..stats import METHOD

__all__ = ["METRIC_LABELS", "FORMATS", "COLUMN_LABELS", "in_order", "label", "interval_text", "wide", "interval_table",
           "TableSpec", "styled", "show", "caption", "glue", "METHOD"]

#: How the book names a metric (a key of an estimates frame).
METRIC_LABELS = {
    "asr": "ASR", "mc": "MC", "l1_benign": "L1 to benign", "l1_target": "L1 to target",
    "iou_benign_mean": "IoU with benign", "iou_target_mean": "IoU with target", "l1_floor": "L1 floor",
    "iou_floor_mean": "IoU floor", "l1_benign ratio": "L1 / PGD", "l1_benign difference": "L1 − PGD",
    "l1_benign closer": "images closer than PGD", "flagged": "flagged", "auc": "AUC",
}
#: Number formats by metric (rates as percentages).
FORMATS = {"asr": "{:.0%}", "flagged": "{:.0%}", "l1_benign closer": "{:.0%}", "mc": "{:.3f}",
           "l1_benign ratio": "{:.2f}", "auc": "{:.2f}"}
DEFAULT_FORMAT = "{:.3f}"
#: How the book names a column of a tidy frame.
COLUMN_LABELS = {
    "victim": "victim", "interpreter": "interpreter", "attack": "attack", "source_interpreter": "crafted against",
    "variant": "variant", "budget": "iterations (x preset)", "eps_255": "eps (/255)", "rule": "rule",
    "level": "required p(ct)", "rts": "RTS", "ensemble": "ensemble", "score_kind": "score", "n": "n",
}
#: Display values that are not names of :data:`adv2lib.names.LABELS`.
VALUE_LABELS = {"select": "selection among iterates", "hold": "attack holds it", "original": "original",
                "AID": "AID", "clean": "clean", "adaptive": "adaptive ADV2", "all": "all members"}


#: How a bar's side reads in a table (no raw "<" in HTML).
SIDES = {">=": "≥", "<=": "≤", ">": "above", "<": "below"}


def in_order(values, order: Sequence) -> list:
    """The distinct values of ``values`` (missing ones dropped) in book order: those in ``order`` as
    there, then the others sorted.

    >>> in_order(["mask", "grad", None, "mask", "zzz"], ("grad", "cam", "mask"))
    ['grad', 'mask', 'zzz']
    """
    values = list(dict.fromkeys(v for v in values if not pd.isna(v)))
    return [v for v in order if v in values] + sorted(v for v in values if v not in order)


def label(value) -> str:
    """The display label of a raw value (a name, a number, a missing value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return LABELS.get(str(value), VALUE_LABELS.get(str(value), str(value)))


def interval_text(estimate, lo, hi, fmt: str = DEFAULT_FORMAT) -> str:
    """``"0.412 [0.371, 0.455]"``; the estimate alone when the interval is missing; ``"–"`` without one."""
    if estimate is None or not math.isfinite(float(estimate)):
        return "–"
    if lo is None or hi is None or not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        return fmt.format(estimate)
    return f"{fmt.format(estimate)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def wide(estimates: pd.DataFrame, index: Sequence[str], metrics: Sequence[str] | None = None,
         formats: dict | None = None, with_n: bool = False) -> pd.DataFrame:
    """A long estimates frame as one text column per metric (``estimate [lo, hi]``), rows by
    ``index`` (raw values replaced by their labels); ``with_n`` adds the images behind the first metric."""
    formats = {**FORMATS, **(formats or {})}
    metrics = list(metrics) if metrics is not None else list(dict.fromkeys(estimates["metric"]))
    index = [c for c in index if c in estimates.columns]
    rows = []
    # missing key values as None, so that the rows of one group (e.g. PGD's, without a variant) are one key
    keys = list(dict.fromkeys(tuple(None if pd.isna(v) else v for v in key)
                              for key in estimates[index].astype(object).itertuples(index=False, name=None)))
    for key in keys:
        sel = estimates
        for col, val in zip(index, key):
            sel = sel[sel[col].isna()] if val is None else sel[sel[col] == val]
        row = {col: label(val) for col, val in zip(index, key)}
        for m in metrics:
            hit = sel[sel["metric"] == m]
            if hit.empty:
                row[METRIC_LABELS.get(m, m)] = "–"
                continue
            r = hit.iloc[0]
            row[METRIC_LABELS.get(m, m)] = interval_text(r["estimate"], r["lo"], r["hi"],
                                                         formats.get(m, DEFAULT_FORMAT))
            if with_n and m == metrics[0]:
                row["n"] = int(r["n"])
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.rename(columns={c: COLUMN_LABELS.get(c, c) for c in index})


def interval_table(estimates: pd.DataFrame, index: Sequence[str], metrics: Sequence[str] | None = None,
                   formats: dict | None = None, with_n: bool = False):
    """:func:`wide`, rendered with pandas' Styler (no index column)."""
    return wide(estimates, index, metrics, formats, with_n).style.hide(axis="index")


@dataclass(frozen=True)
class TableSpec:
    """How a tidy frame is shown: the columns kept (in order), their display names (default:
    :data:`COLUMN_LABELS`), their formats, and the columns whose raw values become labels."""

    columns: Sequence[str]
    names: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)
    labelled: Sequence[str] = ("victim", "interpreter", "attack", "source_interpreter", "rts", "rule", "ensemble")


def styled(frame: pd.DataFrame, spec: TableSpec):
    """``frame`` shown by ``spec``: pandas Styler, labels applied, missing values as "–"."""
    df = frame[[c for c in spec.columns if c in frame.columns]].copy()
    for c in spec.labelled:
        if c in df:
            df[c] = df[c].map(label)
    names = {c: spec.names.get(c, COLUMN_LABELS.get(c, c)) for c in df.columns}
    formats = {names[c]: f for c, f in spec.formats.items() if c in names}
    return df.rename(columns=names).style.format(formats, na_rep="–").hide(axis="index")


def caption(text: str) -> None:
    """Display ``text`` (MyST Markdown) as a caption under the previous output."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show(obj, text: str | None = None) -> None:
    """Display a figure (PNG, then released), a Styler, a frame or Markdown text, then its caption."""
    from IPython.display import Markdown, display

    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover
        Figure = ()
    if isinstance(obj, str):
        display(Markdown(obj))
    elif obj is not None:                   # None: nothing to show, only the caption (e.g. "not run yet")
        display(obj)
    if Figure and isinstance(obj, Figure):
        import matplotlib.pyplot as plt

        plt.close(obj)
    if text:
        caption(text)


def glue(name: str, value, fmt: str | None = None):
    """Hand ``value`` to the chapter's prose: myst-nb's ``glue`` (not displayed here; the text
    cites it as ``{glue:text}`name``` or ``{glue:text}`name:.2f```). ``fmt`` formats it first
    (a string is glued as it is). Returns the value glued."""
    from myst_nb import glue as _glue

    shown = fmt.format(value) if fmt is not None else value
    _glue(name, shown, display=False)
    return shown
