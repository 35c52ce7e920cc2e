"""GRAD, CAM, MASK and the surrogate-ReLU context: oracles, closed forms, gradchecks, the
call contract (issue 3) and the attack protocol (issue 10). RTS and SmoothGrad have their own
files (tests/test_rts.py, tests/test_smoothgrad.py)."""
from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adv2lib.interpreters import (CAM, GRAD, INTERPRETERS, MASK, REGISTRY, MaskConfig, SmoothGrad,
                                  build_interpreter)
from adv2lib.interpreters.grad import reduce_saliency
from adv2lib.interpreters.mask import MaskState, gaussian_blur, jitter_offsets, total_variation
from adv2lib.interpreters.surrogate import (relu_surrogate_derivative, soft_relu, soft_relu_backward)

from conftest import LinearModel, TinyVictim

TINY_MASK = dict(mask_size=4, image_blur=(3, 1.0), mask_blur=(3, 0.5), jitter=2)


def fresh_leaf(x):
    return x.detach().clone().requires_grad_(True)


# ============================================================== the surrogate ReLU
def test_soft_relu_value_first_and_second_derivative():
    tau = 1e-4
    z = torch.tensor([-3.0, -0.05, -0.01, -1e-3, 0.0, 1e-3, 0.01, 0.05, 2.0], dtype=torch.float64,
                     requires_grad=True)
    y = soft_relu(z, tau)
    assert torch.equal(y.detach(), torch.relu(z.detach()))                 # exact forward
    (g,) = torch.autograd.grad(y.sum(), z, create_graph=True)
    r = torch.sqrt(z.detach() ** 2 + tau)
    literal_h = torch.where(z.detach() < 0, 1 + z.detach() / r, z.detach() / r)  # the two branches
    torch.testing.assert_close(g.detach(), literal_h)
    torch.testing.assert_close(relu_surrogate_derivative(z.detach(), tau), literal_h)
    (g2,) = torch.autograd.grad(g.sum(), z)
    torch.testing.assert_close(g2, tau / r**3)                             # h' on both sides
    # The literal form is inverted near 0 and tends to the step function away from it.
    assert g[4] == 0 and g[3] > 0.9 and g[5] < 0.1 and g[0] < 1e-4 and g[-1] > 0.9999


def _snapshot(model):
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "forward_attrs": [("forward" in m.__dict__) for m in model.modules()],
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                     for m in model.modules()),
        "inplace": [m.inplace for m in model.modules() if isinstance(m, nn.ReLU)],
    }


def _assert_same_snapshot(a, b):
    assert a["forward_attrs"] == b["forward_attrs"] and a["hooks"] == b["hooks"]
    assert a["inplace"] == b["inplace"]
    assert a["state"].keys() == b["state"].keys()
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


def test_surrogate_context_restores_model_exactly_even_on_error(random_victim, fmnist_batch):
    x, y = fmnist_batch
    before = _snapshot(random_victim)
    exact = GRAD(random_victim).input_gradient(x, y)
    with soft_relu_backward(random_victim):
        with soft_relu_backward(random_victim):                            # nesting is fine
            assert all("forward" in m.__dict__ for m in random_victim.modules() if isinstance(m, nn.ReLU))
        torch.testing.assert_close(random_victim(x), random_victim(x))
    with pytest.raises(RuntimeError, match="boom"):
        with soft_relu_backward(random_victim):
            raise RuntimeError("boom")
    _assert_same_snapshot(before, _snapshot(random_victim))
    assert torch.equal(GRAD(random_victim).input_gradient(x, y), exact)


def test_surrogate_keeps_exact_forward_and_changes_only_the_backward(random_victim, fmnist_batch):
    x, y = fmnist_batch
    logits = random_victim(x)
    with soft_relu_backward(random_victim):
        assert torch.equal(random_victim(x), logits)
        soft = GRAD(random_victim).input_gradient(x, y)
    exact = GRAD(random_victim).input_gradient(x, y)
    assert not torch.equal(soft, exact)


def test_attack_map_approximates_exact_map_on_trained_victims(trained_victim, fmnist_batch):
    # h differs from the step function only for |z| ~ sqrt(tau) = 0.01; on trained networks
    # few pre-activations are that small, so the attack map stays close to the real one.
    x, y = fmnist_batch
    grad = GRAD(trained_victim)
    exact, attack = grad(x, y), grad.attack_map(x, y)
    assert F.cosine_similarity(exact.flatten(1), attack.flatten(1)).min() > 0.95
    assert (exact - attack).abs().mean() < 0.05


def test_surrogate_handles_inplace_relu_and_rejects_relu_free_models():
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(inplace=True), nn.Linear(5, 2))
    x = torch.randn(3, 4, requires_grad=True)
    with soft_relu_backward(net):
        (g,) = torch.autograd.grad(net(x)[:, 0].sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad(g.pow(2).sum(), x)
    assert g2.abs().sum() > 0 and net[1].inplace and "forward" not in net[1].__dict__
    with pytest.raises(ValueError, match="no nn.ReLU"):
        with soft_relu_backward(nn.Linear(2, 2)):
            pass
    with pytest.raises(ValueError, match="tau"):
        with soft_relu_backward(net, tau=0.0):
            pass


# ============================================================== GRAD
def test_grad_of_linear_model_is_pooled_abs_weight_row():
    # Two channels, 4x4: the map is max_c |W[y, c]| pooled 2x2 then min-max normalised.
    w = torch.zeros(2, 2, 4, 4)
    w[1, 0] = torch.tensor([[1., -1., 0., 0.], [3., 1., 0., 2.], [0., 0., -4., 0.], [0., 0., 0., 0.]])
    w[1, 1] = torch.tensor([[0., 2., 0., 0.], [-1., 1., 2., 2.], [0., 0., 0., 0.], [4., 4., 0., 0.]])
    model = LinearModel(w)
    m = GRAD(model, pool=2)(torch.rand(1, 2, 4, 4), torch.tensor([1]))
    # max_c |W|: [[1,2,0,0],[3,1,2,2],[0,0,4,0],[4,4,0,0]] -> 2x2 means [[1.75,1],[2,1]]
    expected = (torch.tensor([[1.75, 1.0], [2.0, 1.0]]) - 1.0) / 1.0
    torch.testing.assert_close(m, expected.view(1, 1, 2, 2))
    assert GRAD(model, pool=2).native_size == (2, 2)


@pytest.mark.parametrize("score", ["logit", "log_softmax"])
def test_grad_equals_captum_saliency_reduced_the_same_way(random_victim, fmnist_batch, score):
    from captum.attr import Saliency

    x, y = fmnist_batch
    forward = random_victim if score == "logit" else (lambda inp: random_victim(inp).log_softmax(1))
    attr = Saliency(forward).attribute(fresh_leaf(x), target=y, abs=True)
    grad = GRAD(random_victim, score=score)
    torch.testing.assert_close(grad.input_gradient(x, y).abs(), attr, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad(x, y), reduce_saliency(attr, 2), rtol=1e-4, atol=1e-6)


def test_grad_shapes_range_and_native_size(random_victim, fmnist_batch):
    x, y = fmnist_batch
    grad = GRAD(random_victim)
    for m in (grad(x, y), grad.attack_map(x, y)):
        assert m.shape == (4, 1, 14, 14) and grad.native_size == (14, 14)
        assert m.min() == 0 and m.amax(dim=(1, 2, 3)).allclose(torch.ones(4))


def test_exact_grad_map_of_relu_net_has_zero_input_gradient_but_attack_map_does_not(random_victim, fmnist_batch):
    x, y = fmnist_batch
    grad = GRAD(random_victim)
    xe = fresh_leaf(x)
    exact = grad(xe, y)
    assert exact.requires_grad                                             # differentiable ...
    (d_exact,) = torch.autograd.grad((exact * torch.rand_like(exact)).sum(), xe)
    assert d_exact.abs().max() == 0                                        # ... but flat a.e.
    xa = fresh_leaf(x)
    attack = grad.attack_map(xa, y)
    (d_attack,) = torch.autograd.grad((attack * torch.rand_like(attack)).sum(), xa)
    assert d_attack.abs().max() > 0


def test_gradcheck_grad_attack_map_on_one_hidden_layer():
    # With one ReLU layer the attack map |W1^T diag(h(W1 x + b)) w2| is an ordinary function
    # of x and autograd's derivative is exact. With more layers autograd also uses h as the
    # derivative of the forward ReLUs (as the official SoftReLU does), which is the surrogate
    # derivative, not the derivative of the computed map.
    victim = TinyVictim(hidden_layers=1).double().eval()
    grad = GRAD(victim, pool=2)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 2])
    assert torch.autograd.gradcheck(lambda inp: grad.attack_map(inp, y), (fresh_leaf(x),), atol=1e-5)


def test_gradcheck_exact_grad_on_smooth_victim():
    victim = TinyVictim(activation=nn.Softplus).double().eval()
    grad = GRAD(victim, pool=2)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.autograd.gradcheck(lambda inp: grad(inp, torch.tensor([1, 0])), (fresh_leaf(x),), atol=1e-5)


def test_grad_without_grad_mode_and_parameters_untouched(random_victim, fmnist_batch):
    x, y = fmnist_batch
    victim = TinyVictim().eval()                       # parameters require grad here
    with torch.no_grad():
        m = GRAD(victim)(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
    assert m.shape == (2, 1, 4, 4) and not m.requires_grad
    assert all(p.grad is None for p in victim.parameters())


def test_grad_imagenet_sizes():
    assert GRAD(nn.Module()).pool == 2
    m = nn.Module()
    m.profile, m.input_shape = "imagenet", (3, 224, 224)
    assert GRAD(m).pool == 4 and GRAD(m).native_size == (56, 56)
    with pytest.raises(ValueError, match="score"):
        GRAD(m, score="softmax")


# ============================================================== CAM
class HandCAMVictim(TinyVictim):
    """features = [relu(x), relu(-x)] = [x, 0] on [0, 1] images; classifier rows [2, 5], [-1, 3]."""

    def __init__(self):
        super().__init__()
        self.normalize = nn.Identity()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.relu = nn.ReLU()
        self.classifier = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.classifier.weight.copy_(torch.tensor([[2.0, 5.0], [-1.0, 3.0]]))
            self.classifier.bias.copy_(torch.tensor([10.0, -10.0]))

    def _pyramid(self, xn):
        return [self.relu(self.conv(xn))]


def test_cam_literal_values_on_hand_set_victim():
    x = torch.tensor([[0.0, 0.5], [0.25, 1.0]]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    cam = CAM(HandCAMVictim().eval())
    m, logits = cam.map_and_logits(x, torch.tensor([0, 1]))
    torch.testing.assert_close(m[0, 0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))     # minmax(2x)
    torch.testing.assert_close(m[1, 0], torch.tensor([[1.0, 0.5], [0.75, 0.0]]))     # minmax(-x)
    torch.testing.assert_close(logits[0], torch.tensor([2 * 0.4375 + 10, -0.4375 - 10]))
    raw, _ = cam.raw_map_and_logits(x, torch.tensor([0, 1]))
    torch.testing.assert_close(raw[1, 0], -x[1, 0])                                   # no ReLU, no bias


def test_cam_equals_hand_computation(random_victim, fmnist_batch):
    x, y = fmnist_batch
    cam = CAM(random_victim)
    m, logits = cam.map_and_logits(x, y)
    feats = random_victim.features(x)
    for i in range(x.shape[0]):
        raw = sum(random_victim.classifier.weight[y[i], k] * feats[i, k] for k in range(feats.shape[1]))
        expected = (raw - raw.min()) / (raw - raw.min()).max()
        torch.testing.assert_close(m[i, 0], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, random_victim(x))
    assert cam.native_size == (7, 7) and m.shape == (4, 1, 7, 7)


def test_gradcam_equals_relu_cam_up_to_positive_constant(random_victim, fmnist_batch):
    from captum.attr import LayerGradCam

    x, y = fmnist_batch
    layer = random_victim.layer3 if random_victim.name == "resnet" else random_victim.final_relu
    gradcam = LayerGradCam(random_victim, layer).attribute(x, target=y, relu_attributions=True)
    raw, _ = CAM(random_victim).raw_map_and_logits(x, y)
    # GAP over 7x7 -> Grad-CAM channel weights are w[c, k] / 49.
    torch.testing.assert_close(gradcam, torch.relu(raw) / 49, rtol=1e-4, atol=1e-6)


def test_gradcheck_cam(tiny_victim64):
    cam = CAM(tiny_victim64)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    assert cam.native_size == (4, 4)
    assert torch.autograd.gradcheck(lambda inp: cam(inp, torch.tensor([2, 0])), (fresh_leaf(x),))


# ============================================================== MASK
def reference_mask(model, x, y, cfg: MaskConfig, seed: int) -> torch.Tensor:
    """The plain-autograd twin (TorchRay style): ``torch.optim.Adam`` on a leaf mask,
    torchvision's Gaussian blur, the official v2 loop (``generate_mask_per_batch_v2``)
    with textbook TV. Shares only the jitter schedule with the library."""
    from torchvision.transforms.functional import gaussian_blur as tv_blur

    n, (h, w), s = x.shape[0], x.shape[-2:], cfg.mask_size
    big = F.interpolate(x, size=(h + cfg.jitter, w + cfg.jitter), mode="bilinear", align_corners=False)
    blurred = tv_blur(big, [cfg.image_blur[0]] * 2, [cfg.image_blur[1]] * 2)
    m = torch.full((n, 1, s, s), cfg.init, requires_grad=True)
    opt = torch.optim.Adam([m], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, foreach=False)
    for step in range(1, cfg.iterations + 1):
        i, j = jitter_offsets(seed, step, cfg.jitter)
        keep = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        keep = tv_blur(keep, [cfg.mask_blur[0]] * 2, [cfg.mask_blur[1]] * 2)
        phi = keep * big[..., i:i + h, j:j + w] + (1 - keep) * blurred[..., i:i + h, j:j + w]
        prob = F.softmax(model(phi), dim=1)[torch.arange(n), y]
        dy = m[:, :, 1:, :-1] - m[:, :, :-1, :-1]
        dx = m[:, :, :-1, 1:] - m[:, :, :-1, :-1]
        tv = (dx**2 + dy**2 + 1e-8).pow(cfg.tv_beta / 2).sum()
        loss = prob.sum() + cfg.l1_coeff * (1 - m).abs().sum() + cfg.tv_coeff * tv
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            m.clamp_(0, 1)
    return 1 - m.detach()


def test_mask_matches_plain_autograd_reference_loop(fmnist_batch):
    from adv2lib.models import build_victim

    torch.manual_seed(0)
    victim = build_victim("resnet").eval().requires_grad_(False)
    x, y = fmnist_batch
    mask = MASK(victim, iterations=40, seed=7)
    ours = mask(x, y)
    ref = reference_mask(victim, x, y, mask.config, seed=7)
    assert ours.shape == (4, 1, 14, 14)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_mask_on_a_model_that_ignores_its_input_deletes_nothing():
    # Constant logits: only the L1 term pulls (d/dm = -1e-4 everywhere, TV is flat on a
    # uniform mask), so every Adam step raises m by lr * g / (g + eps) and the salient
    # region 1 - m shrinks uniformly from 0.5 to 0.
    model = LinearModel(torch.zeros(3, 1, 8, 8))
    g, eps = 1e-4, 1e-8
    for steps, expected in ((3, 0.5 - 3 * 0.1 * g / (g + eps)), (8, 0.0)):
        m = MASK(model, iterations=steps, **TINY_MASK)(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
        torch.testing.assert_close(m, torch.full((2, 1, 4, 4), expected), rtol=0, atol=1e-6)


def test_mask_batch_equals_each_example_alone(random_victim, fmnist_batch):
    x, y = fmnist_batch
    mask = MASK(random_victim, iterations=30, seed=1)
    batch = mask(x, y)
    alone = torch.cat([mask(x[i:i + 1], y[i:i + 1]) for i in range(len(x))])
    torch.testing.assert_close(batch, alone, atol=1e-4, rtol=0)


def test_mask_is_seeded_and_split_steps_equal_one_run(tiny_victim, tiny_images):
    x, y = tiny_images
    mask = MASK(tiny_victim, iterations=6, seed=3, **TINY_MASK)
    assert torch.equal(mask(x, y), mask(x, y))
    s0 = mask.init_state(x, y)
    one = mask.inner_steps(x, y, s0, 6)
    split = mask.inner_steps(x, y, mask.inner_steps(x, y, s0, 2), 4)
    assert one.step == split.step == 6
    torch.testing.assert_close(one.mask, split.mask, rtol=0, atol=1e-6)
    torch.testing.assert_close(mask.state_map(one), mask(x, y), rtol=0, atol=1e-6)
    assert {jitter_offsets(3, t, 2) for t in range(1, 40)} == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_mask_differentiable_steps_equal_plain_steps_and_are_differentiable(tiny_victim, tiny_images):
    x, y = tiny_images
    mask = MASK(tiny_victim, iterations=5, seed=0, **TINY_MASK)
    s = mask.inner_steps(x, y, mask.init_state(x, y), 3)
    assert not s.mask.requires_grad
    xg = fresh_leaf(x)
    plain = mask.inner_steps(x, y, s, 4)
    diff = mask.inner_steps(xg, y, s, 4, differentiable=True)
    torch.testing.assert_close(diff.mask.detach(), plain.mask, rtol=0, atol=1e-6)
    (g,) = torch.autograd.grad(mask.state_map(diff).pow(2).sum(), xg)
    assert g.abs().max() > 0
    # __call__ is differentiable through its last `unroll` steps when x requires grad.
    out = mask(xg, y)
    assert out.requires_grad and torch.autograd.grad(out.sum(), xg)[0].abs().max() > 0


def test_mask_init_state_from_map_and_validation(tiny_victim, tiny_images):
    x, y = tiny_images
    mask = MASK(tiny_victim, iterations=2, **TINY_MASK)
    salient = torch.rand(3, 1, 4, 4)
    s = mask.init_state(x, y, init_mask=salient)
    torch.testing.assert_close(mask.state_map(s), salient)
    assert s.step == 0 and s.exp_avg.abs().sum() == 0 and isinstance(s, MaskState)
    with pytest.raises(ValueError, match="init_mask"):
        mask.init_state(x, y, init_mask=torch.rand(3, 1, 5, 5))
    with pytest.raises(TypeError, match="unknown MASK setting"):
        MASK(tiny_victim, bogus=1)
    with pytest.raises(ValueError, match="tv_pairing"):
        MaskConfig(tv_pairing="transposed")


def test_gradcheck_mask_unrolled_steps(tiny_victim64):
    mask = MASK(tiny_victim64, iterations=3, unroll=3, seed=2, **TINY_MASK)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    y = torch.tensor([1, 2])
    s = mask.inner_steps(x, y, mask.init_state(x, y), 2)
    assert torch.autograd.gradcheck(
        lambda inp: mask.state_map(mask.inner_steps(inp, y, s, 2, differentiable=True)), (fresh_leaf(x),),
        atol=1e-5)
    # With unroll == iterations, __call__ is the exact derivative of the whole optimisation.
    assert torch.autograd.gradcheck(lambda inp: mask(inp, y), (fresh_leaf(x),), atol=1e-5)


def test_total_variation_textbook_and_official_pairing():
    m = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]).view(1, 1, 3, 3)
    # textbook, top-left 2x2 grid: (dx, dy) = (1, 0), (0, -1), (0, 0), (1, 0)
    eps = 1e-8
    expected = 2 * (1 + eps) ** 1.5 + (1 + eps) ** 1.5 + eps**1.5
    torch.testing.assert_close(total_variation(m, 3.0), torch.tensor([expected]))
    # official tv_norm, literally: dy + transposed dx, elementwise.
    dy = -m[:, :, :-1] + m[:, :, 1:]
    dx = (m[:, :, :, 1:] - m[:, :, :, :-1]).transpose(2, 3)
    official = (dx.pow(2) + dy.pow(2) + eps).pow(1.5).reshape(1, -1).sum(1)
    torch.testing.assert_close(total_variation(m, 3.0, "official"), official)
    assert not torch.allclose(total_variation(m, 3.0), official)


def test_gaussian_blur_matches_torchvision_and_opencv_sigma():
    from torchvision.transforms.functional import gaussian_blur as tv_blur

    x = torch.rand(2, 3, 20, 20)
    torch.testing.assert_close(gaussian_blur(x, 11, 2.0), tv_blur(x, [11, 11], [2.0, 2.0]), rtol=1e-5, atol=1e-6)
    # Zero padding (RTS training's replacement blur): torchvision's blur of the image framed by
    # zeros, the frame cropped off again.
    framed = tv_blur(F.pad(x, (5, 5, 5, 5)), [11, 11], [2.0, 2.0])[..., 5:-5, 5:-5]
    torch.testing.assert_close(gaussian_blur(x, 11, 2.0, padding="zeros"), framed, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(x, 4, 1.0)
    assert MaskConfig.imagenet().image_blur == (21, 0.3 * ((21 - 1) * 0.5 - 1) + 0.8)   # OpenCV auto sigma
    assert MaskConfig.imagenet().mask_blur == (11, 0.3 * ((11 - 1) * 0.5 - 1) + 0.8)


# ============================================================== the call contract
def _interpreters(victim):
    return [GRAD(victim), CAM(victim), MASK(victim, iterations=8)]


def test_registry_and_build_interpreter(random_victim):
    assert INTERPRETERS == ("grad", "cam", "mask", "rts")
    assert tuple(REGISTRY) == (*INTERPRETERS, "smoothgrad")       # the paper's four and SmoothGrad
    for name, cls in (("grad", GRAD), ("cam", CAM), ("mask", MASK), ("smoothgrad", SmoothGrad)):
        interp = build_interpreter(name, random_victim)
        assert isinstance(interp, cls) and interp.name == name
    assert build_interpreter("MASK", random_victim, iterations=3).config.iterations == 3
    with pytest.raises(ValueError, match="unknown interpreter"):
        build_interpreter("lime", random_victim)


def test_attack_protocol_of_the_paper_interpreters(random_victim, fmnist_batch):
    from adv2lib.interpreters.rts import RTS

    x, y = fmnist_batch
    grad, cam, mask = _interpreters(random_victim)
    rts = RTS(random_victim, weights=None)
    logits = random_victim(x)
    for interp, exact, passes in ((grad, False, 3.0), (cam, True, 1.0), (rts, True, 1.0)):
        terms = interp.attack_terms(x, y)
        assert terms.exact is exact and interp.passes_per_step == passes and not interp.bilevel
        torch.testing.assert_close(terms.logits, logits)
        torch.testing.assert_close(terms.map, grad.attack_map(x, y) if interp is grad else interp(x, y))
    # RTS: its encoder is the victim here, so one pass gives map, logits and encoder logits.
    terms = rts.attack_terms(x, y)
    assert terms.encoder_logits is terms.logits and rts.networks() == (rts.net, random_victim)
    assert grad.attack_terms(x, y).encoder_logits is None and grad.networks() == ()
    # MASK is attacked by the bilevel routine; one exact map costs its Adam iterations.
    assert mask.bilevel and mask.map_passes == mask.config.iterations


def test_batch_equals_each_example_alone_grad_cam(random_victim, fmnist_batch):
    x, y = fmnist_batch
    for interp in _interpreters(random_victim)[:2]:
        batch = interp(x, y)
        alone = torch.cat([interp(x[i:i + 1], y[i:i + 1]) for i in range(len(x))])
        torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)


def test_inputs_are_never_mutated_and_maps_live_on_input_device(random_victim, fmnist_batch):
    x, y = fmnist_batch
    for requires_grad in (False, True):
        xi = fresh_leaf(x) if requires_grad else x.clone()
        x0, y0 = xi.detach().clone(), y.clone()
        grad, cam, mask = _interpreters(random_victim)
        outs = [grad(xi, y), grad.attack_map(xi, y), cam(xi, y), cam.map_and_logits(xi, y)[0], mask(xi, y),
                mask.state_map(mask.inner_steps(xi, y, mask.init_state(xi, y), 2, differentiable=True))]
        assert torch.equal(xi.detach(), x0) and torch.equal(y, y0) and xi.grad is None
        for out in outs:
            assert out.device == x.device and out.dim() == 4 and out.shape[1] == 1
            assert out.min() >= 0 and out.max() <= 1
            assert out.requires_grad == requires_grad


def _live_tensors() -> int:
    import warnings

    gc.collect()
    with warnings.catch_warnings():   # isinstance() on deprecated torch objects warns
        warnings.simplefilter("ignore")
        return sum(1 for obj in gc.get_objects() if torch.is_tensor(obj))


def test_memory_stays_flat_over_repeated_calls(fmnist_batch):
    # Live tensors are counted (torch's CPU allocations are invisible to tracemalloc): a
    # leaked graph, hook or cached buffer would add tensors on every round.
    from adv2lib.models import build_victim

    random_victim = build_victim("densenet").eval().requires_grad_(False)
    x, y = fmnist_batch
    grad, cam, mask = _interpreters(random_victim)

    def round_trip():
        xg = fresh_leaf(x)
        loss = (grad.attack_map(xg, y).sum() + cam(xg, y).sum() + grad(xg, y).sum()
                + mask.state_map(mask.inner_steps(xg, y, mask.init_state(xg, y), 2, differentiable=True)).sum())
        loss.backward()
        return mask(x, y).sum().item()

    round_trip()
    before = _live_tensors()
    for _ in range(3):
        round_trip()
    assert _live_tensors() <= before
    assert all("forward" not in m.__dict__ for m in random_victim.modules())
    assert all(not m._forward_hooks and not m._backward_hooks for m in random_victim.modules())
    assert all(p.grad is None for p in random_victim.parameters())


def test_bad_inputs_raise_clear_errors(random_victim):
    for interp in _interpreters(random_victim):
        with pytest.raises(ValueError, match="targets for"):
            interp(torch.rand(3, 1, 28, 28), torch.tensor([0, 1]))
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            interp(torch.rand(1, 28, 28), 0)
    assert CAM(random_victim)(torch.rand(2, 1, 28, 28), 3).shape == (2, 1, 7, 7)     # int target broadcasts


# ============================================================== ImageNet profile
@pytest.fixture(scope="module")
def imagenet_resnet():
    from adv2lib.models import build_victim

    torch.manual_seed(0)
    return build_victim("resnet", "imagenet").eval().requires_grad_(False)


def test_imagenet_native_sizes(imagenet_resnet):
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([7])
    grad, cam, mask = GRAD(imagenet_resnet), CAM(imagenet_resnet), MASK(imagenet_resnet, iterations=1)
    assert mask.config.mask_size == 28 and mask.config.image_blur == (21, 3.5) and mask.config.jitter == 4
    assert MASK(imagenet_resnet).config.iterations == 300
    for interp, size in ((grad, 56), (cam, 7), (mask, 28)):
        m = interp(x, y)
        assert interp.native_size == (size, size) and m.shape == (1, 1, size, size)
        assert 0 <= m.min() and m.max() <= 1
    xg = fresh_leaf(x)
    (d,) = torch.autograd.grad(grad.attack_map(xg, y).pow(2).sum(), xg)
    assert d.abs().max() > 0


# ============================================================== faithfulness (deletion test)
def test_top_fraction_mask_and_delete():
    from adv2lib.faithfulness import delete, top_fraction_mask

    scores = torch.arange(10.0).view(1, 1, 2, 5)
    mask = top_fraction_mask(scores, 0.2)
    assert mask.sum() == 2 and mask[0, 0, 1, 3] == 1 and mask[0, 0, 1, 4] == 1
    x = torch.rand(1, 1, 2, 5)
    out = delete(x, mask, "zero")
    assert torch.equal(out[mask.bool()], torch.zeros(2)) and torch.equal(out[~mask.bool()], x[~mask.bool()])
    with pytest.raises(ValueError, match="replacement"):
        delete(x, mask, "noise")


@pytest.mark.slow
def test_faithfulness_interpreters_beat_random_deletion(trained_victim):
    from adv2lib.faithfulness import faithfulness_table

    table = faithfulness_table(trained_victim.name, n_images=32, victim=trained_victim,
                               interpreters=("grad", "cam", "mask"))
    rows = table[table.interpreter.isin(["grad", "cam", "mask"])]
    assert len(rows) == 6 and rows.faithful.all(), table


def test_package_imports_without_rts_module(monkeypatch):
    import sys

    import adv2lib.interpreters as interpreters

    monkeypatch.setitem(sys.modules, "adv2lib.interpreters.rts", None)   # as if rts.py were absent
    with pytest.raises(ImportError, match="RTS is not available"):
        interpreters.__getattr__("RTS")
    with pytest.raises(ImportError, match="RTS is not available"):
        build_interpreter("rts", TinyVictim())
    assert interpreters.GRAD is GRAD
