"""Result tables the book reads, and the paper-vs-this-reproduction comparison.

The experiment notebooks save, per experiment and scale, every per-example row the
experiments returned (:func:`save_experiment`):
``<results>/tables/<profile>-<smoke|full>/<experiment>_examples.csv`` plus a JSON of what
produced them (``<experiment>.json``: images, victims, interpreters, attack presets,
versions, time). The comparison chapter reads only those files (:func:`load_experiment`),
recomputes the summaries with the same code (:func:`adv2lib.metrics.summarize`) and puts
them beside the paper's numbers (:mod:`adv2lib.paper_numbers`):

* :func:`table7`, :func:`table8`, :func:`table9` -- every table of ``paper-results.md``;
* :func:`main_table` -- our PGD-vs-ADV2 table (the paper's numbers were not recovered);
* :func:`verdicts` -- each qualitative claim of ``paper-spec.md`` section (g) with a verdict
  (holds / partly / does not / not tested) computed by the rules in :data:`RULES`.

Verdict rule, shared by every tested claim: the claim is checked on every *cell* (a victim x
interpreter pair, or an entry of the transfer table) with the criterion given in
:data:`RULES`; it **holds** when every cell passes, **does not** hold when none does, and
holds **partly** otherwise. The criteria were fixed before looking at the full results; they
translate the paper's words ("close to", "much closer", "about as large") into numbers.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import paper_numbers as paper
from . import paths
from .fileio import atomic_write

__all__ = [
    "EXPERIMENT_NAMES", "RULES", "scale_label", "tables_dir", "save_experiment", "load_experiment",
    "available", "summarize_examples", "table7", "table8", "table9", "main_table", "verdicts",
    "victim_cards", "rts_cards", "scale_text", "card_table", "verdicts_markdown", "attack_times",
    "confidence_profile", "budget_table", "budget_sentences", "l1_ratios", "iteration_budgets",
]

EXPERIMENT_NAMES = ("main", "patch", "random_class", "transfer")
INTERPRETERS = paper.INTERPRETER_ORDER
VICTIMS = ("resnet", "densenet")
LABEL = {"grad": "GRAD", "cam": "CAM", "mask": "MASK", "rts": "RTS", "pgd": "PGD", "adv2": "ADV2",
         "resnet": "ResNet", "densenet": "DenseNet"}
PAPER_ROW = "paper (ImageNet, ResNet-50)"

#: The per-cell criterion of every tested claim (see the module docstring).
RULES = {
    "effective": "per victim x interpreter: ADV2's ASR is at least PGD's minus 5 points, and ADV2's MC >= 0.9",
    "l1": "per victim x interpreter: mean L1 of ADV2 maps to the benign map <= half of PGD's",
    "iou": "per victim x interpreter: mean IoU (over k) of ADV2 maps with the benign map >= 0.5 and above PGD's",
    "qualitative": "per victim x interpreter: on >= 90 % of the images attacked successfully by both, the ADV2 "
                   "map is closer (L1) to the benign map than the PGD map of the same image",
    "patch": "per victim x interpreter: Δt < Δb and IoU with the target > IoU with the benign map (ADV2)",
    "random_class": "per victim x interpreter: ADV2's ASR >= 0.95 and MC >= 0.9 (paper: 100 %, 0.99)",
    "transfer_diagonal": "per victim x column: the diagonal entry is the smallest of its column (PGD row included)",
    "transfer_off_diagonal": "per off-diagonal entry: L1 >= half the PGD entry of the same column",
}


# =========================================================================== files
def scale_label(profile: str, smoke: bool) -> str:
    return f"{profile}-{'smoke' if smoke else 'full'}"


def tables_dir(profile: str = "embedded", smoke: bool = False, results_dir: str | Path | None = None) -> Path:
    """``<results>/tables/<profile>-<smoke|full>/``: the tables the notebooks write."""
    base = Path(results_dir) if results_dir else paths.results_dir()
    return base / "tables" / scale_label(profile, smoke)


def save_experiment(results: Sequence, profile: str, smoke: bool, results_dir: str | Path | None = None,
                    n_images: int | None = None) -> Path:
    """Write the per-example rows of ``results`` (one :class:`~adv2lib.experiments.ExperimentResult`
    per victim, all of the same experiment) and a JSON describing them; returns the CSV path."""
    from .store import to_jsonable
    from .utils import versions

    results = list(results)
    experiment = results[0].experiment
    if any(r.experiment != experiment for r in results):
        raise ValueError("save_experiment takes the results of one experiment (one per victim)")
    examples = pd.concat([r.examples for r in results], ignore_index=True)
    out = tables_dir(profile, smoke, results_dir)
    csv = out / f"{experiment}_examples.csv"
    atomic_write(csv, examples.to_csv(index=False))
    column = "interpreter" if "interpreter" in examples else "target"
    meta = {
        "experiment": experiment, "profile": profile, "smoke": bool(smoke), "scale": scale_label(profile, smoke),
        "n_images_requested": n_images,
        "n_images": {r.victim: _images_per_group(r.examples) for r in results},
        "victims": [r.victim for r in results],
        "interpreters": sorted(examples[column].unique().tolist(), key=_interp_key),
        "seconds": {r.victim: round(float(r.seconds), 1) for r in results},
        "config": {r.victim: to_jsonable(r.config) for r in results},
        "versions": versions(),
        "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write(out / f"{experiment}.json", json.dumps(meta, indent=2, sort_keys=True))
    return csv


def _images_per_group(examples: pd.DataFrame) -> int:
    """Attacked inputs per (interpreter, attack) -- or (source, target) -- group: the number of
    images behind each reported mean (in the patch experiment an image may serve up to three
    targets, so this counts targets, not distinct images)."""
    keys = [c for c in ("interpreter", "attack", "source", "target") if c in examples.columns]
    if examples.empty:
        return 0
    return int(examples.groupby(keys).size().max()) if keys else len(examples)


def load_experiment(experiment: str, profile: str = "embedded", smoke: bool = False,
                    results_dir: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """``(examples, meta)`` written by :func:`save_experiment`; a clear error when missing."""
    out = tables_dir(profile, smoke, results_dir)
    csv, meta = out / f"{experiment}_examples.csv", out / f"{experiment}.json"
    if not csv.is_file() or not meta.is_file():
        raise FileNotFoundError(
            f"no saved results for experiment {experiment!r} at {out}; run its notebook first, e.g. "
            f"python -m adv2lib book{' --smoke' if smoke else ''} --profile {profile}")
    return pd.read_csv(csv), json.loads(meta.read_text())


def available(profile: str = "embedded", smoke: bool = False, results_dir=None) -> list[str]:
    out = tables_dir(profile, smoke, results_dir)
    return [e for e in EXPERIMENT_NAMES if (out / f"{e}_examples.csv").is_file() and (out / f"{e}.json").is_file()]


def _interp_key(name: str) -> int:
    order = (*INTERPRETERS, "pgd")
    return order.index(name) if name in order else len(order)


def summarize_examples(examples: pd.DataFrame) -> pd.DataFrame:
    """Per-group ASR, MC, mean L1 and mean IoU (:func:`adv2lib.metrics.summarize`), grouped by
    (victim, interpreter, attack), or (victim, source, target) for transfer rows."""
    from .metrics import summarize

    df = examples.copy()
    if "confidence" not in df:
        df["confidence"] = np.nan
    keep = [c for c in df.columns if not (c.startswith("iou_") and not c.endswith("_mean"))]
    by = ("victim", "source", "target") if "source" in df.columns else ("victim", "interpreter", "attack")
    return summarize(df[keep], by=by)


def scale_text(meta_or_results, smoke: bool | None = None, profile: str | None = None) -> str:
    """One sentence stating the scale of a run, for captions: images per victim, smoke or full,
    profile and dataset. Takes the JSON written by :func:`save_experiment` or a list of
    experiment results."""
    if isinstance(meta_or_results, dict):
        n = meta_or_results.get("n_images", {})
        smoke = meta_or_results.get("smoke") if smoke is None else smoke
        profile = meta_or_results.get("profile") if profile is None else profile
    else:
        results = list(meta_or_results)
        n = {r.victim: _images_per_group(r.examples) for r in results}
        profile = profile or results[0].profile
    counts = sorted(set(n.values()))
    images = (f"{counts[0]} images per victim" if len(counts) == 1
              else ", ".join(f"{c} images ({LABEL.get(v, v)})" for v, c in n.items()))
    dataset = {"embedded": "Fashion-MNIST, small trained victims", "imagenet": "ImageNet"}.get(profile, profile)
    kind = ("**smoke scale** (a few images, about a tenth of the attack iterations: a test of the pipeline, "
            "not a measurement)" if smoke else "full scale")
    return f"{images}, {kind}, profile `{profile}` ({dataset})"


# =========================================================================== comparison tables
def _victims(df) -> list:
    return [v for v in VICTIMS if v in set(df["victim"])] + sorted(set(df["victim"]) - set(VICTIMS))


def _cell(summary, victim, interpreter, attack, column) -> float:
    sel = summary[(summary["victim"] == victim) & (summary["interpreter"] == interpreter)
                  & (summary["attack"] == attack)]
    return float(sel[column].iloc[0]) if len(sel) else float("nan")


def _ours(victim) -> str:
    return f"ours ({LABEL.get(victim, victim)})"


def _wide(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows).set_index(["metric", "source"])
    return table[[LABEL[i] for i in INTERPRETERS if LABEL[i] in table.columns]]


def table7(patch_examples: pd.DataFrame) -> pd.DataFrame:
    """Table 7: Δb and Δt of ADV2 (random patch target), paper beside ours."""
    s = summarize_examples(patch_examples)
    rows = []
    for metric, key, col in (("Δb (to the benign map)", "delta_b", "l1_benign"),
                             ("Δt (to the target)", "delta_t", "l1_target")):
        rows.append({"metric": metric, "source": PAPER_ROW, **{LABEL[i]: paper.TABLE7[key][i] for i in INTERPRETERS}})
        for v in _victims(s):
            rows.append({"metric": metric, "source": _ours(v),
                         **{LABEL[i]: _cell(s, v, i, "adv2", col) for i in INTERPRETERS}})
    return _wide(rows)


def table8(random_class_examples: pd.DataFrame) -> pd.DataFrame:
    """Table 8: ASR and MC of ADV2 (random class target), paper beside ours."""
    s = summarize_examples(random_class_examples)
    rows = []
    for metric, key in (("ASR", "asr"), ("MC", "mc")):
        rows.append({"metric": metric, "source": PAPER_ROW, **{LABEL[i]: paper.TABLE8[key][i] for i in INTERPRETERS}})
        for v in _victims(s):
            rows.append({"metric": metric, "source": _ours(v),
                         **{LABEL[i]: _cell(s, v, i, "adv2", key) for i in INTERPRETERS}})
    return _wide(rows)


def transfer_matrices(transfer_examples: pd.DataFrame) -> dict:
    """Per victim, the source x target matrix of mean L1 to the benign map (successful inputs)."""
    from .metrics import transfer_matrix

    return {v: transfer_matrix(transfer_examples[transfer_examples["victim"] == v], "l1_benign")
            for v in _victims(transfer_examples)}


def table9(transfer_examples: pd.DataFrame) -> pd.DataFrame:
    """Table 9: rows = (source, who), columns = target interpreter; the paper's ResNet-50
    entries beside ours for each victim."""
    mats = transfer_matrices(transfer_examples)
    rows = []
    for src in paper.TABLE9["rows"]:
        rows.append({"metric": f"source: {LABEL[src]}", "source": PAPER_ROW,
                     **{LABEL[t]: paper.TABLE9["values"][src][t] for t in paper.TABLE9["columns"]}})
        for v, m in mats.items():
            rows.append({"metric": f"source: {LABEL[src]}", "source": _ours(v),
                         **{LABEL[t]: (float(m.loc[src, t]) if src in m.index and t in m.columns else np.nan)
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
        for v in _victims(s):
            for a in ("pgd", "adv2"):
                rows.append({"metric": metric, "source": f"{LABEL[a]}, {LABEL.get(v, v)}",
                             **{LABEL[i]: _cell(s, v, i, a, col) for i in INTERPRETERS}})
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
        for v in _victims(ex):
            pgd = ex[(ex["victim"] == v) & (ex["attack"] == "pgd")].drop_duplicates("position")
            if len(pgd) and v not in pgd_seen:
                pgd_seen.add(v)
                rows.append(_time_row(name, v, "PGD", pgd))
            for i in INTERPRETERS:
                adv = ex[(ex["victim"] == v) & (ex["attack"] == "adv2") & (ex["interpreter"] == i)]
                if len(adv):
                    rows.append(_time_row(name, v, f"ADV2 vs {LABEL[i]}", adv))
    columns = ["experiment", "victim", "attack", "images", "wall s / image", "CPU s / image", "wall min (total)"]
    return pd.DataFrame(rows, columns=columns)


def _time_row(experiment: str, victim: str, attack: str, rows: pd.DataFrame) -> dict:
    return {"experiment": experiment, "victim": LABEL.get(victim, victim), "attack": attack, "images": len(rows),
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
    for v in _victims(examples):
        for i in INTERPRETERS:
            for a in ("pgd", "adv2"):
                sel = ok[(ok["victim"] == v) & (ok["interpreter"] == i) & (ok["attack"] == a)]["confidence"]
                if len(sel):
                    rows.append({"victim": LABEL.get(v, v), "interpreter": LABEL[i], "attack": LABEL[a],
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
        row = {"interpreter": LABEL[i], PAPER_ROW + ", Table 9": t9[i][i] / t9["pgd"][i]}
        for v in _victims(s):
            row[_ours(v)] = _cell(s, v, i, "adv2", "l1_benign") / _cell(s, v, i, "pgd", "l1_benign")
        rows.append(row)
    return pd.DataFrame(rows).set_index("interpreter")


def iteration_budgets(profile: str = "embedded", reference: str = "imagenet", interpreters=INTERPRETERS) -> str:
    """A sentence stating, from the presets, each interpreter's ADV2 stage-2 iterations in
    ``profile`` against ``reference`` (the official code's values), e.g. "GRAD 100 stage-2 steps
    instead of 704, ..."; MASK counts outer iterations."""
    from .attacks import preset_for

    parts = []
    for i in interpreters:
        ours, official = preset_for(profile, i).steps, preset_for(reference, i).steps
        unit = "outer iterations" if i == "mask" else "stage-2 steps"
        parts.append(f"{LABEL[i]} {ours} {unit} instead of {official}")
    return ", ".join(parts)


def budget_table(examples: pd.DataFrame) -> pd.DataFrame:
    """The budget experiment (:func:`adv2lib.experiments.run_budget`) per victim x interpreter x
    budget: stage-2 iterations, ASR, MC, mean L1 to the benign map, its ratio to PGD's on the same
    images, mean IoU and wall seconds per image (PGD first, then ADV2 by increasing budget)."""
    from .metrics import summarize

    s = summarize(examples, by=("victim", "interpreter", "attack", "budget"))
    steps = examples.groupby(["victim", "interpreter", "attack"])["stage2_steps"].first() \
        if "stage2_steps" in examples else None
    secs = examples.groupby(["victim", "interpreter", "attack"])["seconds"].mean()
    rows = []
    for v in _victims(s):
        for i in [i for i in INTERPRETERS if i in set(s["interpreter"])]:
            sub = s[(s["victim"] == v) & (s["interpreter"] == i)].sort_values("budget")
            pgd = sub[sub["attack"] == "pgd"]
            pgd_l1 = float(pgd["l1_benign"].iloc[0]) if len(pgd) else float("nan")
            for _, r in sub.iterrows():
                is_pgd = r["attack"] == "pgd"
                n_steps = None if is_pgd or steps is None else steps.get((v, i, r["attack"]))
                rows.append({"victim": LABEL.get(v, v), "interpreter": LABEL[i],
                             "attack": "PGD" if is_pgd else f"ADV2, {r['budget']:g}x",
                             "stage-2 iterations": "–" if n_steps is None or pd.isna(n_steps) else int(n_steps),
                             "ASR": r["asr"], "MC": r["mc"], "L1 to benign": r["l1_benign"],
                             "L1 / PGD": r["l1_benign"] / pgd_l1 if pgd_l1 > 0 else float("nan"),
                             "IoU (mean over k)": r.get("iou_benign_mean", float("nan")),
                             "wall s / image": float("nan") if is_pgd else float(secs.get((v, i, r["attack"]))),
                             "_budget": r["budget"]})
    return pd.DataFrame(rows)


#: A doubling of the budget that changes the L1 distance by less than this (relative) "levels off".
LEVEL_OFF = 0.05


def budget_sentences(table: pd.DataFrame) -> str:
    """One Markdown line per victim x interpreter of :func:`budget_table`: how the L1 distance and
    its ratio to PGD move as the budget grows, and whether the last step of the budget still
    lowered the distance by at least :data:`LEVEL_OFF` (relative) -- "keeps falling" -- or not --
    "levels off"."""
    lines = []
    for (v, i), sub in table.groupby(["victim", "interpreter"], sort=False):
        adv = sub[sub["attack"] != "PGD"].sort_values("_budget")
        if adv.empty:
            continue
        path = " → ".join(f"{r['L1 to benign']:.3f} ({r['_budget']:g}x)" for _, r in adv.iterrows())
        first, last = adv.iloc[0], adv.iloc[-1]
        change = (last["L1 to benign"] - first["L1 to benign"]) / first["L1 to benign"]
        pgd = sub[sub["attack"] == "PGD"]
        ref = f"; PGD {pgd['L1 to benign'].iloc[0]:.3f}, ratio to PGD {first['L1 / PGD']:.2f} → " \
              f"{last['L1 / PGD']:.2f}" if len(pgd) else ""
        trend = ""
        if len(adv) > 1:
            prev = adv.iloc[-2]
            step = (last["L1 to benign"] - prev["L1 to benign"]) / prev["L1 to benign"]
            trend = (f" It **levels off**: {prev['_budget']:g}x → {last['_budget']:g}x changed it by {step:+.0%}."
                     if step > -LEVEL_OFF else
                     f" It **keeps falling**: {prev['_budget']:g}x → {last['_budget']:g}x changed it by {step:+.0%}.")
        lines.append(f"- **{v} / {i}**: L1 to the benign map {path}, a change of {change:+.0%} from "
                     f"{first['_budget']:g}x to {last['_budget']:g}x{ref}; MC {first['MC']:.2f} → {last['MC']:.2f}."
                     + trend)
    return "\n".join(lines)


# =========================================================================== verdicts
def _verdict(passed: Sequence[bool]) -> str:
    passed = [bool(p) for p in passed]
    if not passed:
        return "not tested"
    if all(passed):
        return "holds"
    if any(passed):
        return "partly"
    return "does not hold"


def _cells(summary, fn) -> tuple[list[bool], list[str]]:
    """Apply ``fn(victim, interpreter) -> (passed, text)`` to every victim x interpreter present."""
    passed, notes = [], []
    for v in _victims(summary):
        for i in [i for i in INTERPRETERS if i in set(summary["interpreter"])]:
            ok, text = fn(v, i)
            if ok is None:
                continue
            passed.append(ok)
            notes.append(f"{LABEL.get(v, v)}/{LABEL[i]}: {text} {'✓' if ok else '✗'}")
    return passed, notes


def _fmt(x, pct=False) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.0%}" if pct else f"{x:.3f}"


def verdicts(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every claim of paper-spec (g) with our verdict and the evidence behind it.

    ``tables`` maps experiment name (``main``, ``patch``, ``random_class``, ``transfer``) to
    its saved per-example rows; a missing experiment makes its claims "not tested".
    """
    out = []
    main = tables.get("main")
    sm = summarize_examples(main) if main is not None else None

    def add(claim_id, passed, notes):
        claim = next(c for c in paper.CLAIMS if c.id == claim_id)
        out.append({"item": claim.item, "claim (paper)": f"{claim.text} {claim.provenance}",
                    "verdict": _verdict(passed), "criterion": RULES.get(claim_id, ""),
                    "evidence (ours)": "; ".join(notes) if notes else _untested_reason(claim_id)})

    if sm is not None:
        def effective(v, i):
            a, p = _cell(sm, v, i, "adv2", "asr"), _cell(sm, v, i, "pgd", "asr")
            mc = _cell(sm, v, i, "adv2", "mc")
            if not np.isfinite(a):
                return None, ""
            return (a >= p - 0.05 and np.isfinite(mc) and mc >= 0.9), \
                f"ASR {_fmt(a, True)} (PGD {_fmt(p, True)}), MC {_fmt(mc)}"

        def l1(v, i):
            a, p = _cell(sm, v, i, "adv2", "l1_benign"), _cell(sm, v, i, "pgd", "l1_benign")
            if not (np.isfinite(a) and np.isfinite(p)):
                return None, ""
            return a <= 0.5 * p, f"L1 ADV2 {_fmt(a)} vs PGD {_fmt(p)}"

        def iou(v, i):
            a, p = _cell(sm, v, i, "adv2", "iou_benign_mean"), _cell(sm, v, i, "pgd", "iou_benign_mean")
            if not (np.isfinite(a) and np.isfinite(p)):
                return None, ""
            return (a >= 0.5 and a > p), f"IoU ADV2 {_fmt(a)} vs PGD {_fmt(p)}"

        def qualitative(v, i):
            df = main[(main["victim"] == v) & (main["interpreter"] == i)]
            wide = df.pivot_table(index="position", columns="attack", values=["l1_benign", "success"], aggfunc="first")
            if wide.empty or ("l1_benign", "adv2") not in wide.columns or ("l1_benign", "pgd") not in wide.columns:
                return None, ""
            ok = wide[("success", "adv2")].astype(bool) & wide[("success", "pgd")].astype(bool)
            if not ok.any():
                return None, ""
            closer = (wide.loc[ok, ("l1_benign", "adv2")] < wide.loc[ok, ("l1_benign", "pgd")]).mean()
            return closer >= 0.9, f"ADV2 closer on {_fmt(closer, True)} of {int(ok.sum())} images"

        for cid, fn in (("effective", effective), ("l1", l1), ("iou", iou), ("qualitative", qualitative)):
            add(cid, *_cells(sm, fn))
    else:
        for cid in ("effective", "l1", "iou", "qualitative"):
            add(cid, [], [])

    add("isic", [], [])

    if tables.get("patch") is not None:
        sp = summarize_examples(tables["patch"])

        def patch(v, i):
            db, dt = _cell(sp, v, i, "adv2", "l1_benign"), _cell(sp, v, i, "adv2", "l1_target")
            ib, it = _cell(sp, v, i, "adv2", "iou_benign_mean"), _cell(sp, v, i, "adv2", "iou_target_mean")
            if not (np.isfinite(db) and np.isfinite(dt)):
                return None, ""
            return (dt < db and it > ib), f"Δt {_fmt(dt)} vs Δb {_fmt(db)}, IoU target {_fmt(it)} vs benign {_fmt(ib)}"

        add("patch", *_cells(sp, patch))
    else:
        add("patch", [], [])

    if tables.get("random_class") is not None:
        sr = summarize_examples(tables["random_class"])

        def random_class(v, i):
            a, mc = _cell(sr, v, i, "adv2", "asr"), _cell(sr, v, i, "adv2", "mc")
            if not np.isfinite(a):
                return None, ""
            return (a >= 0.95 and np.isfinite(mc) and mc >= 0.9), f"ASR {_fmt(a, True)}, MC {_fmt(mc)}"

        add("random_class", *_cells(sr, random_class))
    else:
        add("random_class", [], [])

    if tables.get("transfer") is not None:
        mats = transfer_matrices(tables["transfer"])
        diag_pass, diag_notes, off_pass, off_notes = [], [], [], []
        for v, m in mats.items():
            for t in [c for c in INTERPRETERS if c in m.columns]:
                col = m[t].dropna()
                if t in col.index:
                    ok = bool(col[t] <= col.min())
                    diag_pass.append(ok)
                    diag_notes.append(f"{LABEL.get(v, v)}/{LABEL[t]}: diagonal {_fmt(col[t])}, column min "
                                      f"{_fmt(col.min())} {'✓' if ok else '✗'}")
                if "pgd" in col.index:
                    for s in [s for s in col.index if s not in (t, "pgd")]:
                        ok = bool(col[s] >= 0.5 * col["pgd"])
                        off_pass.append(ok)
                        off_notes.append(f"{LABEL.get(v, v)}/{LABEL[s]}→{LABEL[t]}: {_fmt(col[s])} vs PGD "
                                         f"{_fmt(col['pgd'])} {'✓' if ok else '✗'}")
        add("transfer_diagonal", diag_pass, diag_notes)
        add("transfer_off_diagonal", off_pass, off_notes)
    else:
        add("transfer_diagonal", [], [])
        add("transfer_off_diagonal", [], [])

    for cid in ("ensemble", "aid", "gap"):
        add(cid, [], [])
    return pd.DataFrame(out)


def verdicts_markdown(table: pd.DataFrame) -> str:
    """The verdicts as MyST Markdown: one short section per claim with its evidence, cell by cell."""
    parts = []
    for _, row in table.iterrows():
        evidence = row["evidence (ours)"]
        cells = [e.strip() for e in evidence.split(";")] if ("✓" in evidence or "✗" in evidence) else []
        body = [f"**{row['item']}: {row['verdict']}.** {row['claim (paper)']}"]
        if row["criterion"]:
            body.append(f"*Criterion:* {row['criterion']}.")
        if cells:
            body.append("\n".join(f"- {c}" for c in cells))
        else:
            body.append(evidence)
        parts.append("\n\n".join(body))
    return "\n\n---\n\n".join(parts)


def _untested_reason(claim_id: str) -> str:
    return {
        "isic": "No ISIC (skin lesion) classifier or data in this reproduction.",
        "ensemble": "The ensemble countermeasure is not implemented here; the transferability table is indirect "
                    "evidence (an input built against one interpreter is exposed by another when off-diagonal "
                    "distances stay large).",
        "aid": "Adversarial interpretation distillation is not implemented (no code or hyperparameters recovered).",
        "gap": "The prediction-interpretation gap analysis was not recovered and is not reproduced.",
    }.get(claim_id, "The experiment that tests this claim has not been run at this scale.")


# =========================================================================== model cards
def victim_cards(profile: str = "embedded") -> pd.DataFrame:
    """One row per embedded victim from its committed model card (``weights/embedded/*.json``)."""
    rows = []
    for name in VICTIMS:
        path = paths.weights_dir() / profile / f"{name}.json"
        if not path.is_file():
            continue
        card = json.loads(path.read_text())
        cfg = card.get("config", {})
        rows.append({
            "victim": LABEL.get(name, name), "architecture": card.get("architecture"),
            "parameters": card.get("parameters"), "dataset": card.get("dataset"),
            "test accuracy": card.get("test_accuracy"), "test images": card.get("test_images"),
            "epochs": cfg.get("epochs"), "training time (s)": card.get("training_seconds"),
            "trained on": card.get("training_device"), "description": card.get("description"),
        })
    return pd.DataFrame(rows)


def rts_cards(profile: str = "embedded") -> list[dict]:
    """The RTS model cards (``weights/<profile>/rts_*.json``), as dictionaries."""
    directory = paths.weights_dir() / profile
    return [json.loads(p.read_text()) for p in sorted(directory.glob("rts_*.json"))] if directory.is_dir() else []


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], dict):
            continue  # histories are plotted, not tabulated
        else:
            out[key] = ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
    return out


def card_table(cards: Sequence[dict], skip: Sequence[str] = ("versions.", "history")) -> pd.DataFrame:
    """Model cards side by side: one row per (flattened) field, one column per card."""
    columns = {}
    for card in cards:
        flat = {k: v for k, v in _flatten(card).items() if not any(k.startswith(s) for s in skip)}
        columns[card.get("name", "?")] = flat
    fields = list(dict.fromkeys(f for c in columns.values() for f in c))
    table = pd.DataFrame({name: [c.get(f, "") for f in fields] for name, c in columns.items()}, index=fields)
    table.index.name = "field"
    return table.astype(str)
