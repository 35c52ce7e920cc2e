"""ADV2: adversarial inputs whose interpretation stays on target (Zhang et al., USENIX Security 2020).

The attack solves (paper-spec (b))::

    min_x  l_prd(f(x), ct) + lambda * l_int(g(x; f), mt)   s.t.  ||x - x0||_inf <= eps,  x in [0, 1]

warm-started by targeted PGD. One implementation serves every interpreter; what differs is
how the interpretation term is computed and which iterate is returned (paper-spec C.1-C.4):

* **GRAD** -- ``l_int`` on :meth:`GRAD.attack_map` (the map under the surrogate-ReLU backward,
  so its gradient w.r.t. ``x`` is not zero), staged lambda, label-smoothed CE; every
  ``check_every`` steps the *exact* map on the *real* model ranks the iterates with
  ``p(ct) > 0.8`` (``rev2/gs/gs_acid_attack_v3.py``).
* **CAM** -- MSE between the normalised CAM (``CAM.map_and_logits``, one forward pass for map
  and logits) and ``mt``; lambda linear from c to 2c (``expr_attacks_fixed/cam_attack_acid.py``).
* **RTS** -- as CAM, plus ``0.1 * CE(encoder logits, ct)`` (``RTS.map_and_encoder_logits``;
  ``expr_attacks_fixed/rts_attack_acid.py``).
* **MASK** -- the bilevel attack: the inner MASK optimisation is warm-started and unrolled
  (``MASK.init_state`` / ``inner_steps`` / ``state_map``), prediction and interpretation
  steps alternate, the interpretation step is bisected so the target logit keeps its margin,
  and snapshots are judged by the full MASK on 8-bit-quantised images
  (``rev1/mask_v2/attack_mask_multistep_benign.py``).

Any other interpreter (e.g. a toy one in tests) is attacked like CAM, through ``interp(x, c)``.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import ADV2Config, MaskADV2Config, resolve_config
from .loop import (BestIterate, PassCounter, attack_mode, cw_margin, project, quantize_8bit,
                   sign_descent, smoothed_cross_entropy)
from .pgd import evaluate, pgd_stage, prepare_inputs
from .result import AttackResult

__all__ = ["ADV2", "map_loss"]

KINDS = ("grad", "cam", "rts", "mask")


def map_loss(a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Per-example squared difference between maps, summed or averaged over pixels."""
    d = (a - b).pow(2).flatten(1)
    return d.sum(1) if reduction == "sum" else d.mean(1)


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
                 history: bool = False, **overrides):
        if interpreter is None:
            raise ValueError("ADV2 needs an interpreter; for the prediction-only attack use PGD")
        self.victim = victim
        self.interpreter = interpreter
        name = getattr(interpreter, "name", "")
        self.kind = name if name in KINDS else "generic"
        profile = getattr(victim, "profile", "embedded")
        expected = MaskADV2Config if self.kind == "mask" else ADV2Config
        self.config = resolve_config(profile, name, config, expected, **overrides)
        self.seed = seed
        self.progress = progress
        self.history = history

    # ------------------------------------------------------------------ public entry point
    def attack(self, x, target_class, target_map=None, true_class=None, x_init=None) -> AttackResult:
        start, cpu_start = time.perf_counter(), time.process_time()
        victim, interp, cfg = self.victim, self.interpreter, self.config
        counter = PassCounter()
        self._log = []
        nets = [getattr(interp, "net", None), getattr(interp, "encoder", None)]
        with attack_mode(victim, *nets):
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
            if self.kind == "mask":
                x_adv, iteration, selected, adv_map = self._attack_mask(x0, ct, mt, x_init, counter)
            else:
                x_adv, iteration, selected = self._attack_sign(x0, ct, mt, x_init, counter)
                adv_map = interp(x_adv, ct).detach()
            pred, conf = evaluate(victim, x_adv, ct)
        success = pred == ct
        if self.kind != "mask" and cfg.select == "last":
            selected = success.clone()
        return AttackResult(
            x_adv=x_adv.detach(), success=success, target_class=ct, prediction=pred, confidence=conf,
            iteration=iteration, selected=selected, true_class=true, adv_map=adv_map, target_map=mt,
            attack="adv2", interpreter=getattr(interp, "name", None), config=cfg,
            seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start,
            passes={"total": counter.total / max(1, x0.shape[0])}, history=self._log,
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

    def _map_terms(self, xa, ct):
        """``(map for l_int, logits, extra l_prd term or None, map is exact)`` at ``xa``."""
        interp, victim, cfg = self.interpreter, self.victim, self.config
        if self.kind == "grad":
            return interp.attack_map(xa, ct), victim(xa), None, False
        if self.kind == "rts":
            m, enc_logits = interp.map_and_encoder_logits(xa, ct)
            logits = enc_logits if getattr(interp, "encoder", None) is victim else victim(xa)
            extra = cfg.encoder_ce_weight * F.cross_entropy(enc_logits, ct, reduction="none") \
                if cfg.encoder_ce_weight else None
            return m, logits, extra, True
        if hasattr(interp, "map_and_logits"):
            m, logits = interp.map_and_logits(xa, ct)
            return m, logits, None, True
        return interp(xa, ct), victim(xa), None, True

    def _passes_per_step(self) -> float:
        """Forward+backward passes of the victim per stage-2 step (bare-cost accounting)."""
        if self.kind == "grad":
            # map: forward + backward with graph; loss backward through it: ~2 more passes;
            # plus the logits forward/backward.
            return 3.0
        if self.kind == "rts":
            return 1.0 if getattr(self.interpreter, "encoder", None) is self.victim else 2.0
        return 1.0

    # ------------------------------------------------------------------ GRAD / CAM / RTS
    def _attack_sign(self, x0, ct, mt, x_init, counter):
        cfg, victim, interp = self.config, self.victim, self.interpreter
        x, warm_at = self._warm_start(x0, ct, x_init, counter)
        keeper = BestIterate(x)
        keeper.offer_last(torch.arange(x.shape[0], device=x.device), x, warm_at)
        best = cfg.select == "best"

        def objective(xa, t, idx):
            m, logits, extra, exact = self._map_terms(xa, ct[idx])
            loss = smoothed_cross_entropy(logits, ct[idx], cfg.label_smoothing)
            if extra is not None:
                loss = loss + extra
            l_int = map_loss(m, mt[idx], cfg.int_reduction)
            loss = loss + cfg.lambda_at(t) * l_int
            aux = {"logits": logits.detach(), "map": m.detach() if exact else None}
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
                counter.add(xa.shape[0], 1.0 + 1 / 3)
            else:
                logits, m = aux["logits"], aux["map"]
            p = F.softmax(logits, 1).gather(1, ct[idx].view(-1, 1)).squeeze(1)
            ok = p > cfg.select_confidence if cfg.select_confidence is not None else logits.argmax(1) == ct[idx]
            keeper.offer(idx, xa, iteration, ok, map_loss(m, mt[idx], "sum"))
            # Fallback when no iterate qualifies: the checked iterate most confident in ct.
            keeper.offer_last(idx, xa, iteration, key=p)
            return None

        sign_descent(x0, x, objective, steps=cfg.steps, alpha=cfg.alpha, eps=cfg.eps, monitor=monitor,
                     check_every=cfg.check_every if best else max(1, cfg.steps + 1),
                     iteration_offset=warm_at, counter=counter, passes_per_step=self._passes_per_step(),
                     progress=self.progress, desc=f"ADV2[{self.kind}]")
        return keeper.result()

    # ------------------------------------------------------------------ MASK (bilevel)
    def _attack_mask(self, x0, ct, mt, x_init, counter):
        cfg, victim, mask = self.config, self.victim, self.interpreter
        n = x0.shape[0]
        idx_all = torch.arange(n, device=x0.device)
        x, warm_at = self._warm_start(x0, ct, x_init, counter)
        keeper = BestIterate(quantize_8bit(x, x0, cfg.eps))
        maps = torch.zeros_like(mt)
        mask_iters = mask.config.iterations

        def snapshot(x, iteration):
            """Quantise, rerun the full MASK, log the snapshot; returns the recomputed map."""
            xq = quantize_8bit(x, x0, cfg.eps)
            with torch.no_grad():
                m_full = mask(xq, ct).detach()
                logits = victim(xq)
            pred = logits.argmax(1)
            p_ct = F.softmax(logits, 1).gather(1, ct.view(-1, 1)).squeeze(1)
            counter.add(n, mask_iters + 1 / 3)
            ok = pred == ct
            score = map_loss(m_full, mt, "sum")
            better = ok & (score < keeper.score)
            maps[better] = m_full[better]
            keeper.offer(idx_all, xq, iteration, ok, score)
            fallback = p_ct >= keeper.last_key
            last_maps[fallback] = m_full[fallback]
            keeper.offer_last(idx_all, xq, iteration, key=p_ct)
            return m_full

        def l2_unit(g):
            norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)
            return g / norm.view(-1, *([1] * (g.dim() - 1)))

        last_maps = torch.zeros_like(mt)
        state = None
        bar = tqdm(range(cfg.steps), desc="ADV2[mask]", disable=not self.progress, leave=False)
        for it in bar:
            iteration = warm_at + it
            if it % cfg.recompute_every == 0:
                # (a) snapshot on the quantised image, then reset the inner problem to it.
                m_full = snapshot(x, iteration)
                fresh = mask.init_state(x, ct, init_mask=m_full)
                if state is None:
                    state = fresh
                else:
                    d1, d2 = cfg.moment_decay
                    state = type(state)(fresh.mask, state.exp_avg * d1, state.exp_avg_sq * d2, cfg.reset_step)
            # (b) prediction step: L2-normalised gradient of the CW margin.
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(cw_margin(victim(xr), ct).sum(), xr)
            counter.add(n, 1.0)
            x = project(x - cfg.pred_step * l2_unit(g), x0, cfg.eps)
            # (c) warm inner steps, constant w.r.t. x.
            state = mask.inner_steps(x, ct, state, cfg.inner_steps, differentiable=False)
            counter.add(n, cfg.inner_steps)
            # (d) unrolled inner steps: l_int = mean_k ||m_k - mt||^2 (sum over the map).
            xr = x.detach().requires_grad_(True)
            s, l_int = state, 0.0
            for _ in range(cfg.unrolled_steps):
                s = mask.inner_steps(xr, ct, s, 1, differentiable=True)
                l_int = l_int + map_loss(mask.state_map(s), mt, "sum")
            l_int = l_int / max(1, cfg.unrolled_steps)
            (g,) = torch.autograd.grad(l_int.sum(), xr)
            counter.add(n, 3.0 * cfg.unrolled_steps)
            state = s.detach()
            # (e) interpretation step, bisected to keep the target logit's margin.
            direction = l2_unit(g)
            s_max = cfg.interp_step_max if it < cfg.late_after else cfg.interp_step_late
            lo = torch.zeros(n, device=x.device)
            hi = torch.full((n,), float(s_max), device=x.device)
            view = (-1, *([1] * (x.dim() - 1)))
            with torch.no_grad():
                for _ in range(cfg.bisection_steps):
                    mid = (lo + hi) / 2
                    trial = project(x - mid.view(view) * direction, x0, cfg.eps)
                    ok = cw_margin(victim(trial), ct) < -cfg.margin
                    lo = torch.where(ok, mid, lo)
                    hi = torch.where(ok, hi, mid)
            counter.add(n, cfg.bisection_steps / 3)
            x = project(x - lo.view(view) * direction, x0, cfg.eps)
            if self.history:
                with torch.no_grad():
                    margin = cw_margin(victim(x), ct)
                self._log.append({"step": it, "l_int": l_int.mean().item(), "interp_step": lo.mean().item(),
                                  "zero_steps": (lo == 0).float().mean().item(), "margin": margin.mean().item()})
            if self.progress:
                bar.set_postfix(l_int=f"{l_int.mean().item():.3g}")
        snapshot(x, warm_at + cfg.steps)
        x_adv, iteration, found = keeper.result()
        adv_map = torch.where(found.view(-1, 1, 1, 1), maps, last_maps)
        return x_adv, iteration, found, adv_map
