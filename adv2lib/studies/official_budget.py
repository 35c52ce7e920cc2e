"""ADV2 at the paper's own iteration budget, on a sample of each victim.

The embedded presets (:func:`adv2lib.attacks.config.preset_for`) run ADV2's second stage for a
fraction of the official code's iterations, chosen to fit a 2-core CPU: GRAD 100 against 704
(301 + 201 + 101 + 101, ``rev2/gs/gs_acid_attack_v3.py``), CAM and RTS 150 against 1,200
(``expr_attacks_fixed/{cam,rts}_attack_acid.py``), MASK 40 outer iterations with 3 full-MASK
snapshots against 1,000 with a snapshot every 50, 20 in all (``expr_attacks_fixed/mask_attack_acid.py``);
paper-spec (b), C.1-C.4. The official counts are read from the ImageNet presets, which copy them
(:func:`official_counts`).

This study runs, on the first ``n_images`` images of each victim (MASK: its first
``mask_images``, whole batches), the embedded attack three ways, everything else as the preset
(L-inf budget, step, lambdas, warm start, required confidence, selection of the returned iterate):

* the preset itself, with the shared PGD baseline's rows beside it (``attack = "pgd"``);
* each of ``fractions`` of the official count (:func:`official_config`): GRAD's four
  lambda stages each that share of their official length; CAM's and RTS's linear lambda over the
  longer run; MASK's outer iterations and its switch to the late interpretation step (official:
  after 900) that share of theirs, with the official snapshot interval (50), so that a run of half
  the official length takes half its snapshots.

``stage2_steps`` is the second stage's length of each row's run and ``budget`` that length as a
multiple of the preset's (as in the budget experiment): the official count is ``budget`` 7.04
for GRAD, 8 for CAM and RTS, 25 for MASK. The rows are the main
experiment's columns (:mod:`adv2lib.rows`); the chapter reads the L1 ratio to PGD and the IoU
against ``stage2_steps`` (:mod:`adv2lib.report.official_budget`).
"""
from __future__ import annotations

import time
from dataclasses import replace

from .. import experiments
from ..attacks.config import MaskADV2Config, preset_for
from ..experiments import ExperimentSpec, ExperimentResult, _benign, _pgd_inputs
from ..names import INTERPRETERS
from ..store import ResultsStore, to_jsonable
from ..tasks import attack_batch
from . import code

__all__ = ["FRACTIONS", "MASK_IMAGES", "BATCH_SIZE", "official_counts", "official_config", "run_official_budget"]

#: The shares of the official iteration counts run besides the preset.
FRACTIONS = (0.5, 1.0)
#: Images of the MASK attack (each costs about a minute per official run on one CPU thread).
MASK_IMAGES = 10
#: Images per stored batch (so that two workers share an interpreter's run).
BATCH_SIZE = 10


def official_counts(interpreter: str):
    """The official code's ADV2 configuration for ``interpreter`` (the ImageNet preset, whose
    iteration counts are the official code's; its budget and steps are ImageNet's and unused)."""
    return preset_for("imagenet", interpreter)


def official_config(cfg, interpreter: str, fraction: float = 1.0):
    """``cfg`` (an embedded preset) with its second stage ``fraction`` of the official length
    (see the module's docstring); every other setting is ``cfg``'s.

    >>> cfg = official_config(preset_for("embedded", "grad"), "grad")
    >>> [n for _, n in cfg.lambda_stages], cfg.steps
    ([301, 201, 101, 101], 704)
    >>> m = official_config(preset_for("embedded", "mask"), "mask", 0.5)
    >>> m.steps, m.recompute_every, m.late_after
    (500, 50, 450)
    """
    official = official_counts(interpreter)

    def share(n):
        return max(1, int(round(n * fraction)))

    if isinstance(cfg, MaskADV2Config):
        steps = share(official.steps)
        return replace(cfg, steps=steps, recompute_every=min(official.recompute_every, steps),
                       late_after=share(official.late_after))
    if cfg.lambda_stages:
        return replace(cfg, lambda_stages=tuple((lam, share(n)) for (lam, _), (_, n)
                                                in zip(cfg.lambda_stages, official.lambda_stages)))
    return replace(cfg, steps=share(official.steps))


def _batches(spec: ExperimentSpec, interpreter: str, mask_images: int):
    batches = spec.batches()
    if interpreter == "mask":
        batches = [(b, lo, hi) for b, lo, hi in batches if lo < mask_images]
    return batches


def run_official_budget(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=20, seed=0,
                        smoke=False, device="auto", results_dir=None, batch_size=BATCH_SIZE, progress=True,
                        engine=None, fractions=FRACTIONS, mask_images=MASK_IMAGES) -> ExperimentResult:
    """ADV2 at the preset's and at ``fractions`` of the official iteration counts (see the
    module's docstring). Rows: one per image, interpreter and budget, with ``budget`` (a multiple
    of the preset's second stage) and ``stage2_steps``; PGD rows under the preset's run."""
    start = time.perf_counter()
    spec = ExperimentSpec.make("official_budget", profile, victim, interpreters, n_images, seed, smoke, device,
                               results_dir, batch_size, progress)
    drv = experiments.prepare(spec, engine)
    pgd_rows, pgd_t = drv.pgd()
    maps = drv.maps(spec.interpreters)
    study = code("official_budget")
    runs, jobs = [], []
    config = {"pgd": drv.pgd_config, "fractions": [float(f) for f in fractions], "mask_images": int(mask_images),
              "study_code": study}
    # the longest runs first, so that the workers finish together
    for name in sorted(spec.interpreters, key=lambda n: ("mask", "grad", "rts", "cam").index(n)
                       if n in ("mask", "grad", "rts", "cam") else 4):
        preset = drv.adv2_config(name)
        official = official_counts(name).steps
        budgets = [official_config(preset, name, float(f)) for f in sorted(fractions, reverse=True)] + [preset]
        config[name] = {}
        for cfg in budgets:
            with_pgd = cfg is preset
            key = drv.key("official_budget", name, "adv2", {"attack": to_jsonable(cfg),
                                                            "interpreter": drv.interp_params[name],
                                                            "study_code": study})
            batches = _batches(spec, name, mask_images)
            runs.append((key, batches))
            for b, lo, hi in batches:
                pgd = _pgd_inputs(drv, pgd_rows, pgd_t, (lo, hi), maps[name]) if with_pgd else {}
                jobs.append(drv.job(key, b, attack_batch, interpreter=name, batch=drv.batch((lo, hi)), config=cfg,
                                    seed=spec.seed, keep=("x_adv", "adv_map"), **_benign(maps[name], lo, hi),
                                    **pgd, extra={"budget": cfg.steps / preset.steps, "stage2_steps": int(cfg.steps)},
                                    progress=drv.inner_progress))
            config[name][f"{cfg.steps / official:.3g} of official"] = cfg
    done = drv.stage(jobs, f"official_budget/{spec.victim}")
    frames = [ResultsStore.concat({b: done[(key.relpath(), b)] for b, _, _ in batches})[0].drop(columns="batch")
              for key, batches in runs]
    return drv.finish(frames, {}, config, start)
