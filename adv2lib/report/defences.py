"""The paper's second half: disparate attack robustness, ensemble interpretation and AID, as
tables, sentences and the cells the comparison chapter judges.

==============================  ============================================================
:func:`robustness_table`        ADV2 vs PGD at every L-inf and iteration budget
:func:`robust_budgets`          per interpreter, the smallest budget at which ADV2 keeps its
                                map within :data:`ROBUST_FRACTION` of PGD's distance
:func:`detection_table`         the ensemble detector's rates at 5 % false positives and AUCs
:func:`adaptive_table`          adaptive ADV2 against the ensemble beside single-interpreter ADV2
:func:`aid_table`               ADV2 against the original and the AID-hardened RTS
:func:`deletion_table`          the deletion test of both RTS networks
:func:`aid_cards`               the hardened networks' model cards (faithfulness before/after)
:func:`disparate_cells`,        the cells of the claims "disparate robustness", "ensemble",
:func:`ensemble_cells`,         "adaptive attack" and "AID" (:mod:`.claims`)
:func:`adaptive_cells`,
:func:`aid_cells`
==============================  ============================================================

The thresholds below were fixed before the full runs; each is stated where it is used.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..names import INTERPRETERS, label
from .tables import victims_in

__all__ = ["ROBUST_FRACTION", "ROBUST_ASR", "PRIMARY_SCORE", "DETECTED", "DISTANCE_RAISE", "AID_RATIO_RISE",
           "AID_ASR_DROP", "DISPARATE_SPREAD", "preset_eps_255", "robustness_table", "robust_budgets",
           "robustness_sentences", "detection_table", "adaptive_table", "adaptive_sentences", "aid_table",
           "deletion_table", "aid_cards", "aid_sentences", "disparate_cells", "ensemble_cells", "adaptive_cells",
           "aid_cells"]

#: ADV2 "keeps its map near the benign map" at a budget when its mean L1 is at most this fraction
#: of PGD's at the preset budget (the paper's "ADV2 at most half of PGD" reading of its L1 claim)
#: and its ASR is at least :data:`ROBUST_ASR`.
ROBUST_FRACTION = 0.5
ROBUST_ASR = 0.9
#: "The interpreters differ widely": the largest L1 ratio to PGD at the preset budget is at least
#: this multiple of the smallest, or the interpreters' smallest robust L-inf budgets lie two or
#: more grid steps apart ("never within the grid" counting as one step beyond its end).
DISPARATE_SPREAD = 1.5
#: The detector score the verdicts read (fixed in advance; the chapter shows both).
PRIMARY_SCORE = "distance"
#: A source counts as exposed by the ensemble when at least this share of its successful inputs
#: is flagged at 5 % false positives.
DETECTED = 0.5
#: The adaptive attack pays in distance when, on some attacked member, its mean L1 to the benign
#: map is at least this multiple of the single-interpreter ADV2's on the same images.
DISTANCE_RAISE = 1.25
#: AID makes ADV2 harder when, against the hardened RTS, the L1 ratio to PGD rises by at least
#: this much (absolute) or the ASR drops by at least :data:`AID_ASR_DROP`.
AID_RATIO_RISE = 0.1
AID_ASR_DROP = 0.1


def preset_eps_255(profile: str = "embedded") -> float:
    """The preset's L-inf budget in units of 1/255 (embedded 26)."""
    from ..attacks import preset_for

    return round(preset_for(profile, "pgd").eps * 255, 4)


def _summary(examples, by):
    from ..metrics import summarize

    return summarize(examples, by=by)


# =========================================================================== robustness

def robustness_table(examples: pd.DataFrame, profile: str = "embedded") -> pd.DataFrame:
    """The robustness experiment per victim x interpreter x budget: the L-inf sweep (preset
    iterations) then the iteration sweep (preset L-inf budget). Columns: ``sweep``, ``eps (/255)``,
    ``iterations (x preset)``, ``stage-2 iterations``, ADV2's ``ASR``, ``MC``, ``L1 to benign``,
    PGD's ``PGD ASR`` and ``PGD L1`` at the same L-inf budget, and ``L1 / PGD``."""
    s = _summary(examples, ("victim", "interpreter", "attack", "eps_255", "budget"))
    steps = examples.groupby(["victim", "interpreter", "eps_255", "budget"])["stage2_steps"].first()
    preset = preset_eps_255(profile)
    rows = []
    for v in victims_in(s):
        for i in [i for i in INTERPRETERS if i in set(s["interpreter"])]:
            sub = s[(s["victim"] == v) & (s["interpreter"] == i)]
            pgd = sub[sub["attack"] == "pgd"].set_index("eps_255")
            adv = sub[sub["attack"] != "pgd"]
            pgd_at_preset = float(pgd.loc[preset, "l1_benign"]) if preset in pgd.index else float("nan")
            for sweep, part in (("L-inf budget", adv[adv["budget"] == 1].sort_values("eps_255")),
                                ("iterations", adv[np.isclose(adv["eps_255"], preset)].sort_values("budget"))):
                for _, r in part.iterrows():
                    e = r["eps_255"]
                    p_l1 = float(pgd.loc[e, "l1_benign"]) if e in pgd.index else float("nan")
                    ref = p_l1 if sweep == "L-inf budget" else pgd_at_preset
                    rows.append({"victim": label(v), "interpreter": label(i), "sweep": sweep, "eps (/255)": e,
                                 "iterations (x preset)": r["budget"],
                                 "stage-2 iterations": int(steps.get((v, i, e, r["budget"]), 0)),
                                 "ASR": r["asr"], "MC": r["mc"], "L1 to benign": r["l1_benign"],
                                 "PGD ASR": float(pgd.loc[e, "asr"]) if e in pgd.index else float("nan"),
                                 "PGD L1": ref, "L1 / PGD": r["l1_benign"] / ref if ref > 0 else float("nan"),
                                 "_victim": v, "_interpreter": i})
    return pd.DataFrame(rows)


def robust_budgets(table: pd.DataFrame, profile: str = "embedded") -> pd.DataFrame:
    """Per victim x interpreter of :func:`robustness_table`: the distance ``δ`` (``ROBUST_FRACTION``
    x PGD's L1 at the preset budget), the smallest L-inf budget and the smallest iteration budget
    at which ADV2 succeeds on at least ``ROBUST_ASR`` of the images with mean L1 at most ``δ``
    (NaN: none in the grid), and ADV2's ratio to PGD at the preset budget."""
    preset = preset_eps_255(profile)
    rows = []
    for (v, i), sub in table.groupby(["_victim", "_interpreter"], sort=False):
        eps = sub[sub["sweep"] == "L-inf budget"]
        its = sub[sub["sweep"] == "iterations"]
        at = eps[np.isclose(eps["eps (/255)"], preset)]
        pgd_l1 = float(at["PGD L1"].iloc[0]) if len(at) else float("nan")
        delta = ROBUST_FRACTION * pgd_l1

        def smallest(part, col):
            ok = part[(part["ASR"] >= ROBUST_ASR) & (part["L1 to benign"] <= delta)]
            return float(ok[col].min()) if len(ok) else float("nan")

        rows.append({"victim": label(v), "interpreter": label(i), "δ (L1)": delta,
                     "smallest eps (/255)": smallest(eps, "eps (/255)"),
                     "smallest iterations (x preset)": smallest(its, "iterations (x preset)"),
                     "L1 / PGD at the preset": float(at["L1 / PGD"].iloc[0]) if len(at) else float("nan"),
                     "grid (/255)": ", ".join(f"{e:g}" for e in sorted(eps["eps (/255)"])),
                     "_victim": v, "_interpreter": i})
    return pd.DataFrame(rows)


def _never(value) -> bool:
    return value is None or not np.isfinite(value)


def robustness_sentences(budgets: pd.DataFrame) -> str:
    """One Markdown line per victim: each interpreter's smallest robust budgets, in words."""
    lines = []
    for v, sub in budgets.groupby("victim", sort=False):
        parts = []
        for _, r in sub.iterrows():
            e = r["smallest eps (/255)"]
            f = r["smallest iterations (x preset)"]
            parts.append(f"{r['interpreter']} "
                         + ("never within the grid" if _never(e) else f"from {e:g}/255")
                         + (", and no iteration budget reaches it at the preset's L-inf budget" if _never(f)
                            else f", from {f:g}x the iterations")
                         + f" (ratio to PGD at the preset {r['L1 / PGD at the preset']:.2f})")
        lines.append(f"- **{v}**: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def disparate_cells(examples: pd.DataFrame, profile: str = "embedded"):
    """The claim "the interpreters differ widely in how hard they are to attack", per victim:
    ``[(victim, passed, text)]`` by the rule of :data:`DISPARATE_SPREAD`."""
    budgets = robust_budgets(robustness_table(examples, profile), profile)
    out = []
    for v, sub in budgets.groupby("_victim", sort=False):
        ratios = sub.set_index("interpreter")["L1 / PGD at the preset"].dropna()
        if len(ratios) < 2:
            continue
        grid = sorted(float(x) for x in sub["grid (/255)"].iloc[0].split(", "))
        steps = [len(grid) if _never(e) else grid.index(min(grid, key=lambda g: abs(g - e)))
                 for e in sub["smallest eps (/255)"]]
        spread = ratios.max() / ratios.min() if ratios.min() > 0 else float("inf")
        passed = spread >= DISPARATE_SPREAD or (max(steps) - min(steps) >= 2)
        eps_txt = ", ".join(f"{i} {'never' if _never(e) else f'{e:g}/255'}"
                            for i, e in zip(sub["interpreter"], sub["smallest eps (/255)"]))
        out.append((label(v), bool(passed), f"L1/PGD at the preset {ratios.min():.2f}-{ratios.max():.2f} "
                                     f"(spread x{spread:.2f}); smallest robust budget {eps_txt}"))
    return out


# =========================================================================== ensemble

def _detections(examples):
    return examples[examples.get("kind", pd.Series(index=examples.index, dtype=object)) == "detection"]


def _source_label(source: str) -> str:
    if source.startswith("adv2 "):
        return f"ADV2 vs {label(source[5:])}"
    return {"benign": "clean (evaluation)", "calibration": "clean (held out)", "pgd": "PGD",
            "adaptive": "adaptive ADV2"}.get(source, source)


def detection_table(examples: pd.DataFrame) -> pd.DataFrame:
    """The ensemble detector per victim x ensemble x score x source: inputs, successful attacks,
    share flagged at the threshold (clean rows: the false-positive rate) and AUC against the clean
    evaluation images (:func:`adv2lib.ensemble.detection_summary`)."""
    from ..ensemble import detection_summary

    det = _detections(examples)
    if det.empty:
        return pd.DataFrame()
    s = detection_summary(det)
    order = {"calibration": 0, "benign": 1, "pgd": 2, "adaptive": 9}
    s["_order"] = [order.get(src, 3 + (INTERPRETERS.index(src[5:]) if src[5:] in INTERPRETERS else 4) / 10)
                   for src in s["source"]]
    s = s.sort_values(["victim", "ensemble", "score_kind", "_order"])
    return pd.DataFrame({"victim": s["victim"].map(label), "ensemble": s["ensemble"], "score": s["score_kind"],
                         "inputs": s["source"].map(_source_label), "n": s["n_successful"],
                         "flagged at 5% FPR": s["rate"], "AUC": s["auc"], "_source": s["source"],
                         "_victim": s["victim"]}).reset_index(drop=True)


def adaptive_table(examples: pd.DataFrame) -> pd.DataFrame:
    """Adaptive ADV2 against the ensemble beside single-interpreter ADV2 on the same images, per
    victim: ASR, MC, each interpreter's mean L1 to its benign map (single attacks: their own
    interpreter's) over successful attacks, wall and CPU seconds per image."""
    kinds = examples.get("kind", pd.Series(index=examples.index, dtype=object))
    att = examples[kinds.isin(["adaptive", "single"])]
    rows = []
    for v in victims_in(att):
        sub = att[att["victim"] == v]
        ada = sub[sub["kind"] == "adaptive"]
        if ada.empty:
            continue
        ok = ada["success"].astype(bool)
        row = {"victim": label(v), "attack": f"adaptive ADV2 ({' + '.join(label(m) for m in ada['members'].iloc[0].split('+'))})",
               "n": len(ada), "ASR": ok.mean(), "MC": ada.loc[ok, "confidence"].mean()}
        for i in INTERPRETERS:
            col = f"l1_benign_{i}"
            if col in ada:
                row[f"L1 {label(i)}"] = ada.loc[ok, col].mean()
        row.update({"wall s / image": ada["seconds"].mean(), "CPU s / image": ada["cpu_seconds"].mean(),
                    "_victim": v, "_kind": "adaptive"})
        rows.append(row)
        for i in [i for i in INTERPRETERS if i in set(sub["interpreter"])]:
            one = sub[(sub["kind"] == "single") & (sub["interpreter"] == i)]
            if one.empty:
                continue
            ok1 = one["success"].astype(bool)
            rows.append({"victim": label(v), "attack": f"ADV2 vs {label(i)} alone", "n": len(one), "ASR": ok1.mean(),
                         "MC": one.loc[ok1, "confidence"].mean(), f"L1 {label(i)}": one.loc[ok1, "l1_benign"].mean(),
                         "wall s / image": one["seconds"].mean(), "CPU s / image": one["cpu_seconds"].mean(),
                         "_victim": v, "_kind": f"single {i}"})
    return pd.DataFrame(rows)


def _adaptive_numbers(table: pd.DataFrame, detection: pd.DataFrame, v: str) -> dict | None:
    sub = table[table["_victim"] == v]
    ada = sub[sub["_kind"] == "adaptive"]
    if ada.empty:
        return None
    ada = ada.iloc[0]
    attacked = {i for i in INTERPRETERS if label(i) in ada["attack"]}
    raises, costs = {}, []
    for _, r in sub[sub["_kind"] != "adaptive"].iterrows():
        i = r["_kind"].split(" ", 1)[1]
        if i not in attacked:          # an interpreter the adaptive attack leaves out (MASK): not its cost
            continue
        col = f"L1 {label(i)}"
        costs.append(r["wall s / image"])
        if col in ada and np.isfinite(ada[col]) and r[col] > 0:
            raises[i] = ada[col] / r[col]
    det = detection[(detection["_victim"] == v) & (detection["ensemble"] == "all")
                    & (detection["score"] == PRIMARY_SCORE) & (detection["_source"] == "adaptive")]
    return {"raises": raises, "cost": ada["wall s / image"] / np.mean(costs) if costs else float("nan"),
            "cost_sum": ada["wall s / image"] / np.sum(costs) if costs else float("nan"),
            "detected": float(det["flagged at 5% FPR"].iloc[0]) if len(det) else float("nan"),
            "asr": ada["ASR"], "mc": ada["MC"]}


def adaptive_sentences(table: pd.DataFrame, detection: pd.DataFrame) -> str:
    """Per victim, what the adaptive attack paid: distance (ratio to the single attacks' L1 per
    attacked member), detection by the full ensemble, and time."""
    lines = []
    for v in dict.fromkeys(table["_victim"]) if len(table) else []:
        n = _adaptive_numbers(table, detection, v)
        if n is None:
            continue
        raise_txt = ", ".join(f"{label(i)} x{r:.2f}" for i, r in n["raises"].items()) or "–"
        lines.append(f"- **{label(v)}**: ASR {n['asr']:.0%}, MC {n['mc']:.3f}; L1 to the benign map of each attacked "
                     f"interpreter relative to the attack on that interpreter alone (same images): {raise_txt}; "
                     f"flagged by the full ensemble ({PRIMARY_SCORE} score) on {n['detected']:.0%} of its successful "
                     f"inputs; wall time per image {n['cost']:.1f}x the mean of those single attacks "
                     f"({n['cost_sum']:.2f}x their sum).")
    return "\n".join(lines)


def ensemble_cells(examples: pd.DataFrame):
    """The claim "an ensemble of interpreters exposes ADV2 inputs crafted against one of them":
    per victim x single-interpreter ADV2, flagged by the full ensemble (:data:`PRIMARY_SCORE`) on
    at least :data:`DETECTED` of the successful inputs at 5 % false positives."""
    det = detection_table(examples)
    out = []
    if det.empty:
        return out
    sub = det[(det["ensemble"] == "all") & (det["score"] == PRIMARY_SCORE) & det["_source"].str.startswith("adv2 ")]
    for _, r in sub.iterrows():
        out.append((f"{r['victim']}/{label(r['_source'][5:])}", bool(r["flagged at 5% FPR"] >= DETECTED),
                    f"flagged {r['flagged at 5% FPR']:.0%} (AUC {r['AUC']:.2f})"))
    return out


def adaptive_cells(examples: pd.DataFrame):
    """The claim "against the ensemble, the attacker pays in distance or detection": per victim,
    adaptive ADV2 is flagged on at least :data:`DETECTED` of its successful inputs, or its L1 to
    some attacked member's benign map is at least :data:`DISTANCE_RAISE` x the single attack's."""
    table, det = adaptive_table(examples), detection_table(examples)
    out = []
    for v in dict.fromkeys(table["_victim"]) if len(table) else []:
        n = _adaptive_numbers(table, det, v)
        if n is None:
            continue
        raised = max(n["raises"].values(), default=float("nan"))
        passed = (np.isfinite(n["detected"]) and n["detected"] >= DETECTED) or (np.isfinite(raised)
                                                                                and raised >= DISTANCE_RAISE)
        out.append((label(v), bool(passed), f"flagged {n['detected']:.0%}, largest L1 rise x{raised:.2f}, "
                                            f"time x{n['cost']:.1f} the mean single attack"))
    return out


# =========================================================================== AID

def aid_table(examples: pd.DataFrame) -> pd.DataFrame:
    """ADV2 against the original and the hardened RTS, per victim x RTS x iteration budget: ASR,
    MC, mean L1 to the benign map (of the RTS attacked), PGD's under the same RTS, their ratio,
    wall seconds per image."""
    att = examples[examples["attack"].isin(["adv2", "pgd"])]
    s = _summary(att, ("victim", "rts", "attack", "budget"))
    secs = att.groupby(["victim", "rts", "attack", "budget"])["seconds"].mean()
    rows = []
    for v in victims_in(s):
        for version in ("original", "AID"):
            sub = s[(s["victim"] == v) & (s["rts"] == version)]
            pgd = sub[sub["attack"] == "pgd"]
            p = float(pgd["l1_benign"].iloc[0]) if len(pgd) else float("nan")
            for _, r in sub[sub["attack"] == "adv2"].sort_values("budget").iterrows():
                rows.append({"victim": label(v), "RTS": version, "iterations (x preset)": r["budget"],
                             "ASR": r["asr"], "MC": r["mc"], "L1 to benign": r["l1_benign"], "PGD L1": p,
                             "L1 / PGD": r["l1_benign"] / p if p > 0 else float("nan"),
                             "IoU (mean over k)": r.get("iou_benign_mean", float("nan")),
                             "wall s / image": float(secs.get((v, version, "adv2", r["budget"]), float("nan"))),
                             "_victim": v})
    return pd.DataFrame(rows)


def deletion_table(examples: pd.DataFrame) -> pd.DataFrame:
    """The deletion test of the original and the hardened RTS on the clean images: mean class
    probability before deletion, after deleting the map's top 20 % and as many random pixels,
    the drops and the share of images where the map's deletion hurts more."""
    d = examples[examples["attack"] == "deletion"]
    rows = []
    for (v, version, rep), g in d.groupby(["victim", "rts", "replacement"], sort=False):
        rows.append({"victim": label(v), "RTS": version, "replacement": rep, "p clean": g["p_clean"].mean(),
                     "p after top 20%": g["p_top"].mean(), "p after random 20%": g["p_random"].mean(),
                     "drop (top)": (g["p_clean"] - g["p_top"]).mean(),
                     "drop (random)": (g["p_clean"] - g["p_random"]).mean(),
                     "top hurts more": (g["p_top"] < g["p_random"]).mean()})
    return pd.DataFrame(rows)


def aid_cards(profile: str = "embedded") -> pd.DataFrame:
    """The AID-hardened RTS networks' model cards: training time, the pool's attack success at its
    refreshes, and the masking faithfulness on clean test images before and after (preserved /
    destroyed accuracy, mean mask area)."""
    from .. import paths

    rows = []
    for path in sorted((paths.weights_dir() / profile).glob("rts_aid_*.json")):
        card = json.loads(path.read_text())
        refresh = [r["asr"] for r in card.get("pool_refreshes", [])]
        for when, ev in (("before", card["evaluation_before"]), ("after", card["evaluation"])):
            rows.append({"victim": label(card["victim"]), "RTS": "original" if when == "before" else "AID",
                         "preserved accuracy": ev["preserved_accuracy"],
                         "destroyed accuracy": ev["destroyed_accuracy"], "mean area": ev["mean_area"],
                         "mean area, other class": ev["mean_area_fake_class"],
                         "training s": card["training_seconds"] if when == "after" else float("nan"),
                         "pool ASR first / last": (f"{refresh[0]:.0%} / {refresh[-1]:.0%}"
                                                   if refresh and when == "after" else "–")})
    return pd.DataFrame(rows)


def aid_sentences(table: pd.DataFrame) -> str:
    """Per victim: ADV2's ratio to PGD and ASR against the original and the hardened RTS."""
    lines = []
    for v, sub in table.groupby("victim", sort=False):
        one = sub[sub["iterations (x preset)"] == 1].set_index("RTS")
        if not {"original", "AID"} <= set(one.index):
            continue
        o, a = one.loc["original"], one.loc["AID"]
        more = sub[(sub["RTS"] == "AID") & (sub["iterations (x preset)"] > 1)]
        tail = "" if more.empty else (f" With {more['iterations (x preset)'].max():g}x the iterations, ratio "
                                      f"{more.iloc[-1]['L1 / PGD']:.2f}, ASR {more.iloc[-1]['ASR']:.0%}.")
        lines.append(f"- **{v}**: L1 to the benign map / PGD's {o['L1 / PGD']:.2f} → {a['L1 / PGD']:.2f} "
                     f"({a['L1 / PGD'] - o['L1 / PGD']:+.2f}); ASR {o['ASR']:.0%} → {a['ASR']:.0%}; MC {o['MC']:.3f} → "
                     f"{a['MC']:.3f}; wall s / image {o['wall s / image']:.2f} → {a['wall s / image']:.2f}." + tail)
    return "\n".join(lines)


def aid_cells(examples: pd.DataFrame):
    """The claim "retraining the interpreter on ADV2 examples makes the attack harder", per victim:
    against the hardened RTS (preset budget), ADV2's L1 ratio to PGD rises by at least
    :data:`AID_RATIO_RISE` or its ASR drops by at least :data:`AID_ASR_DROP`."""
    table = aid_table(examples)
    out = []
    for v, sub in table.groupby("victim", sort=False) if len(table) else []:
        one = sub[sub["iterations (x preset)"] == 1].set_index("RTS")
        if not {"original", "AID"} <= set(one.index):
            continue
        o, a = one.loc["original"], one.loc["AID"]
        rise, drop = a["L1 / PGD"] - o["L1 / PGD"], o["ASR"] - a["ASR"]
        out.append((v, bool(rise >= AID_RATIO_RISE or drop >= AID_ASR_DROP),
                    f"L1/PGD {o['L1 / PGD']:.2f} → {a['L1 / PGD']:.2f}, ASR {o['ASR']:.0%} → {a['ASR']:.0%}"))
    return out
