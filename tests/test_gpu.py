"""The precision settings where they are meant to run: on a CUDA device (issue 25: ``tf32`` exists
only there, and ``bf16`` takes CUDA's autocast rather than the CPU's). Skipped without CUDA; run with
``pytest -m gpu`` on a machine with a GPU (``scripts/gpu_checks.sh`` runs these and the attack
benchmark there). Each test compares the reduced precision with float32 on the same device, and the
attack test also with the CPU, so a device path that silently computes something else fails."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from adv2lib import precision
from adv2lib.models import build_victim, load_victim

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture
def tf32_off():
    """Both TF32 switches off for the test (PyTorch's defaults differ between the two), restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _first_conv(victim):
    return next(m for m in victim.modules() if isinstance(m, torch.nn.Conv2d))


def _input_gradient(victim, x, y):
    xa = x.clone().requires_grad_(True)
    return torch.autograd.grad(F.cross_entropy(victim(xa), y), xa)[0]


@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_tf32_turns_on_the_tensor_core_switches_inside_the_passes_only(name, tf32_off):
    victim = load_victim(name, device="cuda")
    x = torch.rand(16, 1, 28, 28, device="cuda")
    seen = []
    hook = _first_conv(victim).register_forward_hook(
        lambda *_: seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)))
    ref = victim(x)
    with precision.victim_passes("tf32"):
        got = victim(x)
    hook.remove()
    assert seen == [(False, False), (True, True)]
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
    assert got.dtype == torch.float32
    # TF32 keeps 10 mantissa bits: the logits agree to about 1e-3 of their scale
    assert torch.allclose(got, ref, atol=1e-2 * ref.abs().max().item())


@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_bf16_on_cuda_runs_the_convolutions_in_bfloat16_and_hands_back_float32(name):
    victim = load_victim(name, device="cuda")
    x = torch.rand(64, 1, 28, 28, device="cuda")
    y = torch.randint(0, victim.num_classes, (64,), device="cuda")
    dtypes = []
    hook = _first_conv(victim).register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    ref = _input_gradient(victim, x, y)
    with precision.victim_passes("bf16"):
        got = _input_gradient(victim, x, y)
        logits = victim(x)
    hook.remove()
    assert dtypes[0] == torch.float32 and dtypes[1] == torch.bfloat16
    assert logits.dtype == torch.float32 and got.dtype == torch.float32
    # what a sign step uses: the issue measured 98% of signs equal on the CPU; our bar 90%
    same = (got.sign() == ref.sign()).float().mean().item()
    print(f"embedded {name} bf16 on CUDA: input-gradient signs equal to fp32's {same:.3f}")
    assert same > 0.9, same
    assert victim(x).dtype == torch.float32 and dtypes[-1] == torch.float32       # nothing left patched


def test_a_gpu_computes_both_reduced_precisions_in_hardware():
    assert precision.native("tf32", "cuda") and precision.native("bf16", "cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        precision.PrecisionEngine("tf32", device_type="cuda")
        precision.PrecisionEngine("bf16", device_type="cuda")


def test_the_imagenet_victims_take_every_precision_on_cuda(tf32_off):
    """The GPU job's victims (random weights: nothing is downloaded) at 224x224: in TF32 and bfloat16
    float32 logits and input gradients pointing where float32's point (cosine above 0.9, our bar).
    The label is another class than the prediction: a random network's softmax saturates, and the
    gradient for its own prediction would be rounding noise in any precision."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 224, 224, device="cuda")
    for name in ("resnet", "densenet"):
        victim = build_victim(name, "imagenet").eval().cuda()
        y = (victim(x).argmax(1) + 1) % victim.num_classes
        ref = _input_gradient(victim, x, y)
        for chosen in ("tf32", "bf16"):
            with precision.victim_passes(chosen):
                logits, got = victim(x), _input_gradient(victim, x, y)
            assert logits.dtype == got.dtype == torch.float32
            assert torch.isfinite(got).all()
            cosine = F.cosine_similarity(got.flatten(), ref.flatten(), dim=0).item()
            signs = (got.sign() == ref.sign()).float().mean().item()
            print(f"imagenet {name} {chosen}: gradient cosine with fp32 {cosine:.4f}, signs equal {signs:.3f}")
            assert cosine > 0.9, (name, chosen, cosine)


def test_adv2_on_cuda_keeps_the_budget_and_its_success_in_every_precision():
    """ADV2 against CAM on 40 correctly classified Fashion-MNIST images: on the GPU in fp32, TF32 and
    bf16, and on the CPU in fp32. Every adversarial image inside the eps-ball and [0, 1]; the attack
    success rate of each within 0.15 of the CPU's (our bar: about two standard errors of a rate near
    0.9 at n = 40)."""
    from adv2lib.attacks import ADV2, preset_for
    from adv2lib.data import load_test_set
    from adv2lib.errors import DatasetNotFoundError
    from adv2lib.experiments import random_target_classes, select_correct
    from adv2lib.interpreters import build_interpreter

    try:
        dataset = load_test_set("embedded")
    except DatasetNotFoundError as e:
        pytest.skip(str(e))
    rates = {}
    for device, chosen in [("cpu", "fp32"), ("cuda", "fp32"), ("cuda", "tf32"), ("cuda", "bf16")]:
        victim = load_victim("resnet", device=device)
        _, x, y = select_correct(victim, dataset, 40, seed=0)
        ct = random_target_classes(y, victim.num_classes, seed=0)
        config = preset_for("embedded", "cam")
        attack = ADV2(victim, build_interpreter("cam", victim), config=config)
        with precision.victim_passes(chosen):
            res = attack.attack(x.to(device), ct.to(device), true_class=y.to(device))
        x_adv = res.x_adv.cpu()
        assert (x_adv - x).abs().max().item() <= config.eps + 1e-6
        assert x_adv.min().item() >= 0 and x_adv.max().item() <= 1
        rates[device, chosen] = res.success.float().mean().item()
    print("ADV2-CAM attack success, 40 images:", {f"{d} {c}": r for (d, c), r in rates.items()})
    for key, rate in rates.items():
        assert abs(rate - rates["cpu", "fp32"]) <= 0.15, rates
