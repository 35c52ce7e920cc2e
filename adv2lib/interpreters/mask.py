"""MASK: meaningful perturbation (Fong & Vedaldi, ICCV 2017), as used by ADV2.

MASK looks for the smallest, smoothest region whose deletion destroys the class score. With
``m`` a low-resolution *keep* mask (1 = keep the pixel) it minimises, per image
(paper-spec C.4, official ``expr_attacks/mask_model.py:mask_iter_v2``)::

    L(m; x, c) = softmax_c( f(phi(x; m)) ) + l1 * sum |1 - m| + tv * TV_beta(m)
    phi(x; m)  = M * x_j + (1 - M) * blur(x)_j,   M = blur_mask( upsample(m) )

where ``x_j`` is a jittered crop: the image is bilinearly resized to ``H + jitter`` and
a random ``H x W`` window is cut out of it (and of its blurred copy) at every iteration.
The mask starts at ``init`` (0.5), is updated by Adam and clamped to [0, 1] after each
step. The interpreter returns the **salient region** ``1 - m`` at the mask's resolution
(bigger = more important), as the paper's figures do.

Settings (:class:`MaskConfig`):

* ``imagenet`` -- the official "v2" settings used for the final MASK results: 28x28 mask on
  224x224 images; image blur kernel 21, sigma 3.5 (OpenCV's automatic sigma for 21) on the
  228x228 resized image; jitter 4 (offsets 0..3); mask upsampled to 224 then blurred with
  kernel 11, sigma 2; ``l1 = 1e-4``, ``tv = 1e-2``, ``beta = 3``; Adam lr 0.1; 300 iterations.
* ``embedded`` -- our calibration for 28x28 Fashion-MNIST (``scripts/calibrate_mask.py``
  prints the evidence):

  - a 14x14 mask (2x2-pixel cells; the grid of GRAD and RTS);
  - the mask blur scaled with the cell size (8-px cells with sigma 2 -> 2-px cells with
    sigma 0.5, kernel 3) and jitter 2 (offsets 0..1 on the 30x30 resized image: at most
    half a mask cell, as 0..3 px is on ImageNet's 8-px cells);
  - the image blur is the ImageNet one *unchanged in pixels* (kernel 21, sigma 3.5). The
    blur must remove the class evidence: scaled by 28/224 (sigma 0.44) it leaves the
    accuracy of the trained ResNet / DenseNet on fully blurred test images at 92% / 93%
    (93% / 94% unblurred); kernel 21, sigma 3.5 brings it to 15% / 17% (chance: 10%;
    sigma 2: 40% / 34%);
  - loss coefficients, learning rate and initialisation as on ImageNet (Adam is invariant
    to the scale of the whole loss, and the coefficients are per mask cell);
  - **150 iterations**: by then the map is as close to the 300-iteration map as the jitter
    noise allows. Mean |map_150 - map_300| is 0.03 (ResNet) / 0.05 (DenseNet), the same as
    the difference between two 300-iteration runs with different jitter seeds
    (0.03 / 0.05); after 100 iterations it is still 0.05 / 0.07. Half the cost of 300.

Total variation: Fong & Vedaldi's ``TV_beta(m) = sum_{ij} (dx_ij^2 + dy_ij^2 + 1e-8)^{beta/2}``
with both differences taken at the same pixel (``tv_pairing="textbook"``, our default). The
official ``tv_norm`` pairs ``dy[i, j]`` with ``dx[j, i]`` (it transposes the horizontal
differences before adding them; paper-spec pitfall 13); ``tv_pairing="official"``
reproduces it. We fix it because the official pairing is not a smoothness penalty of any
location: it couples unrelated pixel pairs.

Batches: the loss is a sum of per-example losses and Adam is elementwise, so a batch
equals each example alone. Jitter offsets depend only on ``(seed, step)`` and are shared by
the batch, so results are deterministic and batch-independent.

Attack hooks (paper-spec C.4, ADV2's bilevel attack): :meth:`MASK.init_state`,
:meth:`MASK.inner_steps` (with ``differentiable=True`` each step is a hand-written Adam step
on a gradient taken with ``create_graph=True``, so the resulting mask is a differentiable
function of ``x``) and :meth:`MASK.state_map`. ``MASK(...)(x, c)`` itself is differentiable
w.r.t. ``x`` through its last ``unroll`` steps (truncated unrolling, as the attack does);
the first ``iterations - unroll`` steps are treated as a constant warm start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import Choice, Int, Pair, Real, validate_fields
from ..errors import ConfigError
from ._common import as_targets, gaussian_blur
from .base import Interpreter

TV_PAIRINGS = ("textbook", "official")


def _c(default, check):
    """A :class:`MaskConfig` field with the values it accepts (checked by ``validate_fields``)."""
    return field(default=default, metadata={"check": check})


#: A Gaussian blur: (odd kernel size >= 1, sigma > 0).
_BLUR = Pair(Int(">= 1", odd=True), Real("> 0"))


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class MaskConfig:
    """MASK hyperparameters. Defaults: the official v2 ImageNet settings
    (``rev1/mask_v2``, ``expr_attacks/mask_model.py:mask_iter_v2``; paper-spec C.4)."""

    mask_size: int = _c(28, Int(">= 1"))
    iterations: int = _c(300, Int(">= 0"))
    lr: float = _c(0.1, Real("> 0"))
    l1_coeff: float = _c(1e-4, Real(">= 0"))
    tv_coeff: float = _c(1e-2, Real(">= 0"))
    tv_beta: float = _c(3.0, Real("> 0"))
    tv_pairing: str = _c("textbook", Choice(*TV_PAIRINGS))
    image_blur: tuple[int, float] = _c((21, 3.5), _BLUR)
    mask_blur: tuple[int, float] = _c((11, 2.0), _BLUR)
    jitter: int = _c(4, Int(">= 0"))
    init: float = _c(0.5, Real("[0, 1]"))
    betas: tuple[float, float] = _c((0.9, 0.999), Pair(Real("[0, 1)"), Real("[0, 1)")))
    eps: float = _c(1e-8, Real("> 0"))
    unroll: int = _c(4, Int(">= 0"))

    def __post_init__(self):
        # Each field's allowed values are declared next to it (``_c``); one generic loop checks them
        # and raises a one-line ConfigError naming the field, e.g. an even blur kernel size.
        validate_fields(self)

    @classmethod
    def imagenet(cls, **overrides) -> "MaskConfig":
        """Official v2 settings for 224x224 ImageNet images."""
        return cls(**overrides)

    @classmethod
    def embedded(cls, **overrides) -> "MaskConfig":
        """Our calibration for 28x28 Fashion-MNIST (see the module docstring)."""
        settings = dict(mask_size=14, iterations=150, mask_blur=(3, 0.5), jitter=2)
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "MaskConfig":
        if profile not in ("imagenet", "embedded"):
            raise ConfigError(f"unknown profile {profile!r}; expected 'embedded' or 'imagenet'")
        return getattr(cls, profile)(**overrides)


@dataclass
class MaskState:
    """The inner optimiser's state: the keep mask ``m`` ``(N, 1, s, s)`` in [0, 1], Adam's
    first and second moments (same shape) and the number of Adam steps taken so far."""

    mask: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    step: int = 0

    def detach(self) -> "MaskState":
        return MaskState(self.mask.detach(), self.exp_avg.detach(), self.exp_avg_sq.detach(), self.step)


# --------------------------------------------------------------------------- building blocks
def total_variation(m: torch.Tensor, beta: float = 3.0, pairing: str = "textbook") -> torch.Tensor:
    """``sum (dx^2 + dy^2 + 1e-8)^(beta/2)`` per example, ``(N,)``.

    ``pairing="textbook"``: forward differences at the same pixel, over the
    ``(h-1) x (w-1)`` grid (Fong & Vedaldi). ``"official"``: the official ``tv_norm``,
    which adds the *transposed* horizontal differences to the vertical ones (square masks).
    """
    if pairing == "textbook":
        dy = m[:, :, 1:, :-1] - m[:, :, :-1, :-1]
        dx = m[:, :, :-1, 1:] - m[:, :, :-1, :-1]
    elif pairing == "official":
        dy = m[:, :, 1:, :] - m[:, :, :-1, :]
        dx = (m[:, :, :, 1:] - m[:, :, :, :-1]).transpose(2, 3)
    else:
        raise ValueError(f"pairing must be one of {TV_PAIRINGS}, got {pairing!r}")
    return (dx * dx + dy * dy + 1e-8).pow(beta / 2).flatten(1).sum(1)


def jitter_offsets(seed: int, step: int, jitter: int) -> tuple[int, int]:
    """Row and column offsets in ``{0, ..., jitter - 1}`` for Adam step ``step`` (1-based).

    A pure function of ``(seed, step)``: the same step always sees the same crop, whether the
    steps run in one call or are split over several :meth:`MASK.inner_steps` calls.
    """
    if jitter <= 1:
        return 0, 0
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(step)) % (2**63))
    i, j = torch.randint(0, jitter, (2,), generator=g).tolist()
    return i, j


def adam_update(param, grad, exp_avg, exp_avg_sq, step: int, lr: float, betas, eps: float):
    """One Adam step (Kingma & Ba), written with out-of-place ops so it can be differentiated.

    Same arithmetic, in the same order, as ``torch.optim.Adam`` (single-tensor path,
    no weight decay, no amsgrad), so the two agree to rounding. The second moment is
    floored at the smallest normal float before the square root: that changes no value
    (``sqrt(tiny)`` is far below ``eps``'s rounding unit) but keeps the derivative of the
    square root finite where a gradient entry is exactly zero.
    """
    beta1, beta2 = betas
    exp_avg = torch.lerp(exp_avg, grad, 1 - beta1)
    exp_avg_sq = torch.addcmul(exp_avg_sq * beta2, grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    tiny = torch.finfo(exp_avg_sq.dtype).tiny
    denom = exp_avg_sq.clamp_min(tiny).sqrt() / bias_correction2_sqrt + eps
    param = torch.addcdiv(param, exp_avg, denom, value=-lr / bias_correction1)
    return param, exp_avg, exp_avg_sq


# --------------------------------------------------------------------------- interpreter
class MASK(Interpreter):
    """Meaningful-perturbation saliency: the salient region ``1 - m``, ``(N, 1, s, s)`` in [0, 1].

    Args:
        victim: classifier taking images in [0, 1] and returning logits (eval mode).
        iterations: Adam steps; default from the profile's :class:`MaskConfig`.
        config: a :class:`MaskConfig`; default ``MaskConfig.for_profile(victim.profile)``.
        seed: seeds the jitter offsets (a pure function of ``(seed, step)``).
        **overrides: any :class:`MaskConfig` field, e.g. ``tv_pairing="official"``.

    >>> from adv2lib.models import build_victim
    >>> mask = MASK(build_victim("resnet").eval(), iterations=5)
    >>> mask(torch.rand(2, 1, 28, 28), torch.tensor([0, 1])).shape
    torch.Size([2, 1, 14, 14])
    """

    name = "mask"
    #: ADV2 attacks MASK with its bilevel routine (:mod:`adv2lib.attacks.adv2_mask`).
    bilevel = True

    def __init__(self, victim: nn.Module, iterations: int | None = None, config: MaskConfig | None = None,
                 seed: int = 0, **overrides):
        super().__init__(victim)
        if config is None:
            config = MaskConfig.for_profile(getattr(victim, "profile", "embedded"))
        unknown = set(overrides) - {f.name for f in fields(MaskConfig)}
        if unknown:
            raise TypeError(f"unknown MASK setting(s) {sorted(unknown)}; see MaskConfig")
        if iterations is not None:
            overrides["iterations"] = int(iterations)
        self.config = replace(config, **overrides)
        self.seed = int(seed)

    @property
    def native_size(self) -> tuple[int, int]:
        return self.config.mask_size, self.config.mask_size

    @property
    def map_passes(self) -> float:
        return self.config.iterations

    # ---- the attack's hooks ------------------------------------------------------------
    def init_state(self, x: torch.Tensor, target, init_mask: torch.Tensor | None = None) -> MaskState:
        """A fresh optimiser state for images ``x``: mask ``init`` (0.5), zero Adam moments.

        ``init_mask`` (optional) is a *salient map* in the interpreter's own ``1 - m``
        convention, ``(N, 1, s, s)``, e.g. a previous ``mask(x, c)``; the state then starts at
        ``m = 1 - init_mask`` (detached). The ADV2 attack uses this to reset the inner problem.
        """
        as_targets(x, target)
        n, s = x.shape[0], self.config.mask_size
        if init_mask is None:
            m = torch.full((n, 1, s, s), self.config.init, dtype=x.dtype, device=x.device)
        else:
            if tuple(init_mask.shape) != (n, 1, s, s):
                raise ValueError(f"init_mask must have shape {(n, 1, s, s)}, got {tuple(init_mask.shape)}")
            m = (1 - init_mask.detach()).clamp(0, 1).to(dtype=x.dtype, device=x.device)
        return MaskState(m, torch.zeros_like(m), torch.zeros_like(m), 0)

    def state_map(self, state: MaskState) -> torch.Tensor:
        """The salient region ``1 - m`` of a state, ``(N, 1, s, s)`` in [0, 1]."""
        return 1 - state.mask

    def loss(self, x: torch.Tensor, target: torch.Tensor, m: torch.Tensor, step: int,
             prepared: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Per-example MASK objective ``L(m; x, c)`` at Adam step ``step`` (sets the jitter), ``(N,)``."""
        cfg = self.config
        x_big, x_blur = prepared if prepared is not None else self.prepare(x)
        h, w = x.shape[-2:]
        i, j = jitter_offsets(self.seed, step, cfg.jitter)
        x_crop = x_big[..., i:i + h, j:j + w]
        blur_crop = x_blur[..., i:i + h, j:j + w]
        keep = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        keep = gaussian_blur(keep, *cfg.mask_blur)
        perturbed = keep * x_crop + (1 - keep) * blur_crop
        probs = F.softmax(self.victim(perturbed), dim=1).gather(1, target.view(-1, 1)).squeeze(1)
        l1 = (1 - m).abs().flatten(1).sum(1)
        tv = total_variation(m, cfg.tv_beta, cfg.tv_pairing)
        return probs + cfg.l1_coeff * l1 + cfg.tv_coeff * tv

    def prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The jitter canvas (``x`` resized to ``H + jitter``) and its blurred copy."""
        cfg = self.config
        if cfg.jitter > 0:
            h, w = x.shape[-2:]
            x = F.interpolate(x, size=(h + cfg.jitter, w + cfg.jitter), mode="bilinear", align_corners=False)
        return x, gaussian_blur(x, *cfg.image_blur)

    def inner_steps(self, x: torch.Tensor, target, state: MaskState, k: int,
                    differentiable: bool = False) -> MaskState:
        """``k`` Adam steps on the MASK objective from ``state``; returns the new state.

        ``differentiable=False``: the steps are constants w.r.t. ``x`` and the returned state
        is detached. ``differentiable=True``: each gradient is taken with
        ``create_graph=True`` and the Adam update is built from differentiable operations,
        so the returned mask depends differentiably on ``x`` (and on ``state``'s tensors
        if they carry a graph).
        """
        target = as_targets(x, target)
        cfg = self.config
        with torch.enable_grad():
            xin = x if differentiable else x.detach()
            prepared = self.prepare(xin)
            m, exp_avg, exp_avg_sq, step = state.mask, state.exp_avg, state.exp_avg_sq, state.step
            if not differentiable:
                m, exp_avg, exp_avg_sq = m.detach(), exp_avg.detach(), exp_avg_sq.detach()
            for _ in range(k):
                step += 1
                if not m.requires_grad:
                    m = m.detach().requires_grad_(True)
                loss = self.loss(xin, target, m, step, prepared).sum()
                (g,) = torch.autograd.grad(loss, m, create_graph=differentiable)
                if not differentiable:
                    m = m.detach()
                m, exp_avg, exp_avg_sq = adam_update(m, g, exp_avg, exp_avg_sq, step, cfg.lr, cfg.betas, cfg.eps)
                m = m.clamp(0, 1)
        new = MaskState(m, exp_avg, exp_avg_sq, step)
        # Keep the graph only if it leads somewhere: to x or to a graph carried by ``state``.
        carries_graph = x.requires_grad or any(t.requires_grad for t in (state.mask, state.exp_avg, state.exp_avg_sq))
        return new if differentiable and carries_graph else new.detach()

    # ---- the interpreter ---------------------------------------------------------------
    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        state = self.init_state(x, target)
        differentiable = x.requires_grad and torch.is_grad_enabled()
        tail = min(cfg.unroll, cfg.iterations) if differentiable else 0
        state = self.inner_steps(x, target, state, cfg.iterations - tail)
        if tail:
            state = self.inner_steps(x, target, state, tail, differentiable=True)
        return self.state_map(state)
