"""The metrics on hand-made examples with known answers."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from adv2lib.metrics import (IOU_KS, attack_success_rate, iou_curve, iou_topk, l1_distance, l2_distance,
                             misclassification_confidence, summarize, transfer_matrix)


def test_attack_success_rate_and_mc():
    success = torch.tensor([True, False, True, True])
    assert attack_success_rate(success) == 0.75
    assert attack_success_rate(prediction=[1, 2, 3], target_class=[1, 0, 3]) == pytest.approx(2 / 3)
    conf = torch.tensor([0.9, 0.99, 0.7, 0.5])
    assert misclassification_confidence(conf, success) == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert misclassification_confidence(conf) == pytest.approx(conf.mean().item())
    assert math.isnan(misclassification_confidence(conf, torch.zeros(4, dtype=torch.bool)))
    with pytest.raises(ValueError):
        attack_success_rate()


def test_l1_distance_known_values():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    assert l1_distance(a, b).tolist() == [0.25, 0.5]
    assert l1_distance(b, b).tolist() == [0.0, 0.0]
    assert l2_distance(a, b).tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError):
        l1_distance(torch.zeros(1, 1, 7, 7), torch.zeros(1, 1, 14, 14))    # never resampled


def test_iou_identical_disjoint_and_partial():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(3, 1, 7, 7, generator=g)
    for k in IOU_KS:
        assert iou_topk(m, m, k).tolist() == [1.0, 1.0, 1.0]
    # disjoint top-25% sets: a peaks on the left half, b on the right half
    a = torch.tensor([[[[4.0, 3.0, 0.0, 0.0], [2.0, 1.0, 0.0, 0.0]]]])
    b = torch.tensor([[[[0.0, 0.0, 4.0, 3.0], [0.0, 0.0, 2.0, 1.0]]]])
    assert iou_topk(a, b, 0.25).item() == 0.0
    # partial: top-2 of a = {0, 1}, top-2 of c = {1, 2} -> 1 / 3
    c = torch.tensor([[[[0.0, 3.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    assert iou_topk(a, c, 0.25).item() == pytest.approx(1 / 3)
    # k = 100 % keeps everything
    assert iou_topk(a, b, 1.0).item() == 1.0
    with pytest.raises(ValueError):
        iou_topk(a, b, 0.0)


def test_iou_ties_are_deterministic_and_curve_shape():
    flat = torch.zeros(2, 1, 4, 4)
    assert iou_topk(flat, flat.clone(), 0.25).tolist() == [1.0, 1.0]
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(5, 1, 14, 14, generator=g), torch.rand(5, 1, 14, 14, generator=g)
    curve = iou_curve(a, b)
    assert curve.shape == (5, len(IOU_KS))
    assert ((curve >= 0) & (curve <= 1)).all()
    assert torch.equal(curve[:, 3], iou_topk(a, b, IOU_KS[3]))


def test_transfer_matrix_pivots_sources_by_targets():
    rows = []
    for s in ("grad", "cam", "pgd"):
        for t in ("grad", "cam"):
            for v, ok in ((0.1, True), (0.3, True), (9.0, False)):
                rows.append({"interpreter": t, "attack": "pgd" if s == "pgd" else "adv2",
                             "source_interpreter": None if s == "pgd" else s, "l1_benign": v + (s != t),
                             "success": ok})
    m = transfer_matrix(pd.DataFrame(rows))
    assert list(m.index) == ["grad", "cam", "pgd"] and list(m.columns) == ["grad", "cam"]
    assert m.loc["grad", "grad"] == pytest.approx(0.2)       # failures excluded
    assert m.loc["cam", "grad"] == pytest.approx(1.2)
    assert transfer_matrix(pd.DataFrame(rows), successful_only=False).loc["grad", "grad"] == pytest.approx(9.4 / 3)


def test_summarize_counts_all_for_asr_and_successes_for_maps():
    frame = pd.DataFrame({"victim": "v", "interpreter": "cam", "attack": ["adv2"] * 4,
                          "success": [True, True, False, True], "confidence": [0.9, 0.8, 0.1, 0.7],
                          "l1_benign": [0.1, 0.2, 0.9, 0.3], "iou_benign_mean": [0.5, 0.5, 0.0, 0.5]})
    s = summarize(frame).iloc[0]
    assert s["n"] == 4 and s["asr"] == 0.75
    assert s["mc"] == pytest.approx(0.8) and s["l1_benign"] == pytest.approx(0.2)
    assert s["iou_benign_mean"] == pytest.approx(0.5)
