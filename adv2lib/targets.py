"""Interpretation targets ``mt`` for ADV2 (paper-spec (a), (g) items 7-8).

* :func:`benign_map` -- the map of the clean image for its true class (the default target:
  the explanation looks as if nothing happened);
* :func:`random_patch_maps` -- axis-aligned rectangles of high values on a low background
  (the paper's "random patch" target);
* :func:`random_shape_maps` -- circles and rotated rectangles, the official generator
  (``expr_shape/utils.py``: ``generate_shapes``) with its value ranges;
* :func:`pair_farthest` -- the official pairing of shape targets with benign images;
* :func:`random_class_targets` -- the map, for its own class ``c~t != ct``, of a correctly
  classified image of class ``c~t`` (the paper's "random class" target).

Geometry is drawn in normalised image coordinates (the official 224-pixel ranges divided by
224) and rasterised at the map's native resolution by testing each cell's centre, so the
same seed gives the same shapes at every resolution (CAM 7x7, GRAD/MASK/RTS 14x14, ...).
Values: U(0.9, 1) inside, U(0, 0.1) outside, one draw per cell (official ranges). Every
generator takes an explicit ``seed`` (the official code drew the shape type and radius from
the *unseeded* global NumPy state, paper-spec pitfall 14).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "benign_map", "random_patch_maps", "random_shape_maps", "pair_farthest", "random_class_targets",
    "SHAPE_SIZE_RANGE", "SHAPE_CENTRE_RANGE", "SHAPE_ANGLE_RANGE",
]

#: Official ranges on the 224-pixel canvas (``expr_shape/utils.py``), as fractions of the side.
SHAPE_SIZE_RANGE = (30 / 224, 60 / 224)        # circle radius / rectangle half-side
SHAPE_CENTRE_RANGE = (40 / 224, 184 / 224)     # centre coordinates
SHAPE_ANGLE_RANGE = (-30.0, 30.0)              # rectangle rotation, degrees
INSIDE_RANGE = (0.9, 1.0)
OUTSIDE_RANGE = (0.0, 0.1)


def _size(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def benign_map(interp, x: torch.Tensor, y, batch_size: int | None = None) -> torch.Tensor:
    """``interp(x, y)`` detached: the clean image's map for its (true) class ``y``."""
    if batch_size is None or x.shape[0] <= batch_size:
        return interp(x, y).detach()
    y = torch.as_tensor(y, dtype=torch.long, device=x.device).reshape(-1).expand(x.shape[0])
    return torch.cat([interp(x[i:i + batch_size], y[i:i + batch_size]).detach()
                      for i in range(0, x.shape[0], batch_size)])


def _uniform(gen, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _cell_centres(h: int, w: int):
    yy = (torch.arange(h, dtype=torch.float64) + 0.5) / h
    xx = (torch.arange(w, dtype=torch.float64) + 0.5) / w
    return torch.meshgrid(yy, xx, indexing="ij")


def _fill(inside: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Values U(0.9, 1) where ``inside``, U(0, 0.1) elsewhere; ``(N, 1, h, w)`` float32."""
    hi = _uniform(gen, inside.numel(), *INSIDE_RANGE).view_as(inside)
    lo = _uniform(gen, inside.numel(), *OUTSIDE_RANGE).view_as(inside)
    return torch.where(inside, hi, lo).float().unsqueeze(1)


def _rasterise(cy, cx, kind, a, b, angle, size) -> torch.Tensor:
    h, w = _size(size)
    yy, xx = _cell_centres(h, w)
    dy = yy.unsqueeze(0) - cy.view(-1, 1, 1)
    dx = xx.unsqueeze(0) - cx.view(-1, 1, 1)
    theta = torch.deg2rad(angle).view(-1, 1, 1)
    u = dx * torch.cos(theta) + dy * torch.sin(theta)     # rotate into the shape's frame
    v = -dx * torch.sin(theta) + dy * torch.cos(theta)
    circle = dx * dx + dy * dy <= a.view(-1, 1, 1) ** 2
    rect = (u.abs() <= a.view(-1, 1, 1)) & (v.abs() <= b.view(-1, 1, 1))
    inside = torch.where(kind.view(-1, 1, 1) == 0, circle, rect)
    # A shape smaller than one cell still marks the cell holding its centre.
    empty = ~inside.flatten(1).any(1)
    if empty.any():
        rows = (cy[empty] * h).long().clamp(0, h - 1)
        cols = (cx[empty] * w).long().clamp(0, w - 1)
        inside[empty.nonzero().squeeze(1), rows, cols] = True
    return inside


def random_shape_maps(n: int, size, seed: int = 777) -> torch.Tensor:
    """``n`` random shape targets ``(n, 1, h, w)`` (official ``generate_shapes``, seed 777).

    Each is a circle (radius U(30, 60)/224 of the side) or a rectangle (half-sides
    U(30, 60)/224, rotated U(-30, 30) degrees), with probability 1/2 each, centred at
    U(40, 184)/224 in both coordinates; cells inside get U(0.9, 1), outside U(0, 0.1).

    >>> m = random_shape_maps(3, 7, seed=0); m.shape, bool(m.min() >= 0), bool(m.max() <= 1)
    (torch.Size([3, 1, 7, 7]), True, True)
    """
    gen = torch.Generator().manual_seed(int(seed))
    kind = torch.randint(0, 2, (n,), generator=gen)            # 0 circle, 1 rectangle
    cy = _uniform(gen, n, *SHAPE_CENTRE_RANGE)
    cx = _uniform(gen, n, *SHAPE_CENTRE_RANGE)
    a = _uniform(gen, n, *SHAPE_SIZE_RANGE)
    b = _uniform(gen, n, *SHAPE_SIZE_RANGE)
    angle = _uniform(gen, n, *SHAPE_ANGLE_RANGE)
    inside = _rasterise(cy, cx, kind, a, b, angle, size)
    return _fill(inside, torch.Generator().manual_seed(int(seed) + 1))


def random_patch_maps(n: int, size, seed: int = 0) -> torch.Tensor:
    """``n`` random patch targets ``(n, 1, h, w)``: axis-aligned rectangles.

    The paper's "random patch" (a rectangle of high values on a low background). Half-sides
    and centres use the official shape ranges (U(30, 60)/224 and U(40, 184)/224 of the side),
    values U(0.9, 1) inside and U(0, 0.1) outside.

    >>> m = random_patch_maps(2, (14, 14), seed=1); m.shape
    torch.Size([2, 1, 14, 14])
    """
    gen = torch.Generator().manual_seed(int(seed))
    cy = _uniform(gen, n, *SHAPE_CENTRE_RANGE)
    cx = _uniform(gen, n, *SHAPE_CENTRE_RANGE)
    a = _uniform(gen, n, *SHAPE_SIZE_RANGE)
    b = _uniform(gen, n, *SHAPE_SIZE_RANGE)
    kind = torch.ones(n, dtype=torch.long)
    inside = _rasterise(cy, cx, kind, a, b, torch.zeros(n, dtype=torch.float64), size)
    return _fill(inside, torch.Generator().manual_seed(int(seed) + 1))


def pair_farthest(target_maps: torch.Tensor, benign_maps: torch.Tensor, max_uses: int = 3) -> torch.Tensor:
    """For each target map, in order, the index of the benign map farthest from it (Euclidean
    distance) among the images used fewer than ``max_uses`` times (official pairing of
    Table 7's shapes; paper-spec (g) item 7). Returns a long tensor ``(n_targets,)``."""
    if target_maps.shape[1:] != benign_maps.shape[1:]:
        raise ValueError("target and benign maps must share the map shape")
    if len(target_maps) > max_uses * len(benign_maps):
        raise ValueError(f"{len(target_maps)} targets need at least {math.ceil(len(target_maps) / max_uses)} "
                         f"benign images with max_uses={max_uses}")
    dist = torch.cdist(target_maps.flatten(1).double().cpu(), benign_maps.flatten(1).double().cpu())
    uses = torch.zeros(len(benign_maps), dtype=torch.long)
    chosen = []
    for i in range(len(target_maps)):
        d = dist[i].clone()
        d[uses >= max_uses] = -1.0
        j = int(torch.argmax(d))      # first index among ties: deterministic
        uses[j] += 1
        chosen.append(j)
    return torch.tensor(chosen, dtype=torch.long)


def random_class_targets(interp, pool_x: torch.Tensor, pool_y: torch.Tensor, true_class, target_class,
                         seed: int = 0, batch_size: int | None = 100):
    """Random-class interpretation targets (paper Table 8).

    For each attacked example ``i`` draw a class ``c~t`` uniformly among the classes other
    than ``target_class[i]`` and ``true_class[i]`` (so the target explains neither the
    adversarial prediction nor the true class), then a random image of ``pool_x`` with label
    ``c~t`` (the pool must hold correctly classified images that are not attacked), and
    return ``(maps, pool_index, source_class)``: that image's map for ``c~t``.
    """
    true_class = torch.as_tensor(true_class, dtype=torch.long).reshape(-1).cpu()
    target_class = torch.as_tensor(target_class, dtype=torch.long).reshape(-1).cpu()
    pool_y = torch.as_tensor(pool_y, dtype=torch.long).cpu()
    n = len(target_class)
    num_classes = int(max(pool_y.max(), target_class.max(), true_class.max())) + 1
    gen = torch.Generator().manual_seed(int(seed))
    by_class = {c: (pool_y == c).nonzero().squeeze(1) for c in range(num_classes)}
    source_class = torch.empty(n, dtype=torch.long)
    pool_index = torch.empty(n, dtype=torch.long)
    for i in range(n):
        allowed = [c for c in range(num_classes)
                   if c not in (int(target_class[i]), int(true_class[i])) and len(by_class[c])]
        if not allowed:
            raise ValueError("the pool holds no image of any admissible class")
        c = allowed[int(torch.randint(len(allowed), (1,), generator=gen))]
        members = by_class[c]
        source_class[i] = c
        pool_index[i] = members[int(torch.randint(len(members), (1,), generator=gen))]
    xs = pool_x[pool_index.to(pool_x.device)]
    maps = benign_map(interp, xs, source_class.to(xs.device), batch_size=batch_size)
    return maps, pool_index, source_class
