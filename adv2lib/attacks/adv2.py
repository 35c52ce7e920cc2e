"""ADV2: adversarial inputs whose interpretation stays on target (Zhang et al., USENIX Security 2020).

The attack solves (paper-spec (b))::

    min_x  l_prd(f(x), ct) + lambda * l_int(g(x; f), mt)   s.t.  ||x - x0||_inf <= eps,  x in [0, 1]

warm-started by targeted PGD. One implementation serves every interpreter: what differs
between interpreters is asked of the interpreter itself, through the attack protocol of
:class:`~adv2lib.interpreters.Interpreter` (``attack_terms``, ``passes_per_step``,
``map_passes``, ``networks``, ``bilevel``); the attack never looks at an interpreter's name.

* Stage 2 is :func:`~adv2lib.attacks.loop.sign_descent` on
  ``l_prd + lambda_t * l_int`` (:meth:`ADV2._sign_stage`). Each step takes
  ``interp.attack_terms(x, ct)``: the map ``l_int`` compares with ``mt`` (GRAD: its
  surrogate-ReLU map, ``rev2/gs/gs_acid_attack_v3.py``; CAM: the map and the logits from one
  forward pass, ``expr_attacks_fixed/cam_attack_acid.py``), the victim's logits, and optional
  encoder logits that ``l_prd`` also pushes to ``ct`` with weight ``encoder_ce_weight`` (RTS,
  ``expr_attacks_fixed/rts_attack_acid.py``). With ``select="best"`` the iterates are ranked by
  their exact map on the real model, reused from the step when ``attack_terms`` says it is
  exact, else recomputed with ``interp(x, ct)``.
* An interpreter with ``bilevel = True`` (MASK) is attacked by the bilevel routine of
  :mod:`adv2lib.attacks.adv2_mask` instead, with a :class:`MaskADV2Config`.

Any interpreter that implements only ``explain`` and ``native_size`` is attacked through the
protocol's defaults (``interp(x, ct)`` and ``victim(x)``); a plain map function with a
``native_size`` is wrapped in :class:`~adv2lib.interpreters.base.MapFunction`.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..interpreters.base import Interpreter, MapFunction
from .adv2_mask import bilevel_stage
from .config import ADV2Config, MaskADV2Config, resolve_config
from .loop import (BestIterate, LevelRecord, PassCounter, attack_mode, map_loss, project, sign_descent,
                   smoothed_cross_entropy)
from .pgd import evaluate, pgd_stage, prepare_inputs
from .result import AttackResult

__all__ = ["ADV2", "map_loss"]


class ADV2:
    """ADV2 against ``interpreter`` (an interpreter instance built on ``victim``).

    ``ADV2(victim, interpreter, config=None, seed=0, progress=False, **overrides)``:
    hyperparameters come from the victim profile's preset for ``interpreter.name``
    (:func:`~adv2lib.attacks.preset_for`), replaced by ``config`` and then by keyword
    overrides (``eps``, ``steps``, ``warm_steps``, ``lambda_start``, ...).

    ``attack(x, target_class, target_map=None, true_class=None, x_init=None)``: with
    ``target_map=None`` the interpretation target is the benign map
    ``interpreter(x, true_class)`` (``true_class`` defaults to the victim's prediction).
    ``x_init`` (optional, inside the ball) replaces the PGD warm start: an experiment that
    already ran PGD can pass its iterate at ``warm_steps``.

    >>> victim = load_victim("resnet"); cam = CAM(victim)            # doctest: +SKIP
    >>> result = ADV2(victim, cam).attack(x, target_class=ct)         # doctest: +SKIP
    >>> result.success.float().mean(), l1_distance(result.adv_map, cam(x, y)).mean()  # doctest: +SKIP
    """

    name = "adv2"

    def __init__(self, victim, interpreter, config=None, *, seed: int = 0, progress: bool = False,
                 history: bool = False, levels=(), **overrides):
        if interpreter is None:
            raise ValueError("ADV2 needs an interpreter; for the prediction-only attack use PGD")
        if not isinstance(interpreter, Interpreter):
            interpreter = MapFunction(victim, interpreter)
        elif interpreter.victim is not victim:
            raise ValueError(f"{interpreter!r} explains another model than the victim ADV2 attacks: "
                             f"build the interpreter on the same victim object")
        self.victim = victim
        self.interpreter = interpreter
        profile = getattr(victim, "profile", "embedded")
        expected = MaskADV2Config if interpreter.bilevel else ADV2Config
        self.config = resolve_config(profile, interpreter.name, config, expected, **overrides)
        self.seed = seed
        self.progress = progress
        self.history = history
        self.levels = tuple(levels)

    # ------------------------------------------------------------------ public entry point
    def attack(self, x, target_class, target_map=None, true_class=None, x_init=None) -> AttackResult:
        start, cpu_start = time.perf_counter(), time.process_time()
        victim, interp, cfg = self.victim, self.interpreter, self.config
        counter = PassCounter()
        self._log = []
        self._probes = {}
        with attack_mode(victim, *interp.networks()):
            x0, ct, true = prepare_inputs(victim, x, target_class, true_class)
            if target_map is None:
                mt = interp(x0, true).detach()
            else:
                mt = torch.as_tensor(target_map).detach().to(x0.device, torch.float32)
            expected = (x0.shape[0], 1, *interp.native_size)
            if tuple(mt.shape) != expected:
                raise ValueError(f"target_map must have shape {expected}, got {tuple(mt.shape)}")
            if x_init is not None:
                x_init = project(torch.as_tensor(x_init).detach().to(x0.device, torch.float32), x0, cfg.eps)
            x, warm_at = self._warm_start(x0, ct, x_init, counter)
            self._record = LevelRecord(self.levels, x0.shape[0], mt.shape[1:], x0.device) if self.levels else None
            if interp.bilevel:
                x_adv, iteration, selected, adv_map = bilevel_stage(
                    victim, interp, cfg, x0, ct, mt, x, warm_at, counter, progress=self.progress,
                    log=self._log if self.history else None, record=self._record, probes=self._probes)
            else:
                x_adv, iteration, selected = self._sign_stage(x0, ct, mt, x, warm_at, counter)
                adv_map = interp(x_adv, ct).detach()
            pred, conf = evaluate(victim, x_adv, ct)
        success = pred == ct
        if selected is None:           # select="last": the returned iterate is selected if it succeeds
            selected = success.clone()
        return AttackResult(
            x_adv=x_adv.detach(), success=success, target_class=ct, prediction=pred, confidence=conf,
            iteration=iteration, selected=selected, true_class=true, adv_map=adv_map, target_map=mt,
            attack="adv2", interpreter=interp.name, config=cfg,
            seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start,
            passes={"total": counter.total / max(1, x0.shape[0])}, history=self._log,
            levels=self._record.result() if self._record is not None else {}, probes=self._probes,
        )

    __call__ = attack

    def __repr__(self) -> str:
        return f"ADV2({type(self.victim).__name__}, {self.interpreter!r}, {self.config})"

    # ------------------------------------------------------------------ helpers
    def _warm_start(self, x0, ct, x_init, counter):
        """PGD warm start (stage 1); returns ``(x, iteration reached per example)``."""
        cfg = self.config
        if x_init is not None:
            return x_init, torch.full((x0.shape[0],), cfg.warm_steps, dtype=torch.long, device=x0.device)
        return pgd_stage(self.victim, x0, ct, eps=cfg.eps, alpha=cfg.alpha, steps=cfg.warm_steps,
                         loss=cfg.warm_loss, early_stop=cfg.warm_early_stop,
                         stop_confidence=cfg.warm_stop_confidence, patience=1, check_every=1,
                         counter=counter, progress=self.progress, desc="ADV2 warm start")

    # ------------------------------------------------------------------ stage 2 (sign steps)
    def _sign_stage(self, x0, ct, mt, x, warm_at, counter):
        """Sign steps on ``l_prd + lambda_t * l_int`` from the warm start ``x``; returns
        ``(x_adv, iteration, selected)``."""
        cfg, victim, interp = self.config, self.victim, self.interpreter
        keeper = BestIterate(x)
        keeper.offer_last(torch.arange(x.shape[0], device=x.device), x, warm_at)
        best = cfg.select == "best"

        hold = cfg.min_confidence
        floor = max(hold or 0.0, cfg.select_confidence or 0.0) or None

        def objective(xa, t, idx):
            terms = interp.attack_terms(xa, ct[idx])
            loss = smoothed_cross_entropy(terms.logits, ct[idx], cfg.label_smoothing)
            if terms.encoder_logits is not None and cfg.encoder_ce_weight:
                loss = loss + cfg.encoder_ce_weight * F.cross_entropy(terms.encoder_logits, ct[idx], reduction="none")
            l_int = map_loss(terms.map, mt[idx], cfg.int_reduction)
            loss = loss + cfg.lambda_at(t) * l_int
            if hold is not None:
                # Below the required confidence: a prediction-only step (plain CE, whose
                # optimum is p(ct) = 1, unlike GRAD's smoothed CE).
                below = F.softmax(terms.logits.detach(), 1).gather(1, ct[idx].view(-1, 1)).squeeze(1) < hold
                loss = torch.where(below, F.cross_entropy(terms.logits, ct[idx], reduction="none"), loss)
            aux = {"logits": terms.logits.detach(), "map": terms.map.detach() if terms.exact else None}
            if self.history:
                self._log.append({"step": t, "loss": loss.mean().item(), "l_int": l_int.mean().item(),
                                  "lambda": cfg.lambda_at(t), "active": len(idx)})
            return loss, aux

        def monitor(xa, iteration, idx, aux):
            if not best:
                keeper.offer_last(idx, xa, iteration)
                return None
            if aux is None or aux.get("map") is None:
                with torch.no_grad():
                    logits = victim(xa)
                m = interp(xa, ct[idx]).detach()
                counter.add(xa.shape[0], interp.map_passes + 1 / 3)
            else:
                logits, m = aux["logits"], aux["map"]
            p = F.softmax(logits, 1).gather(1, ct[idx].view(-1, 1)).squeeze(1)
            on_target = logits.argmax(1) == ct[idx]
            ok = on_target if floor is None else (p > floor) if hold is None else on_target & (p >= floor)
            score = map_loss(m, mt[idx], "sum")
            keeper.offer(idx, xa, iteration, ok, score)
            if self._record is not None:
                self._record.offer(idx, p, on_target, score, m)
            # Fallback when no iterate qualifies: the checked iterate most confident in ct.
            keeper.offer_last(idx, xa, iteration, key=p)
            return None

        sign_descent(x0, x, objective, steps=cfg.steps, alpha=cfg.alpha, eps=cfg.eps, monitor=monitor,
                     check_every=cfg.check_every if best else max(1, cfg.steps + 1),
                     iteration_offset=warm_at, counter=counter, passes_per_step=interp.passes_per_step,
                     progress=self.progress, desc=f"ADV2[{interp.name}]")
        x_adv, iteration, found = keeper.result()
        return x_adv, iteration, found if best else None
