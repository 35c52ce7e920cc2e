"""The paper's claims judged with intervals (report/claims.py): rules, bars with sources, verdicts
that can say "inconclusive", sensitivity of our bars, on hand-made rows with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adv2lib import paper_numbers, report, stats
from adv2lib.report import cells, claims


def _main_rows(n=40, l1_adv=0.1, l1_pgd=0.3, noise=0.02, interps=("grad", "cam"), victims=("resnet",), seed=0):
    """Rows shaped like the main experiment's table: per image, a PGD and an ADV2 row."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in victims:
        for i in interps:
            for pos in range(n):
                base = rng.normal(0, noise)
                for attack, l1 in (("pgd", l1_pgd), ("adv2", l1_adv)):
                    rows.append(dict(victim=v, interpreter=i, attack=attack, position=pos, success=True,
                                     confidence=0.97, l1_benign=l1 + base + rng.normal(0, noise),
                                     iou_benign_mean=0.8 if attack == "adv2" else 0.2))
    return pd.DataFrame(rows)


def _verdict(tables, claim):
    return claims.verdicts(tables).set_index("claim").loc[claim, "verdict"]


def test_l1_holds_when_adv2_is_far_below_half_and_fails_when_far_above():
    assert _verdict({"main": _main_rows(l1_adv=0.1, l1_pgd=0.3)}, "l1") == "holds"
    assert _verdict({"main": _main_rows(l1_adv=0.25, l1_pgd=0.3)}, "l1") == "does not hold"


def test_l1_at_the_bar_is_inconclusive_not_a_pass():
    """The ratio's estimate sits on the bar (0.15 / 0.3): the interval straddles it."""
    v = _verdict({"main": _main_rows(l1_adv=0.15, l1_pgd=0.3, noise=0.05)}, "l1")
    assert v.startswith("inconclusive at n = 40") or v.startswith("partly")
    tests = claims.claim_tests({"main": _main_rows(l1_adv=0.15, l1_pgd=0.3, noise=0.05)})
    l1 = tests[tests["claim"] == "l1"]
    assert (l1["lo"] < 0.5).all() and (l1["hi"] > 0.5).all()


def test_few_images_cannot_decide():
    assert _verdict({"main": _main_rows(n=4, l1_adv=0.1, l1_pgd=0.3)}, "l1").startswith("inconclusive at n = 4")


def test_partly_counts_cells():
    rows = _main_rows(l1_adv=0.1, l1_pgd=0.3)
    rows.loc[(rows.interpreter == "cam") & (rows.attack == "adv2"), "l1_benign"] += 0.2
    assert _verdict({"main": rows}, "l1") == "partly (1 of 2 cells hold, 1 do not, 0 inconclusive)"


def test_every_test_names_its_bar_source_and_our_bars_get_a_sensitivity_line():
    tests = claims.claim_tests({"main": _main_rows()})
    assert tests["bar source"].str.match(r"(our bar|paper|the claim itself)").all()
    ours = tests[tests["ours"]]
    assert len(ours) and (ours[cells.STRICTER] != "").all() and (ours[cells.LOOSER] != "").all()
    v = claims.verdicts({"main": _main_rows()}).set_index("claim")
    assert "20% stricter" in v.loc["l1", "sensitivity"]
    assert "reading B" in v.loc["l1", "bar sources"] and "reading A" in v.loc["l1", "bar sources"]


def test_a_bar_on_a_probability_moves_within_zero_and_one():
    bar = claims.BARS["effective_mc"]
    assert bar.bounded and bar.moved(True).value == pytest.approx(0.92) and bar.moved(False).value == pytest.approx(0.88)
    assert claims.BARS["l1"].moved(True).value == pytest.approx(0.4)


def test_transfer_claims_on_the_typed_rows():
    rows = []
    for src in ("grad", "cam", "pgd"):
        for tgt in ("grad", "cam"):
            for pos in range(30):
                l1 = (0.05 if src == tgt else 0.3) + 0.01 * (pos % 3)
                rows.append(dict(victim="resnet", interpreter=tgt, attack="pgd" if src == "pgd" else "adv2",
                                 source_interpreter=None if src == "pgd" else src, success=True, position=pos,
                                 l1_benign=l1))
    v = claims.verdicts({"transfer": pd.DataFrame(rows)}).set_index("claim")
    assert v.loc["transfer_diagonal", "verdict"] == "holds"
    assert v.loc["transfer_off_diagonal", "verdict"] == "holds"


def test_every_claim_gets_a_verdict_and_missing_experiments_are_not_tested():
    v = claims.verdicts({"main": _main_rows()})
    assert v["claim"].tolist() == [c.id for c in paper_numbers.CLAIMS]
    untested = v[v["claim"].isin(["patch", "random_class", "transfer_diagonal", "isic", "ensemble", "aid"])]
    assert (untested["verdict"] == "not tested").all()


def test_one_rule_per_claim_in_the_paper_order():
    assert [r.claim for r in claims.CLAIM_RULES] == [c.id for c in paper_numbers.CLAIMS]
    for rule, claim in zip(claims.CLAIM_RULES, paper_numbers.CLAIMS):
        assert (rule.tests is not None) == claim.tested == (rule.experiment is not None), rule.claim


def test_evidence_table_shows_the_interval_and_the_bar():
    tests = claims.claim_tests({"main": _main_rows()})
    html = claims.evidence_table(tests, "l1").to_html()
    assert "95% interval" in html and "≤ 0.5" in html and "holds" in html


def test_qualitative_share_uses_a_wilson_interval():
    tests = claims.claim_tests({"main": _main_rows()})
    q = tests[tests["claim"] == "qualitative"].iloc[0]
    iv = stats.rate(k=40, n=40)
    assert q["estimate"] == 1.0 and q["lo"] == pytest.approx(iv.lo)


def test_the_gap_is_judged_per_victim_from_low_transferability_and_disparate_robustness(monkeypatch):
    from adv2lib.report import cells, claims, defences
    from adv2lib.stats import Interval

    bar = cells.Bar(1.0, ">=", "our bar")
    holds, fails = Interval(2.0, 1.5, 2.5, 50), Interval(0.5, 0.2, 0.8, 50)
    wide = Interval(1.0, 0.5, 1.5, 50)

    def low(rows):
        return pd.DataFrame([cells.judge("transfer_off_diagonal", {"victim": v, "interpreter": "cam",
                                                                   "source_interpreter": "grad"}, "entry / PGD", iv, bar)
                             for v, iv in (("resnet", holds), ("densenet", holds))])

    def disparate(rows):
        return pd.DataFrame([cells.judge("disparate", {"victim": v, "interpreter": None}, "spread", iv, bar)
                             for v, iv in (("resnet", holds), ("densenet", fails))])

    monkeypatch.setattr(claims, "_transfer_off_diagonal", low)
    monkeypatch.setattr(defences, "disparate_tests", disparate)
    transfer = pd.DataFrame({"victim": ["resnet", "densenet"]})
    tests = claims.claim_tests({"transfer": transfer, "robustness": pd.DataFrame({"victim": ["resnet"]})})
    gap = tests[tests["claim"] == "gap"]
    assert list(gap["statistic"]) == ["low transferability GRAD→CAM: entry / PGD", "disparate robustness: spread"] * 2
    per_victim = cells.cell_verdicts(gap).set_index("victim")["verdict"]
    assert per_victim.to_dict() == {"resnet": "holds", "densenet": "does not hold"}
    monkeypatch.setattr(defences, "disparate_tests", lambda rows: disparate(rows).assign(
        verdict=lambda d: [cells.judge("disparate", {}, "s", wide, bar)["verdict"]] * len(d)))
    tests = claims.claim_tests({"transfer": transfer, "robustness": pd.DataFrame({"victim": ["resnet"]})})
    assert set(cells.cell_verdicts(tests[tests["claim"] == "gap"])["verdict"]) == {"inconclusive at n = 50"}
    assert "gap" not in set(claims.claim_tests({"transfer": transfer})["claim"])     # robustness not run
