"""Small shared fixtures: tiny hand-built victims, random-init embedded victims, a few
Fashion-MNIST images. Everything here is fast on a CPU."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from adv2lib.models import build_victim
from adv2lib.models.victim import Normalize, Victim

# The tests run tiny tensors, for which intra-op threads only add synchronisation; on a
# shared 2-core machine OpenMP oversubscription made them up to 100x slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _scratch_record(request, tmp_path_factory, monkeypatch):
    """Tests never write into the repository's ``record/`` (``ADV2_RECORD_DIR``); the notebook
    tests read the smoke book that ``make test-book`` built there."""
    if request.node.get_closest_marker("notebook") is None and "ADV2_RECORD_DIR" not in os.environ:
        monkeypatch.setenv("ADV2_RECORD_DIR", str(tmp_path_factory.mktemp("record")))


class TinyVictim(Victim):
    """An 8x8 grayscale victim honouring the full Victim contract (pyramid, GAP + linear
    head) with a few hundred parameters: conv(1->3) at 8x8, conv(3->4, stride 2) at 4x4
    (the CAM features), linear(4 -> 3). ``activation`` picks the non-linearity (an
    ``nn.ReLU`` by default, ``nn.Softplus`` for a victim with a non-zero input Hessian).
    ``hidden_layers=1`` keeps only one activation layer (conv(1->4, stride 2) + activation):
    then the surrogate-ReLU attack map is an ordinary function of ``x`` whose derivative
    autograd computes exactly, so ``gradcheck`` applies to it."""

    name = "tiny"
    input_shape = (1, 8, 8)

    def __init__(self, activation: type[nn.Module] = nn.ReLU, seed: int = 0, hidden_layers: int = 2):
        super().__init__()
        torch.manual_seed(seed)
        self.normalize = Normalize((0.5,), (0.5,))
        if hidden_layers == 2:
            self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
            self.act1 = activation()
        self.conv2 = nn.Conv2d(3 if hidden_layers == 2 else 1, 4, 3, stride=2, padding=1)
        self.act2 = activation()
        self.classifier = nn.Linear(4, 3)
        self.classes = ("a", "b", "c")
        self.hidden_layers = hidden_layers

    def _pyramid(self, xn):
        if self.hidden_layers == 1:
            return [self.act2(self.conv2(xn))]
        f1 = self.act1(self.conv1(xn))
        return [f1, self.act2(self.conv2(f1))]


class LinearModel(nn.Module):
    """``logits = W . x + b`` on ``(N, C, H, W)`` images: its input gradient is ``W[y]``."""

    profile = "embedded"

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.input_shape = tuple(weight.shape[1:])
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(weight.shape[0]) if bias is None else bias, requires_grad=False)

    def forward(self, x):
        return x.flatten(1) @ self.weight.flatten(1).T + self.bias


@pytest.fixture
def tiny_victim():
    return TinyVictim().eval()


@pytest.fixture
def tiny_victim64():
    return TinyVictim().double().eval()


@pytest.fixture
def tiny_images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 1, 8, 8, generator=g), torch.tensor([0, 2, 1])


@pytest.fixture(scope="session", params=["resnet", "densenet"])
def random_victim(request):
    """A random-init embedded victim (eval mode, frozen), seeded."""
    torch.manual_seed(0)
    victim = build_victim(request.param, "embedded").eval()
    victim.requires_grad_(False)
    return victim


@pytest.fixture(scope="session")
def fmnist_batch():
    """The first four Fashion-MNIST test images and labels."""
    from adv2lib.data import fashion_mnist

    return fashion_mnist("test").tensors(range(4))


@pytest.fixture(scope="session", params=["resnet", "densenet"])
def trained_victim(request):
    """A trained embedded victim; skipped where its committed weights are missing."""
    from adv2lib.models import WeightsNotFoundError, load_victim

    try:
        return load_victim(request.param, "embedded", device="cpu")
    except WeightsNotFoundError as err:
        pytest.skip(str(err).splitlines()[0])


def adv2_against_pgd(interp_factory, preset_name):
    """ADV2 (smoke preset ``preset_name``) and PGD on the first correctly classified of four
    Fashion-MNIST test images, on the trained embedded ResNet: ``(success ADV2, success PGD,
    mean L1 to the benign map of ADV2's maps, of PGD's)``. Skips without the weights."""
    from adv2lib.attacks import ADV2, PGD, preset_for
    from adv2lib.data import fashion_mnist
    from adv2lib.metrics import l1_distance
    from adv2lib.models import load_victim, victim_weights_path

    if not victim_weights_path("resnet").is_file():
        pytest.skip("trained embedded ResNet weights not present")
    model = load_victim("resnet", device="cpu")
    x, y = fashion_mnist("test").tensors(range(4))
    keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    ct = (y + 1) % 10
    interp = interp_factory(model)
    benign = interp(x, y).detach()
    pgd = PGD(model, config=preset_for("embedded", "pgd", smoke=True)).attack(x, ct, true_class=y)
    adv = ADV2(model, interp, config=preset_for("embedded", preset_name, smoke=True)).attack(x, ct, true_class=y)
    assert torch.equal(adv.target_map, benign)
    return (adv.success, pgd.success, l1_distance(adv.adv_map, benign).mean(),
            l1_distance(interp(pgd.x_adv, ct), benign).mean())
