"""What every interpreter shares: the call contract and map utilities.

Contract (paper-spec section (c); STYLE.md convention 2): ``interp(x, target)`` takes
images ``x`` in [0, 1], shape ``(N, C, H, W)``, and a LongTensor ``target`` of classes,
and returns attribution maps ``(N, 1, h, w)`` in [0, 1] at the interpreter's native
resolution (bigger = more important), on ``x``'s device, differentiable with respect to
``x``. Inputs are never modified.

Attack protocol: what ADV2 (:class:`~adv2lib.attacks.ADV2`) asks of an interpreter, with
defaults here that fit any interpreter whose map is an ordinary differentiable function of
``x``. An interpreter overrides only what differs:

* :meth:`Interpreter.attack_terms` ``(x, target) -> AttackTerms(map, logits, encoder_logits,
  exact)``: the map the interpretation loss compares with the target map, the victim's
  logits for the prediction loss, optionally the logits of a classifier the interpreter runs
  itself (RTS's encoder; ADV2 adds ``encoder_ce_weight`` x their cross-entropy), and whether
  the map is the exact one (then ADV2's selection reuses it instead of calling
  ``interp(x, target)`` again). Default: ``interp(x, target)`` and ``victim(x)``.
  GRAD returns its surrogate-ReLU map (not exact); CAM and RTS get map and logits from one
  pass.
* :attr:`Interpreter.passes_per_step` and :attr:`Interpreter.map_passes`: victim
  forward+backward passes of one attack step and of one exact map (bare-cost accounting).
* :meth:`Interpreter.networks`: the modules besides the victim that the attack puts in
  eval mode with frozen parameters (RTS's masking network and encoder).
* :attr:`Interpreter.bilevel`: True when the map is the end of an inner optimisation that
  the attack must unroll (MASK); ADV2 then runs its bilevel routine, which needs
  ``init_state`` / ``inner_steps`` / ``state_map``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._common import as_targets


def minmax_normalize(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-example ``(m - min) / max(max(m - min), eps)``, differentiable (paper-spec C.1)."""
    flat = maps.flatten(1)
    shifted = flat - flat.min(dim=1, keepdim=True).values
    return (shifted / shifted.max(dim=1, keepdim=True).values.clamp_min(eps)).view_as(maps)


def upsample_map(maps: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling of ``(N, 1, h, w)`` maps to ``size`` -- for display only."""
    if isinstance(size, int):
        size = (size, size)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


class AttackTerms(NamedTuple):
    """What one ADV2 step needs from an interpreter at ``x`` (see the module docstring).

    ``map``: ``(N, 1, h, w)``, differentiable w.r.t. ``x``, compared with the target map by
    the interpretation loss. ``logits``: the victim's ``(N, K)`` logits at ``x``.
    ``encoder_logits``: ``(N, K)`` logits of a classifier the interpreter itself runs on
    ``x``, which the prediction loss also pushes towards the target class, or None.
    ``exact``: ``map`` equals ``interp(x, target)`` (False for a surrogate map).
    """

    map: torch.Tensor
    logits: torch.Tensor
    encoder_logits: torch.Tensor | None = None
    exact: bool = True


class Interpreter:
    """Base class. Subclasses set ``name`` and ``native_size`` and implement ``explain``;
    the attack protocol's defaults (``attack_terms``, ``passes_per_step``, ``map_passes``,
    ``networks``, ``bilevel``) serve any map that is an ordinary differentiable function of
    ``x``, and a subclass overrides what differs."""

    name: str = "interpreter"
    #: True when the map is the end of an inner optimisation the attack unrolls (MASK).
    bilevel: bool = False

    def __init__(self, victim):
        self.victim = victim

    @property
    def native_size(self) -> tuple[int, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, target) -> torch.Tensor:
        return self.explain(x, as_targets(x, target))

    # ---- attack protocol ---------------------------------------------------------------
    def attack_terms(self, x: torch.Tensor, target) -> AttackTerms:
        """The map and logits one ADV2 step differentiates (default: the exact map, then
        the victim's logits, in two passes)."""
        return AttackTerms(self(x, target), self.victim(x))

    @property
    def passes_per_step(self) -> float:
        """Victim forward+backward passes per example of one step on :meth:`attack_terms`
        (a forward alone counts 1/3). Default 1: the map's backward rides on the logits' pass."""
        return 1.0

    @property
    def map_passes(self) -> float:
        """Victim forward+backward passes per example of one exact map ``self(x, target)``."""
        return 1.0

    def networks(self) -> tuple:
        """Modules besides the victim that the map runs through (none by default)."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.victim).__name__})"


class MapFunction(Interpreter):
    """A plain map function as an :class:`Interpreter`: ``fn(x, target) -> (N, 1, h, w)``
    with a ``native_size`` (and optionally a ``name``) attribute, or both given here. ADV2
    wraps any interpreter that does not subclass :class:`Interpreter` in one.

    >>> pooled = MapFunction(victim, lambda x, t: F.avg_pool2d(x, 2), native_size=(14, 14))  # doctest: +SKIP
    """

    def __init__(self, victim, fn, native_size=None, name: str | None = None):
        super().__init__(victim)
        self.fn = fn
        self._native_size = tuple(native_size if native_size is not None else fn.native_size)
        self.name = name if name is not None else getattr(fn, "name", type(fn).__name__)

    @property
    def native_size(self) -> tuple[int, int]:
        return self._native_size

    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(x, target)

    def __repr__(self) -> str:
        return f"MapFunction({self.fn!r})"
