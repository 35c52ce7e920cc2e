"""Interpretation-target generators: value ranges, seeding, geometry, pairing."""
from __future__ import annotations

import pytest
import torch

from adv2lib.targets import (benign_map, pair_farthest, random_class_targets, random_patch_maps,
                             random_shape_maps)


@pytest.mark.parametrize("make", [random_shape_maps, random_patch_maps])
def test_value_ranges_inside_and_outside(make):
    maps = make(50, (14, 14), seed=3)
    assert maps.shape == (50, 1, 14, 14) and maps.dtype == torch.float32
    inside, outside = maps[maps > 0.5], maps[maps <= 0.5]
    assert inside.numel() and outside.numel()
    assert inside.min() >= 0.9 and inside.max() <= 1.0
    assert outside.min() >= 0.0 and outside.max() <= 0.1
    # every map has a shape and a background
    per_map = (maps > 0.5).flatten(1).float().mean(1)
    assert (per_map > 0).all() and (per_map < 1).all()


@pytest.mark.parametrize("make", [random_shape_maps, random_patch_maps])
def test_seeding(make):
    assert torch.equal(make(5, 7, seed=1), make(5, 7, seed=1))
    assert not torch.equal(make(5, 7, seed=1), make(5, 7, seed=2))


def test_same_geometry_at_every_resolution():
    coarse = random_shape_maps(20, 7, seed=0) > 0.5
    fine = random_shape_maps(20, 28, seed=0) > 0.5
    # downsampling the fine shape gives (nearly) the coarse one
    pooled = torch.nn.functional.avg_pool2d(fine.float(), 4) > 0.5
    agree = (pooled == coarse).float().mean()
    assert agree > 0.9
    # area fractions match the official ranges: circle r in [30, 60]/224 -> [5.6 %, 22.5 %];
    # rectangles (half-sides in [30, 60]/224) -> [7.2 %, 28.7 %]
    frac = fine.flatten(1).float().mean(1)
    assert frac.min() > 0.03 and frac.max() < 0.35


def test_patches_are_axis_aligned_rectangles():
    m = random_patch_maps(10, 14, seed=5) > 0.5
    for inside in m[:, 0]:
        rows, cols = inside.any(1).nonzero().squeeze(1), inside.any(0).nonzero().squeeze(1)
        box = inside[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()


def test_pair_farthest_respects_max_uses_and_picks_farthest():
    benign = torch.stack([torch.full((1, 2, 2), v) for v in (0.0, 0.5, 1.0)])
    targets = torch.zeros(7, 1, 2, 2)             # all targets at 0: image 2 is farthest
    pair = pair_farthest(targets, benign, max_uses=3)
    assert pair.tolist() == [2, 2, 2, 1, 1, 1, 0]
    with pytest.raises(ValueError):
        pair_farthest(torch.zeros(10, 1, 2, 2), benign, max_uses=3)


class _ClassMap:
    """A toy interpreter whose map encodes the class it is asked about."""

    name = "toy"
    native_size = (2, 2)

    def __call__(self, x, target):
        target = torch.as_tensor(target).reshape(-1)
        return (target.float() / 10).view(-1, 1, 1, 1).expand(len(target), 1, 2, 2) + 0 * x[:, :1, :2, :2]


def test_random_class_targets_use_other_classes_of_the_pool():
    pool_y = torch.arange(10).repeat(3)
    pool_x = torch.rand(30, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 3])
    ct = torch.tensor([1, 2, 3, 4])
    maps, pos, cls = random_class_targets(_ClassMap(), pool_x, pool_y, y, ct, seed=0)
    assert maps.shape == (4, 1, 2, 2)
    for i in range(4):
        assert cls[i] not in (y[i], ct[i])
        assert pool_y[pos[i]] == cls[i]
        assert torch.allclose(maps[i], torch.full((1, 2, 2), cls[i].item() / 10))
    again = random_class_targets(_ClassMap(), pool_x, pool_y, y, ct, seed=0)
    assert torch.equal(again[1], pos)


def test_benign_map_batches_equal_one_call():
    from adv2lib.interpreters import CAM
    from adv2lib.models import build_victim

    torch.manual_seed(0)
    cam = CAM(build_victim("resnet").eval())
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    whole = benign_map(cam, x, y)
    assert not whole.requires_grad
    assert torch.allclose(benign_map(cam, x, y, batch_size=2), whole, atol=1e-6)
