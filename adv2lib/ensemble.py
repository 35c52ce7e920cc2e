"""Ensemble interpretation as a detector: flag an input whose interpreters disagree.

The paper's first countermeasure (paper-spec (g) item 10): ADV2 crafted against one
interpreter rarely fools another (chapter 04), so the maps of several interpreters of an
adversarial input disagree more than those of a clean one. The paper gives neither code nor
numbers; our reading, as a detector a defender can run without the benign map:

1. explain the input with every member of the ensemble for the class the victim predicts;
2. bring the maps to one resolution (bilinear, :func:`common_maps`) and min-max normalise
   each, so that only their shapes are compared;
3. score the disagreement (:data:`SCORES`): ``"distance"``, the mean over members of the L1
   distance between the member's map and the mean of the others' maps; ``"rank"``, one minus
   the mean Spearman rank correlation over pairs of members;
4. flag the input when its score exceeds a threshold set on held-out clean images at a
   false-positive rate of 5 % (:func:`threshold_at_fpr`).

ROC curves and AUCs come from scikit-learn (:func:`roc`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .interpreters.base import minmax_normalize

__all__ = ["SCORES", "FPR", "common_maps", "disagreement", "threshold_at_fpr", "detection_rate", "roc",
           "detection_summary"]

#: The disagreement scores :func:`disagreement` computes.
SCORES = ("distance", "rank")
#: The false-positive rate on clean images at which the detector is thresholded.
FPR = 0.05


def common_maps(maps: dict, size=None) -> torch.Tensor:
    """``maps`` (member name -> ``(N, 1, h, w)``) at one resolution, each map min-max normalised:
    ``(N, members, H * W)`` in the order of ``maps``. ``size`` defaults to the largest native
    size among the members; smaller maps are upsampled bilinearly."""
    if len(maps) < 2:
        raise ConfigError(f"an ensemble needs at least two interpreters, got {list(maps)}")
    if size is None:
        size = max((tuple(m.shape[-2:]) for m in maps.values()), key=lambda s: s[0] * s[1])
    out = []
    for m in maps.values():
        m = m.detach().float().cpu()
        if tuple(m.shape[-2:]) != tuple(size):
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        out.append(minmax_normalize(m).flatten(1))
    return torch.stack(out, 1)


def _distance_score(stack: torch.Tensor) -> torch.Tensor:
    k = stack.shape[1]
    others = (stack.sum(1, keepdim=True) - stack) / (k - 1)
    return (stack - others).abs().mean(2).mean(1)


def _rank_score(stack: torch.Tensor) -> torch.Tensor:
    from scipy.stats import rankdata

    ranks = torch.as_tensor(rankdata(stack.numpy(), axis=2), dtype=torch.float64)
    centred = ranks - ranks.mean(2, keepdim=True)
    unit = centred / centred.norm(dim=2, keepdim=True).clamp_min(1e-12)
    corr = unit @ unit.transpose(1, 2)                   # (N, k, k) Spearman correlations
    k = stack.shape[1]
    off = ~torch.eye(k, dtype=torch.bool)
    return (1 - corr[:, off].mean(1)).float()


def disagreement(maps: dict, score: str = "distance", size=None) -> torch.Tensor:
    """How much the members' maps of each input disagree, ``(N,)`` (higher = more suspicious);
    ``score`` is one of :data:`SCORES` (see the module docstring).

    >>> same = {"a": torch.rand(3, 1, 4, 4)}; same["b"] = same["a"].clone()
    >>> disagreement(same).abs().max().item() < 1e-6, disagreement(same, "rank").abs().max().item() < 1e-6
    (True, True)
    """
    stack = common_maps(maps, size)
    if score == "distance":
        return _distance_score(stack)
    if score == "rank":
        return _rank_score(stack)
    raise ConfigError(f"unknown disagreement score {score!r}: choose one of {', '.join(SCORES)}")


def threshold_at_fpr(benign_scores, fpr: float = FPR) -> float:
    """The detector's threshold: the smallest observed clean score ``t`` such that at most a
    fraction ``fpr`` of ``benign_scores`` lies strictly above it (flag ``score > t``). On the
    scores it was set on, the false-positive rate is therefore at most ``fpr`` by construction.

    >>> threshold_at_fpr(np.arange(100.0), 0.05)
    94.0
    """
    scores = np.sort(np.asarray(benign_scores, dtype=float))
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ConfigError("threshold_at_fpr needs finite scores of clean inputs")
    if not 0 <= fpr < 1:
        raise ConfigError(f"fpr must be in [0, 1), got {fpr!r}")
    allowed = int(np.floor(fpr * scores.size + 1e-9))
    return float(scores[scores.size - 1 - allowed])


def detection_rate(scores, threshold: float) -> float:
    """The fraction of ``scores`` flagged (``score > threshold``)."""
    scores = np.asarray(scores, dtype=float)
    return float((scores > threshold).mean()) if scores.size else float("nan")


def roc(benign_scores, attack_scores) -> dict:
    """ROC of separating ``attack_scores`` (positives) from ``benign_scores``: ``{"fpr", "tpr",
    "auc"}`` (:func:`sklearn.metrics.roc_curve`, :func:`sklearn.metrics.roc_auc_score`)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    benign, attack = np.asarray(benign_scores, float), np.asarray(attack_scores, float)
    if benign.size == 0 or attack.size == 0:
        return {"fpr": np.array([0.0, 1.0]), "tpr": np.array([0.0, 1.0]), "auc": float("nan")}
    y = np.r_[np.zeros(benign.size), np.ones(attack.size)]
    s = np.r_[benign, attack]
    fpr, tpr, _ = roc_curve(y, s)
    return {"fpr": fpr, "tpr": tpr, "auc": float(roc_auc_score(y, s))}


def detection_summary(detection):
    """Per victim x ensemble x score x scored input (split, attack, source interpreter) of the
    ensemble experiment's detection rows: inputs scored, successful ones, the share of those
    flagged (clean rows: the false-positive rate), the AUC against the clean evaluation images,
    and the threshold."""
    import pandas as pd

    out = []
    for (v, e, k), g in detection.groupby(["victim", "ensemble", "score_kind"], sort=False):
        clean = g[(g["attack"] == "clean") & (g["split"] == "evaluation")]["score"].to_numpy()
        for (split, attack, source), h in g.groupby(["split", "attack", "source_interpreter"], sort=False, dropna=False):
            ok = h[h["success"].astype(bool)]
            auc = float("nan") if attack == "clean" else roc(clean, ok["score"].to_numpy())["auc"]
            out.append({"victim": v, "ensemble": e, "score_kind": k, "split": split, "attack": attack,
                        "source_interpreter": source, "n": len(h),
                        "n_successful": len(ok), "rate": float(ok["flagged"].mean()) if len(ok) else float("nan"),
                        "auc": auc, "threshold": float(h["threshold"].iloc[0])})
    return pd.DataFrame(out)
