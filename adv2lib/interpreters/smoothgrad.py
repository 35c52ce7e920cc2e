"""SmoothGrad: the gradient map averaged over noisy copies of the input.

Smilkov, Thorat, Kim, Viégas & Wattenberg, "SmoothGrad: removing noise by adding noise"
(arXiv:1706.03825, 2017). A vanilla gradient map is visually noisy: the gradient of a ReLU
network jumps from one linear region to the next. SmoothGrad takes the mean gradient over
``n`` copies of the image, each with Gaussian noise added::

    g_smooth(x) = 1/n  sum_k  d f_c(x + e_k) / d x,      e_k ~ N(0, sigma^2 I)

and shows it as GRAD shows one gradient. Here the reduction is GRAD's
(:func:`~adv2lib.interpreters.grad.reduce_saliency`: absolute value, maximum over channels,
average pooling to GRAD's grid, min-max normalisation), so with ``sigma = 0`` and one sample
the map is GRAD's exactly. Taking the absolute value after averaging, not before, follows the
authors' own implementation (PAIR ``saliency``: ``GetSmoothedMask`` averages signed gradients).

Settings (:class:`SmoothGradConfig`):

* ``sigma`` -- the noise standard deviation as a fraction of the input range. Smilkov et al.
  find 10-20 % of the range works best; we take 0.15, their code's default. They measure the range per image
  (``max(x) - min(x)``); the images of this library share the range [0, 1], and a fixed
  scale keeps the noise independent of ``x``, so the attack's gradient does not flow through
  it. Noisy copies are not clipped to [0, 1] (neither do the authors).
* ``n_samples`` -- the authors see little change beyond 50 samples (ImageNet default here);
  the embedded profile takes 16, as a 14x14 map of a 28x28 image is already smoothed by its
  2x2 pooling and each sample costs a double backward pass in the attack.
* ``seed`` -- the noise comes from a generator seeded afresh on every call and is shared by
  the batch, so the map is a deterministic function of ``(x, target)`` and a batch equals
  each example on its own.

Attack (the protocol of :class:`~adv2lib.interpreters.Interpreter`): like GRAD's exact map,
this map has a zero input gradient almost everywhere on a ReLU network, so
:meth:`SmoothGrad.attack_terms` gives ADV2 the same average over the same noisy copies taken
under the surrogate ReLU backward (:func:`~adv2lib.interpreters.surrogate.soft_relu_backward`,
as :meth:`GRAD.attack_map`). The noise is fixed by the seed, so the attacker optimises
against exactly the copies the evaluated map uses (white box); a defender who redraws the
noise at each call would call for an expectation over noise in the attack instead. No ADV2
hyperparameters were published for SmoothGrad: the attack borrows GRAD's preset
(:func:`~adv2lib.attacks.preset_for`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ..errors import ConfigError
from ..validation import Int, Real, validate_fields
from .base import AttackTerms, Interpreter
from .grad import GRAD, reduce_saliency
from .surrogate import DEFAULT_TAU, soft_relu_backward


def _s(default, check, source: str):
    """A :class:`SmoothGradConfig` field with the values it accepts and its source."""
    return field(default=default, metadata={"check": check, "source": source})


@dataclass(frozen=True)
class SmoothGradConfig:
    """SmoothGrad settings; defaults: Smilkov et al. 2017 (ImageNet)."""

    n_samples: int = _s(50, Int(">= 1"), "Smilkov et al. 2017: little visible change beyond 50 samples; "
                                          "the authors' code's default nsamples=50")
    sigma: float = _s(0.15, Real(">= 0"), "Smilkov et al. 2017: noise at 10-20 % of the input range works "
                                          "best; the authors' code's default stdev_spread=0.15")
    seed: int = _s(0, Int(">= 0"), "library choice: one fixed noise draw per call")

    def __post_init__(self):
        validate_fields(self)

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "SmoothGradConfig":
        """ImageNet: the paper's 50 samples; embedded: 16 (see the module docstring)."""
        if profile not in ("imagenet", "embedded"):
            raise ConfigError(f"unknown profile {profile!r}; expected 'embedded' or 'imagenet'")
        settings = {"n_samples": 16} if profile == "embedded" else {}
        return cls(**{**settings, **overrides})


class SmoothGrad(Interpreter):
    """SmoothGrad maps ``(N, 1, H/pool, W/pool)`` in [0, 1], on GRAD's grid.

    Args:
        victim: the classifier; images in [0, 1], logits out. Should be in eval mode.
        n_samples, sigma, seed: see :class:`SmoothGradConfig` (default: the profile's).
        config: a :class:`SmoothGradConfig`, overridden by the three arguments above.
        pool, score, tau: as :class:`~adv2lib.interpreters.GRAD`.

    >>> from adv2lib.models import build_victim
    >>> sg = SmoothGrad(build_victim("resnet").eval(), n_samples=4)
    >>> sg(torch.rand(2, 1, 28, 28), torch.tensor([0, 3])).shape
    torch.Size([2, 1, 14, 14])
    """

    name = "smoothgrad"

    def __init__(self, victim: nn.Module, n_samples: int | None = None, sigma: float | None = None,
                 seed: int | None = None, config: SmoothGradConfig | None = None, pool: int | None = None,
                 score: str = "logit", tau: float = DEFAULT_TAU):
        super().__init__(victim)
        if config is None:
            config = SmoothGradConfig.for_profile(getattr(victim, "profile", "embedded"))
        given = {"n_samples": n_samples, "sigma": sigma, "seed": seed}
        self.config = replace(config, **{k: v for k, v in given.items() if v is not None})
        self.grad = GRAD(victim, pool=pool, score=score, tau=tau)

    @property
    def native_size(self) -> tuple[int, int]:
        return self.grad.native_size

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(n_samples, 1, C, H, W)`` noise added to every image of ``x`` (same draw at
        every call: a generator seeded with ``config.seed``, on the CPU, then moved to ``x``)."""
        cfg = self.config
        g = torch.Generator().manual_seed(cfg.seed)
        e = torch.randn((cfg.n_samples, 1, *x.shape[1:]), generator=g)
        return (cfg.sigma * e).to(device=x.device, dtype=x.dtype)

    def smoothed_gradient(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``1/n sum_k d score_c / d x (x + e_k)``, ``(N, C, H, W)``; the ``n`` noisy copies
        of the batch run as one batch of ``n N`` images (differentiable when ``x`` requires grad)."""
        n, batch = self.config.n_samples, x.shape[0]
        noisy = (x.unsqueeze(0) + self.noise(x)).flatten(0, 1)          # sample-major: (n N, C, H, W)
        grads = self.grad.input_gradient(noisy, target.repeat(n))
        return grads.view(n, batch, *x.shape[1:]).mean(0)

    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return reduce_saliency(self.smoothed_gradient(x, target), self.grad.pool)

    # ---- attack protocol ---------------------------------------------------------------
    def attack_map(self, x: torch.Tensor, target) -> torch.Tensor:
        """The map over the same noisy copies with every ReLU's backward swapped for the
        surrogate (as :meth:`GRAD.attack_map`); for the attack's loss only, never for metrics."""
        with soft_relu_backward(self.victim, self.grad.tau):
            return self(x, target)

    def attack_terms(self, x: torch.Tensor, target) -> AttackTerms:
        """ADV2's step terms: :meth:`attack_map` (not exact) and the victim's logits."""
        return AttackTerms(self.attack_map(x, target), self.victim(x), exact=False)

    @property
    def passes_per_step(self) -> float:
        # GRAD's accounting per noisy copy (forward, backward with graph, backward through
        # it: ~2 passes), plus the logits' forward and backward.
        return 2.0 * self.config.n_samples + 1.0

    @property
    def map_passes(self) -> float:
        return float(self.config.n_samples)

    def __repr__(self) -> str:
        cfg = self.config
        return f"SmoothGrad({type(self.victim).__name__}, n_samples={cfg.n_samples}, sigma={cfg.sigma})"
