"""Figures, display tables and the paper-vs-ours report, on small hand-made result frames."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from adv2lib import chapters, paper_numbers, plotting, report

INTERPS = ("grad", "cam")


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
    assert calls[-1][0] == "resnet" and calls[-1][1]["engine"] == "ray"
    assert calls[-1][1]["n_images"] == chapters.sizes("main", smoke=False)["n_images"]   # the chapter plan's size
    with pytest.raises(ValueError, match="unknown experiment 'mian'"):
        report.run_chapter("mian")


def test_iteration_budgets_are_read_from_the_presets():
    from adv2lib.attacks import preset_for

    text = report.iteration_budgets("embedded", "imagenet", ("grad", "mask"))
    g, m = preset_for("embedded", "grad").steps, preset_for("embedded", "mask").steps
    assert text == (f"GRAD {g} stage-2 steps instead of {preset_for('imagenet', 'grad').steps}, "
                    f"MASK {m} outer iterations instead of {preset_for('imagenet', 'mask').steps}")
