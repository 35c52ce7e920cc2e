"""The confidence trade-off and the ablations: tables, and the sentences that state what they measured.

* :func:`confidence_table` summarises the confidence experiment
  (:func:`adv2lib.experiments.run_confidence`): for each required confidence, the selection
  rule (``select@c``: the best checked iterate of the argmax-only attack with ``p(ct) >= c``)
  against the attack that holds ``c`` (``hold@c``).
* :func:`floor_table`, :func:`ablation_table` and :func:`probe_table` summarise the ablation
  experiment (:func:`adv2lib.experiments.run_ablation`); :func:`ablation_findings` turns each
  ablation into a sentence with its effect on the L1 ratio to PGD, and :func:`causes` gives
  the comparison chapter, per interpreter, the measured cause of a gap.

A variant "explains the gap" when it moves the L1 ratio to PGD by at least
:data:`EXPLAINS` of the way from the preset's ratio to the paper's criterion (0.5); "helps"
when it lowers the ratio by at least :data:`HELPS` (absolute); otherwise it "does not explain" it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..names import INTERPRETERS, label
from .tables import victims_in

__all__ = ["EXPLAINS", "HELPS", "CRITERION", "FLOOR_IMAGES", "noise_floors", "floors", "confidence_table", "floor_table", "ablation_table", "probe_table",
           "ablation_findings", "causes", "confidence_sentences"]

#: The main experiment's criterion: ADV2's L1 to the benign map at most half of PGD's.
CRITERION = 0.5
#: Share of the distance from the preset's ratio to :data:`CRITERION` a variant must close to "explain" the gap.
EXPLAINS = 0.5
#: An absolute drop of the L1 ratio a variant must reach to "help".
HELPS = 0.05


def _successful(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["success"].astype(bool)]


def _mean(df: pd.DataFrame, column: str) -> float:
    return float(df[column].mean()) if column in df and len(df) else float("nan")


def _level_name(required: float) -> str:
    return "argmax" if not required else f"{required:g}"


def confidence_table(examples: pd.DataFrame) -> pd.DataFrame:
    """Per victim x interpreter x required confidence: the selection rule and the held
    confidence side by side (share of images reaching the level, MC, L1 to the benign map and
    its ratio to PGD's on the same images, IoU), plus PGD's row."""
    rows = []
    ex = examples
    for v in victims_in(ex):
        for i in [i for i in INTERPRETERS if i in set(ex["interpreter"])]:
            sub = ex[(ex["victim"] == v) & (ex["interpreter"] == i)]
            pgd = sub[sub["attack"] == "pgd"]
            pgd_l1 = _mean(_successful(pgd), "l1_benign")
            rows.append({"victim": label(v), "interpreter": label(i), "rule": "PGD", "required": "–",
                         "reached": pgd["success"].mean(), "MC": _mean(_successful(pgd), "confidence"),
                         "L1 to benign": pgd_l1, "L1 / PGD": 1.0,
                         "IoU": _mean(_successful(pgd), "iou_benign_mean"), "_required": -1.0, "_rule": "pgd"})
            for attack, g in sub[sub["attack"].str.contains("@", regex=False)].groupby("attack", sort=False):
                rule = "select" if attack.startswith("select@") else "hold"
                req = float(g["required"].iloc[0])
                ok = _successful(g)
                l1 = _mean(ok, "l1_benign")
                rows.append({"victim": label(v), "interpreter": label(i),
                             "rule": "selection among iterates" if rule == "select" else "attack holds it",
                             "required": _level_name(req), "reached": g["success"].astype(bool).mean(),
                             "MC": _mean(ok, "confidence"), "L1 to benign": l1,
                             "L1 / PGD": l1 / pgd_l1 if pgd_l1 > 0 else float("nan"),
                             "IoU": _mean(ok, "iou_benign_mean"), "_required": req, "_rule": rule})
    out = pd.DataFrame(rows)
    return out.sort_values(["victim", "interpreter", "_rule", "_required"], kind="stable").reset_index(drop=True) \
        if len(out) else out


def confidence_sentences(table: pd.DataFrame, level: float) -> str:
    """One Markdown line per victim x interpreter: L1 at ``level`` for the selection rule and
    for the held confidence, against argmax-only and PGD."""
    lines = []
    for (v, i), sub in table.groupby(["victim", "interpreter"], sort=False):
        def pick(rule, req):
            r = sub[(sub["_rule"] == rule) & np.isclose(sub["_required"], req)]
            return r.iloc[0] if len(r) else None

        base, sel, hold, pgd = pick("select", 0.0), pick("select", level), pick("hold", level), pick("pgd", -1.0)
        if base is None or sel is None or hold is None or pgd is None:
            continue
        lines.append(
            f"- **{v} / {i}**: argmax only L1 {base['L1 to benign']:.3f} (MC {base['MC']:.2f}); at p(ct) ≥ {level:g}, "
            f"choosing among the same iterates gives L1 {sel['L1 to benign']:.3f} on the {sel['reached']:.0%} of images "
            f"that reach it, holding it during the attack {hold['L1 to benign']:.3f} ({hold['reached']:.0%} reach it); "
            f"PGD {pgd['L1 to benign']:.3f} (MC {pgd['MC']:.2f}).")
    return "\n".join(lines)


def floor_table(examples: pd.DataFrame) -> pd.DataFrame:
    """Each interpreter's noise floor: mean L1 (and IoU) between two maps of the same clean
    image; whether the two runs differed in their seed (MASK's jitter) or were the same call."""
    fl = examples[examples["attack"] == "floor"]
    rows = []
    for v in victims_in(fl):
        for i in [i for i in INTERPRETERS if i in set(fl["interpreter"])]:
            g = fl[(fl["victim"] == v) & (fl["interpreter"] == i)]
            seeded = bool(g["seeded"].astype(bool).any())
            rows.append({"victim": label(v), "interpreter": label(i),
                         "two runs": "jitter seeds 0 and 1" if seeded else "the same call twice",
                         "L1 floor": _mean(g, "l1_floor"), "max": float(g["l1_floor"].max()),
                         "IoU": _mean(g, "iou_floor_mean"),
                         "deterministic": bool((g["l1_floor"] == 0).all()), "images": len(g)})
    return pd.DataFrame(rows)


#: Images per victim of the noise floor (the ablation chapter's count; smoke: 2).
FLOOR_IMAGES = {"full": 50, "smoke": 2}


def noise_floors(profile: str = "embedded", victims=("resnet", "densenet"), seed: int = 0, device: str = "auto",
                 smoke: bool = False, results_dir=None, engine=None) -> dict:
    """``{(victim, interpreter): mean L1}``: every paper interpreter's noise floor, for the L1
    figures of the experiment chapters. The same stored runs as the ablation chapter's floors
    (:func:`adv2lib.experiments.run_ablation` with no ablated interpreter, on its first
    :data:`FLOOR_IMAGES` images): computed once, by whichever chapter asks first."""
    from .. import experiments
    from ..names import INTERPRETERS as PAPER

    out = {}
    n = FLOOR_IMAGES["smoke" if smoke else "full"]
    for v in ([victims] if isinstance(victims, str) else victims):
        spec = experiments.ExperimentSpec.make("ablation", profile=profile, victim=v, interpreters=PAPER, n_images=n,
                                               seed=seed, smoke=smoke, device=device, results_dir=results_dir,
                                               progress=False)
        drv = experiments.prepare(spec, engine)
        keys, jobs = experiments.floor_jobs(drv)
        done = drv.stage(jobs, f"noise floors/{v}")
        for key in keys:
            rows = drv.collect(done, key)[0]
            out[(v, key.interpreter)] = float(rows["l1_floor"].mean())
    return out


def floors(examples: pd.DataFrame) -> dict:
    """``{(victim, interpreter): mean L1 floor}`` (raw names) from the ablation rows."""
    fl = examples[examples["attack"] == "floor"]
    return {k: float(g["l1_floor"].mean()) for k, g in fl.groupby(["victim", "interpreter"])}


def ablation_table(examples: pd.DataFrame) -> pd.DataFrame:
    """Per victim x interpreter x variant: ASR, MC, L1 to the benign map, PGD's L1 under the
    same interpreter, their ratio, its change from the preset and the verdict
    (:data:`EXPLAINS`, :data:`HELPS`)."""
    ex = examples[examples["attack"] != "floor"]
    rows = []
    for v in victims_in(ex):
        for i in [i for i in INTERPRETERS if i in set(ex["interpreter"])]:
            sub = ex[(ex["victim"] == v) & (ex["interpreter"] == i)]
            pgd = _successful(sub[sub["attack"] == "pgd"])
            variants = sorted(sub["variant"].dropna().unique(), key=lambda x: (x != "preset", _variant_rank(i, x)))
            base_ratio = None
            for var in variants:
                g = sub[(sub["variant"] == var) & (sub["attack"] != "pgd")]
                own_pgd = pgd[pgd["variant"] == var]
                ref = own_pgd if len(own_pgd) else pgd[pgd["variant"] == "preset"]
                ok = _successful(g)
                l1, p = _mean(ok, "l1_benign"), _mean(ref, "l1_benign")
                ratio = l1 / p if p > 0 else float("nan")
                if var == "preset":
                    base_ratio = ratio
                rows.append({"victim": label(v), "interpreter": label(i), "variant": var,
                             "ASR": g["success"].astype(bool).mean(), "MC": _mean(ok, "confidence"),
                             "L1 to benign": l1, "PGD L1": p, "L1 / PGD": ratio,
                             "wall s / image": _mean(g, "seconds"), "_victim": v, "_interpreter": i})
            for r in rows:
                if r["_victim"] == v and r["_interpreter"] == i:
                    r["Δ ratio"] = r["L1 / PGD"] - base_ratio if base_ratio is not None else float("nan")
                    r["effect"] = _effect(base_ratio, r["L1 / PGD"]) if r["variant"] != "preset" else "–"
    return pd.DataFrame(rows)


def _variant_rank(interpreter: str, variant: str) -> int:
    """The position of ``variant`` in :data:`adv2lib.experiments.ABLATIONS` (unknown ones last)."""
    from ..experiments import ABLATIONS

    labels = [v.label for v in ABLATIONS.get(interpreter, ())]
    return labels.index(variant) if variant in labels else len(labels)


def _effect(base: float | None, ratio: float) -> str:
    if base is None or not (np.isfinite(base) and np.isfinite(ratio)):
        return "–"
    gap = base - CRITERION
    if gap > 0 and base - ratio >= EXPLAINS * gap:
        return "explains the gap"
    if base - ratio >= HELPS:
        return "helps"
    if ratio - base >= HELPS:
        return "hurts"
    return "no effect"


def probe_table(examples: pd.DataFrame) -> pd.DataFrame:
    """The probes of the ablation rows, per victim x interpreter x variant: GRAD's surrogate
    vs exact map distance (clean, PGD and ADV2 inputs); MASK's inner-mask vs from-scratch
    distance, the inner mask's and the recomputed map's L1 to the benign map, and the L1 ratio
    to PGD with a jitter-free metric."""
    ex = examples[examples["attack"] != "floor"]
    rows = []
    for (v, i, var), g in ex.groupby(["victim", "interpreter", "variant"], sort=False):
        adv = g[g["attack"] != "pgd"]
        pgd = g[g["attack"] == "pgd"]
        row = {"victim": label(v), "interpreter": label(i), "variant": var}
        if "l1_surrogate_adv" in g and adv["l1_surrogate_adv"].notna().any():
            row.update({"surrogate vs exact (clean)": _mean(adv, "l1_surrogate_benign"),
                        "(PGD input)": _mean(pgd, "l1_surrogate_pgd"),
                        "(ADV2 input)": _mean(adv, "l1_surrogate_adv")})
        if "l1_inner_full" in g and adv["l1_inner_full"].notna().any():
            row.update({"inner vs from-scratch": _mean(adv, "l1_inner_full"),
                        "inner → benign": _mean(adv, "l1_inner_target"),
                        "from-scratch → benign": _mean(adv, "l1_benign")})
        if "l1_benign_nojitter" in g and adv["l1_benign_nojitter"].notna().any():
            a, p = _mean(_successful(adv), "l1_benign_nojitter"), _mean(_successful(pgd), "l1_benign_nojitter")
            row.update({"jitter-free L1 (ADV2)": a, "(PGD)": p, "jitter-free L1 / PGD": a / p if p > 0 else np.nan})
        if len(row) > 3:
            rows.append(row)
    return pd.DataFrame(rows)


def ablation_findings(table: pd.DataFrame, probes: pd.DataFrame, floor: pd.DataFrame) -> str:
    """Markdown: per victim x interpreter, the preset's ratio and each variant's effect."""
    lines = []
    for (v, i), sub in table.groupby(["victim", "interpreter"], sort=False):
        base = sub[sub["variant"] == "preset"]
        if base.empty:
            continue
        b = base.iloc[0]
        fl = floor[(floor["victim"] == v) & (floor["interpreter"] == i)]
        floor_txt = f"; its noise floor is {fl['L1 floor'].iloc[0]:.3f}" if len(fl) else ""
        effects = "; ".join(f"{r['variant']}: {r['L1 / PGD']:.2f} ({r['Δ ratio']:+.2f}, {r['effect']})"
                            for _, r in sub.iterrows() if r["variant"] != "preset")
        lines.append(f"- **{v} / {i}**: preset L1 {b['L1 to benign']:.3f}, ratio to PGD {b['L1 / PGD']:.2f}"
                     f"{floor_txt}. Variants: {effects}.")
    return "\n".join(lines)


def causes(ablation: pd.DataFrame | None, main_summary: pd.DataFrame | None = None) -> dict:
    """``{interpreter: sentence}``: what the ablations measured about why ADV2's map stays
    far from the benign one (the comparison chapter appends it to a failing cell's claim)."""
    if ablation is None or not len(ablation):
        return {}
    table, probes, floor = ablation_table(ablation), probe_table(ablation), floor_table(ablation)
    out = {}
    for i in [i for i in INTERPRETERS if label(i) in set(table["interpreter"]) or label(i) in set(floor["interpreter"])]:
        parts = []
        fl = floor[floor["interpreter"] == label(i)]
        if len(fl):
            parts.append("noise floor " + ", ".join(f"{r['victim']} {r['L1 floor']:.3f}" for _, r in fl.iterrows()))
        sub = table[table["interpreter"] == label(i)]
        for v, g in sub.groupby("victim", sort=False):
            base = g[g["variant"] == "preset"]
            moved = g[g["variant"] != "preset"]
            if base.empty or moved.empty:
                continue
            best = moved.sort_values("L1 / PGD").iloc[0]
            parts.append(f"{v}: preset ratio {base['L1 / PGD'].iloc[0]:.2f}, best variant {best['variant']} "
                         f"{best['L1 / PGD']:.2f} ({best['effect']})")
        pr = probes[probes["interpreter"] == label(i)]
        pr = pr[pr["variant"] == "preset"] if "variant" in pr else pr
        for _, r in pr.iterrows():
            if "(ADV2 input)" in r and pd.notna(r.get("(ADV2 input)")):
                parts.append(f"{r['victim']}: surrogate attack map vs exact map L1 {r['(ADV2 input)']:.3f} at the "
                             f"returned input")
            if "inner vs from-scratch" in r and pd.notna(r.get("inner vs from-scratch")):
                parts.append(f"{r['victim']}: inner mask → benign {r['inner → benign']:.3f} vs from-scratch MASK → "
                             f"benign {r['from-scratch → benign']:.3f}")
            if "jitter-free L1 / PGD" in r and pd.notna(r.get("jitter-free L1 / PGD")):
                parts.append(f"{r['victim']}: jitter-free metric ratio {r['jitter-free L1 / PGD']:.2f}")
        if parts:
            out[i] = "; ".join(parts)
    return out


def confidence_costs(confidence: pd.DataFrame | None, level: float) -> dict:
    """``{(victim, interpreter): (ratio argmax only, ratio holding level)}``: ADV2's L1 ratio to
    PGD without and with the required confidence (raw names), from the confidence experiment."""
    if confidence is None or not len(confidence):
        return {}
    table = confidence_table(confidence)
    out = {}
    for (v, i), sub in table.groupby(["victim", "interpreter"], sort=False):
        base = sub[(sub["_rule"] == "select") & (sub["_required"] == 0)]
        held = sub[(sub["_rule"] == "hold") & np.isclose(sub["_required"], level)]
        if len(base) and len(held):
            out[(v, i)] = (float(base["L1 / PGD"].iloc[0]), float(held["L1 / PGD"].iloc[0]))
    return out


#: The claims about the prediction side (ASR, MC); every other tested claim is about the maps.
PREDICTION_CLAIMS = ("effective", "random_class")


def claim_causes(confidence: pd.DataFrame | None, ablations: pd.DataFrame | None, level: float) -> dict:
    """``{claim id: {interpreter label: sentence}}``: the measured causes a failing cell of the
    comparison chapter cites. Prediction claims (:data:`PREDICTION_CLAIMS`): the MC the
    argmax-only attack reaches and the MC when it holds ``level`` (confidence chapter). Map
    claims (key ``"*"``): the confidence's cost in distance (L1 ratio to PGD argmax-only →
    holding ``level``), then the ablations' findings (:func:`causes`)."""
    maps: dict = {}
    mc: dict = {}
    table = confidence_table(confidence) if confidence is not None and len(confidence) else None
    for (v, i), (free, held) in confidence_costs(confidence, level).items():
        maps.setdefault(i, []).append(f"{v}: holding p(ct) ≥ {level:g} moves the L1 ratio to PGD from {free:.2f} "
                                      f"(argmax only) to {held:.2f}")
        sub = table[(table["victim"] == v) & (table["interpreter"] == i)]
        base = sub[(sub["_rule"] == "select") & (sub["_required"] == 0)]
        hold = sub[(sub["_rule"] == "hold") & np.isclose(sub["_required"], level)]
        mc.setdefault(i, []).append(f"{v}: MC {base['MC'].iloc[0]:.2f} argmax only, {hold['MC'].iloc[0]:.2f} holding "
                                    f"p(ct) ≥ {level:g} ({hold['reached'].iloc[0]:.0%} of images reach it; PGD "
                                    f"does not reach it on the others either)")
    for i, text in causes(ablations).items():
        maps.setdefault(label(i), []).append(text)
    out = {"*": {i: "; ".join(parts) for i, parts in maps.items()}}
    for claim in PREDICTION_CLAIMS:
        out[claim] = {i: "; ".join(parts) for i, parts in mc.items()}
    return out


#: How close ADV2's MC must come to PGD's in the main experiment (issue 11).
MC_TOLERANCE = 0.02


def mc_gap_table(main_examples: pd.DataFrame) -> pd.DataFrame:
    """The main experiment's MC of ADV2 and PGD per victim x interpreter (successful attacks),
    their difference, and whether ADV2 is within :data:`MC_TOLERANCE` of PGD; with ASR, L1 and
    IoU at that confidence."""
    from .tables import summarize_examples

    s = summarize_examples(main_examples)
    rows = []
    for v in victims_in(s):
        for i in [i for i in INTERPRETERS if i in set(s["interpreter"])]:
            def val(attack, col):
                sel = s[(s["victim"] == v) & (s["interpreter"] == i) & (s["attack"] == attack)]
                return float(sel[col].iloc[0]) if len(sel) and col in sel else float("nan")

            adv, pgd = val("adv2", "mc"), val("pgd", "mc")
            rows.append({"victim": label(v), "interpreter": label(i), "MC ADV2": adv, "MC PGD": pgd,
                         "difference": adv - pgd, f"within {MC_TOLERANCE}": bool(adv >= pgd - MC_TOLERANCE),
                         "ASR ADV2": val("adv2", "asr"), "L1 ADV2": val("adv2", "l1_benign"),
                         "L1 PGD": val("pgd", "l1_benign"), "IoU ADV2": val("adv2", "iou_benign_mean")})
    return pd.DataFrame(rows)
