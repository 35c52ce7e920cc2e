"""Invariants of the attacks: eps-ball, [0, 1], inputs untouched, mode restored, determinism,
early stopping, the ADV2 interpretation term working, presets matching the spec."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adv2lib.attacks import ADV2, PGD, AttackResult, describe, preset_for, quantize_8bit
from adv2lib.attacks.config import ADV2Config, MaskADV2Config, PGDConfig
from adv2lib.attacks.loop import BestIterate, attack_mode, cw_margin, project, smoothed_cross_entropy
from adv2lib.interpreters import Interpreter
from adv2lib.models import build_victim, victim_weights_path

EPS = 0.1


class LinearVictim(nn.Module):
    """A linear classifier on 28x28 images: easy to fool, exact per-example gradients."""

    profile = "embedded"
    num_classes = 10

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(784, 10)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(10, 784, generator=g) * 0.5)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1))


class PooledImage:
    """A toy map function: the image itself, 2x2-average-pooled (differentiable, class-blind)."""

    name = "toy"
    native_size = (14, 14)

    def __call__(self, x, target):
        return F.avg_pool2d(x, 2)


class PooledInterpreter(Interpreter):
    """The same map as a reader's own interpreter: ``explain`` and ``native_size`` only, so ADV2
    reaches it through the protocol's defaults."""

    name = "pooled"
    native_size = (14, 14)

    def explain(self, x, target):
        return F.avg_pool2d(x, 2)


@pytest.fixture(scope="module")
def victim():
    torch.manual_seed(0)
    return build_victim("resnet").eval()


@pytest.fixture()
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 1, 28, 28, generator=g), torch.tensor([1, 5, 9])


def _check_ball(x_adv, x, eps):
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max().item() <= eps + 1e-6
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0


# --------------------------------------------------------------------------- PGD

@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_stays_in_ball_and_range(victim, batch, random_start):
    x, ct = batch
    res = PGD(victim, eps=EPS, alpha=0.02, steps=8, random_start=random_start).attack(x, ct)
    _check_ball(res.x_adv, x, EPS)
    assert isinstance(res, AttackResult) and res.adv_map is None
    assert res.iteration.tolist() == [8, 8, 8]


def test_pgd_leaves_inputs_and_model_untouched(batch):
    x, ct = batch
    x_before = x.clone()
    model = build_victim("resnet")
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    PGD(model, eps=EPS, steps=3).attack(x, ct)
    assert torch.equal(x, x_before)
    assert model.training
    assert flags == [p.requires_grad for p in model.parameters()]


def test_pgd_deterministic_under_seed(victim, batch):
    x, ct = batch
    a = PGD(victim, eps=EPS, steps=5, random_start=True, seed=3).attack(x, ct).x_adv
    b = PGD(victim, eps=EPS, steps=5, random_start=True, seed=3).attack(x, ct).x_adv
    c = PGD(victim, eps=EPS, steps=5, random_start=True, seed=4).attack(x, ct).x_adv
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pgd_fools_a_linear_model_and_batch_equals_singles(batch):
    x, ct = batch
    model = LinearVictim()
    res = PGD(model, eps=EPS, alpha=0.01, steps=30).attack(x, ct)
    assert res.success.all()
    assert torch.allclose(res.confidence, F.softmax(model(res.x_adv), 1)[torch.arange(3), ct])
    for i in range(3):
        single = PGD(model, eps=EPS, alpha=0.01, steps=30).attack(x[i:i + 1], ct[i:i + 1]).x_adv
        assert torch.allclose(single, res.x_adv[i:i + 1], atol=1e-6)


def test_pgd_early_stop_freezes_confident_examples(batch):
    x, ct = batch
    model = LinearVictim()
    res = PGD(model, eps=EPS, alpha=0.01, steps=200, early_stop=True, stop_confidence=0.9, patience=2,
              check_every=1).attack(x, ct)
    assert (res.iteration < 200).all()
    assert (res.confidence >= 0.9).all()
    # The frozen iterate is the one judged at that step: rerunning exactly that many steps
    # without early stopping gives the same image.
    i = 0
    again = PGD(model, eps=EPS, alpha=0.01, steps=int(res.iteration[i])).attack(x[i:i + 1], ct[i:i + 1])
    assert torch.allclose(again.x_adv, res.x_adv[i:i + 1], atol=1e-6)


def test_pgd_rejects_bad_inputs(victim, batch):
    x, ct = batch
    with pytest.raises(ValueError):
        PGD(victim).attack(x * 2, ct)
    with pytest.raises(ValueError):
        PGD(victim).attack(x, torch.tensor([1, 2]))
    with pytest.raises(TypeError):
        PGD(victim, stepz=3)
    with pytest.raises(ValueError):
        PGD(victim, eps=2.0)


# --------------------------------------------------------------------------- shared pieces

def test_project_and_quantize_stay_in_ball():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 256, (4, 1, 8, 8), generator=g).float() / 255
    x = x0 + (torch.rand(x0.shape, generator=g) * 2 - 1) * 0.5
    eps = 26 / 255 + 0.0013       # deliberately off the 8-bit grid
    p = project(x, x0, eps)
    _check_ball(p, x0, eps)
    q = quantize_8bit(p, x0, eps)
    _check_ball(q, x0, eps)
    assert torch.allclose(q * 255, (q * 255).round(), atol=1e-4)


def test_project_is_the_official_arithmetic():
    """clip_[0,1](x0 + clip_[-eps,eps](x - x0)) bit for bit (paper-spec (d); torchattacks' PGD)."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand((8, 1, 28, 28), generator=g)
    x = x0 + (torch.rand(x0.shape, generator=g) * 2 - 1) * 0.3
    eps = 26 / 255
    assert torch.equal(project(x, x0, eps), torch.clamp(x0 + torch.clamp(x - x0, min=-eps, max=eps), min=0, max=1))


def test_losses_match_their_formulas():
    logits = torch.tensor([[2.0, 1.0, -1.0], [0.0, 3.0, 0.5]])
    t = torch.tensor([0, 2])
    assert torch.allclose(cw_margin(logits, t), torch.tensor([1.0 - 2.0, 3.0 - 0.5]))
    s = 0.05
    logp = F.log_softmax(logits, 1)
    q = torch.full_like(logp, s / 2)
    q[torch.arange(2), t] = 1 - s
    assert torch.allclose(smoothed_cross_entropy(logits, t, s), -(q * logp).sum(1))
    assert torch.allclose(smoothed_cross_entropy(logits, t, 0.0), F.cross_entropy(logits, t, reduction="none"))


def test_best_iterate_keeps_lowest_ok_score_else_last():
    x = torch.zeros(2, 1, 1, 1)
    keep = BestIterate(x)
    idx = torch.arange(2)
    keep.offer(idx, x + 1, 10, torch.tensor([True, False]), torch.tensor([5.0, 1.0]))
    keep.offer(idx, x + 2, 20, torch.tensor([True, False]), torch.tensor([7.0, 0.0]))
    keep.offer_last(idx, x + 3, 30)
    best, it, found = keep.result()
    assert best.flatten().tolist() == [1.0, 3.0]
    assert it.tolist() == [10, 30] and found.tolist() == [True, False]


# --------------------------------------------------------------------------- ADV2

@pytest.mark.parametrize("own", [False, True], ids=["map-function", "interpreter-subclass"])
def test_adv2_interpretation_term_beats_pgd_on_a_toy_setup(batch, own):
    """Same victim, same budget: the map of ADV2's example stays much closer to the benign
    map than PGD's, and the attack still succeeds -- for a plain map function and for a
    reader's own Interpreter subclass that implements only ``explain`` and ``native_size``."""
    x, ct = batch
    model = LinearVictim()
    interp = PooledInterpreter(model) if own else PooledImage()
    benign = interp(x, ct)                  # class-blind
    pgd = PGD(model, eps=EPS, alpha=0.01, steps=60).attack(x, ct)
    adv = ADV2(model, interp, eps=EPS, alpha=0.005, warm_steps=30, steps=60, lambda_start=200.0,
               lambda_end=400.0, select="best").attack(x, ct)
    _check_ball(adv.x_adv, x, EPS)
    assert pgd.success.all() and adv.success.all()
    l1_pgd = (interp(pgd.x_adv, ct) - benign).abs().mean().item()
    l1_adv = (adv.adv_map - benign).abs().mean().item()
    assert l1_adv < 0.5 * l1_pgd
    assert torch.equal(adv.target_map, benign)
    assert ((adv.iteration >= 1) & (adv.iteration <= 90)).all()
    assert adv.interpreter == interp.name


def test_adv2_refuses_an_interpreter_of_another_model(batch):
    with pytest.raises(ValueError, match="same victim"):
        ADV2(LinearVictim(), PooledInterpreter(LinearVictim(seed=1)))


def test_attack_mode_restores_a_module_given_twice():
    # RTS's encoder is the victim itself on the embedded profile: it is saved once, so the
    # victim's mode and flags come back as they were.
    model = build_victim("resnet").train()
    with attack_mode(model, None, model):
        assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_adv2_default_target_is_the_benign_map_for_the_prediction(batch):
    x, ct = batch
    model, interp = LinearVictim(), PooledImage()
    res = ADV2(model, interp, eps=EPS, warm_steps=1, steps=1).attack(x, ct)
    assert torch.equal(res.true_class, model(x).argmax(1))
    assert torch.equal(res.target_map, interp(x, None))
    with pytest.raises(ValueError):
        ADV2(model, interp, steps=1).attack(x, ct, target_map=torch.zeros(3, 1, 7, 7))


def _interpreters(victim):
    from adv2lib.interpreters import CAM, GRAD, MASK
    from adv2lib.interpreters.rts import RTS

    return [GRAD(victim), CAM(victim), RTS(victim, weights=None), MASK(victim, iterations=4)]


@pytest.mark.parametrize("which", [0, 1, 2, 3], ids=["grad", "cam", "rts", "mask"])
def test_adv2_each_interpreter_invariants(victim, batch, which):
    x, ct = batch
    interp = _interpreters(victim)[which]
    x_before = victim.training, x.clone()
    few = dict(warm_steps=2)
    if interp.name == "mask":
        few.update(steps=3, recompute_every=2, inner_steps=1, unrolled_steps=1, bisection_steps=2)
    elif interp.name == "grad":
        few.update(lambda_stages=((0.1, 2), (0.2, 1)), check_every=1)
    else:
        few.update(steps=3, check_every=1)
    cfg = preset_for("embedded", interp.name, **few)
    res = ADV2(victim, interp, config=cfg, eps=EPS).attack(x, ct)
    _check_ball(res.x_adv, x, EPS)
    assert torch.equal(x, x_before[1]) and victim.training is x_before[0]
    assert res.adv_map.shape == (3, 1, *interp.native_size)
    assert res.adv_map.min() >= 0 and res.adv_map.max() <= 1
    assert (res.iteration <= cfg.total_steps).all() and (res.iteration >= 0).all()
    assert res.passes["total"] > 0
    frame = res.to_frame(x)
    assert {"success", "confidence", "l1_target", "iteration", "linf"} <= set(frame.columns)
    if interp.name == "mask":          # MASK's returned images are 8-bit quantised
        assert torch.allclose(res.x_adv * 255, (res.x_adv * 255).round(), atol=1e-4)
    # deterministic: the same call gives the same images
    again = ADV2(victim, interp, config=cfg, eps=EPS).attack(x, ct)
    assert torch.equal(again.x_adv, res.x_adv)


def test_adv2_grad_selects_confident_iterates_on_the_trained_victim():
    if not victim_weights_path("resnet").is_file():
        pytest.skip("trained embedded ResNet weights not present")
    from adv2lib.data import fashion_mnist
    from adv2lib.interpreters import GRAD
    from adv2lib.models import load_victim

    model = load_victim("resnet", device="cpu")
    x, y = fashion_mnist("test").tensors(range(4))
    ct = (y + 3) % 10
    cfg = preset_for("embedded", "grad", smoke=True)
    res = ADV2(model, GRAD(model), config=cfg).attack(x, ct, true_class=y)
    # selected iterates had p(ct) > 0.8 on the real model when checked
    assert (res.confidence[res.selected] > 0.8).all()


# --------------------------------------------------------------------------- presets

def test_imagenet_preset_follows_the_spec():
    pgd = preset_for("imagenet", "pgd")
    assert pgd.eps == 0.031 and math.isclose(pgd.alpha, 1 / 255)
    grad = preset_for("imagenet", "grad")
    assert grad.warm_steps == 300 and grad.steps == 704 and grad.label_smoothing == 0.05
    assert [lam for lam, _ in grad.lambda_stages] == [1e-3, 4e-3, 1e-2, 5e-2]
    assert grad.select == "best" and grad.select_confidence == 0.8 and grad.check_every == 10
    cam = preset_for("imagenet", "cam")
    assert (cam.warm_steps, cam.steps, cam.lambda_start, cam.lambda_end) == (400, 1200, 5.0, 10.0)
    rts = preset_for("imagenet", "rts")
    assert rts.encoder_ce_weight == 0.1 and rts.warm_steps == 300
    mask = preset_for("imagenet", "mask")
    assert isinstance(mask, MaskADV2Config)
    assert (mask.warm_steps, mask.steps, mask.inner_steps, mask.unrolled_steps) == (400, 1000, 4, 4)
    assert (mask.pred_step, mask.interp_step_max, mask.margin, mask.bisection_steps) == (0.05, 0.08, 10.0, 10)


def test_presets_validate_and_describe():
    cfg = preset_for("embedded", "cam")
    assert cfg.lambda_at(0) == cfg.lambda_start
    assert math.isclose(cfg.lambda_at(cfg.steps - 1), cfg.lambda_end)
    staged = ADV2Config(lambda_stages=((1.0, 2), (3.0, 1)))
    assert staged.steps == 3 and [staged.lambda_at(t) for t in range(4)] == [1.0, 1.0, 3.0, 3.0]
    with pytest.raises(ValueError):
        PGDConfig(eps=0.0)
    with pytest.raises(ValueError):
        ADV2Config(select="first")
    with pytest.raises(ValueError):
        preset_for("cifar", "pgd")
    table = describe(preset_for("imagenet", "grad"))
    assert {"field", "value", "source"} == set(table.columns)
    assert table["source"].str.len().gt(0).all()
    smoke = preset_for("embedded", "mask", smoke=True)
    assert smoke.total_steps < preset_for("embedded", "mask").total_steps


def test_adv2_cam_beats_pgd_on_the_trained_victim():
    """Integration: with the smoke preset (a few dozen steps), ADV2-CAM's maps on the trained
    ResNet stay closer to the benign maps than PGD's, at the same success."""
    from adv2lib.interpreters import CAM
    from conftest import adv2_against_pgd

    adv_ok, pgd_ok, l1_adv, l1_pgd = adv2_against_pgd(CAM, "cam")
    assert adv_ok.float().mean() >= pgd_ok.float().mean() - 0.25
    assert l1_adv < 0.8 * l1_pgd
