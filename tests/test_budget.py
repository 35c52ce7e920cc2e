"""The budget experiment: ADV2 with a multiple of its preset's stage-2 iterations."""
from __future__ import annotations

import pytest

from adv2lib.attacks import PGDConfig, preset_for, scale_budget


def test_scale_budget_scales_stage_two_only():
    grad = preset_for("embedded", "grad")
    g2 = scale_budget(grad, 2)
    assert [n for _, n in g2.lambda_stages] == [2 * n for _, n in grad.lambda_stages]
    assert [lam for lam, _ in g2.lambda_stages] == [lam for lam, _ in grad.lambda_stages]
    assert g2.steps == 2 * grad.steps and g2.warm_steps == grad.warm_steps
    cam = preset_for("embedded", "cam")
    c4 = scale_budget(cam, 4)
    assert (c4.steps, c4.lambda_start, c4.lambda_end, c4.warm_steps) == (4 * cam.steps, cam.lambda_start,
                                                                       cam.lambda_end, cam.warm_steps)
    mask = preset_for("embedded", "mask")
    m4 = scale_budget(mask, 4)
    assert m4.steps == 4 * mask.steps and m4.late_after == 4 * mask.late_after
    # the same number of full-MASK snapshots: the expensive part does not grow with the budget
    assert m4.steps // m4.recompute_every == mask.steps // mask.recompute_every
    assert scale_budget(cam, 1) == cam


def test_scale_budget_rejects_bad_input():
    with pytest.raises(ValueError, match="positive"):
        scale_budget(preset_for("embedded", "cam"), 0)
    with pytest.raises(TypeError, match="ADV2 config"):
        scale_budget(PGDConfig(), 2)


def test_run_budget_rows_and_its_1x_run_equals_the_main_experiment(tmp_path):
    from adv2lib import experiments

    kwargs = dict(victim="resnet", interpreters=("cam",), n_images=2, smoke=True, device="cpu", batch_size=2,
                  progress=False, results_dir=tmp_path)
    result = experiments.run_budget(factors=(1, 2), **kwargs)
    ex = result.examples
    assert sorted(ex["attack"].unique()) == ["adv2", "pgd"]
    assert sorted(ex.loc[ex["attack"] == "adv2", "budget"].unique()) == [1.0, 2.0]
    assert ex.loc[ex["attack"] == "pgd", "budget"].isna().all()
    steps = ex[ex["attack"] == "adv2"].groupby("budget")["stage2_steps"].first()
    assert steps[2.0] == 2 * steps[1.0]
    assert sorted(map(str, zip(result.summary["attack"], result.summary["budget"]))) == \
        ["('adv2', 1.0)", "('adv2', 2.0)", "('pgd', nan)"]
    assert (ex["linf"] <= preset_for("embedded", "cam").eps + 1e-6).all()

    main = experiments.run_main(**kwargs).examples
    cols = ["index", "target_class", "success", "confidence", "l1_benign"]
    one = ex[(ex["attack"] == "adv2") & (ex["budget"] == 1)][cols].reset_index(drop=True)
    ref = main[main["attack"] == "adv2"][cols].reset_index(drop=True)
    assert one.equals(ref)
    pgd = ex[ex["attack"] == "pgd"][cols].reset_index(drop=True)
    assert pgd.equals(main[main["attack"] == "pgd"][cols].reset_index(drop=True))

    with pytest.raises(ValueError, match="positive"):
        experiments.run_budget(factors=(0,), **kwargs)
