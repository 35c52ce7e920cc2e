"""RTS (real-time saliency) interpreter and its training (paper-spec C.3, issue 3)."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from adv2lib import paths
from adv2lib.data import TensorImageDataset
from adv2lib.interpreters.rts import RTS, RTSWeightsNotFoundError, SaliencyNetwork, rts_weights_path
from adv2lib.interpreters.rts_train import (
    RTSTrainConfig, apply_mask, area_loss, class_margin, draw_replacement, evaluate_rts, fake_targets,
    gaussian_blur, smoothness_loss, train_rts,
)
from adv2lib.models import SmallResNet, build_victim, load_victim, victim_weights_path

torch.set_num_threads(1)


def tiny_victim(dtype=torch.float32):
    torch.manual_seed(0)
    victim = SmallResNet(widths=(2, 3, 4)).to(dtype).eval()
    for m in victim.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return victim


def tiny_rts(dtype=torch.float32):
    victim = tiny_victim(dtype)
    net = SaliencyNetwork(10, (3, 4), widths=(4,)).to(dtype)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return RTS(victim, net=net)


@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_shapes_range_and_native_size(name):
    rts = RTS(build_victim(name).eval(), weights=None)
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([0, 4, 9])
    maps = rts(x, y)
    assert rts.name == "rts"
    assert rts.native_size == (14, 14)
    assert maps.shape == (3, 1, 14, 14)
    assert maps.min() >= 0 and maps.max() <= 1
    assert not rts.net.training and not any(p.requires_grad for p in rts.net.parameters())


def test_map_and_encoder_logits_match_separate_calls():
    rts = tiny_rts()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    maps, logits = rts.map_and_encoder_logits(x, y)
    torch.testing.assert_close(maps, rts(x, y))
    torch.testing.assert_close(logits, rts.victim(x))  # embedded encoder = the victim itself


def test_differentiable_wrt_x_gradcheck():
    rts = tiny_rts(torch.float64)
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64, requires_grad=True)  # pyramid 12, 6, 3
    y = torch.tensor([3, 7])
    assert torch.autograd.gradcheck(lambda inp: rts(inp, y), (x,), eps=1e-6, atol=1e-5)
    maps, logits = rts.map_and_encoder_logits(x, y)
    grad = torch.autograd.grad(maps.sum() + logits[:, 0].sum(), x)[0]
    assert grad.abs().sum() > 0


def test_batch_equals_each_example_alone():
    rts = tiny_rts()
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    batch = rts(x, y)
    alone = torch.cat([rts(x[i : i + 1], y[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-6)


def test_inputs_not_mutated():
    rts = tiny_rts()
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([5, 6])
    x0, y0 = x.clone(), y.clone()
    rts.map_and_encoder_logits(x, y)
    rts(x, y)
    assert torch.equal(x, x0) and torch.equal(y, y0)


def test_selector_changes_the_map():
    rts = tiny_rts()
    x = torch.rand(1, 1, 28, 28)
    maps = torch.cat([rts(x, torch.tensor([c])) for c in range(10)])
    assert (maps - maps[:1]).abs().amax(dim=(1, 2, 3))[1:].min() > 1e-4


def test_scalar_target_is_broadcast_and_bad_shapes_raise():
    rts = tiny_rts()
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(rts(x, 2), rts(x, torch.tensor([2, 2, 2])))
    with pytest.raises(ValueError):
        rts(x, torch.tensor([1, 2]))
    with pytest.raises(ValueError):
        rts.map_and_encoder_logits(x[0], 1)


def test_missing_weights_error_names_the_command(monkeypatch, tmp_path):
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(RTSWeightsNotFoundError, match="python -m adv2lib train-rts densenet"):
        RTS(build_victim("densenet").eval())
    assert rts_weights_path("densenet") == tmp_path / "embedded" / "rts_densenet.pt"


# --------------------------------------------------------------------------- loss pieces

def test_loss_pieces_closed_forms():
    zeros = torch.zeros(2, 1, 5, 5)
    assert area_loss(zeros).item() == pytest.approx(5e-4**0.3)
    c = 0.5
    const = torch.full((2, 1, 5, 4), c)
    # no neighbour differences; border: rows 0 and 4 (4 values each), columns 0 and 3 (5 each)
    expected = 0.3 * c**2 * (4 + 4 + 5 + 5) * 2 / (2 * 2)
    assert smoothness_loss(const).item() == pytest.approx(expected)
    step = torch.zeros(1, 1, 3, 3)
    step[..., 2] = 1.0  # one vertical edge of height 3, border values in column 2 and rows 0/2
    assert smoothness_loss(step, border_penalty=0.0).item() == pytest.approx(3 / 2)
    logits = torch.tensor([[1.0, 3.0, 2.0], [5.0, 0.0, 4.5]])
    torch.testing.assert_close(class_margin(logits, torch.tensor([1, 0])), torch.tensor([1.0, 0.5]))


def test_blur_and_masking():
    x = torch.rand(2, 1, 28, 28)
    blurred = gaussian_blur(x, 7, 1.4)
    assert blurred.shape == x.shape
    flat = gaussian_blur(torch.ones(1, 1, 28, 28), 7, 1.4)
    torch.testing.assert_close(flat[..., 3:-3, 3:-3], torch.ones(1, 1, 22, 22))  # normalised kernel
    g = torch.Generator().manual_seed(0)
    noisy, replacement = draw_replacement(x, RTSTrainConfig(), g)
    assert noisy.min() >= 0 and noisy.max() <= 1 and replacement.min() >= 0 and replacement.max() <= 1
    assert torch.equal(apply_mask(noisy, replacement, torch.ones(2, 1, 14, 14)), noisy)
    assert torch.equal(apply_mask(noisy, replacement, torch.zeros(2, 1, 14, 14)), replacement)
    y = torch.randint(0, 10, (1000,), generator=g)
    target, real = fake_targets(y, 10, 0.3, g)
    assert torch.equal(target[real], y[real]) and (target[~real] != y[~real]).all()
    assert 0.2 < (~real).float().mean() < 0.4


# --------------------------------------------------------------------------- training

def _tiny_dataset(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return TensorImageDataset(images, torch.randint(0, 10, (n,), generator=g), tuple(map(str, range(10))))


def test_training_is_seeded_and_resumes(monkeypatch, tmp_path):
    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path / "weights"))
    data = _tiny_dataset()
    cfg = RTSTrainConfig(selector_steps=2, selector_batch_size=8, steps=4, batch_size=8, checkpoint_every=3)
    kw = dict(victim=tiny_victim(), train_set=data, test_set=data, progress=False, eval_images=16)
    card = train_rts("resnet", cfg, resume=False, **kw)
    first = torch.load(rts_weights_path("resnet"), weights_only=True)["state_dict"]
    assert all(torch.isfinite(torch.tensor(v)) for v in card["final_losses"].values())
    assert card["evaluation"]["n_images"] == 16 and card["architecture"]["native_size"] == [14, 14]
    assert json.loads(rts_weights_path("resnet").with_suffix(".json").read_text())["seed"] == 0
    # the same seed from scratch gives the same network
    train_rts("resnet", cfg, resume=False, **kw)
    again = torch.load(rts_weights_path("resnet"), weights_only=True)["state_dict"]
    assert all(torch.equal(first[k], again[k]) for k in first)
    # resume from the step-3 checkpoint: the remaining steps reproduce the same network
    ckpt_path = tmp_path / "cache" / "train" / "rts-embedded-resnet-seed0.pt"
    ckpt = torch.load(ckpt_path, weights_only=False)
    assert ckpt["step"] == 6
    short = RTSTrainConfig(**{**cfg.__dict__, "steps": 1})  # 3 steps in all: stops at the checkpoint
    train_rts("resnet", short, resume=False, **kw)
    partial = torch.load(tmp_path / "cache" / "train" / "rts-embedded-resnet-seed0.pt", weights_only=False)
    partial["config"] = cfg.__dict__  # pretend it was the 6-step run interrupted after step 3
    torch.save(partial, ckpt_path)
    train_rts("resnet", cfg, resume=True, **kw)
    resumed = torch.load(rts_weights_path("resnet"), weights_only=True)["state_dict"]
    assert all(torch.allclose(first[k].float(), resumed[k].float()) for k in first)
    # the loaded network is the trained one
    rts = RTS(tiny_victim())
    torch.testing.assert_close(rts.net.state_dict()["to_mask.weight"], first["to_mask.weight"])


def test_profile_schedules():
    assert RTSTrainConfig.for_profile("embedded") == RTSTrainConfig()
    ref = RTSTrainConfig.for_profile("imagenet", seed=3)
    # Dabkowski & Gal's saliency_train.py and the SaliencyLoss defaults (paper-spec C.3)
    assert (ref.selector_steps, ref.selector_batch_size, ref.steps, ref.batch_size) == (8500, 128, 3000, 64)
    assert (ref.smoothness_coef, ref.preserver_coef, ref.area_coef, ref.area_warmup) == (0.005, 0.3, 8.0, 0.0)
    assert (ref.blur_kernel, ref.blur_sigma, ref.seed) == (55, 11.0, 3)
    with pytest.raises(ValueError, match="unknown profile"):
        RTSTrainConfig.for_profile("cifar")


def test_cli_imagenet_training_needs_its_images(capsys):
    from adv2lib.cli import main

    assert main(["train-rts", "resnet", "--profile", "imagenet"]) == 2
    assert "--train-dir" in capsys.readouterr().err


def test_evaluation_spreads_images_when_asked():
    data = _tiny_dataset(n=40)
    seen = []
    tensors = data.tensors
    data.tensors = lambda idx: (seen.extend(int(i) for i in idx), tensors(idx))[1]
    rts = RTS(tiny_victim(), net=tiny_rts().net)
    first = evaluate_rts(rts, data, n_images=5, batch_size=2)
    assert seen == [0, 1, 2, 3, 4] and first["images"] == "first"
    seen.clear()
    spread = evaluate_rts(rts, data, n_images=5, batch_size=2, spread=True)
    assert seen == [0, 10, 20, 29, 39] and spread["images"] == "evenly spaced"


# --------------------------------------------------------------------------- committed weights

@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_committed_weights_match_their_victim(name):
    card = json.loads(rts_weights_path(name).with_suffix(".json").read_text())
    sha = hashlib.sha256(victim_weights_path(name).read_bytes()).hexdigest()
    assert card["victim_weights_sha256"] == sha, "victim retrained: rerun python -m adv2lib train-rts " + name
    rts = RTS(load_victim(name, device="cpu"))
    assert rts.native_size == (14, 14) and rts.model_confidence == card["architecture"]["model_confidence"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_committed_weights_preserve_and_destroy(name):
    from adv2lib.data import fashion_mnist

    rts = RTS(load_victim(name, device="cpu"))
    result = evaluate_rts(rts, fashion_mnist("test"), n_images=500, seed=3)
    assert result["preserved_accuracy"] >= 0.8
    assert result["destroyed_accuracy"] <= 0.5 * result["preserved_accuracy"]
    assert result["mean_area_fake_class"] < 0.5 * result["mean_area"]  # class-selective


# --------------------------------------------------------------------------- ImageNet profile

@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_imagenet_architecture_random_weights(name):
    victim = build_victim(name, "imagenet").eval()
    rts = RTS(victim, weights=None)
    assert (rts.encoder is victim) == (name == "resnet")
    assert [s.merge.body[-2].out_channels for s in rts.net.stages] == [256, 128, 64]
    assert rts.model_confidence == 6.0
    x = torch.rand(1, 3, 224, 224)
    maps, logits = rts.map_and_encoder_logits(x, torch.tensor([7]))
    assert maps.shape == (1, 1, 56, 56) and rts.native_size == (56, 56) and logits.shape == (1, 1000)
    assert 0 <= maps.min() and maps.max() <= 1
