"""The required confidence (ADV2Config.min_confidence, MASK's margin), the selection rule
recorded at several levels, the ablation probes and their report tables (issue 11)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from adv2lib.attacks import ADV2, preset_for
from adv2lib.attacks.config import (EMBEDDED_CONFIDENCE, ADV2Config, MaskADV2Config, margin_for_confidence,
                                    require_confidence)
from adv2lib.errors import ConfigError
from adv2lib.interpreters import CAM, GRAD, MASK
from adv2lib.models import victim_weights_path
from adv2lib.report import ablation

EPS = 0.1


from test_attacks import batch, victim  # noqa: E402,F401  (fixtures)


# --------------------------------------------------------------------------- configs

def test_margin_guarantees_the_confidence():
    for k in (10, 1000):
        for c in (0.8, 0.95, 0.99):
            kappa = margin_for_confidence(c, k)
            # worst case: every other class at the runner-up's logit
            logits = torch.tensor([kappa] + [0.0] * (k - 1), dtype=torch.float64)
            assert torch.softmax(logits, 0)[0].item() == pytest.approx(c, abs=1e-6)
    with pytest.raises(ConfigError):
        margin_for_confidence(1.0, 10)


def test_require_confidence_per_attack_family():
    cam = require_confidence(preset_for("embedded", "cam"), 0.9)
    assert isinstance(cam, ADV2Config) and cam.min_confidence == 0.9
    assert require_confidence(cam, None).min_confidence is None
    mask = require_confidence(preset_for("embedded", "mask"), 0.95, 10)
    assert isinstance(mask, MaskADV2Config) and mask.select_confidence == 0.95
    assert mask.margin == pytest.approx(math.log(9 * 0.95 / 0.05))
    assert require_confidence(mask, None).select_confidence is None


def test_embedded_preset_holds_the_confidence_and_imagenet_does_not():
    for name in ("grad", "cam", "rts"):
        assert preset_for("embedded", name).min_confidence == EMBEDDED_CONFIDENCE
        assert preset_for("imagenet", name).min_confidence is None     # the official code holds none
    with pytest.raises(ConfigError):
        ADV2Config(min_confidence=1.5)


# --------------------------------------------------------------------------- the attack

@pytest.mark.parametrize("which", ["cam", "grad"])
def test_held_confidence_is_met_by_every_selected_iterate(victim, batch, which):
    x, ct = batch
    interp = CAM(victim) if which == "cam" else GRAD(victim)
    few = dict(warm_steps=5, check_every=1)
    few.update(lambda_stages=((0.1, 6), (0.2, 4))) if which == "grad" else few.update(steps=10)
    c = 0.6
    res = ADV2(victim, interp, config=preset_for("embedded", which, min_confidence=c, **few), eps=EPS).attack(x, ct)
    assert (res.confidence[res.selected] >= c - 1e-6).all()
    assert res.success[res.selected].all()


def test_without_min_confidence_the_attack_is_unchanged(victim, batch):
    """``min_confidence=None`` reproduces the argmax-only attack exactly (same images)."""
    x, ct = batch
    cfg = preset_for("embedded", "cam", steps=6, warm_steps=3, min_confidence=None)
    a = ADV2(victim, CAM(victim), config=cfg, eps=EPS).attack(x, ct)
    b = ADV2(victim, CAM(victim), config=cfg, eps=EPS, levels=(None, 0.5)).attack(x, ct)
    assert torch.equal(a.x_adv, b.x_adv)          # recording levels changes nothing


def test_levels_record_the_selection_rule(victim, batch):
    x, ct = batch
    cfg = preset_for("embedded", "cam", steps=8, warm_steps=3, min_confidence=None)
    res = ADV2(victim, CAM(victim), config=cfg, eps=EPS, levels=(None, 0.3, 0.9)).attack(x, ct)
    assert set(res.levels) == {None, 0.3, 0.9}
    found = [res.levels[c]["found"] for c in (None, 0.3, 0.9)]
    # a stricter level is reached by no more images than a looser one
    assert (found[1] <= found[0]).all() and (found[2] <= found[1]).all()
    for c in (0.3, 0.9):
        rec = res.levels[c]
        assert (rec["confidence"][rec["found"]] >= c).all()
    # argmax-only level: the returned iterate's map is the recorded best map where selected
    sel = res.selected
    assert torch.allclose(res.levels[None]["map"][sel], res.adv_map[sel], atol=1e-6)


def test_mask_select_confidence_and_probes(victim, batch):
    x, ct = batch
    cfg = preset_for("embedded", "mask", steps=3, recompute_every=2, inner_steps=1, unrolled_steps=1,
                     bisection_steps=2, warm_steps=2, select_confidence=0.5, margin=0.0)
    res = ADV2(victim, MASK(victim, iterations=4), config=cfg, eps=EPS).attack(x, ct)
    assert (res.confidence[res.selected] >= 0.5).all()
    assert res.probes["inner_map"].shape == res.probes["final_map"].shape == (3, 1, 14, 14)


# --------------------------------------------------------------------------- GRAD's surrogates

def test_softplus_surrogate_leaves_the_exact_map_alone(victim, batch):
    x, ct = batch
    exact = GRAD(victim)(x, ct)
    soft = GRAD(victim, surrogate="softplus", beta=10.0)
    assert torch.equal(soft(x, ct), exact)           # the metric's map is always exact
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(soft.attack_map(xr, ct).sum(), xr)
    assert g.abs().sum() > 0                         # the attack map has a gradient
    assert not torch.equal(soft.attack_map(x, ct), exact)
    with pytest.raises(ValueError):
        GRAD(victim, surrogate="tanh")


# --------------------------------------------------------------------------- tasks

def test_noise_floor_and_ablation_probes(victim, batch):
    from adv2lib.tasks import Batch, Context, WorkerSpec, ablation_batch, noise_floor_batch

    x, ct = batch
    y = (ct + 1) % 10
    ctx = Context(WorkerSpec("embedded", "resnet", True, "cpu"), victim, torch.device("cpu"), "test")
    b = Batch(torch.arange(3), torch.arange(3), x, y, ct)
    rows, _ = noise_floor_batch(ctx, "cam", b)
    assert (rows["l1_floor"] == 0).all() and not rows["seeded"].any()     # CAM is deterministic
    rows, maps = noise_floor_batch(ctx, "mask", b)
    assert rows["seeded"].all() and rows["l1_floor"].sum() > 0     # MASK's jitter seeds differ
    assert maps["maps"].shape[1] == 2
    cfg = preset_for("embedded", "grad", smoke=True)
    rows, tensors = ablation_batch(ctx, ("grad", (("tau", 1e-2),)), b, cfg, 0, probes=("surrogate",),
                                   extra={"variant": "tau"})
    adv = rows[rows["attack"] == "adv2"]
    assert (adv["variant"] == "tau").all()
    assert adv["l1_surrogate_adv"].notna().all() and adv["l1_surrogate_benign"].notna().all()
    assert ctx.interpreter("grad", tau=1e-2).tau == 1e-2 and ctx.interpreter("grad").tau != 1e-2


# --------------------------------------------------------------------------- report

@pytest.mark.skipif(not victim_weights_path("resnet").is_file(), reason="needs the trained embedded ResNet")
def test_confidence_and_ablation_experiments_smoke(tmp_path):
    from adv2lib import experiments

    r = experiments.run_confidence(victim="resnet", n_images=2, smoke=True, results_dir=tmp_path, progress=False,
                                   interpreters=("cam",), levels=(0.9,))
    ex = r.examples
    assert set(ex["attack"]) == {"pgd", "adv2"}
    adv = ex[ex["attack"] == "adv2"]
    runs = set(zip(adv["rule"], adv["level"], adv["record"]))
    assert runs == {("select", 0.0, "returned"), ("select", 0.0, "level"), ("select", 0.9, "level"),
                    ("hold", 0.9, "returned")}
    assert ex.loc[ex["attack"] == "pgd", ["rule", "record"]].isna().all().all()
    r = experiments.run_ablation(victim="resnet", n_images=2, smoke=True, results_dir=tmp_path, progress=False,
                                 interpreters=("grad",))
    assert set(r.examples.loc[r.examples["attack"] == "floor", "interpreter"]) == {"grad", "cam", "mask", "rts"}
    adv = r.examples[r.examples["attack"] == "adv2"]
    assert {v.label for v in experiments.ABLATIONS["grad"]} == set(adv["variant"])
    again = experiments.run_ablation(victim="resnet", n_images=2, smoke=True, results_dir=tmp_path,
                                     progress=False, interpreters=("grad",))
    assert again.batches["computed"] == 0
    # the experiment chapters' noise floors are the ablation's floor runs, read back from the store
    stored = sorted(p.parent for p in tmp_path.rglob("manifest.json"))
    floors = ablation.noise_floors(victims="resnet", smoke=True, results_dir=tmp_path)
    assert sorted(p.parent for p in tmp_path.rglob("manifest.json")) == stored
    rows = r.examples[r.examples["attack"] == "floor"]
    assert floors[("resnet", "mask")] == pytest.approx(float(rows.loc[rows["interpreter"] == "mask", "l1_floor"].mean()))


def test_summarize_takes_rows_without_an_attack_outcome():
    """The ablation of an interpreter without variants stores noise-floor rows only (no
    ``success`` or ``confidence``): their summary still has one row per group."""
    from adv2lib.metrics import summarize

    rows = pd.DataFrame({"victim": "resnet", "interpreter": ["cam", "cam", "mask"], "attack": "floor",
                         "l1_floor": [0.0, 0.0, 0.02]})
    s = summarize(rows).set_index("interpreter")
    assert s.loc["mask", "l1_floor"] == pytest.approx(0.02) and s.loc["cam", "n"] == 2
