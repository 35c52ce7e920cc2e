"""Small helpers shared by the interpreters (not part of the public API)."""
from __future__ import annotations

import torch


def as_targets(x: torch.Tensor, target) -> torch.Tensor:
    """Validate ``x`` (``(N, C, H, W)``) and turn ``target`` (int, sequence or tensor) into a
    LongTensor of ``N`` classes on ``x``'s device; one class is broadcast to the batch."""
    if x.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    target = torch.as_tensor(target, dtype=torch.long, device=x.device).reshape(-1)
    if target.numel() == 1 and x.shape[0] > 1:
        target = target.expand(x.shape[0])
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"{target.shape[0]} targets for {x.shape[0]} images")
    return target
