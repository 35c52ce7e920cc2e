"""AID's variants: does any reasonable reading of "adversarial interpretation distillation" move ADV2?

The AID chapter judges one reading of the paper's second countermeasure (paper-spec (g) 11;
:mod:`adv2lib.interpreters.rts_aid`: the RTS decoder fine-tuned for 600 steps on clean images and
ADV2-RTS examples re-crafted against the current network, with RTS's own objective), trained once
(seed 0). This study trains the variants :class:`~adv2lib.interpreters.rts_aid.AIDConfig` can
express, each with every seed of ``seeds``, and attacks each hardened network the way the AID
chapter does (ADV2 that knows the RTS it attacks, benign-map target, the embedded preset, with
PGD's maps under the same network as the reference), on the main experiment's first ``n_images``:

* ``"preset"``: the AID chapter's configuration (seed 0 is the committed ``rts_aid_<victim>.pt``,
  not retrained);
* ``"longer"``: twice the fine-tuning steps (1,200);
* ``"strong pool"``: the training examples crafted at the evaluation attack's strength (the
  embedded ADV2-RTS preset's warm start and stage 2, 100 + 150 steps, instead of 20 + 40);
* ``"selector"``: the class selector fine-tuned with the decoder (``train_selector``);
* ``"distill"``: the reading closest to "distillation": RTS's objective plus
  :data:`TIE_WEIGHT` times the L1 tie of each adversarial input's mask to the mask the starting
  network gives its clean source for the same class (``tie_weight``; our weight: it puts the tie,
  a mask distance of 0.1-0.3, on the scale of RTS's own loss, about 8 at the end of the AID
  chapter's training).

Rows: the AID experiment's attack rows (``rts`` = "AID", ``attack`` "adv2" or "pgd") with
``variant`` and ``train_seed`` (the training seed). The training's own figures (seconds, the pool's
attack success, the masking test of :func:`~adv2lib.interpreters.rts_train.evaluate_rts` on
:data:`EVAL_IMAGES` clean test images) are in the result's ``config["training"]``, by variant and
seed; the chapter sets the ratios beside the original RTS's (the AID experiment's table).
"""
from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd
import torch

from .. import experiments, paths
from ..checkpoints import save_weights
from ..errors import ConfigError
from ..experiments import ExperimentSpec, ExperimentResult, _benign, _pgd_inputs
from ..interpreters.rts import rts_weights_path
from ..interpreters.rts_aid import AIDConfig, train_aid
from ..store import ResultsStore, to_jsonable
from ..tasks import Context, attack_batch
from . import code

__all__ = ["VARIANTS", "SEEDS", "TIE_WEIGHT", "variant_config", "train_batch", "run_aid_variants"]

#: The variants: name -> the :class:`AIDConfig` fields that differ from the AID chapter's.
TIE_WEIGHT = 10.0
VARIANTS = {"preset": {}, "longer": {"steps": 1200}, "strong pool": {"attack_warm_steps": 100, "attack_steps": 150},
            "selector": {"train_selector": True}, "distill": {"tie_weight": TIE_WEIGHT}}
#: The training seeds of every variant.
SEEDS = (0, 1)
#: Clean test images of the masking test each trained network takes (the AID chapter's cards: 2,000).
EVAL_IMAGES = 500


def variant_config(variant: str, seed: int, smoke: bool = False) -> AIDConfig:
    """The :class:`AIDConfig` of ``variant`` with ``seed``; ``smoke``: a few steps of a tiny pool."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown AID variant {variant!r}; the variants are {', '.join(map(repr, VARIANTS))}")
    config = replace(AIDConfig(), seed=int(seed), **VARIANTS[variant])
    if smoke:
        config = replace(config, steps=2, batch_size=8, pool_size=4, refresh_every=1, refresh_size=2,
                         attack_warm_steps=1, attack_steps=2, checkpoint_every=2)
    return config


def train_batch(ctx: Context, config: AIDConfig, eval_images: int):
    """Train one hardened RTS on this worker's victim: rows (one, the training's figures) and the
    network's state dict (``w:<name>`` tensors with a leading dimension of 1)."""
    card = train_aid(ctx.victim.name, config, ctx.victim.profile, victim=ctx.victim, device=ctx.device, resume=False,
                     write=False, progress=False, eval_images=eval_images)
    ev = card["evaluation"]
    row = pd.DataFrame([{"training_seconds": card["training_seconds"], "eval_images": ev["n_images"],
                         "preserved_accuracy": ev["preserved_accuracy"], "destroyed_accuracy": ev["destroyed_accuracy"],
                         "pool_asr_first": card["pool_refreshes"][0]["asr"], "pool_size": config.pool_size,
                         "pool_asr_last": card["pool_refreshes"][-1]["asr"], "refresh_size": config.refresh_size,
                         "trained_parameters": card["trained_parameters"],
                         "final_tie": card["final_losses"].get("tie", float("nan"))}])
    return row, {f"w:{k}": v.detach().cpu()[None] for k, v in card["state_dict"].items()}


def _weights_file(drv, key, tensors: dict) -> str:
    """The trained network of run ``key`` as an RTS weights file (under the cache directory, named by
    the run), written from the stored state dict when missing."""
    path = paths.cache_dir() / "aid_variants" / f"{key.relpath().as_posix().replace('/', '_')}.pt"
    if not path.is_file():
        base = torch.load(rts_weights_path(drv.spec.victim, drv.spec.profile), map_location="cpu", weights_only=True)
        state = {k[2:]: v[0] for k, v in tensors.items() if k.startswith("w:")}
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, {"config": base["config"], "state_dict": state}, {"run": key.relpath().as_posix()})
    return str(path)


def run_aid_variants(profile="embedded", victim="resnet", interpreters=("rts",), n_images=50, seed=0, smoke=False,
                     device="auto", results_dir=None, batch_size=None, progress=True, engine=None,
                     variants=tuple(VARIANTS), seeds=SEEDS, eval_images=EVAL_IMAGES) -> ExperimentResult:
    """Train every variant with every seed and attack each hardened RTS (see the module's docstring).
    Rows: the attack rows (``variant``, ``train_seed``); ``config["training"]``: per variant and seed,
    the training's figures."""
    start = time.perf_counter()
    for variant in variants:
        variant_config(variant, 0)                  # an unknown name fails before anything runs
    if not seeds or any(isinstance(s, bool) or int(s) != s for s in seeds):
        raise ConfigError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    spec = ExperimentSpec.make("aid_variants", profile, victim, ("rts",), n_images, seed, smoke, device, results_dir,
                               batch_size, progress)
    drv = experiments.prepare(spec, engine)
    study = code("aid_variants")
    # 1. train (the AID chapter's network is seed 0 of the preset)
    trained, jobs = {}, []
    for variant in variants:
        for s in seeds:
            if variant == "preset" and int(s) == 0:
                continue
            cfg = variant_config(variant, s, spec.smoke)
            key = drv.key("aid_variants", "rts", "training", {"aid": to_jsonable(cfg), "eval_images": int(eval_images),
                                                              "base": drv.params_of("rts"), "study_code": study})
            trained[variant, int(s)] = key
            jobs.append(drv.job(key, 0, train_batch, config=cfg, eval_images=int(eval_images)))
    done = drv.stage(jobs, f"aid_variants/training/{spec.victim}")
    networks, training = {}, {}
    for (variant, s), key in trained.items():
        rows, tensors = ResultsStore.concat({0: done[(key.relpath(), 0)]})
        networks[variant, s] = ("rts", (("weights", _weights_file(drv, key, tensors)),))
        training[f"{variant} seed {s}"] = rows.drop(columns="batch").iloc[0].to_dict()
    if "preset" in variants and 0 in [int(s) for s in seeds]:
        networks["preset", 0] = ("rts", (("weights", "aid"),))
    # 2. attack each network as the AID chapter does
    pgd_rows, pgd_t = drv.pgd()
    maps = drv.maps(list(networks.values()))
    cfg = drv.adv2_config("rts")
    runs, jobs = [], []
    for (variant, s), interp in networks.items():
        key = drv.key("aid_variants", "rts", "adv2", {"attack": to_jsonable(cfg), "interpreter": drv.params_of(interp),
                                                      "study_code": study})
        runs.append((key, variant, s))
        jobs += [drv.job(key, b, attack_batch, interpreter=interp, batch=drv.batch((lo, hi)), config=cfg,
                         seed=spec.seed, keep=("x_adv", "adv_map"), **_benign(maps[interp], lo, hi),
                         **_pgd_inputs(drv, pgd_rows, pgd_t, (lo, hi), maps[interp]), progress=drv.inner_progress)
                 for b, lo, hi in spec.batches()]
    done = drv.stage(jobs, f"aid_variants/{spec.victim}")
    frames = [drv.collect(done, key)[0].drop(columns="batch").assign(rts="AID", variant=variant, train_seed=int(s))
              for key, variant, s in runs]
    return drv.finish(frames, {}, {"attack": cfg, "variants": {v: VARIANTS[v] for v in variants},
                                   "seeds": [int(s) for s in seeds], "training": training, "study_code": study}, start)
