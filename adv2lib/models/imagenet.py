"""The paper's ImageNet victims: torchvision ResNet-50 and DenseNet-169, wrapped in the
:class:`~adv2lib.models.victim.Victim` contract (ImageNet normalisation inside the model,
feature pyramid and classifier exposed).

The paper uses torchvision's original weights (``resnet50-19c8e357``,
``densenet169-b2777c0a``; paper-spec section (f)), which are the ``IMAGENET1K_V1`` entries
of the weights enums. Weights are resolved in this order: an explicit file, a file named
``<arch>.pth`` under ``ADV2_WEIGHTS_DIR/imagenet``, then torchvision's cache/download (only
when neither file is there). Current torchvision serves ResNet-50 ``IMAGENET1K_V1`` as
``resnet50-0676ba61.pth`` (DenseNet-169 still as ``densenet169-b2777c0a.pth``); the URL
actually used is recorded in the victim's ``weights_source``.

Every loaded victim carries ``weights_source``, a JSON-able record of where its weights
came from: ``{"kind": "file", "path": ..., "sha256": ...}``, ``{"kind": "torchvision",
"enum": "ResNet50_Weights.IMAGENET1K_V1", "url": ...}`` (the URL's suffix is torchvision's
published hash prefix, checked on download) or ``{"kind": "random"}``.

A file that cannot be read or that belongs to another architecture is refused with one line
(:mod:`adv2lib.models.weights`).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from .. import paths
from ..errors import ConfigError, WeightsNotFoundError
from ..fileio import sha256_file
from .victim import Normalize, Victim
from .weights import first_sentence, load_fitting_state_dict, read_weights_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ARCH_OF = {"resnet": "resnet50", "densenet": "densenet169"}
#: The architectures' names as written in messages.
ARCH_LABEL = {"resnet50": "ResNet-50", "densenet169": "DenseNet-169"}


def _other_imagenet_family(arch: str):
    """A ``guess`` for :func:`load_fitting_state_dict`: "a DenseNet" / "a ResNet" when the keys
    are those of the *other* family than ``arch``'s."""
    own = "a DenseNet" if arch.startswith("densenet") else "a ResNet"

    def guess(state) -> str | None:
        if not isinstance(state, Mapping):
            return None
        keys = [str(k) for k in state]
        family = ("a DenseNet" if any("denseblock" in k for k in keys)
                  else "a ResNet" if any(k.startswith("layer4.") for k in keys) else None)
        return family if family != own else None

    return guess


_OLD_DENSE_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _rename_old_densenet_keys(state):
    """Old DenseNet checkpoints (torchvision's ``densenet169-b2777c0a.pth`` among them) name
    layers ``norm.1``, ``conv.2``...; torchvision's own loader renames them to ``norm1``,
    ``conv2``, and so do we (the names are all that differ)."""
    if not isinstance(state, Mapping) or not any(_OLD_DENSE_KEY.match(str(k)) for k in state):
        return state
    renamed = OrderedDict()
    for key, value in state.items():
        match = _OLD_DENSE_KEY.match(str(key))
        renamed[match.group(1) + match.group(2) if match else key] = value
    if hasattr(state, "_metadata"):   # the serialisation versions BatchNorm relies on
        renamed._metadata = state._metadata
    return renamed


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


def torchvision_weights(arch: str):
    """The torchvision ``IMAGENET1K_V1`` weights enum entry of ``arch``."""
    from torchvision import models

    return {"resnet50": models.ResNet50_Weights, "densenet169": models.DenseNet169_Weights}[arch].IMAGENET1K_V1


def _torchvision_state_dict(arch: str) -> dict:
    entry = torchvision_weights(arch)
    try:
        return entry.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # URLError, socket errors, HTTP errors...
        local = paths.imagenet_weights_file(arch)
        raise WeightsNotFoundError(
            f"Could not obtain ImageNet weights for {arch} ({type(err).__name__}: {first_sentence(err, 200)}): "
            f"either run once with internet access (torchvision caches them under TORCH_HOME), or "
            f"copy a state dict to {local} (or pass weights='/path/to/{arch}.pth')"
        ) from err


def _imagenet_remedy(arch: str, path: Path, auto: bool) -> tuple[str, str]:
    """(remedy for an unreadable file, remedy for a file of another architecture)."""
    entry, label = torchvision_weights(arch), ARCH_LABEL[arch]
    url = entry.url
    unreadable = f"re-download the {label} weights ({entry}, {url}) or re-copy the state dict to {path}"
    if auto:
        unreadable += ", or delete the file to let torchvision download them"
    wrong = f"pass a {label} state dict ({entry}, {url})"
    if auto:
        wrong += f", or delete {path} to let torchvision download them"
    return unreadable, wrong


def build_imagenet_victim(name: str, weights: str | Path | None = "auto") -> Victim:
    """ResNet-50 (``name="resnet"``) or DenseNet-169 (``"densenet"``) for ImageNet.

    ``weights``: ``"auto"`` (the local file ``<weights_dir>/imagenet/<arch>.pth`` when
    present, else torchvision's weights, downloaded once into its cache), a path to a state
    dict (never downloads), or ``None`` for random initialisation (tests only). The file is
    read and checked before the network is built; the result's ``weights_source`` records
    where the weights came from (see the module docstring).
    """
    from torchvision import models

    if name not in ARCH_OF:
        raise ConfigError(f"unknown ImageNet victim {name!r}; expected one of {', '.join(sorted(ARCH_OF))}")
    arch = ARCH_OF[name]
    state, path, source = None, None, {"kind": "random"}
    if weights is not None:
        auto = isinstance(weights, str) and weights == "auto"
        path = paths.imagenet_weights_file(arch) if auto else Path(weights)
        if auto and not path.is_file():
            state = _torchvision_state_dict(arch)
            entry = torchvision_weights(arch)
            source = {"kind": "torchvision", "enum": str(entry), "url": entry.url}
            path = None
        else:
            unreadable, wrong = _imagenet_remedy(arch, path, auto)
            if not path.is_file():
                raise WeightsNotFoundError(f"ImageNet weights file {path} does not exist: {wrong}, "
                                           f"or weights='auto' for torchvision's")
            state = read_weights_file(path, unreadable)
            source = {"kind": "file", "path": str(path.resolve()), "sha256": sha256_file(path)}
        if arch.startswith("densenet"):
            state = _rename_old_densenet_keys(state)
    net = getattr(models, arch)(weights=None)
    if state is not None:
        if path is None:    # torchvision's own file: its keys fit by construction
            net.load_state_dict(state)
        else:
            load_fitting_state_dict(net, state, path, ARCH_LABEL[arch], f"the ImageNet victim {name!r}", wrong,
                                    guess=_other_imagenet_family(arch))
    victim = (ResNet50Victim if name == "resnet" else DenseNet169Victim)(net)
    victim.weights_source = source
    return victim
