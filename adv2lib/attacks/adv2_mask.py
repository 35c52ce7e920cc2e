"""ADV2's bilevel routine, for interpreters whose map ends an inner optimisation (MASK).

MASK's map is the result of an Adam optimisation of a mask (Fong & Vedaldi 2017), so the
attack cannot differentiate one forward pass: it keeps the inner problem's state across its
own iterations, warm-started and partly unrolled (paper-spec C.4, official
``rev1/mask_v2/attack_mask_multistep_benign.py``). Each outer iteration:

(a) every ``recompute_every`` iterations, quantise the image to 8 bits, rerun the full
    interpreter, keep the snapshot if it is the best so far, and reset the inner state to
    its map (Adam moments decayed);
(b) a prediction step along the L2-normalised gradient of the CW margin;
(c) ``inner_steps`` inner steps, constant w.r.t. ``x``;
(d) ``unrolled_steps`` differentiable inner steps: ``l_int`` is the mean over them of the
    summed squared difference between the state's map and the target map;
(e) an interpretation step along the L2-normalised ``l_int`` gradient, its length bisected
    so that the target logit keeps its margin.

ADV2 (:class:`~adv2lib.attacks.ADV2`) runs this routine for any interpreter with
``bilevel = True``; it needs the interpreter's ``init_state(x, target, init_mask)``,
``inner_steps(x, target, state, k, differentiable)``, ``state_map(state)`` and
``map_passes`` (the cost of one full map), and a
:class:`~adv2lib.attacks.MaskADV2Config`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .loop import BestIterate, PassCounter, cw_margin, map_loss, project, quantize_8bit

__all__ = ["bilevel_stage"]


def _l2_unit(g: torch.Tensor) -> torch.Tensor:
    norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    return g / norm.view(-1, *([1] * (g.dim() - 1)))


def bilevel_stage(victim, interp, cfg, x0, ct, mt, x, warm_at, counter: PassCounter, *,
                  progress: bool = False, log: list | None = None, record=None, probes: dict | None = None):
    """Stage 2 of ADV2 against a bilevel interpreter, from the warm-started ``x``.

    ``x0``: the benign images; ``ct``: target classes; ``mt``: target maps; ``warm_at``: the
    iteration each example's warm start ended at; ``cfg``: a ``MaskADV2Config``. ``log``
    (a list) receives one record per outer iteration when given. ``record`` (a
    :class:`~adv2lib.attacks.loop.LevelRecord`) is offered every snapshot. ``probes`` (a dict)
    receives ``inner_map``: the map of the attack's own warm-started inner mask on the final
    image, just before the final snapshot recomputes MASK from scratch on it (``final_map``).

    Returns ``(x_adv, iteration, selected, adv_map)``: the best snapshot (quantised image
    classified as ``ct`` whose recomputed map is closest, L2, to ``mt``), else the snapshot
    most confident in ``ct``; the iteration it was taken at; whether a snapshot qualified;
    and its recomputed map.
    """
    n = x0.shape[0]
    idx_all = torch.arange(n, device=x0.device)
    keeper = BestIterate(quantize_8bit(x, x0, cfg.eps))
    maps = torch.zeros_like(mt)
    last_maps = torch.zeros_like(mt)
    map_passes = interp.map_passes

    def snapshot(x, iteration):
        """Quantise, rerun the full interpreter, log the snapshot; returns the recomputed map."""
        xq = quantize_8bit(x, x0, cfg.eps)
        with torch.no_grad():
            m_full = interp(xq, ct).detach()
            logits = victim(xq)
        pred = logits.argmax(1)
        p_ct = F.softmax(logits, 1).gather(1, ct.view(-1, 1)).squeeze(1)
        counter.add(n, map_passes + 1 / 3)
        on_target = pred == ct
        ok = on_target if cfg.select_confidence is None else on_target & (p_ct >= cfg.select_confidence)
        score = map_loss(m_full, mt, "sum")
        if record is not None:
            record.offer(idx_all, p_ct, on_target, score, m_full)
        better = ok & (score < keeper.score)
        maps[better] = m_full[better]
        keeper.offer(idx_all, xq, iteration, ok, score)
        fallback = p_ct >= keeper.last_key
        last_maps[fallback] = m_full[fallback]
        keeper.offer_last(idx_all, xq, iteration, key=p_ct)
        return m_full

    state = None
    bar = tqdm(range(cfg.steps), desc=f"ADV2[{interp.name}]", disable=not progress, leave=False)
    for it in bar:
        iteration = warm_at + it
        if it % cfg.recompute_every == 0:
            # (a) snapshot on the quantised image, then reset the inner problem to it.
            m_full = snapshot(x, iteration)
            fresh = interp.init_state(x, ct, init_mask=m_full)
            if state is None:
                state = fresh
            else:
                d1, d2 = cfg.moment_decay
                state = type(state)(fresh.mask, state.exp_avg * d1, state.exp_avg_sq * d2, cfg.reset_step)
        # (b) prediction step: L2-normalised gradient of the CW margin.
        xr = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(cw_margin(victim(xr), ct).sum(), xr)
        counter.add(n, 1.0)
        x = project(x - cfg.pred_step * _l2_unit(g), x0, cfg.eps)
        # (c) warm inner steps, constant w.r.t. x.
        state = interp.inner_steps(x, ct, state, cfg.inner_steps, differentiable=False)
        counter.add(n, cfg.inner_steps)
        # (d) unrolled inner steps: l_int = mean_k ||m_k - mt||^2 (sum over the map).
        xr = x.detach().requires_grad_(True)
        s, l_int = state, 0.0
        for _ in range(cfg.unrolled_steps):
            s = interp.inner_steps(xr, ct, s, 1, differentiable=True)
            l_int = l_int + map_loss(interp.state_map(s), mt, "sum")
        l_int = l_int / max(1, cfg.unrolled_steps)
        (g,) = torch.autograd.grad(l_int.sum(), xr)
        counter.add(n, 3.0 * cfg.unrolled_steps)
        state = s.detach()
        # (e) interpretation step, bisected to keep the target logit's margin.
        direction = _l2_unit(g)
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
        if log is not None:
            with torch.no_grad():
                margin = cw_margin(victim(x), ct)
            log.append({"step": it, "l_int": l_int.mean().item(), "interp_step": lo.mean().item(),
                        "zero_steps": (lo == 0).float().mean().item(), "margin": margin.mean().item()})
        if progress:
            bar.set_postfix(l_int=f"{l_int.mean().item():.3g}")
    if probes is not None and state is not None:
        probes["inner_map"] = interp.state_map(state).detach()
    final = snapshot(x, warm_at + cfg.steps)
    if probes is not None:
        probes["final_map"] = final
    x_adv, iteration, found = keeper.result()
    adv_map = torch.where(found.view(-1, 1, 1, 1), maps, last_maps)
    return x_adv, iteration, found, adv_map
