"""The attack chapters' tables and figures (adv2lib.report.tables, plotting), on small rows with known answers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection

from adv2lib import paper_numbers, plotting, stats
from adv2lib.report import tables

T9 = paper_numbers.TABLE9["values"]


def _main(l1=None, victims=("resnet",), interps=("grad", "cam"), fail=()):
    """Main-experiment rows: 4 images per victim x interpreter x attack; ``l1[attack]`` the four L1
    values; ``fail`` the (attack, position) pairs whose attack failed."""
    l1 = l1 or {"pgd": [0.4, 0.4, 0.4, 0.4], "adv2": [0.1, 0.3, 0.1, 0.3]}
    rows = []
    for v in victims:
        for i in interps:
            for a in ("pgd", "adv2"):
                for pos in range(4):
                    ok = (a, pos) not in fail
                    rows.append(dict(experiment="main", profile="embedded", victim=v, interpreter=i, attack=a,
                                     index=100 + pos, position=pos, success=ok, confidence=0.95 if ok else 0.1,
                                     l1_benign=l1[a][pos], l1_target=l1[a][pos],
                                     iou_benign_mean=0.2 if a == "pgd" else 0.6, iou_target_mean=0.5,
                                     iou_benign_05=0.1 * pos, iou_benign_10=0.5))
    return pd.DataFrame(rows)


def _transfer(victims=("resnet",)):
    """Transfer rows: ADV2 inputs crafted against GRAD and CAM, and PGD's, explained by GRAD and CAM;
    L1 = 0.05 on the diagonal, 0.3 elsewhere, plus the position / 100."""
    rows = []
    for v in victims:
        for source in ("grad", "cam", None):
            for i in ("grad", "cam"):
                for pos in range(3):
                    rows.append(dict(victim=v, interpreter=i, attack="adv2" if source else "pgd",
                                     source_interpreter=source, position=pos, success=True,
                                     l1_benign=(0.05 if source == i else 0.3) + pos / 100))
    return pd.DataFrame(rows)


def _one(frame, **where):
    sel = frame
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, where
    return sel.iloc[0]


# =========================================================================== tables
def test_main_table_gives_each_mean_and_rate_with_its_interval_in_book_order():
    rows = _main(victims=("densenet", "resnet"), fail=[("adv2", 1)])
    t = tables.main_table(rows)
    assert list(dict.fromkeys(t["victim"])) == ["resnet", "densenet"]
    assert list(dict.fromkeys(t["attack"])) == ["pgd", "adv2"]
    asr = _one(t, victim="resnet", interpreter="cam", attack="adv2", metric="asr")
    wilson = stats.rate(k=3, n=4)
    assert (asr["estimate"], asr["lo"], asr["hi"], asr["n"]) == (0.75, wilson.lo, wilson.hi, 4)
    l1 = _one(t, victim="resnet", interpreter="cam", attack="adv2", metric="l1_benign")
    assert l1["estimate"] == pytest.approx((0.1 + 0.1 + 0.3) / 3) and l1["n"] == 3   # the failed image left out
    assert l1["lo"] <= l1["estimate"] <= l1["hi"] and l1["lo"] < l1["hi"]


def test_show_main_table_one_column_per_metric_and_attack():
    shown = tables.show_main_table(_main(fail=[("adv2", 1)])).data
    assert list(shown.columns) == ["victim", "interpreter", "ASR, PGD", "ASR, ADV2", "MC, PGD", "MC, ADV2"]
    row = shown[(shown["interpreter"] == "CAM")].iloc[0]
    assert row["ASR, ADV2"].startswith("75% [") and row["MC, PGD"].startswith("0.950")


def test_l1_ratio_is_the_ratio_of_means_on_the_images_both_attacks_reach():
    rows = _main(l1={"pgd": [0.4, 0.4, 0.2, 0.8], "adv2": [0.1, 0.3, 9.0, 0.2]}, fail=[("adv2", 2)])
    r = _one(tables.l1_ratios(rows), interpreter="cam")
    # image 2 is left out (ADV2 failed): (0.1 + 0.3 + 0.2) / (0.4 + 0.4 + 0.8)
    assert r["estimate"] == pytest.approx(0.6 / 1.6) and r["n"] == 3
    assert r["lo"] <= r["estimate"] <= r["hi"]
    # the paper's Table 9 diagonal over its PGD row: reading B as stored, reading A with CAM and MASK swapped
    assert r["paper_B"] == pytest.approx(T9["cam"]["cam"] / T9["pgd"]["cam"])
    assert r["paper_A"] == pytest.approx(T9["cam"]["mask"] / T9["pgd"]["mask"])
    g = _one(tables.l1_ratios(rows), interpreter="grad")
    assert g["paper_A"] == g["paper_B"] == pytest.approx(T9["grad"]["grad"] / T9["pgd"]["grad"])
    shown = tables.show_l1_ratios(rows).data
    assert list(shown.columns) == ["interpreter", "paper, Table 9, reading A", "paper, Table 9, reading B",
                                   "ours, ResNet"]
    assert shown.iloc[1]["ours, ResNet"].startswith("0.38 [")


def test_table9_values_under_both_readings():
    b, a = tables.table9_values("B"), tables.table9_values("A")
    assert b == T9
    for source, row in T9.items():
        assert (a[source]["cam"], a[source]["mask"]) == (row["mask"], row["cam"])
        assert (a[source]["grad"], a[source]["rts"]) == (row["grad"], row["rts"])
    with pytest.raises(ValueError, match="reading"):
        tables.table9_values("C")


def test_table7_puts_both_readings_beside_ours():
    rows = _main(l1={"pgd": [0.4] * 4, "adv2": [0.12] * 4})
    rows["l1_target"] = np.where(rows["attack"] == "adv2", 0.04, 0.5)
    t = tables.table7(rows)
    readings = paper_numbers.TABLE7["readings"]
    cam_t = _one(t, interpreter="cam", metric="l1_target")
    assert cam_t["estimate"] == pytest.approx(0.04)
    assert (cam_t["paper_A"], cam_t["paper_B"]) == (readings["A"]["delta_t"]["cam"], readings["B"]["delta_t"]["cam"])
    assert _one(t, interpreter="grad", metric="l1_benign")["paper_A"] == readings["A"]["delta_b"]["grad"]
    shown = tables.show_table7(rows).data
    assert list(shown.columns) == ["interpreter", "metric", "paper, reading A", "paper, reading B", "ours, ResNet"]
    assert shown.iloc[0]["metric"].startswith("Δb")


def test_table7_readings_say_which_paper_value_our_interval_holds():
    rows = _main(l1={"pgd": [0.4] * 4, "adv2": [0.3] * 4}, interps=("grad", "cam"))
    rows.loc[(rows["attack"] == "adv2") & (rows["interpreter"] == "cam"), "l1_target"] = [0.03, 0.05, 0.03, 0.05]
    t = tables.table7_readings(rows)
    assert set(t["interpreter"]) == {"cam"}                 # GRAD reads the same in both readings
    delta_t = t[t["metric"] == "l1_target"].set_index("reading")
    assert delta_t.loc["A", "paper"] == 0.04 and bool(delta_t.loc["A", "inside"])        # 0.04 in [0.03, 0.05]
    assert delta_t.loc["B", "paper"] == 0.15 and not bool(delta_t.loc["B", "inside"])
    assert t["paper_claim"].all()                           # the paper's Δt < Δb in both readings
    assert "yes" in set(tables.show_table7_readings(rows).data["paper inside our 95% interval"])


def test_table8_beside_the_paper():
    t = tables.table8(_main(fail=[("adv2", 0)]), ["asr", "mc", "l1_target"])
    asr = _one(t, interpreter="grad", metric="asr")
    assert asr["estimate"] == 0.75 and asr["paper"] == paper_numbers.TABLE8["asr"]["grad"]
    assert np.isnan(_one(t, interpreter="grad", metric="l1_target")["paper"])   # the paper reports none
    shown = tables.show_table8(_main(), ["asr"]).data
    assert list(shown.columns) == ["interpreter", "metric", tables.PAPER_ROW, "ours, ResNet"]
    assert shown.iloc[0][tables.PAPER_ROW] == "100%"


def test_transfer_table_and_table9_keep_pgd_last_and_the_paper_beside():
    t = tables.table9(_transfer())
    assert list(dict.fromkeys(t["source_interpreter"].fillna("PGD"))) == ["grad", "cam", "PGD"]
    diag = _one(t, source_interpreter="cam", interpreter="cam")
    assert diag["estimate"] == pytest.approx(0.06) and diag["n"] == 3 and diag["lo"] <= 0.06 <= diag["hi"]
    assert diag["paper"] == T9["cam"]["cam"]
    pgd = _one(t[t["attack"] == "pgd"], interpreter="grad")
    assert pgd["estimate"] == pytest.approx(0.31) and pgd["paper"] == T9["pgd"]["grad"]
    m = tables.transfer_matrices(_transfer())["resnet"]
    assert list(m.index) == ["grad", "cam", "pgd"] and list(m.columns) == ["grad", "cam"]
    assert m.loc["grad", "cam"] == pytest.approx(0.31)
    shown = tables.show_table9(_transfer()).data
    assert list(shown["numbers"][:2]) == [tables.PAPER_ROW, "ours, ResNet"]
    assert list(dict.fromkeys(shown["built against"])) == ["GRAD", "CAM", "PGD"]


def test_iou_by_k_averages_successful_images_per_k():
    rows = _main(fail=[("adv2", 3)])
    t = tables.iou_by_k(rows)
    assert sorted(set(t["k"])) == [0.05, 0.1]
    first = _one(t, interpreter="grad", attack="adv2", k=0.05)
    assert first["estimate"] == pytest.approx((0.0 + 0.1 + 0.2) / 3) and first["n"] == 3   # image 3 failed
    assert first["lo"] <= first["estimate"] <= first["hi"]


def test_confidence_profile_counts_successful_images_only():
    rows = _main()
    adv = (rows["attack"] == "adv2") & (rows["interpreter"] == "cam")
    rows.loc[adv & (rows["position"] == 0), "confidence"] = 0.5
    rows.loc[adv & (rows["position"] == 1), ["success", "confidence"]] = [False, 0.01]
    t = tables.confidence_profile(rows, threshold=0.9)
    share = _one(t, interpreter="cam", attack="adv2", metric="confident")
    assert (share["estimate"], share["lo"], share["n"]) == (2 / 3, stats.rate(k=2, n=3).lo, 3)
    assert _one(t, interpreter="cam", attack="adv2", metric="min_confidence")["estimate"] == 0.5
    assert _one(t, interpreter="cam", attack="adv2", metric="mc")["estimate"] == pytest.approx((0.5 + 0.95 * 2) / 3)
    shown = tables.show_confidence_profile(rows).data
    assert list(shown.columns)[-1] == "successful images" and "share p(ct) ≥ 0.9" in shown.columns


def test_attack_times_count_pgd_once_and_average_per_image():
    main = _main(victims=("resnet", "densenet"))
    # PGD rows repeat the shared PGD run's time under every interpreter; ADV2 times differ per interpreter.
    main["seconds"] = [0.5 if a == "pgd" else 1.0 + ("grad", "cam").index(i) for a, i in zip(main["attack"],
                                                                                          main["interpreter"])]
    main["cpu_seconds"] = main["seconds"] * 2
    patch = main.assign(experiment="patch", seconds=main["seconds"] * 10, cpu_seconds=main["cpu_seconds"] * 10)
    t = tables.attack_times({"main": main, "patch": patch, "transfer": _transfer()})
    pgd = t[t["attack"] == "PGD"]
    assert list(pgd["experiment"]) == ["main", "main"] and list(pgd["images"]) == [4, 4]
    assert pgd["wall s / image"].tolist() == [0.5, 0.5]
    row = t[(t["experiment"] == "patch") & (t["victim"] == "DenseNet") & (t["attack"] == "ADV2 vs CAM")].iloc[0]
    assert row["wall s / image"] == 20.0 and row["CPU s / image"] == 40.0 and row["wall min (total)"] == 80 / 60
    assert set(t["experiment"]) == {"main", "patch"}   # transfer has no attack of its own


def test_no_compound_label_of_version_1_is_accepted():
    old = _main()
    old.loc[old["attack"] == "adv2", "attack"] = "adv2 x2"
    with pytest.raises(ValueError, match="adv2 x2"):
        tables.main_table(old)
    old_transfer = _transfer().rename(columns={"source_interpreter": "source"})
    with pytest.raises(ValueError, match="source_interpreter"):
        tables.transfer_table(old_transfer)


# =========================================================================== figures
def _bars_and_ranges(ax):
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    segments = [s for c in ax.collections if isinstance(c, LineCollection) for s in c.get_segments()]
    return heights, segments


def test_l1_bars_draw_the_estimates_with_their_intervals_and_the_floors():
    rows = _main(victims=("resnet", "densenet"))
    est = tables.main_table(rows, ["l1_benign"])
    fig = plotting.l1_bars(rows, floors={("densenet", "cam"): 0.07})
    titles = [ax.get_title() for ax in fig.axes if ax.patches]
    assert titles == ["GRAD | ResNet", "CAM | ResNet", "GRAD | DenseNet", "CAM | DenseNet"]
    ax = [a for a in fig.axes if a.get_title() == "CAM | DenseNet"][0]
    heights, segments = _bars_and_ranges(ax)
    sel = est[(est["victim"] == "densenet") & (est["interpreter"] == "cam")]
    assert heights == sorted(round(v, 6) for v in sel["estimate"])
    spans = sorted((round(min(s[:, 1]), 6), round(max(s[:, 1]), 6)) for s in segments)
    assert spans == sorted((round(lo, 6), round(hi, 6)) for lo, hi in zip(sel["lo"], sel["hi"]))
    assert [line.get_ydata()[0] for line in ax.get_lines()] == [0.07]               # the noise floor, dotted
    assert not [a for a in fig.axes if a.get_title() == "GRAD | ResNet"][0].get_lines()
    plt.close(fig)


def test_iou_curves_draw_one_curve_per_attack_with_intervals_per_k():
    rows = _main(fail=[("adv2", 3)])
    fig = plotting.iou_curves(rows)
    ax = fig.axes[0]
    assert ax.get_title() == "GRAD"
    curves = {tuple(np.round(line.get_ydata(), 6)) for line in ax.get_lines()}
    est = tables.iou_by_k(rows)
    adv = est[(est["interpreter"] == "grad") & (est["attack"] == "adv2")]
    assert tuple(np.round(adv["estimate"], 6)) in curves
    segments = [s for c in ax.collections if isinstance(c, LineCollection) for s in c.get_segments()]
    spans = {(round(s[0, 0], 6), round(min(s[:, 1]), 6), round(max(s[:, 1]), 6)) for s in segments}
    assert {(round(k, 6), round(lo, 6), round(hi, 6)) for k, lo, hi in zip(adv["k"], adv["lo"], adv["hi"])} <= spans
    plt.close(fig)


def test_reference_bars_show_l1_and_iou_to_both_maps():
    fig = plotting.reference_bars(_main(victims=("resnet", "densenet")))
    titles = [ax.get_title() for ax in fig.axes if ax.patches]
    assert titles == ["(a) L1 distance | ResNet", "(b) mean IoU | ResNet", "(a) L1 distance | DenseNet",
                      "(b) mean IoU | DenseNet"]
    heights, segments = _bars_and_ranges(fig.axes[1])
    assert heights == [0.5, 0.5, 0.6, 0.6]              # IoU with the target 0.5, with the benign map 0.6
    plt.close(fig)


def test_transfer_heatmap_annotates_intervals_and_colours_by_ratio_to_pgd():
    fig = plotting.transfer_heatmaps(_transfer())
    ax = fig.axes[0]
    t = tables.transfer_table(_transfer())
    diag = _one(t, source_interpreter="grad", interpreter="grad")
    assert f"{diag['estimate']:.3f}\n[{diag['lo']:.3f}, {diag['hi']:.3f}]" in [x.get_text() for x in ax.texts]
    colours = ax.images[0].get_array()
    assert np.isclose(colours[0, 0], np.log2(0.06 / 0.31)) and np.isclose(colours[2, 1], 0.0)
    plt.close(fig)
