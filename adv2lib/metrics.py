"""The evaluation metrics of ADV2, each defined once.

Citations: Zhang et al., "Interpretable Deep Learning under Fire", USENIX Security 2020
(the paper), section "Evaluation"; the official code (``alps-lab/adv2``) where the paper's
definition needed details (paper-spec section (e)).

All map metrics take maps ``(N, 1, h, w)`` (or ``(N, h, w)``) at the interpreter's *native*
resolution, values in [0, 1], and return one value per example; aggregate with the helpers
or in pandas. Maps are never upsampled here (paper-spec (e): CAM 7x7, GRAD 56x56 on
ImageNet; L1 values are comparable only within one interpreter).

>>> a = torch.zeros(1, 1, 2, 2); b = torch.ones(1, 1, 2, 2)
>>> l1_distance(a, b)
tensor([1.])
>>> iou_topk(a + torch.tensor([[1., 0.], [0., 0.]]), b * torch.tensor([[1., 0.], [0., 0.]]), 0.25)
tensor([1.])
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .names import INTERPRETERS

__all__ = [
    "attack_success_rate", "misclassification_confidence", "l1_distance", "l2_distance",
    "iou_topk", "iou_curve", "IOU_KS", "transfer_matrix", "summarize",
]

#: The IoU test's sweep of k (fraction of pixels kept). The paper's list of k was not
#: recovered (paper-spec (e)); we sweep 5 % ... 50 % in steps of 5 %: above 50 % the
#: "salient" set is most of the map and every pair of maps overlaps heavily.
IOU_KS = tuple(round(0.05 * i, 2) for i in range(1, 11))


def _as_tensor(values) -> torch.Tensor:
    if torch.is_tensor(values):
        return values.detach().cpu()
    return torch.as_tensor(np.array(values))


def attack_success_rate(success=None, *, prediction=None, target_class=None) -> float:
    """ASR: the fraction of adversarial inputs classified as the target class ``ct``.

    Paper: "attack success rate ... the fraction of adversarial inputs whose predictions
    match the target class"; official code: the ``*_succeed`` arrays over *all* attacked
    images (paper-spec (e)). Give either ``success`` (bool per example) or ``prediction``
    and ``target_class``.

    >>> attack_success_rate(torch.tensor([True, False, True, True]))
    0.75
    """
    if success is None:
        if prediction is None or target_class is None:
            raise ValueError("give success, or prediction and target_class")
        success = _as_tensor(prediction) == _as_tensor(target_class)
    success = _as_tensor(success).bool()
    return float(success.float().mean()) if success.numel() else float("nan")


def misclassification_confidence(confidence, success=None) -> float:
    """MC: the mean probability the victim assigns to ``ct``, over successful examples.

    Paper: "misclassification confidence ... the probability assigned to the target class";
    official code: ``pro()`` in ``distance/*.py`` averages the top softmax probability of the
    successful examples, which equals ``p(ct)`` there (paper-spec (e)).

    >>> misclassification_confidence(torch.tensor([0.9, 0.2, 0.7]), torch.tensor([True, False, True]))
    0.8
    """
    confidence = _as_tensor(confidence).float()
    if success is not None:
        confidence = confidence[_as_tensor(success).bool()]
    return round(float(confidence.mean()), 12) if confidence.numel() else float("nan")


def _flat_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same shape (native resolution), got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if a.dim() < 2:
        raise ValueError("expected a batch of maps (N, 1, h, w) or (N, h, w)")
    return a.detach().flatten(1).float(), b.detach().flatten(1).to(a.device).float()


def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 distance between maps, per pixel: ``||a - b||_1 / (h w)`` per example, ``(N,)``.

    Paper: the L_p measure of interpretation similarity with p = 1; official code
    (``distance/*.py``): ``sum |m(x*) - mt| / (H W)`` at the native map resolution.
    Values lie in [0, 1] for maps in [0, 1].
    """
    a, b = _flat_pair(a, b)
    return (a - b).abs().mean(1)


def l2_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a - b||_2 / sqrt(h w)`` per example: the official scripts' L2 variant."""
    a, b = _flat_pair(a, b)
    return (a - b).pow(2).mean(1).sqrt()


def _topk_mask(m: torch.Tensor, k: float) -> torch.Tensor:
    n = m.shape[1]
    count = min(n, max(1, math.ceil(k * n - 1e-9)))
    # Ties are broken by a stable sort (lower index first), so the result is deterministic.
    order = torch.sort(m, dim=1, descending=True, stable=True).indices[:, :count]
    mask = torch.zeros_like(m, dtype=torch.bool)
    return mask.scatter_(1, order, True)


def iou_topk(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """IoU test: keep the top ``k`` fraction of pixels of each map, ``|A & B| / |A | B|``.

    Paper: "IoU test ... we binarize the attribution maps by keeping the top-k% pixels and
    compare them by intersection-over-union", over a sweep of k (the k values and the
    aggregation were not recovered, paper-spec (e)). ``k`` in (0, 1]; the kept count is
    ``ceil(k h w)`` (at least one pixel), ties broken by position. Returns ``(N,)`` in [0, 1].
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must lie in (0, 1], got {k}")
    a, b = _flat_pair(a, b)
    ma, mb = _topk_mask(a, k), _topk_mask(b, k)
    inter = (ma & mb).sum(1).float()
    union = (ma | mb).sum(1).float()
    return inter / union


def iou_curve(a: torch.Tensor, b: torch.Tensor, ks: Sequence[float] = IOU_KS) -> torch.Tensor:
    """:func:`iou_topk` for every k of ``ks``: ``(N, len(ks))``. The paper's IoU figure plots
    the mean over examples against k; ``.mean(1)`` is the per-example mean over the sweep."""
    return torch.stack([iou_topk(a, b, k) for k in ks], dim=1)


def transfer_matrix(frame, value: str = "l1_benign", successful_only: bool = True):
    """Transferability across interpreters (paper Table 9): rows = source (the interpreter the
    ADV2 inputs were built against, plus ``pgd``), columns = target (the interpreter that
    explains them), entries = mean ``value`` (L1 of the target interpreter's map for ``ct``
    to its benign map).

    ``frame`` is a tidy DataFrame of the transfer experiment's rows: ``interpreter`` (the one
    explaining), ``attack`` ("pgd" or "adv2"), ``source_interpreter`` (the one ADV2 attacked),
    ``value`` (and ``success`` when ``successful_only``: the paper's code averages over
    successful examples). Row order: the interpreters, then ``pgd``.
    """
    df = frame
    if successful_only and "success" in df:
        df = df[df["success"].astype(bool)]
    df = df.assign(source=df["source_interpreter"].where(df["attack"] != "pgd", "pgd"), target=df["interpreter"])
    table = df.pivot_table(index="source", columns="target", values=value, aggfunc="mean")
    order = [s for s in INTERPRETERS if s in table.index]
    order += [s for s in table.index if s not in order and s != "pgd"] + (["pgd"] if "pgd" in table.index else [])
    cols = [c for c in INTERPRETERS if c in table.columns]
    cols += [c for c in table.columns if c not in cols]
    table = table.loc[order, cols]
    table.index.name, table.columns.name = "source", "target"
    return table


def summarize(frame, by=("victim", "interpreter", "attack"), successful_only: bool = True):
    """Per-group ASR, MC and mean/std of every ``l1_*`` and ``iou*`` column.

    ASR counts all examples; MC and the map metrics average over successful examples when
    ``successful_only`` (the official scripts' convention, paper-spec (e), pitfall 15).
    """
    import pandas as pd

    by = [c for c in by if c in frame.columns]
    metric_cols = [c for c in frame.columns if c.startswith("l1_") or c.startswith("iou")]
    rows = []
    for key, group in frame.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        # Rows without an attack outcome (the ablation's noise-floor rows) count as they are.
        ok = group["success"].astype(bool) if "success" in group else pd.Series(True, index=group.index)
        conf = group["confidence"] if "confidence" in group else pd.Series(float("nan"), index=group.index)
        row = dict(zip(by, key))
        row["n"] = len(group)
        row["asr"] = attack_success_rate(ok.to_numpy())
        row["mc"] = misclassification_confidence(conf.to_numpy(), ok.to_numpy())
        sub = group[ok] if successful_only else group
        for col in metric_cols:
            row[col] = float(sub[col].mean()) if len(sub) else float("nan")
            if col.startswith("l1_"):
                row[col + "_std"] = float(sub[col].std()) if len(sub) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
