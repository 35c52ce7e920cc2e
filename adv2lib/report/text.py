"""Sentences the chapters print around their tables: the scale of a run, formatted numbers."""
from __future__ import annotations

import numpy as np

from ..names import label
from .files import images_per_group

__all__ = ["scale_text", "fmt"]

DATASETS = {"embedded": "Fashion-MNIST, small trained victims", "imagenet": "ImageNet"}


def scale_text(meta_or_results, smoke: bool | None = None, profile: str | None = None) -> str:
    """One sentence stating the scale of a run, for captions: images per victim, smoke or full,
    profile and dataset. Takes the JSON written by :func:`~adv2lib.report.save_experiment` or a
    list of experiment results.

    >>> scale_text({"n_images": {"resnet": 100, "densenet": 100}, "smoke": False, "profile": "embedded"})
    '100 images per victim, full scale, profile `embedded` (Fashion-MNIST, small trained victims)'
    """
    if isinstance(meta_or_results, dict):
        n = meta_or_results.get("n_images", {})
        smoke = meta_or_results.get("smoke") if smoke is None else smoke
        profile = meta_or_results.get("profile") if profile is None else profile
    else:
        results = list(meta_or_results)
        n = {r.victim: images_per_group(r.examples) for r in results}
        profile = profile or results[0].profile
    counts = sorted(set(n.values()))
    images = (f"{counts[0]} images per victim" if len(counts) == 1
              else ", ".join(f"{c} images ({label(v)})" for v, c in n.items()))
    kind = ("**smoke scale** (a few images, about a tenth of the attack iterations: a test of the pipeline, "
            "not a measurement)" if smoke else "full scale")
    return f"{images}, {kind}, profile `{profile}` ({DATASETS.get(profile, profile)})"


def fmt(x, pct: bool = False) -> str:
    """``x`` with three decimals, or as a whole percentage with ``pct``; ``"n/a"`` when missing."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.0%}" if pct else f"{x:.3f}"
