"""This reproduction's own checks (attack budget, confidence trade-off, ablations): the report
functions' tidy estimates with 95% intervals, their tests against bars with sources, the
measured effects for the comparison chapter and the seaborn figures, on hand-made rows with
known answers (issue 22)."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from adv2lib import plotting
from adv2lib.report import ablation, budget, cells
from adv2lib.report.estimates import interval_of

N = 12                                           # images per group
WOBBLE = np.tile([-0.01, 0.0, 0.01], N // 3)     # per-image variation around a group's mean


def _row(**kw) -> dict:
    return {"victim": "resnet", "interpreter": "grad", "success": True, "confidence": 0.97, **kw}


def _close(x, y):
    return x == pytest.approx(y, abs=1e-9)


# --------------------------------------------------------------------------- attack budget
def _budget_rows(l1=((1, 0.20), (2, 0.15), (4, 0.10)), pgd=0.30, interpreters=("grad", "mask")) -> pd.DataFrame:
    rows = []
    for interp in interpreters:
        for pos in range(N):
            rows.append(_row(interpreter=interp, attack="pgd", budget=np.nan, stage2_steps=np.nan, position=pos,
                             confidence=0.99, l1_benign=pgd + WOBBLE[pos], iou_benign_mean=0.2, seconds=5.0))
            for f, value in l1:
                rows.append(_row(interpreter=interp, attack="adv2", budget=float(f), stage2_steps=100.0 * f,
                                 position=pos, l1_benign=value + WOBBLE[pos], iou_benign_mean=0.5, seconds=float(f)))
    return pd.DataFrame(rows)


def test_budget_estimates_are_keyed_by_the_raw_budget_with_paired_ratios():
    est = budget.budget_estimates(_budget_rows())
    grad = est[est["interpreter"] == "grad"]
    keys = list(dict.fromkeys(zip(grad["attack"], grad["budget"].fillna(-1))))
    assert keys == [("pgd", -1), ("adv2", 1.0), ("adv2", 2.0), ("adv2", 4.0)]       # PGD first, then by budget
    l1 = interval_of(grad, attack="adv2", budget=2.0, metric="l1_benign")
    assert _close(l1.estimate, 0.15) and l1.lo < 0.15 < l1.hi and l1.n == N
    ratio = interval_of(grad, budget=4.0, metric="l1_benign ratio")
    assert _close(ratio.estimate, 0.10 / 0.30) and ratio.lo <= ratio.estimate <= ratio.hi and ratio.n == N
    steps = grad.loc[grad["budget"] == 4.0, "stage2_steps"].iloc[0]
    assert steps == 400
    secs = grad[(grad["metric"] == "seconds") & (grad["budget"] == 4.0)].iloc[0]
    assert secs["estimate"] == 4.0 and np.isnan(secs["lo"])                        # a time: no interval
    assert not any(grad.loc[grad["attack"] == "pgd", "metric"] == "seconds")


def test_budget_tests_say_levels_off_only_when_the_last_step_stops_lowering_the_distance():
    falling = budget.budget_tests(_budget_rows()).set_index(["interpreter", "claim", "budget"])
    row = falling.loc[("grad", "levels off", 4.0)]
    assert _close(row["estimate"], 0.10 / 0.15 - 1) and row["verdict"] == "does not hold"
    assert row["bar source"].startswith("our bar") and row["bar"] == -budget.LEVEL_OFF
    flat = budget.budget_tests(_budget_rows(l1=((1, 0.2), (2, 0.15), (4, 0.149)))).set_index(
        ["interpreter", "claim", "budget"])
    assert flat.loc[("grad", "levels off", 4.0), "verdict"] == "holds"
    # the criterion per budget: 0.2/0.3 fails, 0.1/0.3 holds
    assert falling.loc[("grad", "at most half of PGD's distance", 1.0), "verdict"] == "does not hold"
    assert falling.loc[("grad", "at most half of PGD's distance", 4.0), "verdict"] == "holds"
    assert "much closer" in falling.loc[("grad", "at most half of PGD's distance", 4.0), "bar source"]


def test_budget_tables_render_intervals():
    table = budget.budget_table(_budget_rows())
    assert len(table.data) == 2 * 4                                   # one PGD row and three budgets each
    html = table.to_html()
    assert "0.333 [" in html or "0.33 [" in html                    # the 4x ratio with its interval
    html = budget.budget_tests_table(_budget_rows()).to_html()
    assert "levels off" in html and "does not hold" in html and "our bar" in html


def test_budget_curves_draw_the_estimates_their_intervals_and_the_references():
    fig = plotting.budget_curves(_budget_rows(), floors={("resnet", "grad"): 0.01, ("resnet", "mask"): 0.05})
    assert [ax.get_title() for ax in fig.axes] == ["GRAD", "MASK"]
    ax = fig.axes[0]
    curve = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3][0]
    assert np.allclose(np.sort(curve.get_ydata()), [0.10, 0.15, 0.20])
    assert len(ax.collections) >= 1                                   # the interval lines
    references = {ln.get_label(): float(ln.get_ydata()[0]) for ln in ax.get_lines()
                  if not ln.get_label().startswith("_")}
    assert references == {"PGD": pytest.approx(0.3), "noise floor": pytest.approx(0.01)}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1x", "2x", "4x"]
    matplotlib.pyplot.close(fig)


# --------------------------------------------------------------------------- confidence
def _confidence_rows(hold_l1=0.40, returned_l1=0.9) -> pd.DataFrame:
    rows = []
    for pos in range(N):
        w = WOBBLE[pos]
        rows.append(_row(interpreter="cam", attack="pgd", rule=None, level=np.nan, record=None, position=pos,
                         confidence=0.99, l1_benign=1.0 + w))
        rows.append(_row(interpreter="cam", attack="adv2", rule="select", level=0.0, record="returned", position=pos,
                         l1_benign=returned_l1))                     # not read: the level-0 record is
        for level, l1, ok in ((0.0, 0.30, True), (0.97, 0.50, pos % 2 == 0)):
            rows.append(_row(interpreter="cam", attack="adv2", rule="select", level=level, record="level",
                             position=pos, success=ok, l1_benign=l1 + w))
        rows.append(_row(interpreter="cam", attack="adv2", rule="hold", level=0.97, record="returned", position=pos,
                         l1_benign=hold_l1 + w))
    return pd.DataFrame(rows)


def test_confidence_estimates_read_the_selection_records_and_the_held_runs():
    est = ablation.confidence_estimates(_confidence_rows())
    adv = est[est["attack"] == "adv2"]
    assert list(dict.fromkeys(zip(adv["rule"], adv["level"]))) == [("select", 0.0), ("select", 0.97), ("hold", 0.97)]
    assert _close(interval_of(adv, rule="select", level=0.0, metric="l1_benign").estimate, 0.30)   # not 0.9
    reached = interval_of(adv, rule="select", level=0.97, metric="reached")
    assert _close(reached.estimate, 0.5) and reached.n == N and 0 < reached.lo < 0.5 < reached.hi < 1   # Wilson
    ratio = interval_of(adv, rule="hold", level=0.97, metric="l1_benign ratio")
    assert _close(ratio.estimate, 0.40) and ratio.lo <= 0.40 <= ratio.hi
    html = ablation.confidence_table(_confidence_rows()).to_html()
    assert "0.400 [" in html and "argmax only" in html


def test_confidence_curves_start_the_held_curve_at_the_argmax_point():
    fig = plotting.confidence_curves(_confidence_rows(), floors={("resnet", "cam"): 0.0})
    ax = fig.axes[0]
    curves = sorted(tuple(np.round(ln.get_ydata(), 6)) for ln in ax.get_lines() if ln.get_label().startswith("_"))
    assert curves == [(0.3, 0.4), (0.3, 0.5)]                        # held, selected: both from argmax only
    assert any(ln.get_label() == "PGD" and np.isclose(ln.get_ydata()[0], 1.0) for ln in ax.get_lines())
    matplotlib.pyplot.close(fig)


def test_mc_gap_tests_pair_the_images_and_name_their_bar():
    rows = []
    for interp, mc in (("cam", 0.985), ("grad", 0.94)):
        for pos in range(N):
            rows.append(_row(interpreter=interp, attack="adv2", position=pos, confidence=mc + WOBBLE[pos] / 10))
            rows.append(_row(interpreter=interp, attack="pgd", position=pos, confidence=0.99 + WOBBLE[pos] / 10))
    t = ablation.mc_gap_tests(pd.DataFrame(rows)).set_index("interpreter")
    assert _close(t.loc["cam", "estimate"], -0.005) and t.loc["cam", "verdict"] == "holds"
    assert t.loc["grad", "verdict"] == "does not hold"
    assert t.loc["grad", "bar"] == -ablation.MC_TOLERANCE and t.loc["grad", "bar source"].startswith("our bar")
    assert "-0.005 [" in ablation.mc_gap_table(pd.DataFrame(rows)).to_html()


# --------------------------------------------------------------------------- ablations
def _ablation_rows() -> pd.DataFrame:
    rows = []
    for var, l1 in (("preset", 0.6), ("tau 1e-2", 0.35), ("lambda x4", 0.59)):
        for pos in range(N):
            probe = var != "lambda x4"                               # lambda x4 has no probe (ABLATIONS)
            rows.append(_row(attack="adv2", variant=var, position=pos, l1_benign=l1 + WOBBLE[pos], seconds=2.0,
                             l1_surrogate_benign=0.1 if probe else np.nan, l1_surrogate_adv=0.2 if probe else np.nan))
    for var, l1 in (("preset", 1.0), ("tau 1e-2", 0.5)):           # tau changes the maps: its own PGD rows
        for pos in range(N):
            rows.append(_row(attack="pgd", variant=var, position=pos, confidence=0.99, l1_benign=l1 + WOBBLE[pos],
                             l1_surrogate_pgd=0.3))
    for interp, floor, seeded in (("grad", 0.0, False), ("mask", 0.02, True)):
        for pos in range(N):
            rows.append({"victim": "resnet", "interpreter": interp, "attack": "floor", "variant": np.nan,
                         "position": pos, "success": np.nan, "l1_floor": floor + (WOBBLE[pos] if seeded else 0),
                         "iou_floor_mean": 1.0, "seeded": seeded})
    return pd.DataFrame(rows)


def test_ablation_estimates_compare_each_variant_with_its_own_pgd_and_the_preset():
    est = ablation.ablation_estimates(_ablation_rows())
    assert list(dict.fromkeys(est["variant"])) == ["preset", "tau 1e-2", "lambda x4"]      # ABLATIONS order
    ratio = {v: interval_of(est, variant=v, metric="l1_benign ratio").estimate
             for v in ("preset", "tau 1e-2", "lambda x4")}
    assert _close(ratio["preset"], 0.6) and _close(ratio["tau 1e-2"], 0.7) and _close(ratio["lambda x4"], 0.59)
    change = interval_of(est, variant="tau 1e-2", metric="l1_benign change")
    assert _close(change.estimate, 0.1) and change.lo <= 0.1 <= change.hi and change.n == N
    assert est[(est["variant"] == "preset") & (est["metric"] == "l1_benign change")].empty
    assert "0.600 [" in ablation.ablation_table(_ablation_rows()).to_html()


def test_ablation_tests_give_helps_hurts_and_explains_with_their_bars():
    rows = _ablation_rows()
    rows.loc[(rows["variant"] == "tau 1e-2") & (rows["attack"] == "pgd"), "l1_benign"] += 0.5    # same PGD: 0.35
    t = ablation.ablation_tests(rows).set_index(["variant", "claim"])
    assert t.loc[("preset", "at most half of PGD's distance"), "verdict"] == "does not hold"
    assert t.loc[("tau 1e-2", "helps"), "verdict"] == "holds"
    assert _close(t.loc[("tau 1e-2", "helps"), "estimate"], 0.35 - 0.6)
    assert t.loc[("tau 1e-2", "hurts"), "verdict"] == "does not hold"
    assert t.loc[("tau 1e-2", "explains the gap"), "verdict"] == "holds"
    for claim in ("helps", "hurts", "explains the gap"):      # 0.59 vs 0.60: no effect either way
        assert t.loc[("lambda x4", claim), "verdict"] == "does not hold"
    assert t["bar source"].str.startswith("our bar").all()
    assert {cells.STRICTER, cells.LOOSER} <= set(t.columns)
    html = ablation.ablation_tests_table(rows).to_html()
    assert "explains the gap" in html and "-0.250 [" in html and "tau 1e-2" in html
    assert "≤ 0.500" in html and "<=" not in html                  # bars in words, no raw '<' in the HTML


def test_floor_and_probe_estimates():
    fl = ablation.floor_estimates(_ablation_rows())
    grad = interval_of(fl, interpreter="grad", metric="l1_floor")
    assert grad.estimate == 0 and grad.n == N
    assert bool(fl.loc[fl["interpreter"] == "mask", "seeded"].iloc[0])
    assert _close(interval_of(fl, interpreter="mask", metric="l1_floor max").estimate, 0.03)
    assert "jitter seeds 0 and 1" in ablation.floor_table(_ablation_rows()).to_html()
    pr = ablation.probe_estimates(_ablation_rows())
    assert _close(interval_of(pr, variant="preset", metric="l1_surrogate_adv").estimate, 0.2)
    assert _close(interval_of(pr, variant="preset", metric="l1_surrogate_pgd").estimate, 0.3)
    assert interval_of(pr, variant="lambda x4", metric="l1_surrogate_pgd").n == 0     # no probe of its own
    assert "surrogate vs exact (clean)" in ablation.probe_table(_ablation_rows()).to_html()


def test_ablation_bars_draw_one_bar_per_variant_with_intervals_and_the_criterion():
    fig = plotting.ablation_bars(_ablation_rows())
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [0.59, 0.6, 0.7]
    assert len(ax.collections) >= 1
    assert any(ln.get_label() == "criterion" and np.isclose(ln.get_ydata()[0], ablation.CRITERION)
               for ln in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["GRAD: preset", "GRAD: tau 1e-2", "GRAD: lambda x4"]
    matplotlib.pyplot.close(fig)


# --------------------------------------------------------------------------- for the comparison chapter
def test_measured_effects_one_row_per_intervention_with_before_after_and_a_verdict():
    effects = ablation.measured_effects(_confidence_rows(), _ablation_rows(), level=0.97)
    conf = effects[effects["kind"] == "confidence"].iloc[0]
    assert (conf["victim"], conf["interpreter"], conf["claim"]) == ("resnet", "cam", "costs distance")
    assert _close(conf["before"], 0.30) and _close(conf["after"], 0.40) and _close(conf["estimate"], 0.10)
    assert conf["before lo"] <= 0.30 <= conf["before hi"] and conf["verdict"] == "holds"
    abl = effects[effects["kind"] == "ablation"].set_index("variant")
    assert list(abl.index) == ["tau 1e-2", "lambda x4"]
    assert _close(abl.loc["tau 1e-2", "after"], 0.7) and abl.loc["tau 1e-2", "verdict"] == "does not hold"
    assert abl["bar source"].str.startswith("our bar").all()
    html = ablation.effects_table(_confidence_rows(), _ablation_rows(), level=0.97).to_html()
    assert "hold p(ct) ≥ 0.97 (vs argmax only)" in html and "0.300 [" in html and "+0.100 [" in html
    assert ablation.measured_effects(None, None).empty
    # a level the confidence experiment did not hold gives no confidence row
    assert (ablation.measured_effects(_confidence_rows(), None, level=0.9)["kind"] != "confidence").all()


def test_choice_sentence_ranks_the_chosen_interpreters_by_the_main_experiment():
    rows = []
    for interp, l1 in (("grad", 0.7), ("cam", 0.2), ("mask", 0.8), ("rts", 0.4)):
        for pos in range(N):
            rows += [_row(interpreter=interp, attack="adv2", position=pos, l1_benign=l1 + WOBBLE[pos]),
                     _row(interpreter=interp, attack="pgd", position=pos, l1_benign=1.0 + WOBBLE[pos])]
    rows = pd.DataFrame(rows)
    text = ablation.choice_sentence(rows, ["grad", "mask"])
    assert text.startswith("- **ResNet**: MASK 0.80 [") and "GRAD and MASK: the 2 highest" in text
    assert "ranks 1 and 3 of 4" in ablation.choice_sentence(rows, ["mask", "rts"])
    attacked = rows[rows["interpreter"].isin(["rts", "mask"]) | (rows["attack"] == "pgd")]
    assert ablation.ablated(attacked) == ["mask", "rts"]                # the paper's order
    assert ablation.choice_sentence(rows, attacked) == ablation.choice_sentence(rows, ["mask", "rts"])


def test_no_compound_label_in_these_modules():
    import adv2lib

    root = Path(adv2lib.__file__).parent
    old = re.compile(r"select@|hold@|adv2 x\d|adv2 preset|\brequired\b|_required|_rule\b")
    for path in (root / "report" / "budget.py", root / "report" / "ablation.py"):
        assert not old.search(path.read_text()), path.name
