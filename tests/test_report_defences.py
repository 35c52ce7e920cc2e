"""The report side of the paper's second half (issue 22): robustness, the ensemble detector, its
adaptive attack and AID as tidy frames with 95% intervals, the tests of their claims (verdicts
holds / does not hold / inconclusive, bars with sources), and their figures; on synthetic rows
of the experiments' schema (:mod:`adv2lib.rows`) whose answers are known."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from adv2lib import stats  # noqa: E402
from adv2lib.report import cells, defences  # noqa: E402

HOLDS, FAILS = stats.HOLDS, stats.FAILS
PRESET = defences.preset_eps_255("embedded")


# --------------------------------------------------------------------------- synthetic rows

def robustness_rows(l1, pgd_l1=0.4, n=40, asr=None, victims=("resnet",), seed=0):
    """Robustness rows: ADV2's mean L1 ``l1[interpreter][(eps_255, budget)]`` (10 % noise per
    image), its success share ``asr[interpreter][point]`` (default all), PGD at every L-inf budget."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in victims:
        for i, points in l1.items():
            for (eps, f), m in points.items():
                a = (asr or {}).get(i, {}).get((eps, f), 1.0)
                for p in range(n):
                    rows.append(dict(victim=v, interpreter=i, attack="adv2", position=p, success=p < a * n,
                                     confidence=0.98, l1_benign=m * (1 + 0.1 * rng.standard_normal()), eps_255=eps,
                                     budget=f, stage2_steps=int(100 * f)))
                    if f == 1:
                        rows.append(dict(victim=v, interpreter=i, attack="pgd", position=p, success=True,
                                         confidence=0.99, l1_benign=pgd_l1 * (1 + 0.1 * rng.standard_normal()),
                                         eps_255=eps, budget=1.0, stage2_steps=100))
    return pd.DataFrame(rows)


GRID = {(8.0, 1.0): 0.15, (16.0, 1.0): 0.12, (PRESET, 1.0): 0.10, (PRESET, 0.5): 0.25, (PRESET, 2.0): 0.08}


def detection_rows(rates, n=40, victim="resnet", ensemble="all", score_kind="distance", n_cal=40):
    """Detection rows whose successful inputs ``(attack, source_interpreter)`` are flagged at
    ``rates[...]``: flagged inputs score 1 + position/1000, the others 0.1 + position/1000."""
    rows = [dict(victim=victim, kind="detection", ensemble=ensemble, score_kind=score_kind, attack="clean",
                 source_interpreter=None, split="calibration", position=p, success=True, score=0.1 + p / 1000,
                 flagged=False, threshold=0.5) for p in range(n_cal)]
    for (attack, source), rate in {("clean", None): 0.0, **rates}.items():
        for p in range(n):
            flagged = p < rate * n
            rows.append(dict(victim=victim, kind="detection", ensemble=ensemble, score_kind=score_kind,
                             attack=attack, source_interpreter=source, split="evaluation", position=p, success=True,
                             score=(1.0 if flagged else 0.1) + p / 1000, flagged=flagged, threshold=0.5))
    return pd.DataFrame(rows)


def adaptive_rows(l1_adaptive, l1_single, n=20, victim="resnet", left_out=("mask",)):
    """Adaptive ADV2 rows (one per image and interpreter, L1 ``l1_adaptive[i]``) and the single
    attacks' (``l1_single[i]``, +-10 % across images)."""
    rows = [dict(victim=victim, kind="attack", attack="adaptive", interpreter=i, attacked=i not in left_out,
                 position=p, success=True, confidence=0.98, l1_benign=l1, iou_benign_mean=0.5, seconds=2.0)
            for i, l1 in l1_adaptive.items() for p in range(n)]
    rows += [dict(victim=victim, kind="attack", attack="adv2", interpreter=i, position=p, success=True,
                  confidence=0.98, l1_benign=l1 * (1 + 0.05 * ((p % 5) - 2)), iou_benign_mean=0.6, seconds=1.0)
             for i, l1 in l1_single.items() for p in range(n)]
    return pd.DataFrame(rows)


def aid_rows(ratio_before, ratio_after, asr_after=1.0, n=40, victim="resnet", seed=0):
    """AID rows: ADV2's L1 is ``ratio`` x PGD's (per image) under each RTS at 1x, half that at 2x;
    against the hardened RTS the first ``asr_after`` of the images succeed; the deletion test."""
    rng = np.random.default_rng(seed)
    rows = []
    for version, ratio, asr in (("original", ratio_before, 1.0), ("AID", ratio_after, asr_after)):
        pgd_l1 = 0.4 * (1 + 0.1 * rng.standard_normal(n))
        for f in (1.0, 2.0):
            for p, base in enumerate(pgd_l1):
                if f == 1.0:
                    rows.append(dict(victim=victim, interpreter="rts", rts=version, attack="pgd", budget=1.0,
                                     position=p, success=True, confidence=0.99, l1_benign=base, seconds=0.01))
                rows.append(dict(victim=victim, interpreter="rts", rts=version, attack="adv2", budget=f, position=p,
                                 success=p < asr * n, confidence=0.98, l1_benign=base * ratio / f,
                                 iou_benign_mean=0.6, seconds=0.3 * f))
        for rep in ("zero", "blur"):
            rows += [dict(victim=victim, interpreter="rts", rts=version, attack="deletion", replacement=rep,
                          position=p, p_clean=0.9, p_top=0.3 if p % 4 else 0.7, p_random=0.6) for p in range(n)]
    return pd.DataFrame(rows)


def test_docstring_examples():
    import doctest

    result = doctest.testmod(defences, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- our intervals

def test_bootstrap_is_seeded_and_agrees_with_the_paired_ratio_of_stats():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.1, 0.3, 30), rng.uniform(0.3, 0.5, 30)
    a[4] = np.nan                                   # a failed attack: left out of both means
    first = defences.bootstrap(lambda w: defences._ratio(w, a, b), 30, 29)
    assert first == defences.bootstrap(lambda w: defences._ratio(w, a, b), 30, 29)
    ref = stats.paired(a, b)
    assert first.estimate == pytest.approx(ref.estimate) and first.n == ref.n == 29
    assert first.lo < first.estimate < first.hi
    assert first.lo == pytest.approx(ref.lo, abs=0.03) and first.hi == pytest.approx(ref.hi, abs=0.03)


def test_auc_interval_is_sklearns_auc_with_an_interval_over_images():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    clean, attack = rng.normal(size=60), rng.normal(0.8, 1, size=60)
    attack[rng.random(60) < 0.3] = np.nan           # failed attacks
    clean[3] = attack[5] = 0.5                      # a tie counts half
    ok = attack[np.isfinite(attack)]
    iv = defences.auc_interval(clean, attack)
    assert iv.estimate == pytest.approx(roc_auc_score(np.r_[np.zeros(60), np.ones(ok.size)], np.r_[clean, ok]))
    assert iv.lo < iv.estimate < iv.hi and iv.n == ok.size
    perfect = defences.auc_interval([0.1, 0.2, 0.3], [0.7, 0.8, 0.9])
    assert (perfect.estimate, perfect.lo, perfect.hi) == (1.0, 1.0, 1.0)


def _test(verdict_interval, bar=0.5):
    return cells.judge("c", {"victim": "resnet"}, "x", stats.Interval(*verdict_interval, 40),
                       cells.Bar(bar, ">=", "our bar: test"))


def test_either_holds_when_one_part_holds_and_fails_only_when_all_fail():
    holds, fails, open_ = _test((0.8, 0.7, 0.9)), _test((0.2, 0.1, 0.3)), _test((0.5, 0.42, 0.58))
    assert defences.either([fails, holds])["verdict"] == HOLDS
    assert defences.either([fails, holds])["estimate"] == 0.8          # the deciding part's interval
    assert defences.either([fails, fails])["verdict"] == FAILS
    assert defences.either([fails, open_])["verdict"] == "inconclusive at n = 40"
    # the moved bars are or-ed too: 20 % stricter (0.6) the open test fails, the holding one still holds
    assert defences.either([open_, holds])[cells.STRICTER] == HOLDS
    assert defences.either([open_, fails])[cells.STRICTER] == FAILS
    assert defences.either([open_, fails])[cells.LOOSER] == HOLDS            # 0.4
    assert "x 0.20 [0.10, 0.30] >= 0.5: does not hold" in defences.either([fails, holds])["either"]
    with pytest.raises(ValueError):
        defences.either([])


# --------------------------------------------------------------------------- robustness

def test_robustness_estimates_pair_adv2_with_pgd_at_the_same_budget():
    rows = robustness_rows({"cam": {(8.0, 1.0): 0.2, (PRESET, 1.0): 0.1, (PRESET, 2.0): 0.05}}, n=10)
    est = defences.robustness_estimates(rows)
    ratio = est[est["metric"] == "l1_benign ratio"].set_index(["eps_255", "budget"])
    for point in [(8.0, 1.0), (PRESET, 1.0), (PRESET, 2.0)]:
        adv = rows[(rows["attack"] == "adv2") & (rows["eps_255"] == point[0]) & (rows["budget"] == point[1])]
        pgd = rows[(rows["attack"] == "pgd") & (rows["eps_255"] == point[0])]
        assert ratio.loc[point, "estimate"] == pytest.approx(adv["l1_benign"].mean() / pgd["l1_benign"].mean())
        assert ratio.loc[point, "lo"] < ratio.loc[point, "estimate"] < ratio.loc[point, "hi"]
    assert set(est.loc[est["attack"] == "pgd", "metric"]) == {"asr", "mc", "l1_benign"}


def test_robust_budgets_are_decided_by_intervals():
    asr = {"rts": {k: 36 / 40 for k in GRID}}            # 36 of 40: Wilson [0.77, 0.96] straddles 0.9
    rows = robustness_rows({"cam": GRID, "grad": {k: 0.35 for k in GRID}, "rts": GRID}, asr=asr)
    b = defences.robust_budgets(rows).set_index(["interpreter", "sweep", "eps_255", "budget"]).sort_index()
    assert b.loc[("cam", "eps_255", 8.0, 1.0), "verdict"] == HOLDS       # ratio 0.15 / 0.4, ASR 40 of 40
    assert b.loc[("cam", "budget", PRESET, 0.5), "verdict"] == FAILS      # ratio 0.25 / 0.4 > 0.5
    assert b.loc[("cam", "eps_255", 8.0, 1.0), "smallest"] == 8.0
    assert b.loc[("cam", "budget", PRESET, 1.0), "smallest"] == 1.0
    assert (b.loc["grad", "verdict"] == FAILS).all() and b.loc["grad", "smallest"].isna().all()
    assert b.loc[("rts", "eps_255", 8.0, 1.0), "verdict"] == "inconclusive at n = 40"
    tests = defences.robustness_tests(rows)
    assert set(tests["bar source"]) == {defences.BARS["robust_asr"].source, defences.BARS["robust_l1"].source}
    few = defences.robust_budgets(robustness_rows({"cam": GRID}, n=8))   # 8 of 8: Wilson [0.68, 1]
    assert few["verdict"].str.startswith("inconclusive").all()


def test_disparate_test_holds_for_a_wide_spread_and_fails_for_alike_interpreters():
    wide = defences.disparate_tests(robustness_rows({"cam": GRID, "grad": {k: 0.35 for k in GRID}}))
    [row] = wide.to_dict("records")
    assert row["claim"] == "disparate" and row["victim"] == "resnet" and row["verdict"] == HOLDS
    assert row["estimate"] == pytest.approx(3.5, rel=0.1) and "GRAD over that of CAM" in row["statistic"]
    assert row["bar source"].startswith("our bar:") and row[cells.STRICTER] == HOLDS
    alike = defences.disparate_tests(robustness_rows({"cam": GRID, "grad": dict(GRID)}))
    assert alike["verdict"].iloc[0] == FAILS


# --------------------------------------------------------------------------- the ensemble


def test_disparate_grid_steps_arm_reads_the_robust_budgets_intervals():
    # CAM robust from 8/255 on (ratio 0.15 / 0.4), GRAD at none of the grid: two steps and one beyond
    parts = defences.disparate_tests(robustness_rows({"cam": GRID, "grad": {k: 0.35 for k in GRID}}), parts=True)
    steps = parts[parts["statistic"].str.startswith("steps")].iloc[0]
    assert (steps["estimate"], steps["lo"], steps["hi"]) == (3.0, 3.0, 3.0) and steps["verdict"] == HOLDS
    assert steps["bar"] == defences.DISPARATE_STEPS and set(parts["verdict of either"]) == {HOLDS}
    # CAM undecided at 8/255 (36 of 40 succeed: Wilson straddles 0.9), robust from 16/255 on: one or two steps
    asr = {"cam": {(8.0, 1.0): 36 / 40}}
    grid = {(8.0, 1.0): 0.15, (16.0, 1.0): 0.12, (PRESET, 1.0): 0.10}
    parts = defences.disparate_tests(robustness_rows({"cam": grid, "grad": {k: 0.35 for k in grid}}, asr=asr),
                                     parts=True)
    steps = parts[parts["statistic"].str.startswith("steps")].iloc[0]
    assert (steps["lo"], steps["hi"]) == (2.0, 3.0) and steps["verdict"] == HOLDS
    # alike interpreters: neither robust anywhere, no step between them
    alike = defences.disparate_tests(robustness_rows({"cam": {k: 0.35 for k in GRID}, "grad": {k: 0.35 for k in GRID}}),
                                     parts=True)
    steps = alike[alike["statistic"].str.startswith("steps")].iloc[0]
    assert (steps["lo"], steps["hi"]) == (0.0, 0.0) and steps["verdict"] == FAILS

def test_detection_estimates_rates_and_aucs():
    rows = detection_rows({("adv2", "cam"): 0.8, ("pgd", None): 0.05})
    est = defences.detection_estimates(rows)
    assert list(est.loc[est["metric"] == "flagged", "attack"]) == ["clean", "clean", "pgd", "adv2"]  # book order
    flagged = est[(est["metric"] == "flagged") & (est["attack"] == "adv2")].iloc[0]
    assert flagged["estimate"] == 0.8 and flagged["n"] == 40
    iv = stats.rate(k=32, n=40)
    assert (flagged["lo"], flagged["hi"]) == pytest.approx((iv.lo, iv.hi))
    auc = est[est["metric"] == "auc"].set_index(["split", "attack"])["estimate"]
    assert np.isnan(auc[("calibration", "clean")]) and np.isnan(auc[("evaluation", "clean")])
    from adv2lib.ensemble import roc

    clean = rows[(rows["attack"] == "clean") & (rows["split"] == "evaluation")]["score"]
    assert auc[("evaluation", "adv2")] == pytest.approx(roc(clean, rows[rows["attack"] == "adv2"]["score"])["auc"])


def test_ensemble_tests_judge_each_interpreter_attacked_alone():
    rows = detection_rows({("adv2", "grad"): 0.2, ("adv2", "cam"): 0.8, ("adv2", "rts"): 0.5})
    t = defences.ensemble_tests(rows).set_index("interpreter")
    assert set(t["claim"]) == {"ensemble"} and set(t["victim"]) == {"resnet"}
    assert t.loc["cam", "verdict"] == HOLDS and t.loc["grad", "verdict"] == FAILS
    assert t.loc["rts", "verdict"] == "inconclusive at n = 40"
    assert t.loc["cam", "bar"] == defences.DETECTED and t.loc["cam", "bar source"].startswith("our bar:")
    # another score or ensemble is not the claim's
    other = detection_rows({("adv2", "cam"): 0.0}, score_kind="rank")
    assert defences.ensemble_tests(pd.concat([rows, other])).shape[0] == 3


@pytest.mark.parametrize("pgd, verdicts", [
    (0.9, {"grad": FAILS, "cam": HOLDS}),                            # the control holds: ADV2 evades it
    (0.1, {"grad": defences.NO_POWER, "cam": HOLDS}),                # PGD is not caught either: no finding
    (0.5, {"grad": defences.NO_POWER, "cam": HOLDS}),                # the control inconclusive: no finding
])
def test_a_failed_detection_counts_only_when_the_detector_catches_pgd(pgd, verdicts):
    rows = detection_rows({("pgd", None): pgd, ("adv2", "grad"): 0.1, ("adv2", "cam"): 0.9})
    t = defences.ensemble_tests(rows).set_index("interpreter")
    assert t["verdict"].to_dict() == verdicts
    assert t.loc["grad", "control"].startswith("PGD flagged ")
    primary = defences.design_verdicts(rows)
    assert list(primary["primary"]) == [True] and primary.iloc[0]["verdict"] == cells.claim_verdict(verdicts.values())


def test_alternative_designs_are_judged_and_a_change_is_named():
    rows = pd.concat([detection_rows({("pgd", None): 0.9, ("adv2", "grad"): 0.1}),
                      detection_rows({("pgd", None): 0.9, ("adv2", "grad"): 0.9}, score_kind="rank"),
                      detection_rows({("pgd", None): 0.9, ("adv2", "grad"): 0.1}, ensemble="adaptive")],
                     ignore_index=True)
    d = defences.design_verdicts(rows).set_index("design")["verdict"]
    assert d.to_dict() == {"every interpreter, distance score (primary)": FAILS, "every interpreter, rank score": HOLDS,
                           "without MASK, distance score": FAILS}
    assert defences.design_line(rows).endswith("every interpreter, rank score gives holds")
    same = defences.design_line(rows[rows["score_kind"] == "distance"])
    assert same == "Alternative designs in the record (without MASK, distance score): none changes the verdict"


def test_adaptive_estimates_and_tests():
    det = detection_rows({("adaptive", None): 0.1})
    rows = pd.concat([det, adaptive_rows({"cam": 0.2, "grad": 0.1, "mask": 0.9},
                                         {"cam": 0.1, "grad": 0.1, "mask": 0.1})], ignore_index=True)
    est = defences.adaptive_estimates(rows)
    ratio = est[est["metric"] == "l1_benign ratio"].set_index("interpreter")
    assert ratio.loc["cam", "estimate"] == pytest.approx(2.0) and ratio.loc["grad", "estimate"] == pytest.approx(1.0)
    assert not ratio.loc["mask", "attacked"] and ratio.loc["cam", "attacked"]
    parts = defences.adaptive_tests(rows, parts=True)
    assert len(parts) == 3                                   # flagged, and one per attacked interpreter (not MASK)
    assert list(parts["verdict"]) == [FAILS, FAILS, HOLDS] and set(parts["verdict of either"]) == {HOLDS}
    [row] = defences.adaptive_tests(rows).to_dict("records")
    assert row["claim"] == "ensemble_adaptive" and row["verdict"] == HOLDS and "CAM" in row["statistic"]
    # CAM's distance barely moves: no part holds, and MASK's large distance does not count (not attacked)
    calm = rows.copy()
    calm.loc[(calm["attack"] == "adaptive") & (calm["interpreter"] == "cam"), "l1_benign"] = 0.105
    assert defences.adaptive_tests(calm)["verdict"].iloc[0] == FAILS


# --------------------------------------------------------------------------- AID

def test_aid_estimates_ratio_to_pgd_under_the_same_rts():
    est = defences.aid_estimates(aid_rows(0.5, 0.65)).set_index(["rts", "attack", "budget", "metric"])["estimate"]
    assert est[("original", "adv2", 1.0, "l1_benign ratio")] == pytest.approx(0.5)
    assert est[("AID", "adv2", 1.0, "l1_benign ratio")] == pytest.approx(0.65)
    assert est[("AID", "adv2", 2.0, "l1_benign ratio")] == pytest.approx(0.325)     # PGD has one budget
    assert est[("AID", "adv2", 2.0, "seconds")] == pytest.approx(0.6)


@pytest.mark.parametrize("after, longer, verdict, parts", [
    (0.65, None, HOLDS, [HOLDS, FAILS]),                      # ratio +0.15 (at 2x: 0.325, below 0.5)
    (0.55, None, FAILS, [FAILS, FAILS]),                      # +0.05, and 2x buys it back
    (0.55, 1.0, HOLDS, [FAILS, HOLDS]),                       # 2x does not help: the attacker's cost
])
def test_aid_tests_or_the_ratio_rise_and_the_attackers_cost(after, longer, verdict, parts):
    rows = aid_rows(0.5, after)
    if longer is not None:                                     # ADV2 at 2x against AID no closer than at 1x
        more = (rows["rts"] == "AID") & (rows["attack"] == "adv2") & (rows["budget"] == 2.0)
        rows.loc[more, "l1_benign"] *= 2 * longer
    tests = defences.aid_tests(rows, parts=True)
    assert list(tests["verdict"]) == parts and "at 2x iterations" in tests["statistic"].iloc[1]
    [row] = defences.aid_tests(rows).to_dict("records")
    assert (row["claim"], row["victim"], row["interpreter"], row["verdict"]) == ("aid", "resnet", "rts", verdict)


def test_deletion_estimates():
    est = defences.deletion_estimates(aid_rows(0.5, 0.5)).set_index(["rts", "replacement", "metric"])
    assert est.loc[("AID", "zero", "drop_top"), "estimate"] == pytest.approx(0.9 - (0.3 * 30 + 0.7 * 10) / 40)
    assert est.loc[("AID", "zero", "top_hurts_more"), "estimate"] == pytest.approx(0.75)
    assert est.loc[("AID", "zero", "top_hurts_more"), "n"] == 40


def test_aid_cards_carry_wilson_intervals():
    cards = defences.aid_cards("embedded")
    if cards.empty:
        pytest.skip("no hardened RTS cards in weights/embedded")
    acc = cards[cards["metric"] == "preserved_accuracy"]
    assert (acc["lo"] < acc["estimate"]).all() and (acc["estimate"] < acc["hi"]).all()
    assert set(cards["rts"]) == {"original", "AID"}


# --------------------------------------------------------------------------- shown

def test_tables_show_intervals_and_tests_show_bars_and_sources():
    rows = robustness_rows({"cam": GRID, "grad": {k: 0.35 for k in GRID}}, n=10)
    shown = defences.robustness_table(rows).data
    assert shown["ASR"].str.contains(r"\[").all() and "L1 / PGD" in shown.columns
    budgets = defences.robust_budget_table(rows).data
    assert list(budgets.columns[2:5]) == ["8/255", "16/255", f"{PRESET:g}/255"]
    tests = defences.tests_table(defences.aid_tests(aid_rows(0.5, 0.65), parts=True)).data
    assert {"estimate [95% interval]", "bar", "bar source", "verdict", cells.STRICTER, cells.LOOSER,
            "verdict of the cell (any part holds)"} <= set(tests.columns)
    assert tests["bar source"].str.startswith("our bar:").all()
    empty = defences.detection_table(robustness_rows({"cam": GRID}, n=2)).data
    assert len(empty) == 1


def _ranges(fig) -> int:
    """Interval lines drawn (seaborn's Range mark: LineCollections)."""
    from matplotlib.collections import LineCollection

    return sum(isinstance(c, LineCollection) for ax in fig.axes for c in ax.collections)


def test_figures_draw_intervals():
    import matplotlib.pyplot as plt

    from adv2lib import plotting

    rows = robustness_rows({"cam": GRID, "grad": {k: 0.35 for k in GRID}}, n=10, victims=("resnet", "densenet"))
    fig = plotting.robustness_curves(rows, {("resnet", "cam"): 0.05})
    assert len(fig.axes) == 6 and _ranges(fig) >= 6
    assert any(line.get_linestyle() == ":" for ax in fig.axes for line in ax.get_lines())   # the noise floor
    plt.close(fig)
    fig = plotting.aid_bars(aid_rows(0.5, 0.65))
    assert len(fig.axes) == 2 and _ranges(fig) >= 2
    plt.close(fig)
    det = pd.concat([detection_rows({("adv2", "cam"): 0.8, ("adaptive", None): 0.1}, score_kind=k)
                     for k in ("distance", "rank")])
    fig = plotting.roc_curves(det)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(fig.axes) == 2 and any(t.startswith("AUC ") and "[" in t for t in texts)
    plt.close(fig)


def test_the_variant_table_shows_each_network_its_own_rise():
    """The networks appear in the study's order, the tests are sorted by name: each row must carry
    its own network's rise (a positional assignment gave each row another network's)."""
    from adv2lib.report import designs

    original = aid_rows(0.5, 0.5)
    parts = []
    for variant, ratio in (("zeta", 0.8), ("alpha", 0.5), ("mid", 0.65)):
        rows = aid_rows(0.5, ratio)
        rows = rows[(rows["rts"] == "AID") & (rows["budget"] == 1.0) & rows["attack"].isin(["adv2", "pgd"])]
        parts.append(rows.assign(variant=variant, train_seed=0))
    table = designs.variant_table(pd.concat(parts, ignore_index=True), original).data.set_index("variant")
    assert list(table.index) == ["zeta", "alpha", "mid"]
    rise = table["L1 / PGD, hardened − original"].str.split(" ").str[0].astype(float)
    assert rise["zeta"] == pytest.approx(0.3, abs=0.01) and rise["alpha"] == pytest.approx(0.0, abs=0.01)
    assert rise["mid"] == pytest.approx(0.15, abs=0.01)
    assert table.loc["zeta", "verdict (rise ≥ 0.1)"] == "holds"
