"""Cross-model transfer: ADV2 and PGD inputs crafted on one victim, fed to the other.

The transferability chapter moves ADV2 inputs across interpreters on one victim (paper Table 9).
The official code began the other axis, across models (``scripts/transfer_*_resnet50_densenet50.py``,
paper-spec (g) 9, a stub without numbers). Here the main experiment's inputs crafted on the
*source* victim (its PGD inputs and its ADV2 inputs against each interpreter, benign-map target)
are fed to the other victim, the one this run names (``victim``), and measured the way the
transferability chapter measures them:

* **prediction transfer**: the fed victim's prediction on the input, ``success`` = it predicts the
  target class ``ct`` the input was crafted for (the target hit rate), and its ``confidence`` p(ct);
* **map transfer**: the fed victim's interpreter (the same method, its own weights) explains the
  input for ``ct``; ``l1_benign`` is the L1 distance of that map to the fed victim's own benign
  map of the clean image (true class), as in the transfer chapter; ``source_success``: whether the
  input fooled the source victim.

The images are the source victim's main selection (rows: ``position`` and ``index`` of that
selection; ``source_victim``). Every run is keyed by the source's main and PGD runs (their store
paths hash their parameters, code, data and weights), the fed victim's weights and interpreter,
and this study's code (:func:`adv2lib.studies.code`).
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from .. import experiments
from ..experiments import ExperimentSpec, ExperimentResult
from ..names import INTERPRETERS, VICTIMS
from ..store import to_jsonable
from ..targets import benign_map
from ..tasks import Batch, Context, _frame, map_columns
from . import code

__all__ = ["cross_model_batch", "run_cross_model"]


def cross_model_batch(ctx: Context, interpreter: str, batch: Batch, sources: dict):
    """On this worker's victim (the one fed): per source input (``sources``: ``"pgd"`` or
    ``"adv2"`` -> ``(x_adv, success on the source victim)``), the prediction, ``success``
    (prediction == ``ct``), p(``ct``), and ``interpreter``'s map for ``ct`` against its benign map
    of the clean images (true classes). Tensors: the benign maps and each source's maps."""
    interp = ctx.interpreter(interpreter)
    x, y, ct = ctx.to_device(batch.x, batch.y, batch.ct)
    benign = benign_map(interp, x, y).detach().cpu()
    frames, tensors = [], {"benign_map": benign}
    for name, (x_adv, source_success) in sources.items():
        (xa,) = ctx.to_device(x_adv)
        with torch.no_grad():
            prob = torch.softmax(ctx.victim(xa), dim=1)
        prediction = prob.argmax(1)
        m = interp(xa, ct).detach().cpu()
        tensors[f"map_{name}"] = m
        cols = map_columns(m, benign)
        cols.pop("l1_target")
        frames.append(_frame(batch, {"interpreter": interp.name, "attack": name,
                                     "prediction": prediction.cpu().numpy(),
                                     "success": (prediction == ct).cpu().numpy(),
                                     "confidence": prob.gather(1, ct[:, None])[:, 0].cpu().numpy(),
                                     "source_success": source_success.numpy(), **cols}))
    return pd.concat(frames, ignore_index=True), tensors


def _by_position(rows: pd.DataFrame, n: int) -> torch.Tensor:
    """The ``success`` of ``rows`` as a tensor indexed by image position (``n`` long; positions
    without a row: False), so that a batch's slice ``[lo:hi]`` is that batch's whatever rows
    were loaded."""
    out = torch.zeros(n, dtype=torch.bool)
    out[torch.as_tensor(rows["position"].to_numpy(dtype="int64"))] = torch.as_tensor(
        rows["success"].to_numpy(dtype=bool))
    return out


def run_cross_model(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=100, seed=0,
                    smoke=False, device="auto", results_dir=None, batch_size=None, progress=True,
                    engine=None) -> ExperimentResult:
    """The main experiment's PGD and ADV2 inputs of the other victim(s), fed to ``victim`` (see
    the module's docstring); the source's main experiment is computed first when the store lacks
    it. Rows: one per image, interpreter and attack, with ``source_victim``."""
    start = time.perf_counter()
    spec = ExperimentSpec.make("cross_model", profile, victim, interpreters, n_images, seed, smoke, device,
                               results_dir, batch_size, progress)
    drv = experiments.prepare(spec, engine)
    study = code("cross_model")
    frames, config = [], {"study_code": study}
    for source in [v for v in VICTIMS if v != victim]:
        main = ExperimentSpec(**{**spec.__dict__, "experiment": "main", "victim": source})
        experiments.run(main, drv.engine)
        src = experiments.prepare(main, drv.engine)
        pgd_rows, pgd_t = src.pgd()
        pgd_ok = _by_position(pgd_rows, spec.n_images)
        batches = [b for b, _, _ in spec.batches()]
        keys, jobs = {}, []
        for name in spec.interpreters:
            main_key = experiments._main_key(src, name)
            rows, tensors = src.store.load_run(main_key, batches)
            ok = _by_position(rows[rows["attack"] == "adv2"], spec.n_images)
            keys[name] = key = drv.key("cross_model", name, "transfer", {
                # the source's main run: its parameters hash its data, weights, code and PGD's settings
                "source_victim": source, "source_run": main_key.relpath().as_posix(),
                "interpreter": drv.params_of(name), "study_code": study})
            jobs += [drv.job(key, b, cross_model_batch, interpreter=name, batch=src.batch((lo, hi)),
                             sources={"pgd": (pgd_t["x_adv"][lo:hi], pgd_ok[lo:hi]),
                                      "adv2": (tensors["x_adv"][lo:hi], ok[lo:hi])})
                     for b, lo, hi in spec.batches()]
        done = drv.stage(jobs, f"cross_model/{source}->{victim}")
        for name, key in keys.items():
            rows, _ = drv.collect(done, key)
            frames.append(rows.drop(columns="batch").assign(source_victim=source))
        config[source] = {"pgd": to_jsonable(src.pgd_config),
                          "adv2": {name: to_jsonable(src.adv2_config(name)) for name in spec.interpreters}}
    return drv.finish(frames, {}, config, start)
