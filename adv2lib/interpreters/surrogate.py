"""The surrogate ReLU gradient that makes GRAD attackable (paper-spec C.1).

A ReLU network is piecewise linear, so the input Hessian of its logits is zero almost
everywhere: the gradient of any loss on a GRAD map with respect to the image is zero,
and the ADV2 attack on GRAD would not move. ADV2 (official code, ``ia_utils/model_utils.py``
``SoftReLU``) keeps the exact ReLU in the forward pass and replaces the ReLU derivative
``1[z > 0]`` in the backward pass by the literal two-branch function

.. math::

    h(z) = \\begin{cases}
        1 + z / \\sqrt{z^2 + \\tau}  & z < 0   \\quad (= \\tfrac{d}{dz}(z + \\sqrt{z^2 + \\tau}))\\\\
        z / \\sqrt{z^2 + \\tau}      & z \\ge 0 \\quad (= \\tfrac{d}{dz}\\sqrt{z^2 + \\tau})
    \\end{cases}
    \\qquad \\tau = 10^{-4},

whose own derivative ``tau / (z^2 + tau)^{3/2}`` is smooth and positive (peak
``1/sqrt(tau) = 100`` at 0). We keep this literal form, as the paper's code does, although it
is discontinuous at 0 and *inverted* for ``|z| < sqrt(tau)`` (``h(0-) = 1``, ``h(0+) = 0``);
away from that band it equals the step function to within ``tau / (2 z^2)``.

Implementation: a straight-through construction instead of a custom ``autograd.Function``::

    relu_tilde(z) = relu(z).detach() + (s(z) - s(z).detach()),
    s(z) = z + sqrt(z^2 + tau) if z < 0 else sqrt(z^2 + tau),      so s'(z) = h(z).

Its value is exactly ``relu(z)`` (``s - s.detach()`` is exactly zero), and autograd
differentiates ``s`` with ordinary operations, so the surrogate backward is itself
differentiable: double backpropagation (``create_graph=True``) works with no hand-written
backward to get wrong.

What "the derivative of the attack map" then means: inside the context autograd uses ``h``
as the derivative of *every* ReLU, including when it differentiates the forward
activations that the backward pass depends on. For a network with a single ReLU layer the
derivative of the GRAD attack map w.r.t. ``x`` is therefore exact (``gradcheck`` passes);
with more layers it is the surrogate's derivative, close to but not equal to the
derivative of the computed map. The official ``SoftReLU`` autograd function has the same
semantics (its backward is also used for the forward path).

:func:`soft_relu_backward` applies it to every ``nn.ReLU`` module of a model, reversibly:
inside the ``with`` block each ReLU module's ``forward`` is an instance attribute computing
``relu_tilde``; on exit (also on exceptions) the attribute is removed and the module is
exactly as before. ``inplace=True`` ReLUs (torchvision ResNet-50 / DenseNet-169) are computed
out of place while swapped. Functional ``F.relu`` calls cannot be seen; the victims of this
library use modules only (see :mod:`adv2lib.models.victim`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

#: Official value of the surrogate's smoothing constant (``SoftReLU``, paper-spec C.1).
DEFAULT_TAU = 1e-4


def relu_surrogate_derivative(z: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """The literal two-branch ``h(z)`` that replaces ``1[z > 0]`` in the backward pass."""
    r = torch.sqrt(z * z + tau)
    return torch.where(z < 0, 1 + z / r, z / r)


def _antiderivative(z: torch.Tensor, tau: float) -> torch.Tensor:
    """``s(z)`` with ``s' = h``: ``z + sqrt(z^2 + tau)`` for ``z < 0``, ``sqrt(z^2 + tau)`` else."""
    r = torch.sqrt(z * z + tau)
    return torch.where(z < 0, z + r, r)


def soft_relu(z: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """``relu(z)`` in value, with derivative ``h(z)`` (and second derivative ``h'(z)``).

    >>> z = torch.tensor([-1.0, 0.5], dtype=torch.float64, requires_grad=True)
    >>> y = soft_relu(z); y.detach()
    tensor([0.0000, 0.5000], dtype=torch.float64)
    >>> torch.autograd.grad(y.sum(), z)[0]          # h(-1) ~ 5e-5, h(0.5) ~ 0.9998
    tensor([4.9996e-05, 9.9980e-01], dtype=torch.float64)
    """
    s = _antiderivative(z, tau)
    return torch.relu(z).detach() + (s - s.detach())


def _relu_modules(model: nn.Module) -> list[nn.ReLU]:
    # A module may appear several times in a model (torchvision's Bottleneck reuses one
    # ``relu``); named_modules already de-duplicates by identity.
    return [m for m in model.modules() if isinstance(m, nn.ReLU)]


@contextlib.contextmanager
def soft_relu_backward(model: nn.Module, tau: float = DEFAULT_TAU) -> Iterator[nn.Module]:
    """Within the block, every ``nn.ReLU`` of ``model`` has the exact forward and the
    surrogate backward ``h`` (τ = ``tau``); everything is restored on exit.

    Used by :meth:`adv2lib.interpreters.GRAD.attack_map`; final metrics must be computed
    outside the block, on the unmodified model (STYLE.md, convention 2).

    >>> from adv2lib.models import build_victim
    >>> victim = build_victim("resnet").eval()
    >>> x = torch.rand(1, 1, 28, 28, requires_grad=True)
    >>> with soft_relu_backward(victim):
    ...     g, = torch.autograd.grad(victim(x)[0, 3], x, create_graph=True)
    >>> g.requires_grad      # second-order information is non-zero under the surrogate
    True
    """
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    with _swapped_relus(model, _make_forward(tau), "soft_relu_backward"):
        yield model


@contextlib.contextmanager
def softplus_network(model: nn.Module, beta: float = 10.0) -> Iterator[nn.Module]:
    """Within the block, every ``nn.ReLU`` of ``model`` is ``softplus_beta(z) = log(1 + e^(beta
    z)) / beta`` in the forward *and* the backward pass: the smooth network of Dombrowski et al.
    (NeurIPS 2019, "Explanations can be manipulated and geometry is to blame"), whose
    gradient map has a non-zero input Hessian everywhere. An alternative to
    :func:`soft_relu_backward` for GRAD's attack map (the forward values change too, so
    the map it gives is further from the exact one as ``beta`` falls); restored on exit.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")

    def forward(z: torch.Tensor) -> torch.Tensor:
        return F.softplus(z, beta=beta)

    with _swapped_relus(model, forward, "softplus_network"):
        yield model


@contextlib.contextmanager
def _swapped_relus(model: nn.Module, forward, who: str) -> Iterator[nn.Module]:
    """Every ``nn.ReLU`` module's ``forward`` replaced by ``forward`` (an instance attribute),
    removed again on exit, also on exceptions."""
    relus = _relu_modules(model)
    if not relus:
        raise ValueError(
            f"{type(model).__name__} has no nn.ReLU modules: {who} cannot swap a "
            "functional F.relu; build the model with nn.ReLU modules"
        )
    saved = []  # (module, had its own 'forward' attribute, that attribute)
    try:
        for module in relus:
            own = module.__dict__.get("forward", None)
            saved.append((module, "forward" in module.__dict__, own))
            module.forward = forward
        yield model
    finally:
        for module, had_own, own in reversed(saved):
            if had_own:
                module.forward = own
            else:
                del module.forward


def _make_forward(tau: float):
    def forward(z: torch.Tensor) -> torch.Tensor:
        return soft_relu(z, tau)

    forward.__name__ = "soft_relu_forward"
    return forward
