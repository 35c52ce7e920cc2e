"""RTS: real-time saliency (Dabkowski & Gal, "Real Time Image Saliency for Black Box
Classifiers", NeurIPS 2017), as attacked by ADV2 (paper-spec section C.3).

A masking network predicts, in one forward pass, a mask ``m`` in (0, 1) that marks the
region of ``x`` responsible for class ``c``: keeping it preserves the prediction, removing
it destroys the prediction. It has three parts:

* **encoder** -- a frozen feature pyramid, finest first. Embedded profile: the victim's own
  ``victim.pyramid(x)`` (28, 14, 7 pixels). ImageNet: a torchvision ResNet-50, as in the paper
  (layer1..layer4 at 56, 28, 14, 7); for the ResNet-50 victim that *is* the victim, for the
  DenseNet-169 victim the paper still uses a separate ImageNet ResNet-50 encoder
  (``expr_attacks/rts_model_densenet169.py`` in the official code). The encoder's own
  logits (its classifier on its last features) are what the ADV2-RTS attack pushes towards
  the target class (``map_and_encoder_logits``).
* **class selector** (feature filter) -- an ``Embedding(num_classes, C)`` over the ``C``
  channels of the last feature map ``F``, initialised N(0, 1/sqrt(C)):
  ``act = sum_channels(F * e_c)`` and ``F <- F * sigmoid(act - model_confidence)``.
* **decoder** -- U-Net stages, each ``conv3x3(in -> 4*out) + BN + ReLU``, pixel shuffle x2,
  ReLU, concatenation with the encoder's skip features, one bottleneck residual block; then
  a 1x1 conv to two channels ``a, b`` and ``m = |a| / (|a| + |b|)``.

Native resolution. ImageNet: three stages 7 -> 14 -> 28 -> 56 (skips layer3, layer2,
layer1), a 56x56 mask on 224x224 input, as in the paper. Embedded: **one** stage 7 -> 14
with the 14x14 skip, a 14x14 mask on 28x28 input. The paper's mask is 1/4 of the input side
because Dabkowski & Gal's decoder stops three scales above a five-scale encoder, leaving
the two finest scales unused; our encoder has three scales, and stopping at 1/4 (7x7) would
give no decoder at all and a map as coarse as CAM's. One stage above the finest scale
(1/2 of the side, 14x14) keeps the same structure (decoder stops one scale above the
finest encoder scale), matches the GRAD and MASK grids of the embedded profile, and still
covers a Fashion-MNIST garment with a few dozen cells.

``model_confidence``: 6 for ImageNet (every ADV2 attack and evaluation call; spec C.3) and
0 for the embedded profile. Dabkowski & Gal train with 0 (the default of their forward
pass); ADV2 raises it to 6 at test time for ImageNet only, a train/test mismatch the spec
lists as pitfall 3. We train and evaluate the embedded RTS with the same value, 0: the
selector's pre-training objective (the "exists" logits ``(-mean(act)/2, mean(act)/2)``)
puts the real/fake decision boundary at ``act = 0``, so ``sigmoid(act - 0)`` gates at the
learnt boundary. The value is stored with the trained weights and used from there.

The returned map is the raw mask in (0, 1): unlike GRAD and CAM it is **not** min-max
normalised (spec (e)). Unlike MASK, large values mark the salient region directly.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .. import paths
from ..errors import WeightsMismatchError, WeightsNotFoundError
from ..models.weights import display_path, read_card, read_weights_file, repair_hint, state_dict_mismatch
from ._common import as_targets
from .base import AttackTerms, Interpreter

#: Per-profile defaults: decoder widths (one per stage, coarse to fine) and model_confidence.
PROFILE_DEFAULTS = {
    "embedded": {"widths": (64,), "model_confidence": 0.0},
    "imagenet": {"widths": (256, 128, 64), "model_confidence": 6.0},
}


class RTSWeightsNotFoundError(WeightsNotFoundError):
    """Raised when a victim has no trained RTS masking network on disk."""


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, width out/4) with a 1x1 projection shortcut
    when the channel count changes (the "follow-up residual block" of Dabkowski & Gal)."""

    def __init__(self, cin: int, cout: int, ratio: int = 4):
        super().__init__()
        mid = max(cout // ratio, 1)
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class UpsamplerStage(nn.Module):
    """One U-Net decoder stage: ``conv3x3 -> BN -> ReLU -> pixel shuffle x2 -> ReLU``,
    concatenate the skip features, then one bottleneck residual block."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.upsample = nn.Sequential(
            nn.Conv2d(cin, 4 * cout, 3, padding=1, bias=False), nn.BatchNorm2d(4 * cout), nn.ReLU(),
            nn.PixelShuffle(2), nn.ReLU(),
        )
        self.merge = Bottleneck(cout + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([self.upsample(x), skip], dim=1))


class SaliencyNetwork(nn.Module):
    """The trainable part of RTS: class selector + decoder, on top of a frozen pyramid.

    Parameters
    ----------
    num_classes:
        size of the class selector.
    pyramid_channels:
        channels of the encoder's feature maps, finest first (e.g. ``(32, 64, 128)``).
    widths:
        output channels of each decoder stage, coarse to fine; ``len(widths)`` stages, each
        doubling the resolution, so the mask is ``2**len(widths)`` times finer than the
        last feature map.
    model_confidence:
        the offset in the feature filter ``sigmoid(act - model_confidence)``.
    eps:
        added to ``|a| + |b|`` so the mask is defined when both are zero.
    """

    def __init__(self, num_classes: int, pyramid_channels, widths=(64,), model_confidence: float = 0.0,
                 eps: float = 1e-6):
        super().__init__()
        pyramid_channels = tuple(int(c) for c in pyramid_channels)
        widths = tuple(int(w) for w in widths)
        if len(widths) >= len(pyramid_channels):
            raise ValueError(f"{len(widths)} decoder stages need at least {len(widths) + 1} pyramid levels, "
                             f"got {len(pyramid_channels)}")
        self.config = {"num_classes": int(num_classes), "pyramid_channels": list(pyramid_channels),
                       "widths": list(widths), "model_confidence": float(model_confidence), "eps": float(eps)}
        self.model_confidence = float(model_confidence)
        self.eps = float(eps)
        last = pyramid_channels[-1]
        self.selector = nn.Embedding(num_classes, last)
        nn.init.normal_(self.selector.weight, 0.0, 1.0 / last**0.5)
        stages, cin = [], last
        for i, cout in enumerate(widths):
            stages.append(UpsamplerStage(cin, pyramid_channels[-2 - i], cout))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.to_mask = nn.Conv2d(cin, 2, 1)

    def selector_activation(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``act = sum_channels(F * e_target)``, shape ``(N, 1, h, w)``."""
        embedding = self.selector(target).view(target.shape[0], -1, 1, 1)
        return (features * embedding).sum(dim=1, keepdim=True)

    @staticmethod
    def exists_logits(act: torch.Tensor) -> torch.Tensor:
        """Dabkowski & Gal's two-way "is this class present" logits ``(-a/2, a/2)``, with
        ``a`` the spatial mean of the selector activation (used to pre-train the selector)."""
        mean = act.mean(dim=(2, 3))
        return torch.cat([-mean / 2, mean / 2], dim=1)

    def forward(self, pyramid: list[torch.Tensor], target: torch.Tensor, return_act: bool = False):
        """Mask ``(N, 1, h, w)`` in (0, 1) for classes ``target`` from the encoder ``pyramid``."""
        flow = pyramid[-1]
        act = self.selector_activation(flow, target)
        flow = flow * torch.sigmoid(act - self.model_confidence)
        for i, stage in enumerate(self.stages):
            flow = stage(flow, pyramid[-2 - i])
        ab = self.to_mask(flow).abs()
        mask = ab[:, :1] / (ab[:, :1] + ab[:, 1:] + self.eps)
        return (mask, act) if return_act else mask


#: The trained RTS networks a victim can have: the masking network trained as Dabkowski & Gal
#: do (``"auto"``), and the one hardened by adversarial interpretation distillation
#: (``"aid"``, :mod:`adv2lib.interpreters.rts_aid`).
RTS_VARIANTS = {"auto": "rts", "aid": "rts_aid"}


def rts_weights_path(victim_name: str, profile: str = "embedded", variant: str = "auto") -> Path:
    """``<weights_dir>/<profile>/rts_<victim>.pt`` (``variant="aid"``: ``rts_aid_<victim>.pt``)."""
    if variant not in RTS_VARIANTS:
        raise ValueError(f"unknown RTS variant {variant!r}: choose one of {', '.join(RTS_VARIANTS)}")
    return paths.weights_dir() / profile / f"{RTS_VARIANTS[variant]}_{victim_name}.pt"


def build_encoder(victim, weights="auto"):
    """The frozen RTS encoder for ``victim``: the victim itself (embedded profile, or the
    ImageNet ResNet-50), else an ImageNet ResNet-50 (``weights=None``: random, for tests)."""
    if victim.profile == "embedded" or victim.name == "resnet":
        return victim
    from ..models import build_victim, load_victim

    if weights is None:
        encoder = build_victim("resnet", "imagenet").eval().requires_grad_(False)
    else:
        encoder = load_victim("resnet", "imagenet", device="cpu")
    return encoder.to(victim.device)


def encoder_channels(victim, encoder, n_stages: int) -> list[int]:
    """Channels of the last ``n_stages + 1`` pyramid levels ``encoder`` gives for ``victim``'s
    inputs (measured on one blank image): what a decoder of ``n_stages`` stages reads."""
    with torch.no_grad():
        probe = torch.zeros((1, *victim.input_shape), device=victim.device)
        return [int(f.shape[1]) for f in encoder.pyramid(probe)][-n_stages - 1:]


def build_saliency_network(victim, encoder=None, **overrides) -> SaliencyNetwork:
    """A freshly initialised :class:`SaliencyNetwork` sized for ``victim``'s encoder."""
    encoder = victim if encoder is None else encoder
    defaults = PROFILE_DEFAULTS[victim.profile]
    n_stages = len(overrides.get("widths", defaults["widths"]))
    kwargs = {"num_classes": victim.num_classes, "pyramid_channels": encoder_channels(victim, encoder, n_stages),
              **defaults, **overrides}
    return SaliencyNetwork(**kwargs).to(victim.device)


def _train_command(victim_name: str, profile: str, variant: str = "auto") -> str:
    if variant == "aid":
        return f"python -m adv2lib train-aid {victim_name}" + ("" if profile == "embedded" else f" --profile {profile}")
    if profile == "embedded":
        return f"python -m adv2lib train-rts {victim_name}"
    return f"adv2lib.interpreters.rts_train.train_rts({victim_name!r}, profile='imagenet', ...)"


def _check_rts_fits(path: Path, config: dict, card: dict | None, victim, encoder) -> None:
    """Refuse an RTS checkpoint made for another victim, before its first call fails.

    Compares the checkpoint's ``num_classes`` and ``pyramid_channels`` with the victim and the
    channels its ``encoder`` produces (measured as :func:`build_saliency_network` does), and
    the model card's ``victim``/``profile`` (when a card ``<file>.json`` exists) with the
    victim's; warns when the card's ``victim_weights_sha256`` differs from the loaded
    victim's weights (the RTS was trained on other weights of the same architecture)."""
    card = card or {}
    problems = []
    trained_for = card.get("victim")
    if isinstance(trained_for, str) and trained_for != victim.name:
        problems.append(f"its model card names victim {trained_for!r}")
    if isinstance(card.get("profile"), str) and card["profile"] != victim.profile:
        problems.append(f"its model card says profile {card['profile']!r}")
    if config.get("num_classes") != victim.num_classes:
        problems.append(f"it selects among {config.get('num_classes')} classes, the victim has {victim.num_classes}")
    widths = config.get("widths") or PROFILE_DEFAULTS[victim.profile]["widths"]
    channels = encoder_channels(victim, encoder, len(widths))
    expected = [int(c) for c in config.get("pyramid_channels", [])]
    if expected != channels:
        problems.append(f"it expects encoder channels {expected} where the victim's encoder gives {channels}")
    command = _train_command(victim.name, victim.profile)
    if problems:
        who = f"victim {trained_for!r}" if isinstance(trained_for, str) else "another victim"
        own = rts_weights_path(victim.name, victim.profile)
        raise WeightsMismatchError(
            f"{display_path(path)} is an RTS masking network trained for {who}, not for the {victim.profile} "
            f"{victim.name!r} victim ({', '.join(problems)}): pass {display_path(own)} or train one with {command}"
        )
    trained_sha = card.get("victim_weights_sha256")
    loaded_sha = (getattr(victim, "weights_source", None) or {}).get("sha256")
    if isinstance(trained_sha, str) and isinstance(loaded_sha, str) and trained_sha != loaded_sha:
        warnings.warn(f"{display_path(path)} was trained on other weights of the {victim.name!r} victim "
                      f"(sha256 {trained_sha[:12]}..., loaded {loaded_sha[:12]}...): retrain it with {command}",
                      stacklevel=3)


def load_saliency_network(path: Path, device="cpu", victim=None, encoder=None) -> SaliencyNetwork:
    """A :class:`SaliencyNetwork` from a checkpoint ``{"config": ..., "state_dict": ...}``.

    With ``victim`` (and its RTS ``encoder``, the victim itself by default) the checkpoint is
    first checked to be made for it (:func:`_check_rts_fits`). An unreadable file, a file that
    is not an RTS checkpoint, or one made for another victim raises one
    :class:`~adv2lib.errors.WeightsMismatchError` line naming the file and the remedy.
    """
    path = Path(path)
    name = victim.name if victim is not None else path.stem.removeprefix("rts_")
    profile = victim.profile if victim is not None else path.parent.name
    command = _train_command(name, profile if profile in PROFILE_DEFAULTS else "embedded")
    remedy = repair_hint(path, rts_weights_path(name, profile) if victim is not None else None, command)
    ckpt = read_weights_file(path, remedy)
    if not (isinstance(ckpt, Mapping) and isinstance(ckpt.get("config"), Mapping)
            and isinstance(ckpt.get("state_dict"), Mapping)):
        keys = list(ckpt)[:4] if isinstance(ckpt, Mapping) else []
        what = (f"a dict with keys {', '.join(map(str, keys))}{', ...' if len(ckpt) > 4 else ''}"
                if isinstance(ckpt, Mapping) else f"a {type(ckpt).__name__}")
        raise WeightsMismatchError(f"{display_path(path)} is not an RTS checkpoint (it holds {what}, not "
                                   f"{{'config', 'state_dict'}}): pass an RTS file or train one with {command}")
    config = dict(ckpt["config"])
    if victim is not None:
        _check_rts_fits(path, config, read_card(path), victim, victim if encoder is None else encoder)
    try:
        net = SaliencyNetwork(**config)
    except (TypeError, ValueError) as err:
        raise WeightsMismatchError(f"{display_path(path)} holds an RTS configuration this version cannot build "
                                   f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}): "
                                   f"train one with {command}") from err
    why = state_dict_mismatch(net, ckpt["state_dict"])
    if why is not None:
        raise WeightsMismatchError(f"{display_path(path)} does not fit the RTS network of its own configuration "
                                   f"({why}): {remedy}")
    net.load_state_dict(ckpt["state_dict"])
    return net.to(device)


class RTS(Interpreter):
    """Real-time saliency (Dabkowski & Gal 2017) for ``victim``: one forward pass of a
    trained masking network gives the salient region for the requested class.

    ``RTS(victim)`` loads ``weights/<profile>/rts_<victim.name>.pt`` (trained by
    ``python -m adv2lib train-rts <name>``); ``weights="aid"`` loads the network hardened by
    adversarial interpretation distillation (``rts_aid_<name>.pt``, ``python -m adv2lib
    train-aid <name>``); ``weights`` may name another file, ``net`` may
    pass a :class:`SaliencyNetwork`, and ``weights=None`` builds a randomly initialised
    decoder (for tests). The network is put in eval mode (batch-norm running statistics)
    and frozen; the map stays differentiable with respect to ``x``.

    Returns the raw mask ``(N, 1, h, w)`` in (0, 1) at ``native_size`` (embedded 14x14,
    ImageNet 56x56), **not** min-max normalised.

    >>> rts = RTS(load_victim("resnet"))                  # doctest: +SKIP
    >>> rts(x, y).shape                                   # doctest: +SKIP
    torch.Size([8, 1, 14, 14])
    """

    name = "rts"

    def __init__(self, victim, weights="auto", net: SaliencyNetwork | None = None, encoder=None,
                 model_confidence: float | None = None):
        super().__init__(victim)
        if encoder is None:
            encoder = build_encoder(victim, weights=None if (weights is None and net is None) else "auto")
        self.encoder = encoder
        if net is None:
            if weights is None:
                net = build_saliency_network(victim, encoder)
            else:
                named = isinstance(weights, str) and weights in RTS_VARIANTS
                path = rts_weights_path(victim.name, victim.profile, weights) if named else Path(weights)
                if not path.is_file():
                    what = "AID-hardened RTS" if weights == "aid" else "trained RTS masking network"
                    raise RTSWeightsNotFoundError(
                        f"no {what} for the {victim.profile} {victim.name!r} victim at {path}: "
                        f"train it with: {_train_command(victim.name, victim.profile, weights if named else 'auto')}"
                    )
                net = load_saliency_network(path, victim=victim, encoder=encoder)
        self.net = net.to(victim.device).eval().requires_grad_(False)
        if model_confidence is not None:
            self.net.model_confidence = float(model_confidence)

    @property
    def model_confidence(self) -> float:
        return self.net.model_confidence

    @property
    def native_size(self) -> tuple[int, int]:
        """Mask grid: the encoder's last feature grid times ``2**stages`` (14x14 / 56x56)."""
        if not hasattr(self, "_native_size"):
            with torch.no_grad():
                probe = torch.zeros((1, *self.victim.input_shape), device=self.victim.device)
                h, w = self.encoder.pyramid(probe)[-1].shape[-2:]
            scale = 2 ** len(self.net.stages)
            self._native_size = (h * scale, w * scale)
        return self._native_size

    def map_and_encoder_logits(self, x: torch.Tensor, target) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mask, encoder_logits)`` in one encoder pass: the RTS map for ``target`` and the
        encoder's own classifier logits (``encoder.head`` on its last features), which the
        ADV2-RTS attack also pushes towards the target class (spec C.3)."""
        target = as_targets(x, target)
        pyramid = self.encoder.pyramid(x)
        mask = self.net(pyramid, target)
        return mask, self.encoder.head(pyramid[-1])

    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(self.encoder.pyramid(x), target)

    # ---- attack protocol (paper-spec C.3, ``expr_attacks_fixed/rts_attack_acid.py``) -----
    def attack_terms(self, x: torch.Tensor, target) -> AttackTerms:
        """ADV2's step terms: the exact mask, the victim's logits and the encoder's logits
        (the attack's prediction loss adds ``encoder_ce_weight`` x CE on the latter). When
        the encoder is the victim (embedded profile), one pass gives all three."""
        mask, encoder_logits = self.map_and_encoder_logits(x, target)
        logits = encoder_logits if self.encoder is self.victim else self.victim(x)
        return AttackTerms(mask, logits, encoder_logits)

    @property
    def passes_per_step(self) -> float:
        return 1.0 if self.encoder is self.victim else 2.0

    def networks(self) -> tuple:
        return (self.net, self.encoder)
