"""The comparison tables: the paper's Tables 7-9 beside ours, our PGD-vs-ADV2 table, and the
tables the comparison and reproduction chapters add (attack times, confidences, L1 ratios).

Every table is recomputed from the saved per-example rows with the experiments' own summary
(:func:`adv2lib.metrics.summarize`); the paper's numbers come from :mod:`adv2lib.paper_numbers`.
Columns and rows follow the paper's order of interpreters and victims (:mod:`adv2lib.names`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paper_numbers as paper
from ..names import INTERPRETERS, VICTIMS, label
from .files import EXPERIMENT_NAMES

__all__ = ["PAPER_ROW", "summarize_examples", "victims_in", "cell", "table7", "table7_readings", "table8", "table9",
           "transfer_matrices", "main_table", "attack_times", "confidence_profile", "l1_ratios"]

#: How the tables name the paper's rows.
PAPER_ROW = "paper (ImageNet, ResNet-50)"


def summarize_examples(examples: pd.DataFrame) -> pd.DataFrame:
    """Per-group ASR, MC, mean L1 and mean IoU (:func:`adv2lib.metrics.summarize`), grouped by
    (victim, interpreter, attack), or (victim, source, target) for transfer rows."""
    from ..metrics import summarize

    df = examples.copy()
    if "confidence" not in df:
        df["confidence"] = np.nan
    keep = [c for c in df.columns if not (c.startswith("iou_") and not c.endswith("_mean"))]
    by = ("victim", "source", "target") if "source" in df.columns else ("victim", "interpreter", "attack")
    return summarize(df[keep], by=by)


def victims_in(frame: pd.DataFrame) -> list:
    """The victims of ``frame``: the paper's two in their order, then any other, sorted."""
    present = set(frame["victim"])
    return [v for v in VICTIMS if v in present] + sorted(present - set(VICTIMS))


def cell(summary: pd.DataFrame, victim: str, interpreter: str, attack: str, column: str) -> float:
    """One value of a summary (``nan`` when that victim x interpreter x attack is absent)."""
    sel = summary[(summary["victim"] == victim) & (summary["interpreter"] == interpreter)
                  & (summary["attack"] == attack)]
    return float(sel[column].iloc[0]) if len(sel) else float("nan")


def _ours(victim: str) -> str:
    return f"ours ({label(victim)})"


def _wide(rows: list[dict]) -> pd.DataFrame:
    """Rows indexed by (metric, source), one column per interpreter present, in paper order."""
    table = pd.DataFrame(rows).set_index(["metric", "source"])
    return table[[label(i) for i in INTERPRETERS if label(i) in table.columns]]


def _paper_beside_ours(examples: pd.DataFrame, numbers: dict, metrics) -> pd.DataFrame:
    """Per metric ``(row label, key in the paper's table, summary column)``: the paper's row, then
    ours for each victim (ADV2)."""
    s = summarize_examples(examples)
    rows = []
    for metric, key, column in metrics:
        rows.append({"metric": metric, "source": PAPER_ROW, **{label(i): numbers[key][i] for i in INTERPRETERS}})
        for v in victims_in(s):
            rows.append({"metric": metric, "source": _ours(v),
                         **{label(i): cell(s, v, i, "adv2", column) for i in INTERPRETERS}})
    return _wide(rows)


def table7(patch_examples: pd.DataFrame) -> pd.DataFrame:
    """Table 7: Δb and Δt of ADV2 (random patch target): the paper under both readings of its
    extracted text (:data:`adv2lib.paper_numbers.TABLE7` ``readings``), then ours per victim."""
    s = summarize_examples(patch_examples)
    rows = []
    for metric, key, column in (("Δb (to the benign map)", "delta_b", "l1_benign"),
                                ("Δt (to the target)", "delta_t", "l1_target")):
        for name, numbers in paper.TABLE7["readings"].items():
            rows.append({"metric": metric, "source": f"{PAPER_ROW}, reading {name}",
                         **{label(i): numbers[key][i] for i in INTERPRETERS}})
        for v in victims_in(s):
            rows.append({"metric": metric, "source": _ours(v),
                         **{label(i): cell(s, v, i, "adv2", column) for i in INTERPRETERS}})
    return _wide(rows)


def table7_readings(patch_examples: pd.DataFrame) -> str:
    """Markdown: which conclusions depend on the reading of Table 7. The paper's own claim (Δt
    below Δb for every interpreter) is checked under each reading, and for each of our CAM and
    MASK cells, the reading whose paper value it is nearer to."""
    readings = paper.TABLE7["readings"]
    claim = {name: all(r["delta_t"][i] < r["delta_b"][i] for i in INTERPRETERS) for name, r in readings.items()}
    lines = [f"- The paper's claim Δt < Δb for every interpreter holds in reading A: {'yes' if claim['A'] else 'no'}; "
             f"in reading B: {'yes' if claim['B'] else 'no'}. "
             + ("The verdict on the patch claim below does not depend on the reading (it compares our Δt with our "
                "Δb)." if claim["A"] == claim["B"] else "The paper's own claim depends on the reading.")]
    s = summarize_examples(patch_examples)
    for v in victims_in(s):
        for i in ("cam", "mask"):
            parts = []
            for key, column, sym in (("delta_b", "l1_benign", "Δb"), ("delta_t", "l1_target", "Δt")):
                ours = cell(s, v, i, "adv2", column)
                if not np.isfinite(ours):
                    continue
                a, b = readings["A"][key][i], readings["B"][key][i]
                nearer = "A" if abs(ours - a) < abs(ours - b) else "B" if abs(ours - b) < abs(ours - a) else "neither"
                parts.append(f"{sym} {ours:.3f} (paper A {a:.2f}, B {b:.2f}: nearer {nearer})")
            if parts:
                lines.append(f"- {label(v)}/{label(i)}: " + "; ".join(parts) + ".")
    lines.append("- GRAD and RTS are the same in both readings. Only statements that compare our CAM or MASK cell "
                 "with the paper's value depend on the reading; no verdict of this chapter does, since every "
                 "criterion compares our own numbers with each other.")
    return "\n".join(lines)


def table8(random_class_examples: pd.DataFrame) -> pd.DataFrame:
    """Table 8: ASR and MC of ADV2 (random class target), paper beside ours."""
    return _paper_beside_ours(random_class_examples, paper.TABLE8, (("ASR", "asr", "asr"), ("MC", "mc", "mc")))


def transfer_matrices(transfer_examples: pd.DataFrame) -> dict:
    """Per victim, the source x target matrix of mean L1 to the benign map (successful inputs)."""
    from ..metrics import transfer_matrix

    return {v: transfer_matrix(transfer_examples[transfer_examples["victim"] == v], "l1_benign")
            for v in victims_in(transfer_examples)}


def table9(transfer_examples: pd.DataFrame) -> pd.DataFrame:
    """Table 9: rows = (source, who), columns = target interpreter; the paper's ResNet-50
    entries beside ours for each victim."""
    mats = transfer_matrices(transfer_examples)
    rows = []
    for src in paper.TABLE9["rows"]:
        rows.append({"metric": f"source: {label(src)}", "source": PAPER_ROW,
                     **{label(t): paper.TABLE9["values"][src][t] for t in paper.TABLE9["columns"]}})
        for v, m in mats.items():
            rows.append({"metric": f"source: {label(src)}", "source": _ours(v),
                         **{label(t): (float(m.loc[src, t]) if src in m.index and t in m.columns else np.nan)
                            for t in paper.TABLE9["columns"]}})
    table = pd.DataFrame(rows).set_index(["metric", "source"])
    table.index.names = ["row", "source"]
    return table


def main_table(main_examples: pd.DataFrame) -> pd.DataFrame:
    """Our PGD-vs-ADV2 table: ASR, MC, L1 to the benign map and mean IoU, per victim x attack
    (rows) and interpreter (columns)."""
    s = summarize_examples(main_examples)
    rows = []
    for metric, col in (("ASR", "asr"), ("MC", "mc"), ("L1 to benign map", "l1_benign"),
                        ("IoU with benign map (mean over k)", "iou_benign_mean")):
        for v in victims_in(s):
            for a in ("pgd", "adv2"):
                rows.append({"metric": metric, "source": f"{label(a)}, {label(v)}",
                             **{label(i): cell(s, v, i, a, col) for i in INTERPRETERS}})
    return _wide(rows)


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


def confidence_profile(examples: pd.DataFrame, threshold: float = 0.9) -> pd.DataFrame:
    """How confident the successful attacks are, per victim x interpreter x attack: MC, the share
    of successful images with ``p(ct) >= threshold`` and the lowest ``p(ct)`` among them.

    The MC gap between ADV2 and PGD is mostly a matter of which iterate an attack returns (see
    the comparison chapter); this table shows where the mass of the confidences lies.
    """
    ok = examples[examples["success"].astype(bool)]
    rows = []
    for v in victims_in(examples):
        for i in INTERPRETERS:
            for a in ("pgd", "adv2"):
                sel = ok[(ok["victim"] == v) & (ok["interpreter"] == i) & (ok["attack"] == a)]["confidence"]
                if len(sel):
                    rows.append({"victim": label(v), "interpreter": label(i), "attack": label(a),
                                 "successful": len(sel), "MC": float(sel.mean()),
                                 f"share p(ct) >= {threshold:g}": float((sel >= threshold).mean()),
                                 "min p(ct)": float(sel.min())})
    return pd.DataFrame(rows)


def l1_ratios(main_examples: pd.DataFrame) -> pd.DataFrame:
    """Mean L1 of ADV2 maps to the benign map divided by PGD's, per interpreter (rows): the paper's
    (its Table 9 diagonal over its PGD row, ResNet-50; the paper's main L1 table was not
    recovered) beside ours for each victim (main experiment, successful attacks)."""
    s = summarize_examples(main_examples)
    t9 = paper.TABLE9["values"]
    rows = []
    for i in INTERPRETERS:
        row = {"interpreter": label(i), PAPER_ROW + ", Table 9": t9[i][i] / t9["pgd"][i]}
        for v in victims_in(s):
            row[_ours(v)] = cell(s, v, i, "adv2", "l1_benign") / cell(s, v, i, "pgd", "l1_benign")
        rows.append(row)
    return pd.DataFrame(rows).set_index("interpreter")


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
