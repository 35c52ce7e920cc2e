"""Figures, display tables and the paper-vs-ours report, on small hand-made result frames."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from adv2lib import paper_numbers, plotting, report

INTERPS = ("grad", "cam")


def _summary():
    rows = []
    for v, base in (("resnet", 0.0), ("densenet", 0.01)):
        for i, interp in enumerate(INTERPS):
            rows.append(dict(victim=v, interpreter=interp, attack="pgd", n=4, asr=1.0, mc=0.99,
                             l1_benign=0.30 + base + i / 10, l1_benign_std=0.02, iou_benign_mean=0.2,
                             l1_target=0.30, l1_target_std=0.01, iou_target_mean=0.1))
            rows.append(dict(victim=v, interpreter=interp, attack="adv2", n=4, asr=0.75, mc=0.9,
                             l1_benign=0.10 + base + i / 10, l1_benign_std=0.01, iou_benign_mean=0.6,
                             l1_target=0.05, l1_target_std=0.01, iou_target_mean=0.7))
    return pd.DataFrame(rows)


def _examples(l1_adv=0.1, l1_pgd=0.3, asr_adv=True, conf=0.95, victims=("resnet",)):
    """Per-example rows shaped like ``ExperimentResult.examples`` of the main experiment."""
    rows = []
    for v in victims:
        for interp in INTERPS:
            for pos in range(4):
                for attack, l1, ok in (("pgd", l1_pgd, True), ("adv2", l1_adv, asr_adv)):
                    rows.append(dict(experiment="main", profile="embedded", victim=v, interpreter=interp,
                                     attack=attack, index=100 + pos, position=pos, true_class=1, target_class=2,
                                     prediction=2 if ok else 1, success=ok, confidence=conf, l1_benign=l1,
                                     l1_target=l1, iou_benign_mean=0.8 if attack == "adv2" else 0.1,
                                     iou_target_mean=0.8 if attack == "adv2" else 0.1, iou_benign_05=0.5))
    return pd.DataFrame(rows)


def _figures(n=2):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=g)
    f = {}
    for interp, size in (("grad", 14), ("cam", 7)):
        m = lambda: torch.rand(n, 1, size, size, generator=g)  # noqa: E731
        f[interp] = {"x": x, "x_pgd": x.clone(), "x_adv": x.clone(), "benign_map": m(), "pgd_map": m(),
                     "adv_map": m(), "target_map": m(), "target_image": x.clone(),
                     "true_class": torch.tensor([1, 3]), "target_class": torch.tensor([2, 4]),
                     "source_class": torch.tensor([5, 6]), "index": torch.tensor([100, 101])}
    return f


def _result(victim="resnet"):
    examples = _examples(victims=(victim,))
    return SimpleNamespace(experiment="main", profile="embedded", victim=victim, examples=examples,
                           summary=report.summarize_examples(examples), figures=_figures(), seconds=1.0,
                           config={}, iou=pd.DataFrame(), matrix=None)


def test_rate_table_places_each_value():
    html = plotting.rate_table(_summary()).to_html()
    table = plotting.rate_table(_summary()).data
    assert table.loc[("densenet", "adv2"), ("cam", "asr")] == 0.75
    assert table.loc[("resnet", "pgd"), ("grad", "mc")] == 0.99
    assert list(table.index) == [("resnet", "pgd"), ("resnet", "adv2"), ("densenet", "pgd"), ("densenet", "adv2")]
    assert "75%" in html and "GRAD" in html


def test_l1_bars_heights_are_the_summary_means():
    s = _summary()
    fig = plotting.l1_bars(s)
    axes = [ax for ax in fig.axes if ax.patches]
    assert [ax.get_title() for ax in axes] == ["ResNet", "DenseNet"]
    heights = sorted(round(p.get_height(), 6) for p in axes[1].patches)
    expected = sorted(round(v, 6) for v in s[s.victim == "densenet"]["l1_benign"])
    assert heights == expected


def test_iou_curves_average_successful_examples_per_k():
    iou = pd.DataFrame([dict(victim="resnet", interpreter="cam", attack=a, reference="benign", k=k, iou=val,
                             success=ok)
                        for a, val in (("pgd", 0.2), ("adv2", 0.6)) for k in (0.1, 0.2)
                        for ok in (True, False)])
    iou.loc[~iou.success, "iou"] = 99.0  # failed attacks must not count
    fig = plotting.iou_curves(iou)
    lines = fig.axes[0].get_lines()
    assert {line.get_label() for line in lines} == {"PGD", "ADV2"}
    for line in lines:
        assert np.allclose(line.get_ydata(), 0.6 if line.get_label() == "ADV2" else 0.2)


def test_transfer_heatmap_annotates_values_and_colours_by_ratio_to_pgd():
    m = pd.DataFrame([[0.05, 0.4], [0.3, 0.1], [0.2, 0.4]], index=["grad", "cam", "pgd"], columns=["grad", "cam"])
    fig = plotting.transfer_heatmaps({"resnet": m})
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(f"{v:.3f}" for v in m.to_numpy().ravel())
    colours = ax.images[0].get_array()
    assert np.isclose(colours[0, 0], np.log2(0.05 / 0.2)) and np.isclose(colours[2, 1], 0.0)


@pytest.mark.parametrize("fn, columns", [(plotting.attack_grid, 6), (plotting.patch_grid, 4),
                                         (plotting.random_class_grid, 4)])
def test_example_grids_have_one_row_per_interpreter(fn, columns):
    fig = fn(_result())
    assert len(fig.axes) == len(INTERPS) * columns
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "Trouser" in titles  # class 1 of Fashion-MNIST: the benign label is named


def test_one_picture_reports_prediction_and_distance():
    fig = plotting.one_picture(_result(), interpreter="cam")
    titles = [ax.get_title() for ax in fig.axes]
    assert any("Pullover" in t and "0.95" in t for t in titles)      # ct = 2, p = 0.95
    assert any("0.100" in t for t in titles) and any("0.300" in t for t in titles)


def test_show_panel_overlays_an_upsampled_map():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    plotting.show_panel(ax, torch.rand(1, 28, 28), torch.rand(1, 7, 7), title="t")
    assert len(ax.images) == 2 and ax.images[1].get_array().shape == (28, 28)
    plt.close(fig)


def test_preset_table_lists_every_attack_and_the_budget():
    table = plotting.preset_table("embedded", smoke=True)
    assert list(table.columns) == ["PGD", "ADV2-GRAD", "ADV2-CAM", "ADV2-MASK", "ADV2-RTS"]
    from adv2lib.attacks import preset_for

    assert table.loc["eps", "PGD"] == f"{preset_for('embedded', 'pgd', smoke=True).eps:.4g}"
    assert "×" in table.loc["lambda_stages", "ADV2-GRAD"]


# =========================================================================== report
def test_save_and_load_round_trip(tmp_path):
    results = [_result("resnet"), _result("densenet")]
    path = report.save_experiment(results, "embedded", True, tmp_path, n_images=4)
    assert path.parent == report.tables_dir("embedded", True, tmp_path)
    examples, meta = report.load_experiment("main", "embedded", True, tmp_path)
    assert len(examples) == sum(len(r.examples) for r in results)
    assert meta["n_images"] == {"resnet": 4, "densenet": 4} and meta["smoke"] is True
    assert meta["interpreters"] == ["grad", "cam"]
    assert report.available("embedded", True, tmp_path) == ["main"]
    assert report.available("embedded", False, tmp_path) == []
    with pytest.raises(FileNotFoundError, match="adv2lib book --smoke"):
        report.load_experiment("patch", "embedded", True, tmp_path)


def test_scale_text_states_images_and_scale():
    text = report.scale_text({"n_images": {"resnet": 4, "densenet": 4}, "smoke": True, "profile": "embedded"})
    assert text.startswith("4 images per victim") and "smoke" in text and "Fashion-MNIST" in text
    assert "full scale" in report.scale_text({"n_images": {"resnet": 100}, "smoke": False, "profile": "embedded"})


def test_table7_puts_paper_and_ours_side_by_side():
    ex = _examples(l1_adv=0.12)
    ex["l1_target"] = np.where(ex["attack"] == "adv2", 0.04, 0.5)
    t = report.table7(ex)
    # both readings of the extracted text: A left to right, B with the CAM and MASK cells swapped
    assert t.loc[("Δt (to the target)", report.PAPER_ROW + ", reading A"), "CAM"] == paper_numbers.TABLE7["delta_t"]["cam"]
    assert t.loc[("Δt (to the target)", report.PAPER_ROW + ", reading B"), "CAM"] == paper_numbers.TABLE7["delta_t"]["mask"]
    assert t.loc[("Δb (to the benign map)", report.PAPER_ROW + ", reading B"), "MASK"] == 0.42
    assert t.loc[("Δb (to the benign map)", "ours (ResNet)"), "GRAD"] == pytest.approx(0.12)
    assert t.loc[("Δt (to the target)", "ours (ResNet)"), "CAM"] == pytest.approx(0.04)
    assert np.isnan(t.loc[("Δt (to the target)", "ours (ResNet)"), "RTS"])  # not run here
    text = report.table7_readings(ex)
    assert "reading A: yes" in text and "reading B: yes" in text and "ResNet/CAM" in text


def test_table9_matches_paper_numbers_module():
    rows = []
    for src in ("grad", "cam", "pgd"):
        for tgt in ("grad", "cam"):
            rows.append(dict(victim="resnet", source=src, target=tgt, success=True, position=0,
                             l1_benign=0.05 if src == tgt else 0.3))
    t = report.table9(pd.DataFrame(rows))
    assert t.loc[("source: MASK", report.PAPER_ROW), "RTS"] == paper_numbers.TABLE9["values"]["mask"]["rts"]
    assert t.loc[("source: CAM", "ours (ResNet)"), "CAM"] == pytest.approx(0.05)
    assert t.loc[("source: PGD", "ours (ResNet)"), "GRAD"] == pytest.approx(0.3)


@pytest.mark.parametrize("l1_adv, expected", [(0.1, "holds"), (0.2, "does not hold")])
def test_l1_claim_verdict_follows_the_rule(l1_adv, expected):
    v = report.verdicts({"main": _examples(l1_adv=l1_adv, l1_pgd=0.3)}).set_index("item")
    assert v.loc["(g)3 interpretation similarity, L1 measure", "verdict"] == expected


def test_partly_when_some_cells_pass():
    ex = _examples(l1_adv=0.1, l1_pgd=0.3)
    ex.loc[(ex.interpreter == "cam") & (ex.attack == "adv2"), "l1_benign"] = 0.29
    v = report.verdicts({"main": ex}).set_index("item")
    assert v.loc["(g)3 interpretation similarity, L1 measure", "verdict"] == "partly"
    assert "✗" in v.loc["(g)3 interpretation similarity, L1 measure", "evidence (ours)"]


def test_every_claim_gets_a_verdict_and_missing_experiments_are_not_tested():
    v = report.verdicts({"main": _examples()})
    assert len(v) == len(paper_numbers.CLAIMS)
    assert set(v["verdict"]) <= {"holds", "partly", "does not hold", "not tested"}
    untested = v[v["item"].str.contains("Table 7|Table 8|Table 9|ISIC|ensemble")]
    assert (untested["verdict"] == "not tested").all()


def test_transfer_verdicts():
    rows = []
    for src in ("grad", "cam", "pgd"):
        for tgt in ("grad", "cam"):
            l1 = 0.05 if src == tgt else 0.3
            rows.append(dict(victim="resnet", source=src, target=tgt, success=True, position=0, l1_benign=l1))
    v = report.verdicts({"transfer": pd.DataFrame(rows)})
    by = dict(zip(v["criterion"], v["verdict"]))
    assert by[report.RULES["transfer_diagonal"]] == "holds"
    assert by[report.RULES["transfer_off_diagonal"]] == "holds"


def test_paper_tables_have_every_interpreter():
    for table in (paper_numbers.TABLE7, paper_numbers.TABLE8):
        for key in set(table) - {"caption", "source", "readings", "reading_notes"}:
            assert set(table[key]) == set(paper_numbers.INTERPRETER_ORDER)
    # Table 7's two readings differ only by swapping the CAM and MASK cells of each row
    a, b = paper_numbers.TABLE7["readings"]["A"], paper_numbers.TABLE7["readings"]["B"]
    for key in ("delta_b", "delta_t"):
        assert set(a[key]) == set(b[key]) == set(paper_numbers.INTERPRETER_ORDER)
        assert (a[key]["cam"], a[key]["mask"]) == (b[key]["mask"], b[key]["cam"])
        assert all(a[key][i] == b[key][i] for i in ("grad", "rts"))
        assert a[key] == paper_numbers.TABLE7[key]          # reading A is the left-to-right default
    assert set(paper_numbers.TABLE9["values"]) == set(paper_numbers.TABLE9["rows"])
    # the ordering kept for the ambiguous columns puts each row's smallest value on the diagonal
    for src in paper_numbers.INTERPRETER_ORDER:
        row = paper_numbers.TABLE9["values"][src]
        assert min(row, key=row.get) == src


def test_verdicts_markdown_lists_each_claim_with_its_cells():
    v = report.verdicts({"main": _examples(l1_adv=0.1, l1_pgd=0.3)})
    text = report.verdicts_markdown(v)
    assert text.count("---") == len(v) - 1
    assert "**(g)3 interpretation similarity, L1 measure: holds.**" in text
    assert "- ResNet/CAM: L1 ADV2 0.100 vs PGD 0.300 ✓" in text


def test_verdicts_markdown_keeps_a_note_with_a_semicolon_in_one_bullet():
    import pandas as pd

    row = {"item": "(g)12 x", "claim (paper)": "claim [P]", "verdict": "holds", "criterion": "rule",
           "evidence (ours)": "ResNet: spread x1.61; budgets never ✓; DenseNet: spread x1.70; CAM 26/255 ✓",
           "measured cause": ""}
    text = report.verdicts_markdown(pd.DataFrame([row]))
    assert "- ResNet: spread x1.61; budgets never ✓\n- DenseNet: spread x1.70; CAM 26/255 ✓" in text


def test_one_rule_per_claim_in_the_paper_order():
    assert [r.claim for r in report.CLAIM_RULES] == [c.id for c in paper_numbers.CLAIMS]
    for rule, claim in zip(report.CLAIM_RULES, paper_numbers.CLAIMS):
        tested = rule.cells is not None
        assert tested == claim.tested == bool(rule.criterion) == (rule.experiment is not None), rule.claim
    assert set(report.RULES) == {r.claim for r in report.CLAIM_RULES if r.cells is not None}


def test_a_rule_added_to_the_list_is_judged_like_the_others(monkeypatch):
    from adv2lib.report import claims as rules

    always = rules.ClaimRule("gap", "main", "every cell passes",
                             rules.per_victim_interpreter(lambda ev, v, i: (True, f"{ev.value(v, i, 'adv2', 'asr'):.2f}")))
    monkeypatch.setattr(rules, "CLAIM_RULES", (always,))
    v = report.verdicts({"main": _examples(asr_adv=False)})
    assert v["verdict"].tolist() == ["holds"] and v["criterion"].tolist() == ["every cell passes"]
    assert v["evidence (ours)"].iloc[0] == "ResNet/GRAD: 0.00 ✓; ResNet/CAM: 0.00 ✓"


def test_run_chapter_runs_each_victim_saves_and_says_what_ran(tmp_path, monkeypatch, capsys):
    from adv2lib import experiments

    calls = []

    def fake_run_main(victim, **kwargs):
        calls.append((victim, kwargs))
        return _result(victim)

    monkeypatch.setattr(experiments, "run_main", fake_run_main)
    run = report.run_chapter("main", victims=["resnet", "densenet"], interpreters=["grad", "cam"], n_images=4,
                             smoke=True, results_dir=tmp_path, device="cpu")
    assert [v for v, _ in calls] == ["resnet", "densenet"]
    assert "engine" not in calls[0][1] and calls[0][1]["progress"] is False and calls[0][1]["n_images"] == 4
    assert run.summary.equals(plotting.combine(run.results, "summary"))
    assert run.examples.equals(plotting.combine(run.results, "examples"))
    assert report.available("embedded", True, tmp_path) == ["main"] and run.tables.is_file()
    assert run.scale == report.scale_text(run.results, smoke=True)
    assert run.line == f"This run: {run.scale}; wall time resnet 1 s, densenet 1 s."
    assert "Markdown" in capsys.readouterr().out          # displayed (outside a notebook: its repr)
    report.run_chapter("main", victims="resnet", results_dir=tmp_path, engine="ray", show=False)
    assert calls[-1][0] == "resnet" and calls[-1][1]["engine"] == "ray" and "n_images" not in calls[-1][1]
    with pytest.raises(ValueError, match="unknown experiment 'mian'"):
        report.run_chapter("mian")


def test_attack_times_count_pgd_once_and_average_per_image():
    main = _examples(victims=("resnet", "densenet"))
    # PGD rows repeat the shared PGD run's time under every interpreter; ADV2 times differ per interpreter.
    main["seconds"] = [0.5 if a == "pgd" else 1.0 + INTERPS.index(i) for a, i in zip(main["attack"], main["interpreter"])]
    main["cpu_seconds"] = main["seconds"] * 2
    patch = main.assign(experiment="patch", seconds=main["seconds"] * 10, cpu_seconds=main["cpu_seconds"] * 10)
    transfer = pd.DataFrame({"victim": ["resnet"], "source": ["cam"], "target": ["grad"], "l1_benign": [0.1]})
    t = report.attack_times({"main": main, "patch": patch, "transfer": transfer})
    pgd = t[t["attack"] == "PGD"]
    assert list(pgd["experiment"]) == ["main", "main"] and list(pgd["images"]) == [4, 4]
    assert pgd["wall s / image"].tolist() == [0.5, 0.5]
    row = t[(t["experiment"] == "patch") & (t["victim"] == "DenseNet") & (t["attack"] == "ADV2 vs CAM")].iloc[0]
    expected = 10 * (1.0 + INTERPS.index("cam"))
    assert row["wall s / image"] == expected and row["CPU s / image"] == 2 * expected
    assert row["wall min (total)"] == 4 * expected / 60
    assert set(t["experiment"]) == {"main", "patch"}   # transfer has no attack of its own


def test_confidence_profile_counts_successful_images_only():
    ex = _examples(conf=0.95)
    ex.loc[(ex["attack"] == "adv2") & (ex["position"] == 0), "confidence"] = 0.5
    ex.loc[(ex["attack"] == "adv2") & (ex["position"] == 1), ["success", "confidence"]] = [False, 0.01]
    t = report.confidence_profile(ex, threshold=0.9).set_index(["interpreter", "attack"])
    row = t.loc[("CAM", "ADV2")]
    assert row["successful"] == 3 and row["min p(ct)"] == 0.5
    assert row["share p(ct) >= 0.9"] == 2 / 3 and abs(row["MC"] - (0.5 + 0.95 + 0.95) / 3) < 1e-12
    assert t.loc[("CAM", "PGD"), "share p(ct) >= 0.9"] == 1.0


def _budget_examples():
    rows = []
    for interp in INTERPS:
        for pos in range(3):
            rows.append(dict(victim="resnet", interpreter=interp, attack="pgd", budget=0.0, success=True,
                             confidence=0.97, l1_benign=0.3, seconds=0.0, stage2_steps=np.nan))
            for f, l1 in ((1, 0.2), (2, 0.15), (4, 0.1)):
                rows.append(dict(victim="resnet", interpreter=interp, attack=f"adv2 x{f}", budget=float(f),
                                 success=True, confidence=0.9, l1_benign=l1 + pos / 100, seconds=f * 1.0,
                                 stage2_steps=100 * f))
    return pd.DataFrame(rows)


def test_budget_table_and_sentences():
    t = report.budget_table(_budget_examples())
    grad = t[t["interpreter"] == "GRAD"].set_index("attack")
    assert list(grad.index) == ["PGD", "ADV2, 1x", "ADV2, 2x", "ADV2, 4x"]
    assert grad.loc["ADV2, 4x", "stage-2 iterations"] == 400 and grad.loc["PGD", "stage-2 iterations"] == "–"
    assert grad.loc["ADV2, 2x", "L1 to benign"] == pytest.approx(0.16)
    assert grad.loc["ADV2, 2x", "L1 / PGD"] == pytest.approx(0.16 / 0.3)
    assert grad.loc["ADV2, 4x", "wall s / image"] == 4.0
    text = report.budget_sentences(t)
    assert text.count("\n") == len(INTERPS) - 1
    assert "0.210 (1x) → 0.160 (2x) → 0.110 (4x)" in text and "-48%" in text and "0.70 → 0.37" in text
    assert "keeps falling" in text and "levels off" not in text
    flat = _budget_examples()
    flat.loc[flat["attack"] == "adv2 x4", "l1_benign"] = flat.loc[flat["attack"] == "adv2 x2", "l1_benign"].to_numpy() - 0.001
    text = report.budget_sentences(report.budget_table(flat))
    assert "levels off" in text and "keeps falling" not in text


def test_budget_curves_plot_one_point_per_budget_and_the_pgd_line():
    fig = plotting.budget_curves(_budget_examples())
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [1.0, 2.0, 4.0]
    assert np.allclose(line.get_ydata(), [0.21, 0.16, 0.11])
    assert any(np.allclose(l.get_ydata(), 0.3) for l in ax.get_lines()[1:])   # the PGD reference
    assert len(fig.axes) == 2 * len(INTERPS)
    matplotlib.pyplot.close(fig)


def test_l1_ratios_put_the_paper_table9_ratio_beside_ours():
    t = report.l1_ratios(_examples(l1_adv=0.1, l1_pgd=0.4, victims=("resnet", "densenet")))
    values = paper_numbers.TABLE9["values"]
    assert t.loc["GRAD", report.PAPER_ROW + ", Table 9"] == pytest.approx(values["grad"]["grad"] / values["pgd"]["grad"])
    assert t.loc["CAM", "ours (ResNet)"] == pytest.approx(0.25) and t.loc["CAM", "ours (DenseNet)"] == pytest.approx(0.25)
    assert np.isnan(t.loc["MASK", "ours (ResNet)"])   # no MASK rows in these examples


def test_iteration_budgets_are_read_from_the_presets():
    from adv2lib.attacks import preset_for

    text = report.iteration_budgets("embedded", "imagenet", ("grad", "mask"))
    g, m = preset_for("embedded", "grad").steps, preset_for("embedded", "mask").steps
    assert text == (f"GRAD {g} stage-2 steps instead of {preset_for('imagenet', 'grad').steps}, "
                    f"MASK {m} outer iterations instead of {preset_for('imagenet', 'mask').steps}")
