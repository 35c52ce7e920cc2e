"""Targeted L-inf PGD: the baseline, and the warm start of every ADV2 attack.

Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018;
targeted form as in the official ADV2 code (``expr_attacks_fixed/attack_regular_pgd.py``):
minimise CE(f(x), ct) (or the CW margin) with sign steps, projecting onto the eps-ball and
then onto [0, 1] after every step. PGD is ADV2 without the interpretation term: it runs the
shared :func:`~adv2lib.attacks.loop.sign_descent`.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .config import PGDConfig, resolve_config
from .loop import PassCounter, attack_mode, cw_margin, project, sign_descent
from .result import AttackResult

__all__ = ["PGD", "pgd_stage", "prepare_inputs", "evaluate"]


def prepare_inputs(victim, x, target_class, true_class=None):
    """Validate the batch and return ``(x0, target, true)`` on the victim's device.

    ``x0`` is a detached copy (the caller's tensor is never modified); ``true`` defaults to
    the victim's prediction on ``x``.
    """
    if not torch.is_tensor(x) or x.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("images must lie in [0, 1] (normalisation lives inside the victim)")
    device = next(victim.parameters()).device
    x0 = x.detach().to(device=device, dtype=torch.float32).clone()
    n = x0.shape[0]
    target = torch.as_tensor(target_class, dtype=torch.long, device=device).reshape(-1)
    if target.numel() == 1 and n > 1:
        target = target.expand(n).clone()
    if target.shape[0] != n:
        raise ValueError(f"{target.shape[0]} target classes for {n} images")
    k = victim.num_classes if hasattr(victim, "num_classes") else None
    if k is not None and ((target < 0) | (target >= k)).any():
        raise ValueError(f"target classes must lie in [0, {k})")
    if true_class is None:
        with torch.no_grad():
            true = victim(x0).argmax(1)
    else:
        true = torch.as_tensor(true_class, dtype=torch.long, device=device).reshape(-1)
        if true.numel() == 1 and n > 1:
            true = true.expand(n).clone()
    return x0, target, true


@torch.no_grad()
def evaluate(victim, x, target):
    """``(prediction, p(target))`` of the real victim on ``x``."""
    logits = victim(x)
    return logits.argmax(1), F.softmax(logits, 1).gather(1, target.view(-1, 1)).squeeze(1)


def _prediction_loss(kind: str):
    if kind == "ce":
        return lambda logits, t: F.cross_entropy(logits, t, reduction="none")
    if kind == "cw":
        return cw_margin
    raise ValueError(f"unknown loss {kind!r}")


def pgd_stage(victim, x0, target, *, eps, alpha, steps, loss="ce", early_stop=False,
              stop_confidence=0.99, patience=3, check_every=10, x_init=None,
              counter: PassCounter | None = None, progress=False, desc="pgd"):
    """Targeted PGD from ``x_init`` (default ``x0``); returns ``(x, stop_iteration)``.

    With ``early_stop``, an example is frozen once ``p(ct) >= stop_confidence`` held at
    ``patience`` consecutive checks (every ``check_every`` steps), read off the logits of
    the step's own forward pass (no extra cost).
    """
    loss_fn = _prediction_loss(loss)
    streak = torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device)

    def objective(xa, t, idx):
        logits = victim(xa)
        return loss_fn(logits, target[idx]), {"logits": logits.detach()}

    def monitor(xa, iteration, idx, aux):
        if aux is None:
            return None
        p = F.softmax(aux["logits"], 1).gather(1, target[idx].view(-1, 1)).squeeze(1)
        hit = p >= stop_confidence
        streak[idx] = torch.where(hit, streak[idx] + 1, torch.zeros_like(streak[idx]))
        return streak[idx] >= patience

    x = x0 if x_init is None else x_init
    return sign_descent(x0, x, objective, steps=steps, alpha=alpha, eps=eps,
                        monitor=monitor if early_stop else None, check_every=check_every,
                        counter=counter, progress=progress, desc=desc)


class PGD:
    """Targeted L-inf PGD with sign steps.

    ``PGD(victim, interpreter=None, config=None, seed=0, progress=False, **overrides)``:
    the hyperparameters are the victim profile's preset (:func:`preset_for`), replaced by
    ``config`` and then by keyword overrides (``eps``, ``alpha``, ``steps``,
    ``random_start``, ``early_stop``, ...). ``seed`` drives the random start. With an
    ``interpreter``, the result carries its map of ``x_adv`` for the target class.

    >>> victim = build_victim("resnet")                               # doctest: +SKIP
    >>> result = PGD(victim, steps=20).attack(x, target_class=3)      # doctest: +SKIP
    >>> (result.x_adv - x).abs().max() <= result.config.eps           # doctest: +SKIP
    tensor(True)
    """

    name = "pgd"

    def __init__(self, victim, interpreter=None, config: PGDConfig | None = None, *, seed: int = 0,
                 progress: bool = False, **overrides):
        self.victim = victim
        self.interpreter = interpreter
        profile = getattr(victim, "profile", "embedded")
        self.config = resolve_config(profile, "pgd", config, PGDConfig, **overrides)
        self.seed = seed
        self.progress = progress

    def attack(self, x, target_class, target_map=None, true_class=None) -> AttackResult:
        """Attack the batch ``x`` towards ``target_class``; ``target_map`` is only recorded."""
        cfg, victim = self.config, self.victim
        start, cpu_start = time.perf_counter(), time.process_time()
        counter = PassCounter()
        with attack_mode(victim, self.interpreter if isinstance(self.interpreter, torch.nn.Module) else None):
            x0, target, true = prepare_inputs(victim, x, target_class, true_class)
            x_init = x0
            if cfg.random_start:
                gen = torch.Generator().manual_seed(int(self.seed))
                noise = (torch.rand(x0.shape, generator=gen) * 2 - 1).to(x0.device) * cfg.eps
                x_init = project(x0 + noise, x0, cfg.eps)
            x_adv, stop = pgd_stage(victim, x0, target, eps=cfg.eps, alpha=cfg.alpha, steps=cfg.steps,
                                    loss=cfg.loss, early_stop=cfg.early_stop,
                                    stop_confidence=cfg.stop_confidence, patience=cfg.patience,
                                    check_every=cfg.check_every, x_init=x_init, counter=counter,
                                    progress=self.progress, desc="PGD")
            pred, conf = evaluate(victim, x_adv, target)
            counter.add(x0.shape[0], 1 / 3)
            adv_map = None
            if self.interpreter is not None:
                adv_map = self.interpreter(x_adv, target).detach()
        success = pred == target
        return AttackResult(
            x_adv=x_adv.detach(), success=success, target_class=target, prediction=pred,
            confidence=conf, iteration=stop, selected=success.clone(), true_class=true,
            adv_map=adv_map, target_map=None if target_map is None else target_map.detach(),
            attack="pgd", interpreter=getattr(self.interpreter, "name", None), config=cfg,
            seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start,
            passes={"total": counter.total / max(1, x0.shape[0])},
        )

    __call__ = attack

    def __repr__(self) -> str:
        return f"PGD({type(self.victim).__name__}, {self.config})"
