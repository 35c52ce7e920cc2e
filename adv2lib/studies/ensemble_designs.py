"""The ensemble detector's other designs, and why interpreters disagree less on ADV2 inputs.

The ensemble experiment (:func:`adv2lib.experiments.run_ensemble`) judges one detector design,
named before its results as our reading of the paper's "ensemble interpretation" (paper-spec (g)
10): every interpreter, the mean distance of each member's map to the mean of the others'
(:func:`adv2lib.ensemble.disagreement`), thresholded at 5% false positives on held-out clean
images. A defender could build the detector otherwise. This study scores the same inputs with
the designs a defender would try, all from the member maps that experiment stored (its
calibration images, the clean images, the shared PGD inputs, the main experiment's ADV2 inputs
against each interpreter and the adaptive attack's inputs; nothing is attacked here):

* ``members`` every interpreter (``"grad+cam+mask+rts"``), ``score_kind = "distance"``: the
  primary design, recomputed (its scores equal the ensemble experiment's);
* every interpreter, ``"max_pair"``: the largest L1 distance over pairs of members;
* one pair alone (``members = "<a>+<b>"``), ``"distance"``;
* the ensemble without one member, ``"distance"``;
* every interpreter, ``"logistic"``: a learned combiner, logistic regression on the six pairwise
  distances (:class:`sklearn.linear_model.LogisticRegression`, standardised), trained to tell
  the clean images from their successful PGD inputs. Cross-validated by image
  (:data:`FOLDS` folds): each image's clean, PGD, ADV2 and adaptive inputs are scored by the
  model trained on the other folds' images, and flagged above the threshold that model puts at
  5% false positives on the held-out calibration images. The combiner is thus trained on PGD and
  applied to ADV2, as a defender who does not know ADV2 would.

Rows ``kind = "detection"`` have the ensemble experiment's detection columns, with the design
in ``members`` and ``score_kind`` instead of ``ensemble`` (``split = "evaluation"``, ``attack``,
``source_interpreter``, ``score``, ``flagged``, ``threshold``; the calibration scores are not
kept, the threshold is), so the report's detection estimates read either table.

**Why** (rows without ``kind``; ``score_kind = "pair"`` and ``"member"``): per input, the L1
distance between every pair of members' maps (``members = "<a>+<b>"``), and each member's
distance to the mean of the others' (``interpreter``: the member; the primary score is the mean
of these terms). The chapter reads whether the map
of the interpreter ADV2 attacked moves toward the others or away from them, against the same
member's distance on the clean image.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import torch

from .. import ensemble as ens
from .. import experiments, fingerprint
from ..experiments import (ADAPTIVE_IMAGES, CALIBRATION_IMAGES, ExperimentSpec, ExperimentResult, _main_key,
                           _sub_batches, _transfer_key)
from ..names import INTERPRETERS
from ..store import to_jsonable
from . import code

__all__ = ["FOLDS", "pair_distances", "member_distances", "designs", "logistic_scores", "run_ensemble_designs"]

#: Folds of the learned combiner's cross-validation (by image).
FOLDS = 5


def _pairs(members):
    return list(itertools.combinations(members, 2))


def pair_distances(maps: dict) -> dict:
    """``{(a, b): (N,)}``: the mean absolute difference of the min-max normalised maps of ``a``
    and ``b`` at one resolution (:func:`adv2lib.ensemble.common_maps`), per input."""
    names = list(maps)
    stack = ens.common_maps(maps)
    return {(a, b): (stack[:, names.index(a)] - stack[:, names.index(b)]).abs().mean(1) for a, b in _pairs(names)}


def member_distances(maps: dict) -> dict:
    """``{m: (N,)}``: each member's mean absolute difference to the mean of the others' maps
    (the primary score is their mean)."""
    names = list(maps)
    stack = ens.common_maps(maps)
    k = len(names)
    others = (stack.sum(1, keepdim=True) - stack) / (k - 1)
    per = (stack - others).abs().mean(2)
    return {m: per[:, i] for i, m in enumerate(names)}


def designs(members) -> list[tuple[list, str]]:
    """The fixed (untrained) designs: ``(members, score_kind)``, the primary first."""
    out = [(list(members), "distance"), (list(members), "max_pair")]
    out += [([a, b], "distance") for a, b in _pairs(members)]
    if len(members) > 3:                  # of three members, the ensembles without one are the pairs
        out += [([n for n in members if n != m], "distance") for m in members]
    return out


def _score(kind: str, maps: dict) -> np.ndarray:
    if kind == "max_pair":
        return torch.stack(list(pair_distances(maps).values()), 1).max(1).values.numpy()
    return ens.disagreement(maps, kind).numpy()


def _features(maps: dict) -> np.ndarray:
    return torch.stack(list(pair_distances(maps).values()), 1).numpy().astype(float)


def logistic_scores(train_clean, train_attack, score_sets: dict, calibration, seed: int = 0):
    """Fit the combiner on ``train_clean`` (label 0) against ``train_attack`` (label 1) and return
    ``(scores per entry of score_sets, threshold)``: the probability of "attack" of each input,
    and the threshold at 5% false positives on the ``calibration`` features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.r_[train_clean, train_attack]
    y = np.r_[np.zeros(len(train_clean)), np.ones(len(train_attack))]
    model = make_pipeline(StandardScaler(), LogisticRegression(random_state=seed)).fit(X, y)
    threshold = ens.threshold_at_fpr(model.predict_proba(calibration)[:, 1], ens.FPR)
    return {k: model.predict_proba(v)[:, 1] for k, v in score_sets.items()}, threshold


def run_ensemble_designs(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=100, seed=0,
                         smoke=False, device="auto", results_dir=None, batch_size=None, progress=True, engine=None,
                         adaptive_images=ADAPTIVE_IMAGES, calibration_images=None) -> ExperimentResult:
    """Score the ensemble experiment's inputs with every design (see the module's docstring); the
    ensemble experiment is run first (its store serves it when it ran)."""
    start = time.perf_counter()
    spec = ExperimentSpec.make("ensemble_designs", profile, victim, interpreters, n_images, seed, smoke, device,
                               results_dir, batch_size, progress)
    source = ExperimentSpec(**{**spec.__dict__, "experiment": "ensemble"})
    experiments.run(source, engine, adaptive_images=adaptive_images, calibration_images=calibration_images)
    drv = experiments.prepare(source, engine)
    members = list(spec.interpreters)
    adaptive = [m for m in members if not getattr(drv.local.interpreter(m), "bilevel", False)]
    n_adapt = min(int(adaptive_images), spec.n_images)
    n_cal = calibration_images or CALIBRATION_IMAGES["smoke" if spec.smoke else "full"]
    batches = [b for b, _, _ in spec.batches()]
    pgd_rows, _ = drv.pgd()
    # the inputs and their member maps, as the ensemble experiment gathered them
    inputs = {("clean", None): {}, ("pgd", None): {}, **{("adv2", s): {} for s in members}}
    success = {("clean", None): np.ones(spec.n_images, bool),
               ("pgd", None): pgd_rows.sort_values("position")["success"].to_numpy(dtype=bool)}
    for t in members:
        _, tensors = drv.store.load_run(_transfer_key(drv, t, members), batches)
        inputs[("clean", None)][t] = tensors["benign_map"]
        inputs[("pgd", None)][t] = tensors["map_pgd"]
        for s in members:
            inputs[("adv2", s)][t] = tensors[f"map_{s}"]
        rows, _ = drv.store.load_run(_main_key(drv, t), batches)
        success[("adv2", t)] = rows[rows["attack"] == "adv2"].sort_values("position")["success"].to_numpy(dtype=bool)
    cal_idx, cal_x, cal_y = drv.select(n_cal, spec.seed + 2000, exclude=drv.indices.tolist())
    cal_key = drv.key("ensemble", "+".join(members), "calibration",
                      {"members": {m: drv.interp_params[m] for m in members}, "n_calibration": n_cal,
                       "calibration": fingerprint.tensors(cal_idx, cal_x, cal_y)})
    _, cal = drv.store.load_run(cal_key, [b for b, _, _ in _sub_batches(n_cal, spec.batch_size)])
    calibration = {m: cal[f"map_{m}"] for m in members}
    adapt_key = drv.key("ensemble", "+".join(adaptive), "adaptive",
                        {"members": {m: drv.interp_params[m] for m in members},
                         "attack": to_jsonable({m: drv.adv2_config(m) for m in adaptive}),
                         "n_adaptive": n_adapt, "evaluate": members})
    adapt_rows, adapt = drv.store.load_run(adapt_key, [b for b, _, _ in _sub_batches(n_adapt, spec.batch_size)])
    inputs[("adaptive", None)] = {m: adapt[f"map_{m}"] for m in members}
    success[("adaptive", None)] = (adapt_rows.drop_duplicates("position").sort_values("position")["success"]
                                   .to_numpy(dtype=bool))

    def frame(kind, attack, source, values: dict, n):
        return pd.DataFrame({"kind": kind, "attack": attack, "source_interpreter": source, "split": "evaluation",
                             "position": np.arange(n), "index": drv.indices[:n].numpy(),
                             "success": success[(attack, source)][:n], **values})

    rows = []
    # the fixed designs
    for group, kind in designs(members):
        threshold = ens.threshold_at_fpr(_score(kind, {m: calibration[m] for m in group}), ens.FPR)
        for (attack, source), maps in inputs.items():
            score = _score(kind, {m: maps[m] for m in group})
            rows.append(frame("detection", attack, source, {"members": "+".join(group), "score_kind": kind,
                                                            "score": score, "flagged": score > threshold,
                                                            "threshold": threshold}, len(score)))
    # the learned combiner, cross-validated by image
    features = {k: _features(maps) for k, maps in inputs.items()}
    cal_features = _features(calibration)
    folds = np.random.default_rng(spec.seed).permutation(spec.n_images) % FOLDS
    learned = {k: (np.full(len(f), np.nan), np.full(len(f), np.nan)) for k, f in features.items()}
    for fold in range(FOLDS):
        train = folds != fold
        attack_ok = train & success[("pgd", None)]
        if not train.any() or not attack_ok.any():      # a fold with nothing to learn from (a few images)
            continue
        held = {k: i for k, f in features.items() if len(i := np.flatnonzero(folds[:len(f)] == fold))}
        scores, threshold = logistic_scores(features[("clean", None)][train], features[("pgd", None)][attack_ok],
                                            {k: features[k][i] for k, i in held.items()}, cal_features, spec.seed)
        for k, i in held.items():
            learned[k][0][i], learned[k][1][i] = scores[k], threshold
    for (attack, source), (score, threshold) in learned.items():
        rows.append(frame("detection", attack, source, {"members": "+".join(members), "score_kind": "logistic",
                                                        "score": score, "flagged": score > threshold,
                                                        "threshold": threshold}, len(score)))
    # why: pairwise and member distances of every input
    for (attack, source), maps in inputs.items():
        n = len(next(iter(maps.values())))
        for (a, b), d in pair_distances(maps).items():
            rows.append(frame(None, attack, source, {"members": f"{a}+{b}", "score_kind": "pair", "score": d.numpy()},
                              n))
        for m, d in member_distances(maps).items():
            rows.append(frame(None, attack, source, {"interpreter": m, "score_kind": "member", "score": d.numpy()}, n))
    out = pd.concat(rows, ignore_index=True)
    for i, (col, val) in enumerate((("experiment", spec.experiment), ("profile", spec.profile),
                                    ("victim", spec.victim))):
        out.insert(i, col, val)
    result = drv.finish([], {}, {"members": members, "adaptive": adaptive, "n_calibration": n_cal,
                                 "n_adaptive": n_adapt, "folds": FOLDS, "study_code": code("ensemble_designs")}, start)
    result.experiment = spec.experiment
    result.examples = out
    result.summary = ens.detection_summary(out[out["kind"] == "detection"].assign(ensemble=out["members"]))
    return result
