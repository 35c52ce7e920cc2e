"""The paper's ImageNet victims: torchvision ResNet-50 and DenseNet-169, wrapped in the
:class:`~adv2lib.models.victim.Victim` contract (ImageNet normalisation inside the model,
feature pyramid and classifier exposed).

The paper uses torchvision's original weights (``resnet50-19c8e357``,
``densenet169-b2777c0a``; paper-spec section (f)), which are the ``IMAGENET1K_V1`` entries
of the weights enums. Weights are resolved in this order: an explicit file, a file named
``<arch>.pth`` under ``ADV2_WEIGHTS_DIR/imagenet``, then torchvision's cache/download.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import paths
from .victim import Normalize, Victim

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ARCH_OF = {"resnet": "resnet50", "densenet": "densenet169"}


class WeightsNotFoundError(FileNotFoundError):
    """Raised when ImageNet weights are neither on disk nor downloadable."""


def _imagenet_categories() -> tuple[str, ...]:
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


class ResNet50Victim(Victim):
    name = "resnet"
    profile = "imagenet"
    input_shape = (3, 224, 224)

    def __init__(self, net: nn.Module):
        super().__init__()
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.net = net
        self.classifier = net.fc
        self.classes = _imagenet_categories()

    def _pyramid(self, xn):
        n = self.net
        h = n.maxpool(n.relu(n.bn1(n.conv1(xn))))
        f1 = n.layer1(h)
        f2 = n.layer2(f1)
        f3 = n.layer3(f2)
        return [f1, f2, f3, n.layer4(f3)]


class DenseNet169Victim(Victim):
    name = "densenet"
    profile = "imagenet"
    input_shape = (3, 224, 224)

    def __init__(self, net: nn.Module):
        super().__init__()
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.net = net
        self.classifier = net.classifier
        # torchvision applies F.relu after ``features``; a module lets surrogate contexts see it.
        self.final_relu = nn.ReLU()
        self.classes = _imagenet_categories()

    def _pyramid(self, xn):
        out, h = [], xn
        for name, module in self.net.features.named_children():
            h = module(h)
            if name in ("denseblock1", "denseblock2", "denseblock3"):
                out.append(h)
        out.append(self.final_relu(h))
        return out


def _torchvision_state_dict(arch: str) -> dict:
    from torchvision import models

    enum = {"resnet50": models.ResNet50_Weights, "densenet169": models.DenseNet169_Weights}[arch]
    try:
        return enum.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # URLError, socket errors, HTTP errors...
        local = paths.weights_dir() / "imagenet" / f"{arch}.pth"
        raise WeightsNotFoundError(
            f"Could not obtain ImageNet weights for {arch} ({type(err).__name__}: {err}).\n"
            f"Either run once with internet access (torchvision caches them under TORCH_HOME), or\n"
            f"copy a state dict to {local} (or pass weights='/path/to/{arch}.pth')."
        ) from err


def build_imagenet_victim(name: str, weights: str | Path | None = "auto") -> Victim:
    """ResNet-50 (``name="resnet"``) or DenseNet-169 (``"densenet"``) for ImageNet.

    ``weights``: ``"auto"`` (local file, else torchvision's weights), a path to a state
    dict, or ``None`` for random initialisation (tests only).
    """
    from torchvision import models

    if name not in ARCH_OF:
        raise ValueError(f"unknown ImageNet victim {name!r}; expected one of {sorted(ARCH_OF)}")
    arch = ARCH_OF[name]
    net = getattr(models, arch)(weights=None)
    if weights is not None:
        if weights == "auto":
            local = paths.weights_dir() / "imagenet" / f"{arch}.pth"
            state = torch.load(local, map_location="cpu") if local.is_file() else _torchvision_state_dict(arch)
        else:
            path = Path(weights)
            if not path.is_file():
                raise WeightsNotFoundError(f"weights file {path} does not exist")
            state = torch.load(path, map_location="cpu")
        net.load_state_dict(state)
    return (ResNet50Victim if name == "resnet" else DenseNet169Victim)(net)
