"""Faithfulness of the interpreters: the deletion test (issue 3).

If a map marks what the classifier uses, deleting the pixels it ranks highest should hurt the
class confidence more than deleting as many random pixels (Samek et al., 2017, "Evaluating
the visualization of what a deep neural network has learned"; Petsiuk et al., 2018, RISE's
deletion metric, at a single fraction).

Protocol (:func:`faithfulness_table`):

* images: correctly classified Fashion-MNIST test images, a seeded random subset;
* class ``c``: the victim's prediction (= the label), the class a deployed system explains;
* each interpreter's benign map for ``c`` is upsampled bilinearly to 28x28 (display
  upsampling, :func:`~adv2lib.interpreters.base.upsample_map`), and its top ``fraction``
  (20%) pixels are *deleted*;
* deletion replaces a pixel by ``replacement``: ``"blur"`` (the image blurred with MASK's
  kernel 21, sigma 3.5 -- the perturbation MASK optimises, so it favours MASK) or ``"zero"``
  (black, Fashion-MNIST's background). Zeroing is the weaker test on these images: a random
  20% falls mostly on the black background and deletes nothing, while any map that finds the
  garment -- even "the brightest pixels", with no model at all -- deletes a lot. Blurring
  leaves flat regions (background, garment interiors) unchanged and only hurts where detail
  is, so the brightest-pixel baseline does *worse* than random under it;
* the reference is the same number of pixels chosen uniformly at random (mean over
  ``n_random`` draws), plus the model-free "brightest pixels" baseline row.
"""
from __future__ import annotations

import pandas as pd
import torch

from .interpreters import INTERPRETERS, build_interpreter
from .interpreters.base import upsample_map
from .interpreters.mask import gaussian_blur

REPLACEMENTS = ("blur", "zero")
BRIGHTEST = "brightest pixels (baseline)"


def top_fraction_mask(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """``(N, 1, H, W)`` {0, 1} mask of the ``round(fraction * H * W)`` highest ``scores`` per image."""
    flat = scores.flatten(1)
    k = int(round(fraction * flat.shape[1]))
    out = torch.zeros_like(flat)
    if k > 0:
        out.scatter_(1, flat.topk(k, dim=1).indices, 1.0)
    return out.view_as(scores)


def delete(x: torch.Tensor, deleted: torch.Tensor, replacement: str = "zero") -> torch.Tensor:
    """``x`` with the pixels where ``deleted == 1`` replaced (``"zero"`` or ``"blur"``)."""
    if replacement == "zero":
        filler = torch.zeros_like(x)
    elif replacement == "blur":
        filler = gaussian_blur(x, 21, 3.5)
    else:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
    return x * (1 - deleted) + filler * deleted


@torch.no_grad()
def _class_prob(victim, x, c):
    return victim(x).softmax(dim=1).gather(1, c.view(-1, 1)).squeeze(1)


def deletion_scores(victim, maps: torch.Tensor, x: torch.Tensor, c: torch.Tensor, fraction: float = 0.2,
                    replacement: str = "zero", n_random: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-image class probabilities: clean, after deleting the top ``fraction`` of ``maps``
    (upsampled to ``x``'s size) and after deleting random pixels (mean of ``n_random`` draws)."""
    scores = upsample_map(maps.detach(), x.shape[-2:])
    p_top = _class_prob(victim, delete(x, top_fraction_mask(scores, fraction), replacement), c)
    gen = torch.Generator().manual_seed(seed)
    p_random = torch.stack([
        _class_prob(victim, delete(x, top_fraction_mask(torch.rand(scores.shape, generator=gen).to(x.device),
                                                        fraction), replacement), c)
        for _ in range(n_random)
    ]).mean(0)
    return {"p_clean": _class_prob(victim, x, c), "p_top": p_top, "p_random": p_random}


def faithfulness_table(victim_name: str = "resnet", n_images: int = 100, seed: int = 0, fraction: float = 0.2,
                       replacements=REPLACEMENTS, interpreters=INTERPRETERS, n_random: int = 5,
                       batch_size: int = 50, device="cpu", victim=None) -> pd.DataFrame:
    """The deletion test on an embedded victim: one row per (replacement, interpreter).

    Columns: ``p_clean``, ``p_top`` and ``p_random`` (mean class probability before deletion,
    after deleting the map's top pixels, after deleting random pixels), ``drop_top`` and
    ``drop_random`` (the mean decreases), ``win_rate`` (fraction of images where top
    deletion lowers the probability more than random deletion), ``faithful``
    (``drop_top > drop_random``) and ``note`` (why an interpreter is missing, e.g. RTS without
    trained weights). ``victim`` may be passed instead of being loaded by name.

    >>> faithfulness_table("resnet", n_images=20)    # doctest: +SKIP
    """
    from .data import fashion_mnist
    from .models import load_victim

    if victim is None:
        victim = load_victim(victim_name, "embedded", device=device)
    device = next(victim.parameters()).device
    test = fashion_mnist("test")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    # Correctly classified images only, taken in the seeded order.
    chosen, start = [], 0
    while sum(len(c) for c in chosen) < n_images and start < len(order):
        idx = order[start:start + 500]
        xb, yb = test.tensors(idx)
        with torch.no_grad():
            ok = victim(xb.to(device)).argmax(1).cpu() == yb
        chosen.append(idx[ok])
        start += 500
    idx = torch.cat(chosen)[:n_images]
    x, c = (t.to(device) for t in test.tensors(idx))

    rows, methods = [], {}
    for name in interpreters:
        try:
            methods[name] = build_interpreter(name, victim)
        except Exception as err:  # RTS without trained weights, or rts.py missing
            rows += [{"victim": victim_name, "replacement": r, "interpreter": name,
                      "note": f"skipped: {type(err).__name__}: {str(err).splitlines()[0]}"} for r in replacements]
            continue
    maps = {name: torch.cat([interp(x[i:i + batch_size], c[i:i + batch_size]).detach()
                             for i in range(0, len(x), batch_size)])
            for name, interp in methods.items()}
    maps[BRIGHTEST] = x.amax(dim=1, keepdim=True)
    for replacement in replacements:
        for name, m in maps.items():
            s = deletion_scores(victim, m, x, c, fraction, replacement, n_random, seed)
            drop_top, drop_random = s["p_clean"] - s["p_top"], s["p_clean"] - s["p_random"]
            rows.append({
                "victim": victim_name, "replacement": replacement, "interpreter": name, "n_images": len(x),
                "p_clean": s["p_clean"].mean().item(), "p_top": s["p_top"].mean().item(),
                "p_random": s["p_random"].mean().item(), "drop_top": drop_top.mean().item(),
                "drop_random": drop_random.mean().item(),
                "win_rate": (s["p_top"] < s["p_random"]).float().mean().item(),
                "faithful": bool(drop_top.mean() > drop_random.mean()), "note": "",
            })
    order_key = {n: i for i, n in enumerate(list(interpreters) + [BRIGHTEST])}
    rep_key = {r: i for i, r in enumerate(replacements)}
    table = pd.DataFrame(rows)
    table["n_images"] = table["n_images"].astype("Int64")
    table = table.iloc[sorted(range(len(table)), key=lambda i: (rep_key[table["replacement"][i]],
                                                                order_key[table["interpreter"][i]]))]
    columns = [col for col in table.columns if col != "note"] + ["note"]
    return table[columns].reset_index(drop=True)
