"""Victim models for both profiles; :func:`load_victim` is the public entry point."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import paths
from ..utils import resolve_device
from .embedded import EMBEDDED_ARCHITECTURES, SmallDenseNet, SmallResNet
from .imagenet import WeightsNotFoundError, build_imagenet_victim
from .victim import Normalize, Victim

VICTIMS = ("resnet", "densenet")
PROFILES = ("embedded", "imagenet")

__all__ = [
    "VICTIMS", "PROFILES", "Victim", "Normalize", "SmallResNet", "SmallDenseNet",
    "load_victim", "build_victim", "victim_weights_path", "victim_card", "WeightsNotFoundError",
]


def _check(name: str, profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    if name not in VICTIMS:
        raise ValueError(f"unknown victim {name!r}; expected one of {VICTIMS}")


def build_victim(name: str, profile: str = "embedded", **kwargs) -> Victim:
    """A freshly initialised (untrained) victim architecture."""
    _check(name, profile)
    if profile == "embedded":
        from ..data import FASHION_MNIST_CLASSES

        model = EMBEDDED_ARCHITECTURES[name](**kwargs)
        model.classes = FASHION_MNIST_CLASSES
        return model
    return build_imagenet_victim(name, weights=None)


def victim_weights_path(name: str) -> Path:
    return paths.weights_dir() / "embedded" / f"{name}.pt"


def victim_card(name: str) -> dict:
    """The model card (JSON) written next to the committed embedded weights."""
    path = victim_weights_path(name).with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"no model card at {path}; train with: python -m adv2lib train-victim {name}")
    return json.loads(path.read_text())


def load_victim(name: str, profile: str = "embedded", device="auto", weights="auto") -> Victim:
    """The trained victim ``name`` ("resnet" or "densenet") of ``profile``, in eval mode.

    Embedded: the committed Fashion-MNIST weights (``weights`` may name another file).
    ImageNet: torchvision ResNet-50 / DenseNet-169 with ImageNet weights (``weights=None``
    gives a randomly initialised network, for tests).

    >>> model = load_victim("resnet")                    # doctest: +SKIP
    >>> model(torch.rand(2, 1, 28, 28)).shape            # doctest: +SKIP
    torch.Size([2, 10])
    """
    _check(name, profile)
    device = resolve_device(device)
    if profile == "imagenet":
        model = build_imagenet_victim(name, weights=weights)
    else:
        model = build_victim(name, "embedded")
        path = victim_weights_path(name) if weights == "auto" else Path(weights)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"no trained weights for the embedded {name!r} victim at {path}.\n"
                f"Train them with: python -m adv2lib train-victim {name}"
            )
        model.load_state_dict(torch.load(path, map_location="cpu"))
    model.requires_grad_(False)
    return model.eval().to(device)
