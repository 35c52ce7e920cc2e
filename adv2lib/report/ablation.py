"""The confidence trade-off and the ablations: tidy estimates with 95% intervals, and their tests.

Every function takes an experiment's saved rows (:mod:`adv2lib.rows`) and returns a tidy frame
keyed by raw values (victim, interpreter, ``rule``/``level``, ``variant``), or a Styler of one
(the ``*_table`` functions; labels and formats from :mod:`.present`).

* The confidence experiment (:func:`adv2lib.experiments.run_confidence`):
  :func:`confidence_estimates` reads the selection rule's records (``rule = "select"``,
  ``record = "level"``; level 0 is argmax only) and the attacks that hold a level
  (``rule = "hold"``, ``record = "returned"``), with PGD on the same images.
  :func:`mc_gap_tests` tests the main experiment's MC of ADV2 against PGD's.
* The ablation experiment (:func:`adv2lib.experiments.run_ablation`): :func:`floor_estimates`
  (each interpreter's noise floor), :func:`ablation_estimates` (each variant: ASR, MC, L1, its
  ratio to PGD's on the same images and the change of that ratio from the preset's),
  :func:`probe_estimates` (what the probes measured) and :func:`ablation_tests`.
* :func:`measured_effects`, for the comparison chapter: each intervention (holding the preset's
  confidence; each ablation variant) with ADV2's L1 ratio to PGD before and after it on the same
  images, the paired change and its test.

The verdicts are :func:`~adv2lib.report.cells.judge` rows (holds / does not hold / inconclusive
at n = ...), each against a :class:`~adv2lib.report.cells.Bar` that names its source:
:data:`CRITERION_BAR` (ADV2 at most half of PGD's distance), :data:`HELPS_BAR` and
:data:`HURTS_BAR` (a change of the ratio of at least :data:`CHANGE` down or up), and
:data:`MC_BAR` (ADV2's MC within :data:`MC_TOLERANCE` of PGD's).

>>> import pandas as pd
>>> wobble = [0.01 * (k % 3 - 1) for k in range(10)]      # ten images, a little spread
>>> rows = pd.DataFrame({"victim": "resnet", "interpreter": "grad", "position": list(range(10)) * 3,
...                      "success": True, "attack": ["adv2"] * 20 + ["pgd"] * 10,
...                      "variant": ["preset"] * 10 + ["tau 1e-2"] * 10 + ["preset"] * 10,
...                      "l1_benign": [x + w for x in (0.6, 0.3, 1.0) for w in wobble]})
>>> t = ablation_tests(rows).set_index("claim")
>>> round(float(t.loc["helps", "estimate"]), 2), t.loc["helps", "verdict"], t.loc["hurts", "verdict"]
(-0.3, 'holds', 'does not hold')
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from ..names import INTERPRETERS
from . import present
from .cells import LOOSER, STRICTER, Bar, judge
from .estimates import estimates, paired_ratio, row_interval as _interval, successful

__all__ = ["CRITERION", "CHANGE", "MC_TOLERANCE", "CRITERION_BAR", "HELPS_BAR", "HURTS_BAR", "MC_BAR",
           "FLOOR_IMAGES", "noise_floors", "floors", "verdict_table", "confidence_estimates", "confidence_table",
           "mc_gap_tests", "mc_gap_table", "floor_estimates", "floor_table", "ablation_estimates", "ablation_table",
           "probe_estimates", "probe_table", "ablation_tests", "ablation_tests_table", "measured_effects",
           "effects_table", "effects_view", "ablated", "main_ratios", "choice_sentence"]

#: The main experiment's criterion: ADV2's L1 to the benign map at most half of PGD's.
CRITERION = 0.5
#: The smallest change of the L1 ratio to PGD that counts as an effect.
CHANGE = 0.05
#: How close ADV2's MC must come to PGD's in the main experiment.
MC_TOLERANCE = 0.02

CRITERION_BAR = Bar(CRITERION, "<=", "our bar: the paper's 'much closer' read as ADV2 at most half of PGD's distance")
_CHANGE_SOURCE = (f"our bar: a change of at least {CHANGE:g} in the L1 ratio to PGD, a tenth of the criterion's "
                  f"{CRITERION:g} (a smaller change would not move a verdict)")
HELPS_BAR = Bar(-CHANGE, "<=", _CHANGE_SOURCE)
HURTS_BAR = Bar(CHANGE, ">=", _CHANGE_SOURCE)
MC_BAR = Bar(-MC_TOLERANCE, ">=", f"our bar: distances compared at about PGD's confidence, read as ADV2's MC at "
                                  f"most {MC_TOLERANCE:g} below PGD's on the same images")

#: Display names of the metrics of this module's frames (beyond :data:`.present.METRIC_LABELS`).
METRIC_NAMES = {
    "reached": "reached", "l1_benign pgd": "PGD L1", "l1_benign change": "Δ L1 / PGD vs preset",
    "seconds": "wall s / image", "l1_surrogate_benign": "surrogate vs exact (clean)",
    "l1_surrogate_pgd": "(PGD input)", "l1_surrogate_adv": "(ADV2 input)", "l1_inner_full": "inner vs from-scratch",
    "l1_inner_target": "inner → benign", "l1_benign scratch": "from-scratch → benign",
    "l1_benign_nojitter": "jitter-free L1 (ADV2)", "l1_benign_nojitter pgd": "(PGD)",
    "l1_benign_nojitter ratio": "jitter-free L1 / PGD",
}
FORMATS = {"reached": "{:.0%}", "seconds": "{:.2f}", "l1_benign change": "{:+.2f}",
           "l1_benign_nojitter ratio": "{:.2f}"}
_NAN = stats.Interval(float("nan"), float("nan"), float("nan"), 0)


# --------------------------------------------------------------------------- shared helpers
def _ordered(rows: pd.DataFrame, extra: list | None = None) -> pd.DataFrame:
    """``rows`` in book order: victims as they come, interpreters in the paper's order, then ``extra``."""
    rank = {n: k for k, n in enumerate(INTERPRETERS)}
    victims = {v: k for k, v in enumerate(dict.fromkeys(rows["victim"]))}
    keys = {"_v": rows["victim"].map(victims), "_i": rows["interpreter"].map(lambda i: rank.get(i, len(rank)))}
    out = rows.assign(**keys)
    return out.sort_values(["_v", "_i", *(extra or [])], kind="stable").drop(columns=["_v", "_i"])


def _where(rows: pd.DataFrame, **values) -> pd.DataFrame:
    keep = np.ones(len(rows), dtype=bool)
    for col, val in values.items():
        keep &= (rows[col] == val).to_numpy() if col in rows else np.zeros(len(rows), dtype=bool)
    return rows[keep]


def _per_image(rows: pd.DataFrame, metric: str = "l1_benign") -> pd.Series:
    """``metric`` of the successful ``rows`` (NaN for failed attacks), indexed by image position."""
    v = pd.Series(rows[metric].where(successful(rows)).to_numpy(dtype=float), index=rows["position"].to_numpy())
    return v[~v.index.duplicated()]


def _ratio_change(after: tuple, before: tuple, metric: str = "l1_benign") -> tuple:
    """``(before, after, change)`` Intervals of ADV2's ``metric`` ratio to PGD's: ``after`` and
    ``before`` are ``(adv2 rows, pgd rows)``; all three over the images where the four values
    are defined, the change (after - before) with a paired bootstrap over those images."""
    series = [_per_image(r, metric) for pair in (after, before) for r in pair]
    index = series[0].index
    for s in series[1:]:
        index = index.intersection(s.index)
    a1, b1, a0, b0 = (s.reindex(index).to_numpy() for s in series)
    keep = np.isfinite(a1) & np.isfinite(b1) & np.isfinite(a0) & np.isfinite(b0)
    a1, b1, a0, b0 = a1[keep], b1[keep], a0[keep], b0[keep]
    before_iv, after_iv = stats.paired(a0, b0), stats.paired(a1, b1)
    n = int(keep.sum())
    if n == 0:
        return before_iv, after_iv, _NAN
    est = after_iv.estimate - before_iv.estimate
    if n == 1:
        return before_iv, after_iv, stats.Interval(est, float("nan"), float("nan"), 1)

    def change(x1, y1, x0, y0, axis=-1):
        return np.mean(x1, axis=axis) / np.mean(y1, axis=axis) - np.mean(x0, axis=axis) / np.mean(y0, axis=axis)

    lo, hi = stats.bootstrap((a1, b1, a0, b0), change, True)
    return before_iv, after_iv, stats.Interval(est, lo, hi, n)


def _styled_wide(est: pd.DataFrame, index: list, metrics: list, names: dict | None = None):
    """A long estimates frame as one ``estimate [lo, hi]`` column per metric (Styler)."""
    est = est.assign(**{c: est[c].astype(object).where(est[c].notna(), None) for c in index if c in est})
    table = present.wide(est, index, metrics, formats=FORMATS)     # None, unlike NaN, equals itself in a key
    names = {**{present.METRIC_LABELS.get(m, m): METRIC_NAMES[m] for m in metrics if m in METRIC_NAMES},
             "stage2_steps": "stage-2 iterations", **(names or {})}
    return table.rename(columns=names).style.hide(axis="index")


def _bar_text(side: str, value: float, fmt: str) -> str:
    """``"≤ 0.500"``: a bar in words (no raw ``<`` in the HTML)."""
    return f"{_SIDES.get(side, side)} {fmt.format(value)}"


_SIDES = present.SIDES


def verdict_table(tests: pd.DataFrame, keys: list, formats: dict | None = None):
    """:func:`~adv2lib.report.cells.judge` rows shown as a table (Styler): the claim, the cell
    (``keys``), the statistic with its 95% interval and n, the bar and its source, the verdict
    and, for our bars, the verdicts with the bar 20 % stricter and 20 % looser. ``formats`` maps a claim
    to the format of its numbers (default three decimals)."""
    formats = formats or {}
    rows = []
    for _, r in tests.iterrows():
        fmt = formats.get(r["claim"], "{:.3f}")
        row = {"claim": r["claim"], **{k: present.label(r.get(k)) for k in keys}, "statistic": r["statistic"],
               "estimate [95% interval]": present.interval_text(r["estimate"], r["lo"], r["hi"], fmt), "n": r["n"],
               "bar": _bar_text(r["side"], r["bar"], fmt), "verdict": r["verdict"]}
        for col in (STRICTER, LOOSER):
            row[col] = r[col] or "–"
        row["bar source"] = r["bar source"]
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.rename(columns={k: present.COLUMN_LABELS.get(k, k) for k in keys}).style.hide(axis="index")


# --------------------------------------------------------------------------- the confidence trade-off
def _confidence_parts(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ADV2 rows the chapter reads: the selection rule's records and the held levels, PGD rows)."""
    sel = _where(rows, attack="adv2", rule="select", record="level")
    hold = _where(rows, attack="adv2", rule="hold", record="returned")
    adv = pd.concat([sel, hold])
    adv = _ordered(adv.assign(_r=(adv["rule"] == "hold").astype(int)), ["_r", "level"]).drop(columns="_r")
    return adv, rows[rows["attack"] == "pgd"]


def confidence_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim x interpreter x attack x ``rule`` x ``level`` (PGD: no rule or level): the share
    of images that reach the level (``reached``; PGD: its ASR), MC, L1 to and IoU with the benign
    map over those images, and ADV2's L1 ratio to PGD's on the same images (``l1_benign ratio``),
    each with its 95% interval. Level 0 is argmax only."""
    adv, pgd = _confidence_parts(rows)
    metrics = ["asr", "mc", "l1_benign", "iou_benign_mean"]
    by = ["victim", "interpreter", "attack", "rule", "level"]
    parts = [estimates(_ordered(pgd), by[:3], metrics), estimates(adv, by, metrics)]
    if len(adv) and len(pgd):
        parts.append(paired_ratio(adv, by, a_rows=adv, b_rows=pgd.drop(columns=["rule", "level", "record"],
                                                                         errors="ignore")))
    out = pd.concat(parts, ignore_index=True)
    out["metric"] = out["metric"].replace({"asr": "reached"})
    return _ordered(out).reset_index(drop=True)


def confidence_table(rows: pd.DataFrame):
    """:func:`confidence_estimates` as a table (Styler), PGD first in each victim x interpreter."""
    est = confidence_estimates(rows)
    est = est.assign(level=est["level"].astype(object).where(est["level"] != 0, "argmax only"))
    return _styled_wide(est, ["victim", "interpreter", "attack", "rule", "level"],
                        ["reached", "mc", "l1_benign", "l1_benign ratio", "iou_benign_mean"])


def mc_gap_tests(main_rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim x interpreter of the main experiment: ADV2's MC minus PGD's over the images
    both attacks turn into ``ct`` (paired), tested against :data:`MC_BAR` (:func:`judge` rows)."""
    diff = paired_ratio(_ordered(main_rows), ["victim", "interpreter"], metric="confidence", kind="difference")
    return pd.DataFrame([judge(f"MC within {MC_TOLERANCE:g} of PGD's", {"victim": r["victim"],
                                                                        "interpreter": r["interpreter"]},
                               "MC ADV2 − MC PGD (same images)", _interval(r), MC_BAR) for _, r in diff.iterrows()])


def mc_gap_table(main_rows: pd.DataFrame):
    """:func:`mc_gap_tests` as a table (Styler)."""
    return verdict_table(mc_gap_tests(main_rows), ["victim", "interpreter"],
                         {f"MC within {MC_TOLERANCE:g} of PGD's": "{:+.3f}"})


# --------------------------------------------------------------------------- noise floors
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


def floors(rows: pd.DataFrame) -> dict:
    """``{(victim, interpreter): mean L1 floor}`` (raw names) from the ablation rows."""
    fl = rows[rows["attack"] == "floor"]
    return {k: float(g["l1_floor"].mean()) for k, g in fl.groupby(["victim", "interpreter"])}


def floor_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim x interpreter x ``seeded`` (whether the two maps came from two jitter seeds or
    from the same call twice): the mean L1 and IoU between two maps of the same clean image with
    their 95% intervals, and the largest L1 (metric ``l1_floor max``, no interval)."""
    fl = _ordered(rows[rows["attack"] == "floor"])
    if fl.empty:
        return pd.DataFrame(columns=["victim", "interpreter", "seeded", "metric", "estimate", "lo", "hi", "n"])
    fl = fl.assign(seeded=fl["seeded"].astype(bool))
    est = estimates(fl, ["victim", "interpreter", "seeded"], ["l1_floor", "iou_floor_mean"], successful_only=False)
    top = fl.groupby(["victim", "interpreter", "seeded"], sort=False)["l1_floor"].agg(["max", "size"]).reset_index()
    top = top.rename(columns={"max": "estimate", "size": "n"}).assign(metric="l1_floor max", lo=np.nan, hi=np.nan)
    return _ordered(pd.concat([est, top], ignore_index=True)).reset_index(drop=True)


def floor_table(rows: pd.DataFrame):
    """:func:`floor_estimates` as a table (Styler)."""
    est = floor_estimates(rows)
    est = est.assign(seeded=est["seeded"].map({True: "jitter seeds 0 and 1", False: "the same call twice"}))
    return _styled_wide(est, ["victim", "interpreter", "seeded"], ["l1_floor", "l1_floor max", "iou_floor_mean"],
                        {"seeded": "two runs", "l1_floor max": "largest L1"})


# --------------------------------------------------------------------------- the ablations
def _variant_rank(interpreter: str, variant: str) -> int:
    """The position of ``variant`` in :data:`adv2lib.experiments.ABLATIONS` (unknown ones last)."""
    from ..experiments import ABLATIONS

    labels = [v.label for v in ABLATIONS.get(interpreter, ())]
    return labels.index(variant) if variant in labels else len(labels)


def _ablation_parts(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ADV2 rows in book order, the PGD rows each variant is compared with: its own when its
    interpreter's options changed the maps, else the preset's, relabelled with the variant)."""
    adv = rows[rows["attack"] == "adv2"]
    adv = _ordered(adv.assign(_r=[_variant_rank(i, v) for i, v in zip(adv["interpreter"], adv["variant"])]), ["_r"])
    adv = adv.drop(columns="_r")
    pgd = rows[rows["attack"] == "pgd"]
    refs = []
    for (v, i, var), _ in adv.groupby(["victim", "interpreter", "variant"], sort=False):
        own = _where(pgd, victim=v, interpreter=i, variant=var)
        refs.append((own if len(own) else _where(pgd, victim=v, interpreter=i, variant="preset")).assign(variant=var))
    return adv, (pd.concat(refs, ignore_index=True) if refs else pgd.iloc[:0])


def _variant_changes(rows: pd.DataFrame) -> list[tuple]:
    """``(victim, interpreter, variant, before, after, change)`` per non-preset variant
    (:func:`_ratio_change`: the preset's ratio, the variant's, on the same images)."""
    adv, pgd = _ablation_parts(rows)
    out = []
    for (v, i, var), g in adv.groupby(["victim", "interpreter", "variant"], sort=False):
        base = _where(adv, victim=v, interpreter=i, variant="preset")
        if var == "preset" or base.empty:
            continue
        cell = dict(victim=v, interpreter=i)
        out.append((v, i, var, *_ratio_change((g, _where(pgd, variant=var, **cell)),
                                              (base, _where(pgd, variant="preset", **cell)))))
    return out


def ablation_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per victim x interpreter x ``variant``: ADV2's ASR, MC, L1 to the benign map, the L1 of PGD
    under the same interpreter (``l1_benign pgd``), their paired ratio (``l1_benign ratio``), the
    change of that ratio from the preset's on the same images (``l1_benign change``) and the wall
    seconds per image (no interval), with 95% intervals."""
    adv, pgd = _ablation_parts(rows)
    by = ["victim", "interpreter", "variant"]
    if adv.empty:
        return pd.DataFrame(columns=[*by, "metric", "estimate", "lo", "hi", "n"])
    parts = [estimates(adv, by, ["asr", "mc", "l1_benign"]),
             estimates(pgd, by, ["l1_benign"]).assign(metric="l1_benign pgd"),
             paired_ratio(adv, by, a_rows=adv, b_rows=pgd)]
    changes = [{"victim": v, "interpreter": i, "variant": var, "metric": "l1_benign change",
                "estimate": c.estimate, "lo": c.lo, "hi": c.hi, "n": c.n}
               for v, i, var, _, _, c in _variant_changes(rows)]
    secs = adv.groupby(by, sort=False)["seconds"].agg(["mean", "size"]).reset_index() if "seconds" in adv else None
    if secs is not None:
        parts.append(secs.rename(columns={"mean": "estimate", "size": "n"}).assign(metric="seconds", lo=np.nan,
                                                                                   hi=np.nan))
    out = pd.concat([*parts, pd.DataFrame(changes)], ignore_index=True)
    order = {k: n for n, k in enumerate(dict.fromkeys(zip(adv["victim"], adv["interpreter"], adv["variant"])))}
    return (out.assign(_k=[order.get(k, len(order)) for k in zip(out["victim"], out["interpreter"], out["variant"])])
            .sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True))


def ablation_table(rows: pd.DataFrame):
    """:func:`ablation_estimates` as a table (Styler)."""
    return _styled_wide(ablation_estimates(rows), ["victim", "interpreter", "variant"],
                        ["asr", "mc", "l1_benign", "l1_benign pgd", "l1_benign ratio", "l1_benign change", "seconds"])


def ablation_tests(rows: pd.DataFrame) -> pd.DataFrame:
    """The tests of the ablation chapter (:func:`judge` rows, cell keys victim, interpreter,
    variant): the preset at most half of PGD's distance (:data:`CRITERION_BAR`); per variant
    "helps" (the ratio falls by at least :data:`CHANGE`, :data:`HELPS_BAR`), "hurts" (it rises by
    at least that much, :data:`HURTS_BAR`) -- both on the images where the preset and the
    variant succeed -- and "explains the gap" (with the variant, ADV2 meets the criterion)."""
    adv, pgd = _ablation_parts(rows)
    out = []
    base = adv[adv["variant"] == "preset"]
    if len(base):
        for _, r in paired_ratio(base, ["victim", "interpreter", "variant"], a_rows=base, b_rows=pgd).iterrows():
            out.append(judge("at most half of PGD's distance", {k: r[k] for k in ("victim", "interpreter", "variant")},
                             "L1 ADV2 / PGD (same images)", _interval(r), CRITERION_BAR))
    for v, i, var, before, after, change in _variant_changes(rows):
        cell = {"victim": v, "interpreter": i, "variant": var}
        out.append(judge("helps", cell, "Δ L1 / PGD, variant − preset (same images)", change, HELPS_BAR))
        out.append(judge("hurts", cell, "Δ L1 / PGD, variant − preset (same images)", change, HURTS_BAR))
        out.append(judge("explains the gap", cell, "L1 ADV2 / PGD with the variant (same images)", after,
                         CRITERION_BAR))
    return pd.DataFrame(out)


def ablation_tests_table(rows: pd.DataFrame):
    """:func:`ablation_tests` as a table (Styler)."""
    tests = ablation_tests(rows)
    return verdict_table(tests, ["victim", "interpreter", "variant"],
                         {"helps": "{:+.3f}", "hurts": "{:+.3f}"})


def probe_estimates(rows: pd.DataFrame) -> pd.DataFrame:
    """What the probes measured, per victim x interpreter x variant (means over every attacked
    image, successful or not, except the jitter-free distances: successful ones, paired):

    * GRAD: L1 between the attack's surrogate map and the exact map on the clean image (true
      class), the PGD input and the returned ADV2 input (``l1_surrogate_<benign|pgd|adv>``);
    * MASK: L1 between the warm-started inner mask on the final image and MASK rerun from
      scratch (``l1_inner_full``), the inner mask's and the from-scratch map's L1 to the benign
      map (``l1_inner_target``, ``l1_benign scratch``);
    * MASK without jitter as the metric: ADV2's and PGD's L1 and their paired ratio
      (``l1_benign_nojitter``, ``... pgd``, ``... ratio``)."""
    adv, pgd = _ablation_parts(rows)
    by = ["victim", "interpreter", "variant"]
    parts = []

    def has(frame, column):
        return column in frame and frame[column].notna().any()

    for (v, i, var), g in adv.groupby(by, sort=False):
        ref = _where(pgd, victim=v, interpreter=i, variant=var)
        probed = has(g, "l1_surrogate_adv")          # PGD's probe only beside the variant's own
        for column, frame in (("l1_surrogate_benign", g), ("l1_surrogate_pgd", ref), ("l1_surrogate_adv", g),
                              ("l1_inner_full", g), ("l1_inner_target", g)):
            if has(frame, column) and (column != "l1_surrogate_pgd" or probed):
                parts.append(estimates(frame, by, [column], successful_only=False))
        if has(g, "l1_inner_full"):
            parts.append(estimates(g, by, ["l1_benign"], successful_only=False).assign(metric="l1_benign scratch"))
        if has(g, "l1_benign_nojitter"):
            parts += [estimates(g, by, ["l1_benign_nojitter"]),
                      estimates(ref, by, ["l1_benign_nojitter"]).assign(metric="l1_benign_nojitter pgd"),
                      paired_ratio(g, by, "l1_benign_nojitter", a_rows=g, b_rows=ref)]
    if not parts:
        return pd.DataFrame(columns=[*by, "metric", "estimate", "lo", "hi", "n"])
    return pd.concat(parts, ignore_index=True)


def probe_table(rows: pd.DataFrame):
    """:func:`probe_estimates` as a table (Styler; "–" where a probe does not apply)."""
    est = probe_estimates(rows)
    return _styled_wide(est, ["victim", "interpreter", "variant"], list(dict.fromkeys(est["metric"])))


# --------------------------------------------------------------------------- for the comparison chapter
def measured_effects(confidence_rows: pd.DataFrame | None, ablation_rows: pd.DataFrame | None,
                     level: float | None = None) -> pd.DataFrame:
    """Each intervention measured on the main experiment's first images, per victim x interpreter:
    holding ``p(ct) >= level`` (default: the embedded preset's, :data:`~adv2lib.attacks.config.EMBEDDED_CONFIDENCE`)
    against the argmax-only attack (``kind = "confidence"``), and each ablation variant against
    the preset (``kind = "ablation"``). One :func:`judge` row each -- the paired change of ADV2's
    L1 ratio to PGD (after - before, same images) against :data:`HURTS_BAR` (claim "costs
    distance": holding the level raises the ratio) or :data:`HELPS_BAR` (claim "helps": the
    variant lowers it) -- with ``intervention`` (what was changed, in words), ``variant`` /
    ``level`` (raw), and the ratio ``before`` and ``after`` with their 95% intervals
    (``before lo``, ``before hi``, ...). The comparison chapter attaches them to the main
    experiment's L1 and IoU cells of the same victim and interpreter."""
    from ..attacks.config import EMBEDDED_CONFIDENCE

    level = EMBEDDED_CONFIDENCE if level is None else level
    statistic = "Δ L1 ADV2 / PGD, after − before (same images)"
    out = []

    def row(claim, kind, cell, intervention, before, after, change, bar, **raw):
        r = judge(claim, cell, statistic, change, bar)
        r.update(kind=kind, intervention=intervention, **raw)
        for name, iv in (("before", before), ("after", after)):
            r.update({name: iv.estimate, f"{name} lo": iv.lo, f"{name} hi": iv.hi})
        return r

    if confidence_rows is not None and len(confidence_rows):
        adv, pgd = _confidence_parts(confidence_rows)
        for (v, i), g in adv.groupby(["victim", "interpreter"], sort=False):
            free = g[(g["rule"] == "select") & (g["level"] == 0)]
            held = g[(g["rule"] == "hold") & np.isclose(g["level"].astype(float), level)]
            ref = _where(pgd, victim=v, interpreter=i)
            if free.empty or held.empty or ref.empty:
                continue
            before, after, change = _ratio_change((held, ref), (free, ref))
            out.append(row("costs distance", "confidence", {"victim": v, "interpreter": i},
                           f"hold p(ct) ≥ {level:g} (vs argmax only)", before, after, change, HURTS_BAR,
                           level=float(level), variant=None))
    if ablation_rows is not None and len(ablation_rows):
        for v, i, var, before, after, change in _variant_changes(ablation_rows):
            out.append(row("helps", "ablation", {"victim": v, "interpreter": i}, f"{var} (vs the preset)", before,
                           after, change, HELPS_BAR, level=float("nan"), variant=var))
    if not out:
        return pd.DataFrame(columns=["claim", "victim", "interpreter", "kind", "intervention", "variant", "level",
                                     "statistic", "estimate", "lo", "hi", "n", "verdict"])
    return pd.DataFrame(out)


def effects_table(confidence_rows: pd.DataFrame | None, ablation_rows: pd.DataFrame | None,
                  level: float | None = None):
    """:func:`measured_effects` as a table (Styler, :func:`effects_view`)."""
    return effects_view(measured_effects(confidence_rows, ablation_rows, level))


def effects_view(effects: pd.DataFrame):
    """A frame of :func:`measured_effects` (or a selection of its rows) as a table (Styler): each
    intervention with ADV2's L1 ratio to PGD before and after it and the change, each with its
    95% interval, and the change's test against its bar (with the bar's source)."""
    rows = []
    for _, r in effects.iterrows():
        text = {name: present.interval_text(r[name], r[f"{name} lo"], r[f"{name} hi"], "{:.3f}")
                for name in ("before", "after")}
        rows.append({"victim": present.label(r["victim"]), "interpreter": present.label(r["interpreter"]),
                     "intervention": r["intervention"], "L1 / PGD before": text["before"],
                     "L1 / PGD after": text["after"],
                     "change [95% interval]": present.interval_text(r["estimate"], r["lo"], r["hi"], "{:+.3f}"),
                     "n": r["n"], "claim": r["claim"], "bar": _bar_text(r["side"], r["bar"], "{:+.3f}"),
                     "verdict": r["verdict"],
                     STRICTER: r[STRICTER] or "–", LOOSER: r[LOOSER] or "–", "bar source": r["bar source"]})
    return pd.DataFrame(rows).style.hide(axis="index")


def ablated(rows: pd.DataFrame) -> list[str]:
    """The interpreters ADV2 attacked in an experiment's ``rows`` (raw names, the paper's order)."""
    attacked = set(rows.loc[rows["attack"] == "adv2", "interpreter"])
    return [i for i in INTERPRETERS if i in attacked] + sorted(attacked - set(INTERPRETERS))


def main_ratios(main_rows: pd.DataFrame) -> pd.DataFrame:
    """The main experiment's ADV2/PGD L1 ratio per victim x interpreter (paired, 95% intervals)."""
    return paired_ratio(_ordered(main_rows), ["victim", "interpreter"])


def choice_sentence(main_rows: pd.DataFrame, chosen) -> str:
    """Markdown: per victim, the main experiment's interpreters by decreasing ADV2/PGD L1 ratio
    (with 95% intervals) and the ranks of the ``chosen`` ones among them (by point estimate);
    ``chosen``: interpreter names, or an experiment's rows (the interpreters it attacked, :func:`ablated`)."""
    chosen = ablated(chosen) if isinstance(chosen, pd.DataFrame) else list(chosen)
    ratios = main_ratios(main_rows)
    lines = []
    for v, g in ratios.groupby("victim", sort=False):
        g = g.sort_values("estimate", ascending=False).reset_index(drop=True)
        listed = ", ".join(f"{present.label(r['interpreter'])} "
                           f"{present.interval_text(r['estimate'], r['lo'], r['hi'], '{:.2f}')}"
                           for _, r in g.iterrows())
        ranks = [int(g.index[g["interpreter"] == c][0]) + 1 for c in chosen if c in set(g["interpreter"])]
        names = " and ".join(present.label(c) for c in chosen if c in set(g["interpreter"]))
        where = (f"the {len(ranks)} highest" if sorted(ranks) == list(range(1, len(ranks) + 1))
                 else "ranks " + " and ".join(map(str, ranks)) + f" of {len(g)}")
        lines.append(f"- **{present.label(v)}**: {listed}; {names}: {where}.")
    return "\n".join(lines)
