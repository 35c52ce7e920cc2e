"""The attack chapters' tables: the main experiment, the analogues of the paper's Tables 7-9, the
transfer matrix, the L1 ratios and confidences, each a tidy frame with 95% intervals.

Every function takes an experiment's saved rows (:func:`adv2lib.report.load`, columns of
:mod:`adv2lib.rows`) and returns a long frame keyed by raw values (``victim``, ``interpreter``,
``attack``, ``source_interpreter``, ``metric``) with ``estimate``, ``lo``, ``hi`` (the 95%
interval, :mod:`.estimates`) and ``n``; where the paper has a number, it stands beside ours in
a column of its own (``paper``; Table 7 and the Table 9 ratios under both readings of their
CAM and MASK cells: ``paper_A``, ``paper_B``). The paper's numbers come from
:mod:`adv2lib.paper_numbers`. The ``show_*`` functions render a table for a chapter (labels,
``estimate [lo, hi]`` text, pandas Styler: :mod:`.present`), so a notebook cell is one call.

>>> import pandas as pd
>>> rows = pd.DataFrame({"victim": "resnet", "interpreter": "cam", "attack": ["pgd", "adv2"] * 2,
...                      "position": [0, 0, 1, 1], "success": True, "confidence": 0.99,
...                      "l1_benign": [0.4, 0.1, 0.4, 0.3]})
>>> r = l1_ratios(rows)
>>> float(r["estimate"].iloc[0]), float(r["paper_B"].iloc[0])
(0.5, 0.17857142857142858)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paper_numbers as paper
from .. import rows as schema
from .. import stats
from ..names import INTERPRETERS, VICTIMS, label
from . import present
from .estimates import estimates, paired_ratio, successful
from .files import EXPERIMENT_NAMES

__all__ = ["PAPER_ROW", "ATTACKS", "MAIN_METRICS", "summarize_examples", "victims_in", "cell", "main_table",
           "table7", "table7_readings", "table8", "table9", "table9_values", "paper_l1_ratios", "transfer_table",
           "transfer_matrices", "iou_by_k", "l1_ratios", "confidence_profile", "attack_times", "build_speedup",
           "show_main_table", "show_table7", "show_table7_readings", "show_table8", "show_table9", "show_l1_ratios",
           "show_confidence_profile"]

#: How the tables name the paper's numbers.
PAPER_ROW = "paper (ImageNet, ResNet-50)"
#: The attacks of the main experiment, in the order the tables show them.
ATTACKS = ("pgd", "adv2")
#: The main experiment's metrics.
MAIN_METRICS = ("asr", "mc", "l1_benign", "iou_benign_mean")
#: Table 7's rows: our metric -> the paper's key.
TABLE7_KEYS = {"l1_benign": "delta_b", "l1_target": "delta_t"}
#: How the Table 7 tables name its two rows.
TABLE7_LABELS = {"l1_benign": "Δb (to the benign map)", "l1_target": "Δt (to the target)"}
#: The order in which tables list the values of a column (values not listed come after, as found).
ORDER = {"victim": VICTIMS, "interpreter": INTERPRETERS, "source_interpreter": INTERPRETERS, "attack": ATTACKS}
NAN = float("nan")


# --------------------------------------------------------------------------- helpers
def _sorted(frame: pd.DataFrame, by, order: dict | None = None) -> pd.DataFrame:
    """``frame`` sorted by the columns ``by`` in the book's order of their values (stable)."""
    order = {**ORDER, **(order or {})}
    by = [c for c in by if c in frame.columns]
    if frame.empty or not by:
        return frame.reset_index(drop=True)

    def rank(column: pd.Series) -> pd.Series:
        values = order.get(column.name, ())
        return column.map(lambda v: values.index(v) if v in values else len(values))

    return frame.sort_values(by, key=rank, kind="stable").reset_index(drop=True)


def summarize_examples(examples: pd.DataFrame) -> pd.DataFrame:
    """Per-group ASR, MC, mean L1 and mean IoU (:func:`adv2lib.metrics.summarize`, point estimates),
    grouped by victim, interpreter, attack and the typed columns of
    :data:`adv2lib.experiments.GROUPS` the rows have."""
    from ..experiments import GROUPS
    from ..metrics import summarize

    df = examples.copy()
    if "confidence" not in df:
        df["confidence"] = np.nan
    keep = [c for c in df.columns if not (c.startswith("iou_") and not c.endswith("_mean"))]
    return summarize(df[keep], by=("victim", "interpreter", "attack", *GROUPS))


def victims_in(frame: pd.DataFrame) -> list:
    """The victims of ``frame``: the paper's two in their order, then any other, sorted."""
    present_ = set(frame["victim"])
    return [v for v in VICTIMS if v in present_] + sorted(present_ - set(VICTIMS))


def cell(summary: pd.DataFrame, victim: str, interpreter: str, attack: str, column: str) -> float:
    """One value of a summary (``nan`` when that victim x interpreter x attack is absent)."""
    sel = summary[(summary["victim"] == victim) & (summary["interpreter"] == interpreter)
                  & (summary["attack"] == attack)]
    return float(sel[column].iloc[0]) if len(sel) else NAN


def _text(frame: pd.DataFrame, index, columns=(), extra: dict | None = None, metric_labels: dict | None = None,
          prefix: str = "", formats: dict | None = None, n: str | None = None) -> pd.DataFrame:
    """Display frame: one row per combination of ``index`` values, one ``estimate [lo, hi]`` column
    per combination of ``columns`` values (labels joined by ", ", after ``prefix``), preceded by
    the ``extra`` columns of ``frame`` (column -> header; the paper's numbers) and followed by
    the images behind them under the header ``n`` when given."""
    metric_labels = {**present.METRIC_LABELS, **(metric_labels or {})}
    formats = {**present.FORMATS, **(formats or {})}

    def name(column, value):
        return metric_labels.get(value, value) if column == "metric" else present.label(value)

    def fmt(metric):
        return formats.get(metric, present.DEFAULT_FORMAT)

    table: dict = {}
    for r in frame.to_dict("records"):
        key = tuple(name(c, r[c]) for c in index)
        row = table.setdefault(key, dict(zip([present.COLUMN_LABELS.get(c, c) for c in index], key)))
        for column, header in (extra or {}).items():
            value = r[column]
            row[header] = "–" if value is None or not np.isfinite(value) else (
                "{:.0%}" if r.get("metric") == "asr" else "{:.2f}").format(value)
        header = prefix + ", ".join(name(c, r[c]) for c in columns) if columns else "ours"
        row[header] = present.interval_text(r["estimate"], r["lo"], r["hi"], fmt(r.get("metric")))
        if n:
            row[n] = int(r["n"])
    frame = pd.DataFrame(list(table.values()))
    if n:
        frame = frame[[c for c in frame.columns if c != n] + [n]]
    return frame.fillna("–")


def _checked(rows: pd.DataFrame, needs=("victim", "interpreter", "attack")) -> pd.DataFrame:
    """``rows`` after :func:`adv2lib.rows.check` (a compound label of experiment version 1 raises)
    and with the columns ``needs``."""
    schema.check(rows)
    missing = [c for c in needs if c not in rows.columns]
    if missing:
        raise ValueError(f"these rows lack the column(s) {', '.join(missing)} of adv2lib.rows (rows of experiment "
                         f"version 1? rerun the experiment)")
    return rows


def _styler(frame: pd.DataFrame):
    return frame.style.hide(axis="index")


# --------------------------------------------------------------------------- the main experiment
def main_table(rows: pd.DataFrame, metrics=MAIN_METRICS, attacks=ATTACKS) -> pd.DataFrame:
    """ASR, MC, L1 to the benign map and mean IoU (or ``metrics``) with their 95% intervals, per
    victim x interpreter x attack (map metrics and MC over successful attacks)."""
    sel = _checked(rows)[rows["attack"].isin(attacks)]
    return _sorted(estimates(sel, ["victim", "interpreter", "attack"], list(metrics)),
                   ["victim", "interpreter", "attack"])


def show_main_table(rows: pd.DataFrame, metrics=("asr", "mc"), attacks=ATTACKS):
    """:func:`main_table`: rows victim x interpreter, one column per metric and attack."""
    t = _sorted(main_table(rows, metrics, attacks), ["victim", "interpreter", "metric", "attack"],
                {"metric": tuple(metrics)})
    return _styler(_text(t, ["victim", "interpreter"], ["metric", "attack"]))


def iou_by_k(rows: pd.DataFrame, reference: str = "benign", attacks=ATTACKS) -> pd.DataFrame:
    """The IoU test: mean IoU (over successful attacks) of the top-k cells of the attack's map and
    of the ``reference`` map, with its 95% interval, per victim x interpreter x attack x ``k``
    (the share of cells kept; the rows' ``iou_<reference>_<k in %>`` columns)."""
    prefix = f"iou_{reference}_"
    ks = {c: int(c[len(prefix):]) / 100 for c in rows.columns if c.startswith(prefix) and c[len(prefix):].isdigit()}
    sel = _checked(rows)[rows["attack"].isin(attacks)]
    keys = [c for c in ("victim", "interpreter", "attack", "position", "success") if c in sel.columns]
    long = sel.melt(id_vars=keys, value_vars=list(ks), var_name="column", value_name="iou")
    long["k"] = long["column"].map(ks)
    est = estimates(long, ["victim", "interpreter", "attack", "k"], ["iou"])
    return _sorted(est.assign(metric=f"iou_{reference}").sort_values("k", kind="stable"),
                   ["victim", "interpreter", "attack"])


# --------------------------------------------------------------------------- the paper's numbers
def table9_values(reading: str = "B") -> dict:
    """The paper's Table 9 (source -> interpreter explaining -> L1) under a reading of its CAM and
    MASK cells: ``"B"``, as :data:`adv2lib.paper_numbers.TABLE9` stores it (the MASK cell first,
    the order that puts each row's smallest entry on the diagonal; Table 7's reading B names the
    same order), or ``"A"``, left to right as extracted (each row's CAM and MASK cells swapped)."""
    values = paper.TABLE9["values"]
    if reading == "B":
        return {s: dict(row) for s, row in values.items()}
    if reading == "A":
        return {s: {**row, "cam": row["mask"], "mask": row["cam"]} for s, row in values.items()}
    raise ValueError(f"reading must be 'A' or 'B', got {reading!r}")


def paper_l1_ratios(reading: str = "B") -> dict:
    """The paper's Table 9 diagonal over its PGD row per interpreter (the nearest the recovered text
    comes to its main L1 table: ADV2's L1 to the benign map over PGD's) under a reading."""
    values = table9_values(reading)
    return {i: values[i][i] / values["pgd"][i] for i in paper.TABLE9["columns"]}


def _paper(frame: pd.DataFrame, numbers: dict, keys: dict | None = None, column: str = "paper") -> pd.DataFrame:
    """``frame`` with the paper's number of each row's metric and interpreter in ``column``
    (``keys``: our metric -> the paper's key; NaN where the paper has none)."""
    keys = keys or {}
    return frame.assign(**{column: [numbers.get(keys.get(m, m), {}).get(i, NAN)
                                    for m, i in zip(frame["metric"], frame["interpreter"])]})


def table7(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 7 (random patch target): Δb and Δt of ADV2 (``l1_benign``, ``l1_target``, over
    successful attacks) with their intervals per victim x interpreter, beside the paper's under
    both readings of its extracted text (``paper_A``, ``paper_B``;
    :data:`adv2lib.paper_numbers.TABLE7` ``readings``)."""
    est = estimates(_checked(rows)[rows["attack"] == "adv2"], ["victim", "interpreter"], list(TABLE7_KEYS))
    for name, numbers in paper.TABLE7["readings"].items():
        est = _paper(est, numbers, TABLE7_KEYS, f"paper_{name}")
    return _sorted(est, ["victim", "interpreter"])


def show_table7(rows: pd.DataFrame):
    """:func:`table7`: rows interpreter x Δb/Δt; the paper under both readings, then ours per victim."""
    extra = {f"paper_{k}": f"paper, reading {k}" for k in paper.TABLE7["readings"]}
    t = _sorted(table7(rows), ["interpreter"])
    return _styler(_text(t, ["interpreter", "metric"], ["victim"], extra, TABLE7_LABELS, "ours, "))


def table7_readings(rows: pd.DataFrame) -> pd.DataFrame:
    """Which comparisons depend on the reading of Table 7: for the interpreters whose cells differ
    between the readings (CAM and MASK), per victim x metric x ``reading``: our estimate with its
    interval, the paper's value in that reading (``paper``), whether it lies in our interval
    (``inside``) and whether the paper's own claim Δt < Δb holds for that interpreter in that
    reading (``paper_claim``). GRAD and RTS read the same in both."""
    readings = paper.TABLE7["readings"]
    differ = [i for i in INTERPRETERS if any(readings["A"][k][i] != readings["B"][k][i] for k in TABLE7_KEYS.values())]
    ours = table7(rows)
    ours = ours[ours["interpreter"].isin(differ)].drop(columns=[f"paper_{k}" for k in readings])
    parts = []
    for name, numbers in readings.items():
        part = _paper(ours, numbers, TABLE7_KEYS).assign(reading=name)
        part["inside"] = (part["lo"] <= part["paper"]) & (part["paper"] <= part["hi"])
        part["paper_claim"] = [numbers["delta_t"][i] < numbers["delta_b"][i] for i in part["interpreter"]]
        parts.append(part)
    return _sorted(pd.concat(parts, ignore_index=True), ["victim", "interpreter"])


def show_table7_readings(rows: pd.DataFrame):
    """:func:`table7_readings` for a reader: one row per victim, interpreter, metric and reading."""
    t = table7_readings(rows)
    out = pd.DataFrame({
        "victim": t["victim"].map(present.label), "interpreter": t["interpreter"].map(present.label),
        "metric": t["metric"].map(TABLE7_LABELS), "reading": t["reading"],
        "ours": [present.interval_text(*v) for v in zip(t["estimate"], t["lo"], t["hi"])],
        "paper": t["paper"].map("{:.2f}".format),
        "paper inside our 95% interval": t["inside"].map({True: "yes", False: "no"}),
        "paper's Δt < Δb in this reading": t["paper_claim"].map({True: "yes", False: "no"})})
    return _styler(out)


def table8(rows: pd.DataFrame, metrics=("asr", "mc")) -> pd.DataFrame:
    """Table 8 (random class target): ASR and MC of ADV2 (or ``metrics``) with their intervals per
    victim x interpreter, beside the paper's (``paper``; NaN for a metric it does not report)."""
    est = estimates(_checked(rows)[rows["attack"] == "adv2"], ["victim", "interpreter"], list(metrics))
    return _sorted(_paper(est, paper.TABLE8), ["victim", "interpreter"])


def show_table8(rows: pd.DataFrame, metrics=("asr", "mc")):
    """:func:`table8`: rows interpreter x metric; the paper, then ours per victim."""
    t = _sorted(table8(rows, metrics), ["interpreter"])
    return _styler(_text(t, ["interpreter", "metric"], ["victim"], {"paper": PAPER_ROW}, prefix="ours, "))


# --------------------------------------------------------------------------- transferability
def transfer_table(rows: pd.DataFrame, metric: str = "l1_benign") -> pd.DataFrame:
    """The transfer matrix with a 95% interval per entry: mean ``metric`` (L1 of the explaining
    interpreter's map to its benign map, over successful attacks) per victim x source (``attack``
    and, for ADV2, ``source_interpreter``, the interpreter it was crafted against; PGD last) x
    ``interpreter`` (the one explaining)."""
    est = estimates(_checked(rows, ("victim", "interpreter", "attack", "source_interpreter")),
                    ["victim", "attack", "source_interpreter", "interpreter"], [metric])
    return _sorted(est, ["victim", "attack", "source_interpreter", "interpreter"], {"attack": ("adv2", "pgd")})


def _built_against(frame: pd.DataFrame) -> pd.Series:
    """Each row's source as the paper's Table 9 names it: the interpreter ADV2 attacked, or ``pgd``."""
    return frame["source_interpreter"].where(frame["attack"] != "pgd", "pgd")


def transfer_matrices(frame: pd.DataFrame, value: str = "estimate") -> dict:
    """Per victim, the source x interpreter matrix of ``value`` (``estimate``, ``lo``, ``hi`` or
    ``n``) of :func:`transfer_table`; ``frame`` is the transfer experiment's rows or that table.
    Rows: the interpreters ADV2 attacked, then ``pgd``; columns: the interpreters explaining."""
    est = frame if "estimate" in frame.columns else transfer_table(frame)
    est = est.assign(built_against=_built_against(est))
    out = {}
    for v in victims_in(est):
        sub = est[est["victim"] == v]
        m = sub.pivot_table(index="built_against", columns="interpreter", values=value, aggfunc="first", sort=False)
        sources, interps = list(dict.fromkeys(sub["built_against"])), list(dict.fromkeys(sub["interpreter"]))
        out[v] = m.reindex(index=sources, columns=interps)
    return out


def table9(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 9: :func:`transfer_table` with the paper's ResNet-50 entry of each source x
    interpreter beside ours (``paper``, as :data:`adv2lib.paper_numbers.TABLE9` stores it)."""
    est = transfer_table(rows)
    values = paper.TABLE9["values"]
    return est.assign(paper=[values.get(s, {}).get(i, NAN) for s, i in zip(_built_against(est), est["interpreter"])])


def show_table9(rows: pd.DataFrame):
    """:func:`table9`: rows = the source (built against an interpreter, or PGD) and whose number
    (the paper's, ours per victim); columns = the interpreter explaining."""
    t = table9(rows).assign(built_against=_built_against)
    records: dict = {}
    for r in t.to_dict("records"):
        built = present.label(r["built_against"])
        who = [(PAPER_ROW, "–" if not np.isfinite(r["paper"]) else f"{r['paper']:.2f}"),
               (f"ours, {present.label(r['victim'])}", present.interval_text(r["estimate"], r["lo"], r["hi"]))]
        for name, text in who:
            row = records.setdefault((built, name), {"built against": built, "numbers": name})
            row[present.label(r["interpreter"])] = text
    frame = pd.DataFrame(list(records.values()))
    frame["_paper"] = frame["numbers"] != PAPER_ROW
    order = list(dict.fromkeys(frame["built against"]))
    frame["_rank"] = frame["built against"].map(order.index)
    frame = frame.sort_values(["_rank", "_paper"], kind="stable").drop(columns=["_rank", "_paper"])
    frame = frame.reset_index(drop=True)
    return _styler(frame.fillna("–"))


# --------------------------------------------------------------------------- ratios and confidences
def l1_ratios(rows: pd.DataFrame) -> pd.DataFrame:
    """ADV2's mean L1 to the benign map over PGD's on the same images (both successful), with its
    paired bootstrap interval, per victim x interpreter; beside it the paper's Table 9 diagonal
    over its PGD row (ResNet-50; the paper's main L1 table was not recovered) under both
    readings of its CAM and MASK cells (``paper_A``, ``paper_B``: :func:`table9_values`)."""
    est = paired_ratio(_checked(rows), ["victim", "interpreter"])
    for name in ("A", "B"):
        ratios = paper_l1_ratios(name)
        est[f"paper_{name}"] = [ratios.get(i, NAN) for i in est["interpreter"]]
    return _sorted(est, ["victim", "interpreter"])


def show_l1_ratios(rows: pd.DataFrame):
    """:func:`l1_ratios`: rows interpreter; the paper's ratio under each reading, then ours per victim."""
    extra = {"paper_A": "paper, Table 9, reading A", "paper_B": "paper, Table 9, reading B"}
    t = _sorted(l1_ratios(rows), ["interpreter"])
    return _styler(_text(t, ["interpreter"], ["victim"], extra, prefix="ours, "))


def confidence_profile(rows: pd.DataFrame, threshold: float = 0.9) -> pd.DataFrame:
    """How confident the successful attacks are, per victim x interpreter x attack: MC (``mc``),
    the share of successful images with ``p(ct) >= threshold`` (``confident``, Wilson) and the
    lowest ``p(ct)`` among them (``min_confidence``, no interval), with the ``threshold``.

    The MC gap between ADV2 and PGD is mostly a matter of which iterate an attack returns (see
    the comparison chapter); this table shows where the mass of the confidences lies.
    """
    out = []
    sel = _checked(rows)[rows["attack"].isin(ATTACKS)]
    for (v, i, a), group in sel.groupby(["victim", "interpreter", "attack"], sort=False):
        conf = group["confidence"][successful(group)].to_numpy(dtype=float)
        conf = conf[np.isfinite(conf)]
        low = stats.Interval(float(conf.min()), NAN, NAN, len(conf)) if len(conf) else stats.Interval(NAN, NAN, NAN, 0)
        for metric, iv in (("mc", stats.mean(conf)), ("confident", stats.rate(conf >= threshold)),
                           ("min_confidence", low)):
            out.append({"victim": v, "interpreter": i, "attack": a, "metric": metric, "estimate": iv.estimate,
                        "lo": iv.lo, "hi": iv.hi, "n": iv.n, "threshold": threshold})
    columns = ["victim", "interpreter", "attack", "metric", "estimate", "lo", "hi", "n", "threshold"]
    return _sorted(pd.DataFrame(out, columns=columns), ["victim", "interpreter", "attack"])


def show_confidence_profile(rows: pd.DataFrame, threshold: float = 0.9):
    """:func:`confidence_profile`: rows victim x interpreter x attack; MC, the share above the
    threshold, the lowest p(ct) and the successful images behind them."""
    labels = {"confident": f"share p(ct) ≥ {threshold:g}", "min_confidence": "min p(ct)"}
    return _styler(_text(confidence_profile(rows, threshold), ["victim", "interpreter", "attack"], ["metric"],
                         metric_labels=labels, formats={"confident": "{:.0%}"}, n="successful images"))


# --------------------------------------------------------------------------- times
def attack_times(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Seconds per attacked image as recorded when each attack ran, per experiment x victim x attack.

    Every row an experiment stores carries the wall and process-CPU seconds of the attack call that
    produced it, divided by the batch size (``seconds``, ``cpu_seconds``). Unlike a notebook's
    wall time, these do not shrink when a rerun finds the results in the store and only loads
    them. PGD rows are copies of the shared PGD run (one per interpreter and experiment), so PGD
    is counted once per victim, under the first experiment that has it. Experiments without an
    attack of their own (transfer) are skipped.
    """
    rows, pgd_seen = [], set()
    for name in [n for n in EXPERIMENT_NAMES if n in tables] + sorted(set(tables) - set(EXPERIMENT_NAMES)):
        ex = tables[name]
        if not {"attack", "interpreter", "seconds"} <= set(ex.columns):
            continue
        cpu = ex["cpu_seconds"] if "cpu_seconds" in ex else pd.Series(np.nan, index=ex.index)
        ex = ex.assign(cpu_seconds=cpu)
        for v in victims_in(ex):
            pgd = ex[(ex["victim"] == v) & (ex["attack"] == "pgd")].drop_duplicates("position")
            if len(pgd) and v not in pgd_seen:
                pgd_seen.add(v)
                rows.append(_time_row(name, v, "PGD", pgd))
            for i in INTERPRETERS:
                adv = ex[(ex["victim"] == v) & (ex["attack"] == "adv2") & (ex["interpreter"] == i)]
                if len(adv):
                    rows.append(_time_row(name, v, f"ADV2 vs {label(i)}", adv))
    columns = ["experiment", "victim", "attack", "images", "wall s / image", "CPU s / image", "wall min (total)"]
    return pd.DataFrame(rows, columns=columns)


def _time_row(experiment: str, victim: str, attack: str, rows: pd.DataFrame) -> dict:
    return {"experiment": experiment, "victim": label(victim), "attack": attack, "images": len(rows),
            "wall s / image": float(rows["seconds"].mean()), "CPU s / image": float(rows["cpu_seconds"].mean()),
            "wall min (total)": float(rows["seconds"].sum()) / 60}


def build_speedup(current: dict, baseline: dict) -> pd.DataFrame:
    """Per-notebook wall and kernel-CPU seconds of this build beside an earlier build of the same
    scale (both as the runner's ``timings.json`` records them), with the speed-up of each.

    Only notebooks this build actually computed are compared: a notebook that found every result
    in the store (``computed_batches == 0`` where the baseline computed some) only loaded them,
    so its time is not the cost of its experiment; its speed-up is left empty. The last row
    sums the notebooks present in both builds.
    """
    before = {n["name"]: n for n in baseline.get("notebooks", [])}
    rows = []
    for n in current.get("notebooks", []):
        b = before.get(n["name"])
        if b is None:
            continue
        loaded_only = n.get("computed_batches") == 0 and (b.get("computed_batches") or 0) > 0
        rows.append({"notebook": n["name"], "before: wall s": b["seconds"], "now: wall s": n["seconds"],
                     "before: CPU s": b.get("cpu_seconds"), "now: CPU s": n.get("cpu_seconds"),
                     "speed-up (wall)": np.nan if loaded_only else b["seconds"] / n["seconds"]})
    frame = pd.DataFrame(rows, columns=["notebook", "before: wall s", "now: wall s", "before: CPU s", "now: CPU s",
                                        "speed-up (wall)"])
    if len(frame):
        total = frame.drop(columns=["notebook", "speed-up (wall)"]).sum(min_count=1)
        frame.loc[len(frame)] = {"notebook": "total", **total.to_dict(),
                                 "speed-up (wall)": total["before: wall s"] / total["now: wall s"]}
    return frame
