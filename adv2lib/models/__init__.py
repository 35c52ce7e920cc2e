"""Victim models for both profiles; :func:`load_victim` is the public entry point."""
from __future__ import annotations

import json
from pathlib import Path

from .. import paths
from ..errors import ConfigError, WeightsMismatchError, WeightsNotFoundError
from ..fileio import sha256_file
from ..names import PROFILES, VICTIMS  # re-exported: adv2lib.models.VICTIMS, .PROFILES
from ..utils import resolve_device
from .embedded import EMBEDDED_ARCHITECTURES, SmallDenseNet, SmallResNet
from .imagenet import build_imagenet_victim
from .victim import Normalize, Victim
from .weights import display_path, load_fitting_state_dict, read_weights_file, repair_hint, state_dict_mismatch


__all__ = [
    "VICTIMS", "PROFILES", "Victim", "Normalize", "SmallResNet", "SmallDenseNet",
    "load_victim", "build_victim", "victim_weights_path", "victim_card", "WeightsNotFoundError",
    "WeightsMismatchError",
]


def _check(name: str, profile: str) -> None:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    if name not in VICTIMS:
        raise ConfigError(f"unknown victim {name!r}; expected one of {', '.join(VICTIMS)}")


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
        raise WeightsNotFoundError(f"no model card at {path}; train with: python -m adv2lib train-victim {name}")
    return json.loads(path.read_text())


def _embedded_guess(name: str):
    """A ``guess`` for :func:`load_fitting_state_dict`: the other embedded architecture, when the
    keys fit it exactly."""
    def guess(state) -> str | None:
        for other, arch in EMBEDDED_ARCHITECTURES.items():
            if other != name and state_dict_mismatch(arch(), state) is None:
                return f"{arch.__name__}, the {other!r} victim"
        return None

    return guess


def _load_embedded_weights(model: Victim, name: str, path: Path) -> None:
    """Read ``path`` into the embedded victim ``model``; one-line errors with the remedy."""
    retrain = f"python -m adv2lib train-victim {name}"
    default = victim_weights_path(name)
    if not path.is_file():
        if path == default:
            raise WeightsNotFoundError(f"no trained weights for the embedded {name!r} victim at {path}: "
                                       f"train them with: {retrain}")
        raise WeightsNotFoundError(f"no weights file at {path} for the embedded {name!r} victim: check the path, "
                                   f"or omit weights= to use the committed {display_path(default)}, "
                                   f"or train them with: {retrain}")
    state = read_weights_file(path, repair_hint(path, default, retrain))
    load_fitting_state_dict(model, state, path, type(model).__name__, f"victim {name!r}",
                            f"pass the {name} weights or retrain with {retrain}", guess=_embedded_guess(name))


def load_victim(name: str, profile: str = "embedded", device="auto", weights="auto") -> Victim:
    """The trained victim ``name`` ("resnet" or "densenet") of ``profile``, in eval mode.

    Embedded: the committed Fashion-MNIST weights (``weights`` may name another file).
    ImageNet: torchvision ResNet-50 / DenseNet-169 with ImageNet weights (a local file is
    used without any download when given or present; see
    :func:`~adv2lib.models.imagenet.build_imagenet_victim`). ``weights=None`` gives a
    randomly initialised network, for tests.

    A weights file that cannot be read (truncated, empty) or that belongs to another
    architecture raises one :class:`~adv2lib.errors.WeightsMismatchError` line naming the file
    and the remedy. The returned model's ``weights_source`` records where its weights came
    from (``{"kind": "file", "path": ..., "sha256": ...}``, ``{"kind": "torchvision", ...}``
    or ``{"kind": "random"}``), for the experiments' manifests.

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
        if weights is None:
            model.weights_source = {"kind": "random"}
        else:
            auto = isinstance(weights, str) and weights == "auto"
            path = victim_weights_path(name) if auto else Path(weights)
            _load_embedded_weights(model, name, path)
            model.weights_source = {"kind": "file", "path": str(path.resolve()), "sha256": sha256_file(path)}
    model.requires_grad_(False)
    return model.eval().to(device)
