"""The intervals every number of the book carries (adv2lib/stats.py), the tidy estimates built on
them (report/estimates.py), the verdict rule (report/cells.py) and the presentation layer."""
from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from adv2lib import chapters, rows, stats
from adv2lib.report import cells, estimates, present


@pytest.mark.parametrize("module", [stats, rows, chapters, estimates, cells, present], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_wilson_matches_the_closed_form():
    k, n, z = 7, 20, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    iv = stats.rate(k=k, n=n)
    assert iv.lo == pytest.approx(centre - half, abs=1e-9) and iv.hi == pytest.approx(centre + half, abs=1e-9)
    assert stats.rate(k=20, n=20).hi == pytest.approx(1.0) and stats.rate(k=20, n=20).lo < 1


def test_bootstrap_is_seeded_and_covers_the_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(0.4, 0.1, 100)
    a, b = stats.mean(x), stats.mean(x)
    assert a == b                                            # a rebuild prints the same interval
    assert a.lo < x.mean() < a.hi
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))          # the normal-theory width, roughly
    assert (a.hi - a.lo) / 2 == pytest.approx(half, rel=0.2)


def test_coverage_of_the_ratio_interval_is_near_95_percent():
    """Over repeated draws from a known population, the paired ratio interval contains the true
    ratio about 95 % of the time (a wide tolerance: 60 draws)."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(60):
        b = rng.uniform(0.5, 1.5, 60)
        a = 0.4 * b + rng.normal(0, 0.05, 60)
        iv = stats.paired(a, b)
        hits += iv.lo <= 0.4 <= iv.hi
    assert hits >= 50


def test_paired_keeps_only_images_where_both_are_defined():
    a = np.array([1.0, np.nan, 2.0, 4.0])
    b = np.array([2.0, 3.0, np.nan, 8.0])
    iv = stats.paired(a, b)
    assert iv.n == 2 and iv.estimate == pytest.approx(5 / 10)
    with pytest.raises(ValueError, match="same images"):
        stats.paired([1.0], [1.0, 2.0])


def test_decide_is_three_valued_and_refuses_unknown_sides():
    iv = stats.Interval(0.5, 0.45, 0.55, 40)
    assert stats.decide(iv, 0.4, ">=") == "holds"
    assert stats.decide(iv, 0.6, ">=") == "does not hold"
    assert stats.decide(iv, 0.5, ">=") == "inconclusive at n = 40"
    assert stats.decide(stats.Interval(float("nan"), float("nan"), float("nan"), 0), 0.5, "<=").startswith("inconclusive")
    with pytest.raises(ValueError):
        stats.decide(iv, 0.5, "==")


def test_claim_verdicts_combine_cells():
    assert cells.claim_verdict(["holds", "holds"]) == "holds"
    assert cells.claim_verdict(["does not hold", "does not hold"]) == "does not hold"
    assert cells.claim_verdict(["inconclusive at n = 8", "inconclusive at n = 8"]) == "inconclusive at n = 8"
    assert cells.claim_verdict(["holds", "does not hold", "inconclusive at n = 8"]) == \
        "partly (1 of 3 cells hold, 1 do not, 1 inconclusive)"
    assert cells.combine(["holds", "inconclusive at n = 20"]) == "inconclusive at n = 20"
    assert cells.combine(["holds", "does not hold"]) == "does not hold"


def test_a_paper_bar_has_no_sensitivity_line():
    row = cells.judge("patch", {"victim": "resnet"}, "Δt − Δb", stats.Interval(-0.1, -0.2, -0.05, 50),
                      cells.Bar(0.0, "<", "paper: Table 7"))
    assert row["verdict"] == "holds" and not row["ours"] and row[cells.LOOSER] == ""


def test_estimates_use_successful_rows_for_maps_and_all_rows_for_asr():
    df = pd.DataFrame({"victim": "v", "interpreter": "cam", "attack": "adv2", "position": range(4),
                       "success": [True, True, False, True], "confidence": [0.9, 0.8, 0.1, 0.7],
                       "l1_benign": [0.1, 0.2, 0.9, 0.3]})
    est = estimates.estimates(df, ["victim", "interpreter", "attack"], ["asr", "mc", "l1_benign"]).set_index("metric")
    assert est.loc["asr", "estimate"] == 0.75 and est.loc["asr", "n"] == 4
    assert est.loc["mc", "estimate"] == pytest.approx(0.8) and est.loc["l1_benign", "n"] == 3
    assert est.loc["l1_benign", "lo"] <= 0.2 <= est.loc["l1_benign", "hi"]


def test_schema_refuses_the_old_compound_labels():
    for bad in ("adv2 x2", "hold@0.9", "select@argmax", "adv2 preset", "adv2 cam"):
        with pytest.raises(ValueError, match="outside the schema"):
            rows.check(pd.DataFrame({"attack": [bad]}))


def test_interval_text_formats_and_missing_values():
    assert present.interval_text(0.5, 0.4, 0.6, "{:.0%}") == "50% [40%, 60%]"
    assert present.interval_text(float("nan"), 0, 1) == "–"
    assert present.interval_text(0.25, float("nan"), float("nan")) == "0.250"
