"""The one loop every attack shares, and the small pieces around it.

:func:`sign_descent` is projected gradient descent with sign steps (paper-spec (b)):

    x <- clip_[0,1]( x0 + clip_[-eps,eps]( x - alpha * sign(grad loss(x)) - x0 ) )

PGD calls it with the prediction loss only; ADV2 (GRAD, CAM, RTS) with the joint loss
``l_prd + lambda_t * l_int``. A *monitor* watches the iterates: it keeps, per example, the
iterate to return (the last one, or the best one that meets a selection rule) and may
freeze examples that are done (early stopping). Frozen examples leave the batch, so the
work shrinks as they finish and each example's trajectory does not depend on the others.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = [
    "project", "quantize_8bit", "cw_margin", "smoothed_cross_entropy", "sign_descent",
    "BestIterate", "LevelRecord", "attack_mode", "PassCounter", "map_loss",
]


def project(x: torch.Tensor, x0: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the L-inf ball of radius ``eps`` around ``x0``, then onto [0, 1].

    The arithmetic is the official code's, ``clip_[0,1](x0 + clip_[-eps,eps](x - x0))``
    (paper-spec (d)), which torchattacks' PGD also uses: clamping ``x`` itself to
    ``[x0 - eps, x0 + eps]`` is the same projection in exact arithmetic but rounds
    differently, and over hundreds of sign steps one rounding apart changes a gradient sign
    and so the trajectory (``scripts/bench_peers.py``: 16 % of ResNet images bit-identical to
    torchattacks' that way, 100 % this way). ``x0 + (x - x0)`` may land one float ulp outside
    the ball; every bound check allows for that.
    """
    return (x0 + (x - x0).clamp(-eps, eps)).clamp_(0.0, 1.0)


def quantize_8bit(x: torch.Tensor, x0: torch.Tensor | None = None, eps: float | None = None) -> torch.Tensor:
    """Round to the 8-bit grid ``k/255``. With ``x0`` (itself on the grid) and ``eps``, the
    result stays inside the ball: the bounds are rounded inwards."""
    q = torch.round(x * 255.0) / 255.0
    if x0 is not None:
        lo = torch.ceil(((x0 - eps).clamp(0, 1) * 255.0) - 1e-4) / 255.0
        hi = torch.floor(((x0 + eps).clamp(0, 1) * 255.0) + 1e-4) / 255.0
        q = torch.min(torch.max(q, lo), hi)
    return q.clamp_(0.0, 1.0)


def cw_margin(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin ``max_{j != t} z_j - z_t`` per example (negative = success)."""
    z_t = logits.gather(1, target.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, target.view(-1, 1), float("-inf"))
    return others.amax(1) - z_t


def map_loss(a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Per-example squared difference between maps, summed or averaged over pixels."""
    d = (a - b).pow(2).flatten(1)
    return d.sum(1) if reduction == "sum" else d.mean(1)


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Per-example CE against ``1 - smoothing`` on ``target`` and ``smoothing / (K - 1)`` on
    each other class (GRAD's label smoothing: 0.95 / (0.05 / 999), rev2/gs/gs_acid_attack_v3.py)."""
    logp = F.log_softmax(logits, dim=1)
    nll = -logp.gather(1, target.view(-1, 1)).squeeze(1)
    if smoothing == 0.0:
        return nll
    k = logits.shape[1]
    rest = -logp.sum(1) - nll  # -sum_{j != t} log p_j
    return (1.0 - smoothing) * nll + smoothing / (k - 1) * rest


class PassCounter:
    """Counts forward+backward passes per example (for the benchmark's bare-cost ratio).

    ``add(n_examples, passes)``: ``passes`` full forward+backward passes of the victim over
    ``n_examples`` examples. A forward alone counts 1/3 (backward ~ 2 forwards); a
    double-backward pass (GRAD) counts as 2 passes (forward, backward, backward of backward).
    """

    def __init__(self):
        self.total = 0.0

    def add(self, n_examples: int, passes: float = 1.0) -> None:
        self.total += float(n_examples) * passes


@contextlib.contextmanager
def attack_mode(*modules: torch.nn.Module):
    """Evaluation mode and frozen parameters for the duration of an attack; both restored.
    A module given twice (RTS's encoder is the victim itself) is saved once."""
    saved = []
    for module in modules:
        if not isinstance(module, torch.nn.Module) or any(module is m for m, _, _ in saved):
            continue
        saved.append((module, module.training, [(p, p.requires_grad) for p in module.parameters()]))
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    try:
        yield
    finally:
        for module, training, flags in saved:
            module.train(training)
            for p, flag in flags:
                p.requires_grad_(flag)


class BestIterate:
    """Per example, the iterate to return and the iteration it was taken at.

    ``offer(idx, x, iteration, ok, score)``: for the examples ``idx`` (indices into the full
    batch), the candidate ``x`` replaces the kept one when ``ok`` and ``score`` is lower than
    the best so far. ``offer_last`` records the fallback returned for examples where no
    candidate was ever ok: the last iterate, or the one with the largest ``key``.
    """

    def __init__(self, x: torch.Tensor):
        n = x.shape[0]
        self.x = x.detach().clone()
        self.iteration = torch.zeros(n, dtype=torch.long, device=x.device)
        self.score = torch.full((n,), float("inf"), device=x.device)
        self.found = torch.zeros(n, dtype=torch.bool, device=x.device)
        self.last_x = x.detach().clone()
        self.last_iteration = torch.zeros(n, dtype=torch.long, device=x.device)
        self.last_key = torch.full((n,), float("-inf"), device=x.device)

    def offer(self, idx, x, iteration, ok, score=None) -> None:
        """``iteration``: an int or a long tensor aligned with ``idx``."""
        if score is None:
            score = torch.zeros(len(idx), device=x.device)
        iteration = _aligned(iteration, len(idx), x.device)
        better = ok & (score < self.score[idx])
        if better.any():
            sel = idx[better]
            self.x[sel] = x[better].detach()
            self.score[sel] = score[better].detach()
            self.iteration[sel] = iteration[better]
            self.found[sel] = True

    def offer_last(self, idx, x, iteration, key=None) -> None:
        """Record the fallback. Without ``key``, the latest offer wins; with ``key`` (e.g.
        ``p(ct)``), the offer with the largest key so far (the latest among ties)."""
        iteration = _aligned(iteration, len(idx), x.device)
        if key is None:
            self.last_x[idx] = x.detach()
            self.last_iteration[idx] = iteration
            return
        take = key >= self.last_key[idx]
        if take.any():
            sel = idx[take]
            self.last_x[sel] = x[take].detach()
            self.last_iteration[sel] = iteration[take]
            self.last_key[sel] = key[take].detach().float()

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x, iteration, found)``: the best ok iterate, else the last one."""
        found = self.found.view(-1, *([1] * (self.x.dim() - 1)))
        x = torch.where(found, self.x, self.last_x)
        iteration = torch.where(self.found, self.iteration, self.last_iteration)
        return x, iteration, self.found.clone()


class LevelRecord:
    """The selection rule at several confidence levels, recorded in one run.

    For each level ``c`` (``None``: argmax only), per example, the map of the checked iterate
    classified as ``ct`` with ``p(ct) >= c`` whose map is closest to the target, and that
    iterate's ``p(ct)``. ``offer(idx, p, argmax_ok, score, maps)`` at every check; ``result()``
    -> ``{c: {"found", "map", "confidence"}}`` (CPU tensors; ``found`` False where no checked
    iterate reached ``c``). Used for the confidence trade-off (what choosing more strictly
    among the same iterates costs), never for the returned iterate.
    """

    def __init__(self, levels, n: int, map_shape, device):
        self.levels = tuple(levels)
        self.score = {c: torch.full((n,), float("inf"), device=device) for c in self.levels}
        self.maps = {c: torch.zeros((n, *map_shape), device=device) for c in self.levels}
        self.conf = {c: torch.zeros(n, device=device) for c in self.levels}

    def offer(self, idx, p, argmax_ok, score, maps) -> None:
        for c in self.levels:
            ok = argmax_ok if c is None else argmax_ok & (p >= c)
            better = ok & (score < self.score[c][idx])
            if better.any():
                sel = idx[better]
                self.score[c][sel] = score[better].detach()
                self.maps[c][sel] = maps[better].detach().to(self.maps[c].dtype)
                self.conf[c][sel] = p[better].detach().float()

    def result(self) -> dict:
        return {c: {"found": torch.isfinite(self.score[c]).cpu(), "map": self.maps[c].cpu(),
                    "confidence": self.conf[c].cpu()} for c in self.levels}


def _aligned(iteration, n: int, device) -> torch.Tensor:
    it = torch.as_tensor(iteration, dtype=torch.long, device=device)
    return it.expand(n) if it.dim() == 0 else it


Objective = Callable[[torch.Tensor, int, torch.Tensor], tuple[torch.Tensor, dict]]
Monitor = Callable[[torch.Tensor, int, torch.Tensor, dict | None], torch.Tensor | None]


def sign_descent(
    x0: torch.Tensor,
    x: torch.Tensor,
    objective: Objective,
    *,
    steps: int,
    alpha: float,
    eps: float,
    monitor: Monitor | None = None,
    check_every: int = 1,
    iteration_offset: int | torch.Tensor = 0,
    counter: PassCounter | None = None,
    passes_per_step: float = 1.0,
    progress: bool = False,
    desc: str = "attack",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``steps`` projected sign-gradient steps from ``x`` (inside the ball around ``x0``).

    ``objective(x_active, t, idx) -> (loss, aux)``: ``loss`` is per example ``(n,)`` for the
    active examples ``idx`` at stage step ``t``; ``aux`` is a dict of detached by-products of
    the same forward pass (e.g. ``logits``, an exact ``map``) that the monitor may reuse.
    ``monitor(x_active, iteration, idx, aux) -> done``: called on the current iterate every
    ``check_every`` steps (``aux`` from the objective) and once after the last step
    (``aux=None``); it returns a bool ``(n,)`` of examples to freeze, or None.

    Returns ``(x_final, stop_iteration)``: each example's last iterate (frozen examples keep
    the one they were frozen at) and the iteration (``iteration_offset + t``; the offset may be
    a per-example tensor) it was taken at.
    The loss is summed over the batch before differentiating, so each example's gradient is
    its own (the victim must be in eval mode: no batch statistics).
    """
    x = x.detach().clone()
    n = x.shape[0]
    offset = _aligned(iteration_offset, n, x.device).clone()
    stop_at = offset + steps
    active = torch.arange(n, device=x.device)
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for t in bar:
        if active.numel() == 0:
            break
        xa = x[active].detach().requires_grad_(True)
        loss, aux = objective(xa, t, active)
        (grad,) = torch.autograd.grad(loss.sum(), xa)
        if counter is not None:
            counter.add(active.numel(), passes_per_step)
        done = None
        if monitor is not None and t % check_every == 0:
            done = monitor(xa.detach(), offset[active] + t, active, aux)
        x_new = project(xa.detach() - alpha * grad.sign(), x0[active], eps)
        if done is not None and done.any():
            x_new[done] = xa.detach()[done]
            stop_at[active[done]] = offset[active[done]] + t
        x[active] = x_new
        if done is not None and done.any():
            active = active[~done]
        if progress:
            bar.set_postfix(loss=f"{loss.mean().item():.3g}", active=int(active.numel()))
    if monitor is not None and active.numel() > 0:
        monitor(x[active].detach(), offset[active] + steps, active, None)
    return x, stop_at
