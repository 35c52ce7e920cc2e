"""GRAD: vanilla gradient saliency (Simonyan, Vedaldi & Zisserman, ICLR-W 2014).

Map, for images ``x`` in [0, 1] and class ``c`` (paper-spec C.1)::

    m = minmax( avgpool_p( max_channels | d f_c(x) / d x | ) )

* ``f_c`` is the **class logit**: the paper's and Simonyan's "class score", the issue's
  ``|d class score / dx|``, and what captum's ``Saliency`` differentiates. The official code
  differentiates the cross-entropy ``-log softmax_c`` instead (``rev2/gs/generate_gs.py``),
  whose gradient ``(1 - p_c) d z_c - sum_{j != c} p_j d z_j`` is a contrast with the other
  classes weighted by their probabilities; its scale vanishes as ``p_c -> 1`` (in float32,
  ``1 - p_c`` rounds to 0 once the logit margin exceeds ~17, which confident adversarial
  examples reach), and only the min-max normalisation hides that. On the trained embedded
  ResNet the two maps differ noticeably (cosine similarity 0.90 on average, 0.66 at worst,
  over 200 test images). ``score="log_softmax"`` gives the official variant.
* The gradient is taken with respect to the **raw** image in [0, 1] (normalisation is inside
  the victim), for the evaluation map and for the attack map alike; the official attack
  map differentiated w.r.t. the normalised input instead (paper-spec pitfall 8).
* Average pooling to the native grid: 4x4 on 224x224 ImageNet images (**56x56**, as the
  official code), 2x2 on 28x28 Fashion-MNIST (**14x14**, as the official CIFAR-10 variant's
  2x2 pooling of 32x32 images). The pooling keeps the map at a resolution comparable to
  the other interpreters' and makes it less speckled.
* Min-max normalisation per image.

``GRAD(victim)(x, c)`` is the exact map, differentiable w.r.t. ``x`` (``create_graph=True``
whenever ``x`` requires grad). Because the exact map of a ReLU network is piecewise
constant in ``x``, its derivative is zero almost everywhere; the attack therefore uses
:meth:`GRAD.attack_map`, the same map computed under
:func:`~adv2lib.interpreters.surrogate.soft_relu_backward`: :meth:`GRAD.attack_terms` gives
ADV2 that map, marked as not exact, so the attack's selection recomputes the exact map.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import AttackTerms, Interpreter, minmax_normalize
from .surrogate import DEFAULT_TAU, soft_relu_backward, softplus_network

#: Average-pooling factor per profile (official ``imagenet_resize_postfn``: 4x4 on 224;
#: CIFAR-10 variant: 2x2 on 32 -- our analogue for 28x28 Fashion-MNIST).
POOL = {"imagenet": 4, "embedded": 2}
SCORES = ("logit", "log_softmax")
#: How the attack map is made differentiable: the official surrogate ReLU backward, or a
#: softplus network (Dombrowski et al. 2019).
SURROGATES = ("relu_backward", "softplus")


def reduce_saliency(grad: torch.Tensor, pool: int) -> torch.Tensor:
    """``|grad|`` -> max over channels -> ``pool x pool`` average pooling -> min-max.

    Shared by :class:`GRAD` and by the tests that reduce captum's ``Saliency`` output the
    same way. ``grad`` is ``(N, C, H, W)``; returns ``(N, 1, H / pool, W / pool)``.
    """
    m = grad.abs().amax(dim=1, keepdim=True)
    if pool > 1:
        m = F.avg_pool2d(m, pool)
    return minmax_normalize(m)


class GRAD(Interpreter):
    """Vanilla gradient saliency, ``(N, 1, H/pool, W/pool)`` maps in [0, 1].

    Args:
        victim: the classifier; images in [0, 1], logits out. Should be in eval mode.
        pool: pooling factor; default 4 for ``victim.profile == "imagenet"``, else 2.
        score: ``"logit"`` (default; paper) or ``"log_softmax"`` (official code's CE).
        tau: surrogate constant used by :meth:`attack_map`.
        surrogate: ``"relu_backward"`` (default; official ``SoftReLU``) or ``"softplus"``
            (every ReLU a softplus of sharpness ``beta`` in the attack map, forward and
            backward). Only the attack map changes; the map itself is always exact.

    >>> from adv2lib.models import build_victim
    >>> grad = GRAD(build_victim("resnet").eval())
    >>> x = torch.rand(2, 1, 28, 28)
    >>> grad(x, torch.tensor([0, 3])).shape
    torch.Size([2, 1, 14, 14])
    """

    name = "grad"

    def __init__(self, victim: nn.Module, pool: int | None = None, score: str = "logit",
                 tau: float = DEFAULT_TAU, surrogate: str = "relu_backward", beta: float = 10.0):
        super().__init__(victim)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}")
        self.surrogate = surrogate
        self.beta = float(beta)
        self.pool = int(pool) if pool is not None else POOL.get(getattr(victim, "profile", "embedded"), 2)
        self.score = score
        self.tau = tau

    @property
    def native_size(self) -> tuple[int, int]:
        h, w = getattr(self.victim, "input_shape", (1, 28, 28))[-2:]
        return h // self.pool, w // self.pool

    def input_gradient(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``d score_c / d x`` for each example, ``(N, C, H, W)``; a graph is kept when
        ``x`` requires grad (so the result can be differentiated again)."""
        create_graph = x.requires_grad and torch.is_grad_enabled()
        with torch.enable_grad():
            inp = x if create_graph else x.detach().requires_grad_(True)
            out = self.victim(inp)
            if self.score == "log_softmax":
                out = out.log_softmax(dim=1)
            # Examples are independent in eval mode, so the gradient of the sum is the
            # per-example gradient.
            score = out.gather(1, target.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(score, inp, create_graph=create_graph)
        return grad

    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return reduce_saliency(self.input_gradient(x, target), self.pool)

    def attack_map(self, x: torch.Tensor, target) -> torch.Tensor:
        """The map with every ReLU's backward swapped for the surrogate ``h`` (τ = ``tau``).

        Same forward, pooling and normalisation as ``self(x, target)``; its gradient
        w.r.t. ``x`` is non-zero (the double backward goes through ``h'``). Used for the
        interpretation loss of the ADV2 attack only, never for metrics.
        """
        if self.surrogate == "softplus":
            with softplus_network(self.victim, self.beta):
                return self(x, target)
        with soft_relu_backward(self.victim, self.tau):
            return self(x, target)

    def attack_terms(self, x: torch.Tensor, target) -> AttackTerms:
        """ADV2's step terms: :meth:`attack_map` (not exact) and the victim's logits."""
        return AttackTerms(self.attack_map(x, target), self.victim(x), exact=False)

    @property
    def passes_per_step(self) -> float:
        # The map: forward + backward with graph; the loss's backward through it: ~2 more
        # passes; plus the logits' forward and backward.
        return 3.0
