"""What every interpreter shares: the call contract and map utilities.

Contract (paper-spec section (c); STYLE.md convention 2): ``interp(x, target)`` takes
images ``x`` in [0, 1], shape ``(N, C, H, W)``, and a LongTensor ``target`` of classes,
and returns attribution maps ``(N, 1, h, w)`` in [0, 1] at the interpreter's native
resolution (bigger = more important), on ``x``'s device, differentiable with respect to
``x``. Inputs are never modified.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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


class Interpreter:
    """Base class. Subclasses set ``name`` and ``native_size`` and implement ``explain``."""

    name: str = "interpreter"

    def __init__(self, victim):
        self.victim = victim

    @property
    def native_size(self) -> tuple[int, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, target) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(x.shape)}")
        target = torch.as_tensor(target, dtype=torch.long, device=x.device).reshape(-1)
        if target.numel() == 1 and x.shape[0] > 1:
            target = target.expand(x.shape[0])
        if target.shape[0] != x.shape[0]:
            raise ValueError(f"{target.shape[0]} targets for {x.shape[0]} images")
        return self.explain(x, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.victim).__name__})"
