"""Small helpers shared by the interpreters (not part of the public API)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

BLUR_PADDINGS = ("reflect", "zeros")


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


def gaussian_kernel1d(size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian, as OpenCV's ``getGaussianKernel(size, sigma)`` (computed in
    float64, then cast to ``dtype``)."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(t * t) / (2 * sigma * sigma))
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_blur(x: torch.Tensor, size: int, sigma: float, padding: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur of every channel of ``x`` ``(N, C, H, W)``; same shape out.

    ``size`` is the (odd) kernel length. ``padding="reflect"``: the official ADV2 code's
    ``GaussianBlur`` (``F.pad(..., mode="reflect")`` then a depthwise convolution), MASK's image
    and mask blur. ``padding="zeros"``: Dabkowski & Gal's blur, the replacement image of RTS
    training (a border darkens towards 0).
    """
    if size % 2 == 0:
        raise ValueError(f"blur kernel size must be odd, got {size}")
    if padding not in BLUR_PADDINGS:
        raise ValueError(f"padding must be one of {BLUR_PADDINGS}, got {padding!r}")
    if size == 1:
        return x
    c, half = x.shape[1], size // 2
    k = gaussian_kernel1d(size, sigma, x.dtype, x.device)
    vertical, horizontal = k.view(1, 1, size, 1).expand(c, 1, size, 1), k.view(1, 1, 1, size).expand(c, 1, 1, size)
    if padding == "reflect":
        out = F.pad(x, (half, half, half, half), mode="reflect")
        return F.conv2d(F.conv2d(out, vertical, groups=c), horizontal, groups=c)
    out = F.conv2d(x, vertical, padding=(half, 0), groups=c)
    return F.conv2d(out, horizontal, padding=(0, half), groups=c)
