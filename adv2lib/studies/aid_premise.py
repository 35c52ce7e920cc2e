"""The premise of adversarial interpretation distillation, measured.

AID (:mod:`adv2lib.interpreters.rts_aid`, our reading of the paper's second countermeasure,
paper-spec (g) 11) fine-tunes RTS's masking network with its own objective
(:func:`~adv2lib.interpreters.rts_train.saliency_loss`: preserve and destroy the victim's
prediction, area, smoothness) on ADV2 inputs. Training on them can only oppose the attack if
RTS's objective is worse on ADV2 inputs than on clean ones, i.e. if the benign-looking mask ADV2
asks for is not the mask RTS's objective wants for the class the victim now predicts. The AID
chapter judged the hardened network without measuring this. This study measures it.

Per image of the AID experiment (the main experiment's images) and per masking network
(``rts``: "original" or "AID"), RTS's objective with AID's weights (:class:`AIDConfig().rts
<adv2lib.interpreters.rts_aid.AIDConfig>`) for the mask the network gives:

* ``attack = "clean"``: the clean image, its true class;
* ``attack = "pgd"``: the shared PGD input, its target class;
* ``attack = "adv2"``: ADV2 against RTS, its target class; ``crafted_against`` says against which
  network (the main experiment's run against the original; the AID experiment's run, preset
  budget, against the hardened one).

Columns ``rts_loss`` (the total) and its terms ``destroyer``, ``preserver``, ``area``,
``smoothness``. The objective's noise (its random replacement of the deleted region) is drawn
from a generator seeded by the image, so that every input of one image and both networks meet
the same draw and the comparison is paired.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from .. import experiments
from ..experiments import ExperimentSpec, ExperimentResult, _main_key
from ..interpreters.rts_aid import AIDConfig
from ..interpreters.rts_train import saliency_loss
from ..store import to_jsonable
from ..tasks import Batch, Context, _frame
from . import code

__all__ = ["TERMS", "premise_batch", "run_aid_premise"]

#: The objective's total and terms, as columns.
TERMS = {"loss": "rts_loss", "destroyer": "destroyer", "preserver": "preserver", "area": "area",
         "smoothness": "smoothness"}
_HARDENED = ("rts", (("weights", "aid"),))


def premise_batch(ctx: Context, batch: Batch, inputs: dict, seed: int):
    """RTS's objective, per image, for each network and input. ``inputs``: ``(attack,
    crafted_against) -> (x, class explained)``, each ``(N, ...)`` aligned with ``batch``."""
    frames = []
    objective = AIDConfig().rts
    for version, interp in (("original", "rts"), ("AID", _HARDENED)):
        rts = ctx.interpreter(interp)
        for (attack, against), (x_in, cls) in inputs.items():
            x_in, cls = ctx.to_device(x_in, cls)
            per = {k: [] for k in TERMS}
            for i in range(len(cls)):
                generator = torch.Generator(device=x_in.device).manual_seed(int(seed) * 1_000_003
                                                                            + int(batch.indices[i]))
                x1, c1 = x_in[i:i + 1], cls[i:i + 1]
                with torch.no_grad():
                    mask = rts.net(rts.encoder.pyramid(x1), c1)
                    terms = saliency_loss(ctx.victim, x1, c1, mask, torch.ones_like(c1, dtype=torch.bool), objective,
                                          generator)
                for k in TERMS:
                    per[k].append(float(terms[k]))
            frames.append(_frame(batch, {"interpreter": "rts", "attack": attack, "rts": version,
                                         "crafted_against": against, "explained_class": cls.cpu().numpy(),
                                         **{col: np.asarray(per[k]) for k, col in TERMS.items()}}))
    return pd.concat(frames, ignore_index=True), {}


def run_aid_premise(profile="embedded", victim="resnet", interpreters=("rts",), n_images=100, seed=0, smoke=False,
                    device="auto", results_dir=None, batch_size=None, progress=True, engine=None) -> ExperimentResult:
    """RTS's objective on clean, PGD and ADV2 inputs under the original and the hardened network
    (see the module's docstring); the AID experiment is run first (its store serves it)."""
    start = time.perf_counter()
    spec = ExperimentSpec.make("aid_premise", profile, victim, ("rts",), n_images, seed, smoke, device, results_dir,
                               batch_size, progress)
    source = ExperimentSpec(**{**spec.__dict__, "experiment": "aid"})
    experiments.run(source, engine, factors=(1,))
    drv = experiments.prepare(source, engine)
    pgd_rows, pgd_t = drv.pgd()
    batches = [b for b, _, _ in spec.batches()]
    _, main_t = drv.store.load_run(_main_key(drv, "rts"), batches)
    aid_key = drv.key("aid", "rts", "adv2", {"attack": to_jsonable(drv.adv2_config("rts")),
                                             "interpreter": drv.params_of(_HARDENED), "factor": 1.0})
    _, aid_t = drv.store.load_run(aid_key, batches)
    study = code("aid_premise")
    key = drv.key("aid_premise", "rts", "premise", {"sources": [_main_key(drv, "rts").relpath().as_posix(),
                                                                aid_key.relpath().as_posix()],
                                                    "interpreters": {"original": drv.params_of("rts"),
                                                                     "AID": drv.params_of(_HARDENED)},
                                                    "objective": to_jsonable(AIDConfig().rts), "study_code": study})
    jobs = []
    for b, lo, hi in spec.batches():
        batch = drv.batch((lo, hi))
        inputs = {("clean", None): (batch.x, batch.y), ("pgd", None): (pgd_t["x_adv"][lo:hi], batch.ct),
                  ("adv2", "original"): (main_t["x_adv"][lo:hi], batch.ct),
                  ("adv2", "AID"): (aid_t["x_adv"][lo:hi], batch.ct)}
        jobs.append(drv.job(key, b, premise_batch, batch=batch, inputs=inputs, seed=spec.seed))
    done = drv.stage(jobs, f"aid_premise/{spec.victim}")
    rows = drv.collect(done, key)[0].drop(columns="batch")
    success = {("pgd", None): pgd_rows.set_index("position")["success"]}
    main_rows, _ = drv.store.load_run(_main_key(drv, "rts"), batches)
    aid_rows, _ = drv.store.load_run(aid_key, batches)
    for against, r in (("original", main_rows), ("AID", aid_rows)):
        success[("adv2", against)] = r[r["attack"] == "adv2"].set_index("position")["success"]
    against = [None if pd.isna(c) else c for c in rows["crafted_against"]]
    rows["success"] = [bool(success[(a, c)].loc[p]) if (a, c) in success else True      # clean: always
                       for a, c, p in zip(rows["attack"], against, rows["position"])]
    result = drv.finish([rows], {}, {"objective": to_jsonable(AIDConfig().rts), "study_code": study}, start)
    result.experiment = spec.experiment
    result.examples["experiment"] = spec.experiment
    return result
