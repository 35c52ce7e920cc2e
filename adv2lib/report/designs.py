"""The studies beside the defences: the ensemble detector's other designs and why interpreters
disagree less on ADV2 inputs (:mod:`adv2lib.studies.ensemble_designs`), the premise of AID
(:mod:`adv2lib.studies.aid_premise`) and AID's variants (:mod:`adv2lib.studies.aid_variants`).

Detector designs are judged exactly as the ensemble chapter judges its primary design
(:func:`.defences.ensemble_tests`: flagged share of the successful single-interpreter ADV2 inputs
against :data:`.defences.DETECTED`, read with its control, the same detector on PGD's inputs), so a
design's verdict can be set beside the primary's.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from ..names import INTERPRETERS, LABELS, VICTIMS
from . import defences, present
from .cells import Bar, cell_verdicts, claim_verdict, judge
from .estimates import estimates, paired_ratio

__all__ = ["designs", "design_label", "study_estimates", "study_verdicts", "design_line", "design_table",
           "disagreement_estimates", "toward_estimates", "toward_line", "disagreement_table", "toward_table", "PREMISE_BAR",
           "premise_estimates", "premise_tests", "premise_line", "premise_table", "variant_tests", "variant_estimates",
           "variant_line", "variant_table", "training_table"]

_ALL = "+".join(INTERPRETERS)
_INPUTS = {("clean", None): "clean", ("pgd", None): "PGD", ("adaptive", None): "adaptive ADV2",
           **{("adv2", i): f"ADV2 against {LABELS[i]}" for i in INTERPRETERS}}


def _with_design(rows: pd.DataFrame) -> pd.DataFrame:
    """The study's detection rows, their design (``members``) in the ``ensemble`` column the
    ensemble chapter's functions group by."""
    det = rows[rows["kind"] == "detection"] if "kind" in rows else rows.iloc[:0]
    return det.assign(ensemble=det["members"])


def designs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The designs of the study's rows, ``(members, score_kind)``, the primary first."""
    det = _with_design(rows)
    found = list(dict.fromkeys(zip(det["ensemble"], det["score_kind"])))
    return sorted(found, key=lambda d: (d != (_ALL, "distance"), d[0] != _ALL, -len(d[0]), d[0], d[1]))


def design_label(members: str, score: str) -> str:
    """``"every interpreter, max over pairs"``, ``"GRAD + CAM"``, ``"without MASK"``..."""
    names = members.split("+")
    scores = {"distance": "distance", "max_pair": "max over pairs", "logistic": "logistic combiner (trained on PGD)",
              "rank": "rank"}
    if members == _ALL:
        who = "every interpreter"
    elif len(names) == 2:
        who = " + ".join(LABELS.get(n, n) for n in names)
    else:
        who = "without " + ", ".join(LABELS.get(n, n) for n in INTERPRETERS if n not in names)
    return f"{who}, {scores.get(score, score)}" + (" (primary)" if (members, score) == (_ALL, "distance") else "")


def study_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`.defences.detection_estimates` of every design of the study (``ensemble`` = members)."""
    return defences.detection_estimates(_with_design(rows))


def study_verdicts(rows: pd.DataFrame, est: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claim "ensemble" judged by every design of the study, as :func:`.defences.design_verdicts`
    judges the record's: the verdict and the control per victim."""
    det = _with_design(rows)
    if det.empty:
        return pd.DataFrame()
    est = study_estimates(rows) if est is None else est
    out = []
    for members, score in designs(rows):
        tests = defences.ensemble_tests(det, members, score, est)
        if tests.empty:
            continue
        controls = [defences.control_test(est, v, members, score) for v in dict.fromkeys(tests["victim"])]
        out.append({"design": design_label(members, score), "primary": (members, score) == (_ALL, "distance"),
                    "verdict": claim_verdict(cell_verdicts(tests)["verdict"]),
                    "control (PGD flagged)": "; ".join(
                        f"{present.label(c['victim'])} {present.interval_text(c['estimate'], c['lo'], c['hi'], '{:.2f}')}"
                        f" {c['verdict']}" for c in controls if c)})
    return pd.DataFrame(out)


def design_line(ensemble_rows: pd.DataFrame, study_rows: pd.DataFrame | None) -> str:
    """Whether any alternative design (the record's and the study's) changes the primary's verdict."""
    record_line = defences.design_line(ensemble_rows)
    if study_rows is None or study_rows.empty:
        return record_line
    d = study_verdicts(study_rows)
    if d.empty or not d["primary"].any():
        return record_line
    primary = d[d["primary"]].iloc[0]["verdict"]
    others = d[~d["primary"]]
    changed = others[others["verdict"] != primary]
    return (record_line + f"; the {len(others)} designs of the {{doc}}`designs study <07b_ensemble_designs>` "
            + ("change nothing either" if changed.empty else
               "give: " + "; ".join(f"{r['design']} {r['verdict']}" for _, r in changed.iterrows())))


def design_table(rows: pd.DataFrame):
    """Per design and victim: AUC and flagged share of PGD (the control), of ADV2 against each
    interpreter and of the adaptive attack, each with its 95% interval, then the design's verdict."""
    est = study_estimates(rows)
    if est.empty:
        return defences._nothing()
    est = est[(est["split"] == "evaluation") & (est["attack"] != "clean")]
    verdicts = study_verdicts(rows, est).set_index("design")["verdict"]
    out = []
    for members, score in designs(rows):
        for v in present.in_order(est["victim"], VICTIMS):
            mine = est[(est["ensemble"] == members) & (est["score_kind"] == score) & (est["victim"] == v)]
            row = {"design": design_label(members, score), "victim": present.label(v)}
            for r in mine.itertuples():
                name = _INPUTS.get((r.attack, None if pd.isna(r.source_interpreter) else r.source_interpreter),
                                   r.attack)
                fmt = "{:.0%}" if r.metric == "flagged" else "{:.2f}"
                row[f"{name}: {'flagged' if r.metric == 'flagged' else 'AUC'}"] = present.interval_text(
                    r.estimate, r.lo, r.hi, fmt)
            row["verdict"] = verdicts.get(row["design"], "")
            out.append(row)
    return pd.DataFrame(out).style.hide(axis="index")


# --------------------------------------------------------------------------- why
def _why(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    sel = rows[rows["score_kind"] == kind] if "score_kind" in rows else rows.iloc[:0]
    if "kind" in sel:
        sel = sel[sel["kind"].isna()]
    return sel


def disagreement_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim, pair of interpreters and input (clean, PGD, ADV2 against each interpreter,
    adaptive): the mean L1 distance between the pair's maps over the successful inputs, with its
    95% interval (bootstrap)."""
    pairs = _why(rows, "pair")
    if pairs.empty:
        return pd.DataFrame()
    return estimates(pairs.rename(columns={"score": "pair_distance"}),
                     ["victim", "members", "attack", "source_interpreter"], ["pair_distance"])


def toward_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim and interpreter ``s``: the change, on the same images, of ``s``'s map's distance to
    the mean of the other maps from the clean image to ADV2 against ``s`` (``attacked``; negative:
    the attacked map moves toward the others) and to PGD (``pgd``, the reference), and the change
    of the mean distance between the *other* interpreters' maps (``others``), each a paired
    difference with its 95% interval."""
    member = _why(rows, "member")
    pairs = _why(rows, "pair")
    if member.empty:
        return pd.DataFrame()
    out = []
    clean = member[member["attack"] == "clean"]
    for s in present.in_order(member["interpreter"], INTERPRETERS):
        mine = member[member["interpreter"] == s]
        for what, a_rows in (("attacked", mine[(mine["attack"] == "adv2") & (mine["source_interpreter"] == s)]),
                             ("pgd", mine[mine["attack"] == "pgd"])):
            d = paired_ratio(a_rows, ["victim", "interpreter"], "score", a_rows=a_rows,
                             b_rows=clean[clean["interpreter"] == s].drop(columns=["source_interpreter"]),
                             kind="difference")
            out.append(d.assign(change=what))
        others = pairs[~pairs["members"].str.split("+").map(lambda m: s in m)] if len(pairs) else pairs
        if len(others):
            mean = (others.groupby(["victim", "attack", "source_interpreter", "position"], dropna=False)
                    .agg(score=("score", "mean"), success=("success", "first")).reset_index())
            a_rows = mean[(mean["attack"] == "adv2") & (mean["source_interpreter"] == s)].assign(interpreter=s)
            b_rows = mean[mean["attack"] == "clean"].drop(columns=["source_interpreter"])
            d = paired_ratio(a_rows, ["victim", "interpreter"], "score", a_rows=a_rows, b_rows=b_rows,
                             kind="difference")
            out.append(d.assign(change="others"))
    frame = pd.concat(out, ignore_index=True)
    return frame.assign(_v=frame["victim"].map({v: i for i, v in enumerate(VICTIMS)})).sort_values(
        "_v", kind="stable").drop(columns="_v").reset_index(drop=True)


def toward_line(rows: pd.DataFrame) -> str:
    """One sentence per victim from :func:`toward_estimates`: for which interpreters ADV2 (and PGD, the
    reference) moves the attacked map toward the others (the whole interval below 0), away from them
    (above 0), or neither at this n."""
    est = toward_estimates(rows)
    if est.empty:
        return ""
    words = {"attacked": "ADV2 against it", "pgd": "PGD"}
    out = []
    for v in present.in_order(est["victim"], VICTIMS):
        parts = []
        for change, who in words.items():
            mine = est[(est["victim"] == v) & (est["change"] == change)]
            groups = {"toward the others": mine[mine["hi"] < 0], "away from them": mine[mine["lo"] > 0],
                      "neither, at this n": mine[(mine["lo"] <= 0) & (mine["hi"] >= 0)]}
            said = "; ".join(f"{where}: {', '.join(present.label(i) for i in g['interpreter'])}"
                             for where, g in groups.items() if len(g))
            parts.append(f"{who} moves the map ({said})")
        out.append(f"{present.label(v)}: " + "; ".join(parts))
    return ". ".join(out) + "."


def disagreement_table(rows: pd.DataFrame):
    """:func:`disagreement_estimates` shown: one row per victim and pair, one column per input."""
    est = disagreement_estimates(rows)
    if est.empty:
        return defences._nothing()
    est = est.assign(input=[_INPUTS.get((a, None if pd.isna(s) else s), a)
                            for a, s in zip(est["attack"], est["source_interpreter"])],
                     text=[present.interval_text(e, lo, hi) for e, lo, hi in zip(est["estimate"], est["lo"], est["hi"])])
    table = est.pivot_table(index=["victim", "members"], columns="input", values="text", aggfunc="first", sort=False)
    table = table[[c for c in _INPUTS.values() if c in table.columns]].reset_index()
    table["victim"] = table["victim"].map(present.label)
    table["members"] = table["members"].map(lambda m: " + ".join(LABELS.get(n, n) for n in m.split("+")))
    return table.rename(columns={"members": "pair"}).style.hide(axis="index")


def toward_table(rows: pd.DataFrame):
    """:func:`toward_estimates` shown: per victim and interpreter, the three changes."""
    est = toward_estimates(rows)
    if est.empty:
        return defences._nothing()
    names = {"attacked": "its map to the others: ADV2 against it − clean",
             "pgd": "its map to the others: PGD − clean", "others": "between the others: ADV2 against it − clean"}
    est = est.assign(text=[present.interval_text(e, lo, hi, "{:+.3f}") + f" (n = {n})"
                           for e, lo, hi, n in zip(est["estimate"], est["lo"], est["hi"], est["n"])])
    table = est.pivot_table(index=["victim", "interpreter"], columns="change", values="text", aggfunc="first",
                            sort=False)
    table = table[[c for c in names if c in table.columns]].rename(columns=names).reset_index()
    table["victim"], table["interpreter"] = table["victim"].map(present.label), table["interpreter"].map(present.label)
    return table.style.hide(axis="index")


# --------------------------------------------------------------------------- AID's premise
#: The premise: RTS's own objective is worse (higher) on ADV2 inputs than on the clean images.
PREMISE_BAR = Bar(0.0, ">", "the premise itself: training RTS on ADV2 inputs can oppose the attack only if RTS's "
                            "objective is worse on them than on clean images (a difference above 0)")
_PREMISE_INPUTS = {("pgd", None): "PGD", ("adv2", "original"): "ADV2 against the original RTS",
                   ("adv2", "AID"): "ADV2 against the AID-hardened RTS"}


def premise_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim, masking network (``rts``) and input: the mean of RTS's objective (``rts_loss``)
    over the successful inputs, and its paired difference to the clean image's under the same
    network (``rts_loss difference``), each with its 95% interval."""
    if rows is None or rows.empty:
        return pd.DataFrame()
    rows = rows.assign(crafted_against=rows["crafted_against"].where(rows["crafted_against"].notna(), None))
    by = ["victim", "rts", "attack", "crafted_against"]
    level = estimates(rows, by, ["rts_loss", "destroyer", "preserver"])
    clean = rows[rows["attack"] == "clean"].drop(columns=["crafted_against", "attack"])
    attacked = rows[rows["attack"] != "clean"]
    diff = paired_ratio(attacked, by, "rts_loss", a_rows=attacked, b_rows=clean, kind="difference")
    return pd.concat([level, diff], ignore_index=True)


def premise_tests(rows: pd.DataFrame) -> pd.DataFrame:
    """The premise per victim: under the original RTS, its objective on ADV2 inputs crafted against it
    minus on the clean images (paired) is above 0 (:data:`PREMISE_BAR`)."""
    est = premise_estimates(rows)
    if est.empty:
        return pd.DataFrame()
    sel = est[(est["metric"] == "rts_loss difference") & (est["rts"] == "original") & (est["attack"] == "adv2")
              & (est["crafted_against"] == "original")]
    return pd.DataFrame([judge("aid_premise", {"victim": r.victim, "interpreter": "rts"},
                               "RTS objective, ADV2 − clean (original RTS, same images)",
                               stats.Interval(r.estimate, r.lo, r.hi, int(r.n)), PREMISE_BAR)
                         for r in sel.itertuples()])


def premise_line(rows: pd.DataFrame | None) -> str:
    """One line for the comparison chapter's AID row: the premise's verdict per victim."""
    tests = premise_tests(rows) if rows is not None else pd.DataFrame()
    if tests.empty:
        return ""
    parts = [f"{present.label(r['victim'])} {present.interval_text(r['estimate'], r['lo'], r['hi'], '{:+.2f}')}: "
             f"{r['verdict']}" for _, r in tests.iterrows()]
    return ("AID's premise, RTS's own objective higher on ADV2 inputs than on clean images (the "
            "{doc}`premise study <08b_aid_premise>`): " + "; ".join(parts))


def premise_table(rows: pd.DataFrame):
    """:func:`premise_estimates` shown: per victim, network and input, the objective and its change."""
    est = premise_estimates(rows)
    if est.empty:
        return defences._nothing()
    est = est.assign(input=[_PREMISE_INPUTS.get((a, None if pd.isna(c) else c), a)
                            for a, c in zip(est["attack"], est["crafted_against"])])
    shown = present.wide(est, ["victim", "rts", "input"], ["rts_loss", "rts_loss difference", "destroyer",
                                                           "preserver"], {"rts_loss difference": "{:+.3f}"},
                         with_n=True)
    return shown.rename(columns={"RTS": "network explaining", "rts_loss": "RTS objective",
                                 "rts_loss difference": "objective − clean (same images)"}).style.hide(axis="index")


# --------------------------------------------------------------------------- AID's variants
def _variant_interval(att: pd.DataFrame, original: pd.DataFrame, positions) -> stats.Interval:
    """The rise of ADV2's L1 ratio to PGD from the original RTS to one hardened network, on the same
    images (:func:`.defences.ratio_change`)."""
    def pair(frame):
        return tuple(defences.l1_by_position(frame[frame["attack"] == a], positions) for a in ("adv2", "pgd"))

    return defences.ratio_change(pair(att), pair(original), len(positions))


def variant_tests(rows: pd.DataFrame, aid_rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim, variant and training seed: the rise of ADV2's L1 ratio to PGD from the original
    RTS (the AID experiment's rows at the preset budget, same images) to that hardened network,
    against the AID rule's bar (:data:`.defences.BARS` ``aid_ratio``)."""
    if rows is None or rows.empty or aid_rows is None or aid_rows.empty:
        return pd.DataFrame()
    att = rows[rows["attack"].isin(["adv2", "pgd"])]
    orig = aid_rows[(aid_rows["rts"] == "original") & aid_rows["attack"].isin(["adv2", "pgd"])]
    orig = orig[orig["budget"].astype(float) == 1.0]
    out = []
    for (v, variant, s), g in att.groupby(["victim", "variant", "train_seed"], sort=False):
        positions = sorted(set(g["position"]))
        o = orig[(orig["victim"] == v) & orig["position"].isin(positions)]
        rise = _variant_interval(g, o, positions)
        out.append({**judge("aid", {"victim": v, "interpreter": "rts"}, "L1 / PGD, hardened minus original RTS",
                            rise, defences.BARS["aid_ratio"]), "variant": variant, "train_seed": int(s)})
    frame = pd.DataFrame(out)
    order = {"victim": {v: i for i, v in enumerate(VICTIMS)}}
    return frame.assign(_v=frame["victim"].map(order["victim"])).sort_values(["_v", "variant", "train_seed"],
                                                                            kind="stable").drop(columns="_v")


def variant_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim, variant and seed: ADV2's ASR and its L1 ratio to PGD under the same network (paired),
    with 95% intervals, and its wall seconds per image (what the attacker pays: one measurement per
    batch of images, no interval)."""
    if rows is None or rows.empty:
        return pd.DataFrame()
    by = ["victim", "variant", "train_seed"]
    adv = rows[rows["attack"] == "adv2"]
    secs = adv.groupby(by, sort=False)["seconds"].agg(["mean", "size"]).reset_index()
    secs = secs.rename(columns={"mean": "estimate", "size": "n"}).assign(metric="seconds", lo=np.nan, hi=np.nan)
    return pd.concat([estimates(adv, by, ["asr"]), paired_ratio(rows, by), secs], ignore_index=True)


def variant_line(rows: pd.DataFrame | None, aid_rows: pd.DataFrame | None) -> str:
    """One line: whether any AID variant (with its seeds) moves ADV2's ratio by the rule's bar."""
    tests = variant_tests(rows, aid_rows) if rows is not None else pd.DataFrame()
    if tests.empty:
        return ""
    held = tests[tests["verdict"] == stats.HOLDS]
    top = tests.loc[tests["estimate"].idxmax()]
    return (f"{len(tests)} hardened networks of the {{doc}}`AID variants study <08c_aid_variants>` "
            f"({', '.join(dict.fromkeys(tests['variant']))}; seeds {', '.join(map(str, sorted(set(tests['train_seed']))))}): "
            + ("none raises ADV2's L1 ratio to PGD by the bar" if held.empty else
               "the ratio rises by the bar for " + "; ".join(f"{present.label(r['victim'])} {r['variant']} seed "
                                                           f"{r['train_seed']}" for _, r in held.iterrows()))
            + f" (the largest rise: {present.label(top['victim'])} {top['variant']} seed {top['train_seed']}, "
              f"{present.interval_text(top['estimate'], top['lo'], top['hi'], '{:+.3f}')})")


def variant_table(rows: pd.DataFrame, aid_rows: pd.DataFrame, training: dict | None = None):
    """Per victim, variant and seed: ASR, L1 / PGD, seconds per image, and the test of the rise."""
    est = variant_estimates(rows)
    tests = variant_tests(rows, aid_rows)
    if est.empty:
        return defences._nothing()
    by = ["victim", "variant", "train_seed"]
    shown = present.wide(est, by, ["asr", "l1_benign ratio", "seconds"], {"seconds": "{:.2f}"}, with_n=True)
    if len(tests):
        # by key, in the estimates' order (the tests are sorted otherwise: until 2026-12-03 this column was
        # assigned by position, and each network showed another's rise)
        tested = {(r["victim"], r["variant"], int(r["train_seed"])): r for _, r in tests.iterrows()}
        keys = [tested.get((v, variant, int(s))) for v, variant, s in dict.fromkeys(zip(*(est[c] for c in by)))]
        shown["L1 / PGD, hardened − original"] = [
            "–" if r is None else present.interval_text(r["estimate"], r["lo"], r["hi"], "{:+.3f}") for r in keys]
        shown["verdict (rise ≥ 0.1)"] = ["–" if r is None else r["verdict"] for r in keys]
    return shown.rename(columns={"train_seed": "training seed", "seconds": "attack s / image"}).style.hide(axis="index")


def training_table(table):
    """The AID variants' training figures (``table``: the study's :class:`~adv2lib.report.files.Table`;
    its ``meta["config"][victim]["training"]``): per victim, variant and seed, the training's wall
    seconds, ADV2's success on the training pool at the first and last refresh and the masking test's
    accuracies, the rates with Wilson intervals (as the AID chapter's cards); then the number of trained
    parameters and the distillation term's running mean at the end (``–``: a variant without it)."""
    out = []
    for victim, config in (table.meta.get("config") or {}).items():
        for name, f in ((config or {}).get("training") or {}).items():
            row = {"victim": present.label(victim), "network": name, "training s": f"{f['training_seconds']:.0f}"}
            for label, m, n, fmt in (("pool ASR, first refresh", "pool_asr_first", "pool_size", "{:.0%}"),
                                     ("pool ASR, last refresh", "pool_asr_last", "refresh_size", "{:.0%}"),
                                     ("preserved accuracy", "preserved_accuracy", "eval_images", "{:.1%}"),
                                     ("destroyed accuracy", "destroyed_accuracy", "eval_images", "{:.1%}")):
                iv = stats.rate(k=int(round(f[m] * f[n])), n=int(f[n]))
                row[label] = present.interval_text(f[m], iv.lo, iv.hi, fmt) + f" (n = {int(f[n])})"
            if "trained_parameters" in f:            # the tables of 2026-12-03 and later
                row["trained parameters"] = f"{int(f['trained_parameters']):,}"
                tie = f.get("final_tie")
                row["tie term at the end"] = "–" if tie is None or tie != tie else f"{tie:.3f}"
            out.append(row)
    if not out:
        return defences._nothing()
    return pd.DataFrame(out).style.hide(axis="index")
