"""The paper's experiments, one function each, resumable through the results store.

=====================  =====================================================================
function               what it measures (paper, evaluation section)
=====================  =====================================================================
:func:`run_main`       PGD vs ADV2 per interpreter: ASR, MC, L1 to the benign map, IoU test
:func:`run_patch`      random patch/shape targets (Table 7): L1 to the target and to the
                       benign map, IoU w.r.t. both
:func:`run_random_class`  random-class targets (Table 8): ASR, MC, L1 to the target
:func:`run_transfer`   transferability across interpreters (Table 9): L1 to the benign map
                       of interpreter B for ADV2 inputs built against A, plus a PGD row
:func:`run_budget`     not in the paper: ADV2 (benign-map target) with 1x, 2x, 4x ... its
                       stage-2 iterations, to ask whether a gap to the paper is a budget gap
=====================  =====================================================================

Every function takes the same keyword arguments::

    run_main(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=100,
             seed=0, smoke=False, device="auto", results_dir=None, batch_size=None,
             progress=True)

and returns an :class:`ExperimentResult`. The attacked images are the first ``n_images``
correctly classified test images in a seeded random order; each gets a seeded random
target class ``ct = (y + U{1..K-1}) mod K`` (the official ``attack_selector.py`` rule).
The same seed gives the same images and target classes in every experiment, so the PGD
baseline is computed once (stored under the experiment name ``"pgd"``) and shared.

``smoke=True``: at most 4 images, the presets' smoke versions (about 1/10 of every iteration
count) and a 20-iteration MASK, so the four experiments on both victims run in minutes.

Work is done per batch and each batch is written atomically to the store
(:class:`~adv2lib.store.ResultsStore`, default ``results/``); a rerun with the same
arguments loads the finished batches and computes only the missing ones.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from . import fingerprint, metrics
from .attacks import ADV2, PGD, preset_for, scale_budget
from .errors import ConfigError, DataError
from .store import ResultsStore, RunKey, to_jsonable
from .targets import benign_map, pair_farthest, random_class_targets, random_patch_maps, random_shape_maps

__all__ = [
    "ExperimentResult", "run_main", "run_patch", "run_random_class", "run_transfer", "run_budget", "EXPERIMENTS",
    "select_correct", "random_target_classes", "INTERPRETERS", "check_request", "preflight",
]

INTERPRETERS = ("grad", "cam", "mask", "rts")
#: Bumped whenever the meaning of stored rows changes (part of every run key).
EXPERIMENT_VERSION = 1
#: Examples kept for figures (the first images of the selection).
N_FIGURE_EXAMPLES = 4
SMOKE_IMAGES = 4
SMOKE_MASK_ITERATIONS = 20
DEFAULT_BATCH = {"embedded": 50, "imagenet": 8}


@dataclass
class ExperimentResult:
    """What an experiment returns (all frames are tidy: one row per observation).

    * ``examples`` -- one row per (interpreter, attack, example): ``experiment``, ``profile``,
      ``victim``, ``interpreter``, ``attack`` ("pgd" / "adv2"), ``index`` (test-set index),
      ``position`` (rank in the selection), ``true_class``, ``target_class``, ``prediction``,
      ``success``, ``confidence`` (p(ct)), ``iteration``, ``selected``, ``linf``,
      ``l1_benign`` (L1 of the map to the benign map), ``l1_target`` (to the interpretation
      target; equals ``l1_benign`` in ``main``), ``iou_benign_XX`` / ``iou_target_XX``
      (IoU test at k = XX %), ``iou_benign_mean`` / ``iou_target_mean`` (mean over k),
      ``seconds`` / ``cpu_seconds`` (attack wall / process-CPU time per image). Transfer
      rows have ``source`` and ``target`` (interpreters; source ``pgd`` for the PGD row)
      instead of ``interpreter``/``attack``.
    * ``iou`` -- long form of the IoU columns: ..., ``reference`` ("benign"/"target"),
      ``k``, ``iou``.
    * ``summary`` -- per (victim, interpreter, attack): ``n``, ``asr``, ``mc``, mean and std
      of the L1 columns and the mean IoU, map metrics over successful examples
      (:func:`adv2lib.metrics.summarize`).
    * ``matrix`` -- transfer only: source x target mean L1 to the benign map
      (:func:`adv2lib.metrics.transfer_matrix`).
    * ``figures`` -- per interpreter, tensors for the first few images: ``x``, ``x_pgd``,
      ``x_adv``, ``benign_map``, ``pgd_map``, ``adv_map``, ``target_map``, ``true_class``,
      ``target_class``, ``index`` (random_class adds ``target_image`` and ``source_class``;
      transfer: per source, ``x_adv`` and ``maps`` -- a dict target interpreter -> maps --
      plus ``figures["benign"]``, target interpreter -> benign maps).
    * ``config`` -- the attack presets and settings used (JSON-able), ``seconds`` -- wall
      time of this call, ``results_dir`` -- the store's root.
    * ``batches`` -- how many result batches this call ``computed`` and how many it
      ``loaded`` from the store (a rerun with unchanged inputs computes none).
    """

    experiment: str
    profile: str
    victim: str
    examples: pd.DataFrame
    iou: pd.DataFrame
    summary: pd.DataFrame
    figures: dict = field(default_factory=dict)
    matrix: pd.DataFrame | None = None
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    results_dir: str = ""
    batches: dict = field(default_factory=lambda: {"computed": 0, "loaded": 0})

    def __repr__(self) -> str:
        return (f"ExperimentResult({self.experiment!r}, {self.profile}/{self.victim}, "
                f"{len(self.examples)} rows, {self.seconds:.0f}s)")


# =========================================================================== data selection

def select_correct(victim, dataset, n: int, seed: int = 0, exclude=(), chunk: int = 500):
    """The first ``n`` test images (in a seeded random order, skipping ``exclude``) that
    ``victim`` classifies correctly: ``(indices, x, y)`` on the CPU."""
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(dataset), generator=gen)
    if len(exclude):
        banned = torch.zeros(len(dataset), dtype=torch.bool)
        banned[torch.as_tensor(list(exclude), dtype=torch.long)] = True
        order = order[~banned[order]]
    device = next(victim.parameters()).device
    picked, xs, ys = [], [], []
    for start in range(0, len(order), chunk):
        idx = order[start:start + chunk]
        x, y = dataset.tensors(idx.tolist())
        with torch.no_grad():
            pred = victim(x.to(device)).argmax(1).cpu()
        ok = pred == y
        picked.append(idx[ok]), xs.append(x[ok]), ys.append(y[ok])
        if sum(len(p) for p in picked) >= n:
            break
    indices, x, y = torch.cat(picked)[:n], torch.cat(xs)[:n], torch.cat(ys)[:n]
    if len(indices) < n:
        raise DataError(f"only {len(indices)} test images are classified correctly by the victim "
                        f"(and not excluded), {n} requested: ask for fewer images (--n-images)")
    return indices, x, y


def random_target_classes(y: torch.Tensor, num_classes: int, seed: int = 0) -> torch.Tensor:
    """``ct = (y + U{1, ..., K-1}) mod K`` (official ``attack_selector.py``), seeded."""
    gen = torch.Generator().manual_seed(int(seed) + 1)
    shift = torch.randint(1, num_classes, (len(y),), generator=gen)
    return (y + shift) % num_classes


# =========================================================================== setup

@dataclass
class _Setup:
    experiment: str
    profile: str
    victim_name: str
    victim: torch.nn.Module
    dataset: object
    device: torch.device
    seed: int
    smoke: bool
    n_images: int
    batch_size: int
    store: ResultsStore
    progress: bool
    indices: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    ct: torch.Tensor
    base_params: dict
    interpreters: dict
    manifest_extra: dict
    counts: dict = field(default_factory=lambda: {"computed": 0, "loaded": 0})

    def batches(self, n: int | None = None):
        n = self.n_images if n is None else n
        return [(b, lo, min(lo + self.batch_size, n)) for b, lo in enumerate(range(0, n, self.batch_size))]

    def key(self, experiment, interpreter, attack, params) -> RunKey:
        return RunKey(experiment, self.profile, self.victim_name, interpreter, attack,
                      {**self.base_params, **params}, self.seed)


def _positive_int(value, name: str, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r} ({flag})")
    return value


def check_request(profile, victim, interpreters, n_images, seed=0, batch_size=None) -> list[str]:
    """Check an experiment's arguments before any work (no file is read or written); returns
    the interpreter names. Raises :class:`~adv2lib.errors.ConfigError` with the remedy."""
    from .models import PROFILES, VICTIMS

    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)} (--profile)")
    if victim not in VICTIMS:
        raise ConfigError(f"unknown victim {victim!r}: choose one of {', '.join(VICTIMS)} (--victim)")
    _positive_int(n_images, "n_images", "--n-images")
    if batch_size is not None:
        _positive_int(batch_size, "batch_size", "--batch-size")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r} (--seed)")
    return _names(interpreters)


def preflight(profile, victims, interpreters, n_images, seed=0, batch_size=None, device="auto") -> None:
    """Check a whole command before its first attack: arguments, device, dataset, and every
    victim's weights and interpreters (e.g. the RTS weights of the second victim). Raises the
    library's one-line errors; loads what it checks and keeps nothing."""
    from .data import load_test_set
    from .interpreters import build_interpreter
    from .models import load_victim
    from .utils import resolve_device

    names = []
    for victim in victims:
        names = check_request(profile, victim, interpreters, n_images, seed, batch_size)
    device = resolve_device(device)
    load_test_set(profile)
    for victim in victims:
        model = load_victim(victim, profile, device=device)
        for name in names:
            if name == "rts":               # the only interpreter with a file of its own
                build_interpreter(name, model)


def _setup(experiment, profile, victim, n_images, seed, smoke, device, results_dir, batch_size, progress,
           interpreters=()):
    """Check the request, then load data, victim and every interpreter (so that a missing
    file stops the run before any attack), select the images and build the key parameters."""
    from .data import load_test_set
    from .models import load_victim
    from .utils import resolve_device

    names = check_request(profile, victim, interpreters, n_images, seed, batch_size)
    device = resolve_device(device)
    dataset = load_test_set(profile)            # data first: the ImageNet weights may need a download
    model = load_victim(victim, profile, device=device)
    if smoke:
        n_images = min(n_images, SMOKE_IMAGES)
    batch_size = DEFAULT_BATCH.get(profile, 16) if batch_size is None else batch_size
    interps = {name: _interpreter(name, model, smoke) for name in names}
    indices, x, y = select_correct(model, dataset, n_images, seed)
    ct = random_target_classes(y, model.num_classes, seed)
    # Everything that sets the numbers (see adv2lib.fingerprint); the attack presets and the
    # interpreters' settings and weights are added per run.
    base = {"version": EXPERIMENT_VERSION, "n_images": n_images, "smoke": bool(smoke), "batch_size": batch_size,
            "data": fingerprint.tensors(indices, x, y, ct), "victim_weights": fingerprint.state_dict(model),
            "code": fingerprint.code(),
            # every experiment's rows hold the shared PGD examples' maps
            "pgd_attack": to_jsonable(preset_for(profile, "pgd", smoke=bool(smoke)))}
    extra = {"victim_weights_source": getattr(model, "weights_source", None),
             "dataset": _dataset_description(dataset, profile), "device": str(device)}
    return _Setup(experiment, profile, victim, model, dataset, device, int(seed), bool(smoke), n_images, batch_size,
                  ResultsStore(results_dir), progress, indices, x, y, ct, base, interps, extra)


def _dataset_description(dataset, profile) -> dict:
    """Where the images came from (recorded in each run's manifest, not keyed: the key hashes the images)."""
    if profile == "embedded":
        from .data import locate_fashion_mnist

        found = locate_fashion_mnist("test")
        return {"name": "Fashion-MNIST test", "files": [str(p) for p in found] if found else None}
    root = getattr(getattr(dataset, "folder", None), "root", None)
    return {"name": "ImageNet folder", "root": None if root is None else str(root), "images": len(dataset)}


def _interpreter(name, victim, smoke: bool):
    from .interpreters import build_interpreter

    kwargs = {"iterations": SMOKE_MASK_ITERATIONS} if name == "mask" and smoke else {}
    return build_interpreter(name, victim, **kwargs)


def _interp_params(interp) -> dict:
    params = {"name": interp.name}
    if hasattr(interp, "config"):
        params["config"] = to_jsonable(interp.config)
    if interp.name == "rts":
        params["weights"] = fingerprint.state_dict(interp.net)
        if interp.encoder is not interp.victim:
            params["encoder"] = fingerprint.state_dict(interp.encoder)
        params["model_confidence"] = float(interp.model_confidence)
    for attr in ("pool", "score", "tau", "seed"):
        if hasattr(interp, attr):
            params[attr] = to_jsonable(getattr(interp, attr))
    return params


def _dev(t, setup):
    return t.to(setup.device)


# =========================================================================== row building

def _map_rows(adv_map, benign, target=None, prefix_target=True) -> dict:
    """L1 and IoU columns of ``adv_map`` against the benign map (and a distinct target)."""
    out = {"l1_benign": metrics.l1_distance(adv_map, benign).numpy()}
    curve = metrics.iou_curve(adv_map, benign)
    for j, k in enumerate(metrics.IOU_KS):
        out[f"iou_benign_{int(round(k * 100)):02d}"] = curve[:, j].numpy()
    out["iou_benign_mean"] = curve.mean(1).numpy()
    ref = benign if target is None else target
    out["l1_target"] = metrics.l1_distance(adv_map, ref).numpy()
    if target is not None:
        curve = metrics.iou_curve(adv_map, target)
        for j, k in enumerate(metrics.IOU_KS):
            out[f"iou_target_{int(round(k * 100)):02d}"] = curve[:, j].numpy()
        out["iou_target_mean"] = curve.mean(1).numpy()
    return out


def _rows(setup, sel, attack, success, confidence, prediction, iteration, selected, x, x_adv, seconds,
          map_cols, extra=None, cpu_seconds=0.0) -> pd.DataFrame:
    sel = torch.as_tensor(sel)
    frame = pd.DataFrame({
        "attack": attack,
        "index": setup.indices[sel].numpy(),
        "position": sel.numpy(),
        "true_class": setup.y[sel].numpy(),
        "target_class": setup.ct[sel].numpy(),
        "prediction": prediction.cpu().numpy(),
        "success": success.cpu().numpy().astype(bool),
        "confidence": confidence.cpu().numpy(),
        "iteration": iteration.cpu().numpy(),
        "selected": selected.cpu().numpy().astype(bool),
        "linf": (x_adv.cpu() - x.cpu()).flatten(1).abs().amax(1).numpy(),
        "seconds": float(seconds) / max(1, len(sel)),
        "cpu_seconds": float(cpu_seconds) / max(1, len(sel)),
        **map_cols,
    })
    for k, v in (extra or {}).items():
        frame[k] = v
    return frame


def _finish(setup, experiment, frames, figures, config, start, matrix=None) -> ExperimentResult:
    examples = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(examples):
        for i, (col, val) in enumerate((("experiment", experiment), ("profile", setup.profile),
                                        ("victim", setup.victim_name))):
            if col in examples:
                examples = examples.drop(columns=col)
            examples.insert(i, col, val)
    id_cols = [c for c in ("experiment", "profile", "victim", "interpreter", "attack", "source", "target",
                           "index", "position", "success") if c in examples.columns]
    iou_cols = [c for c in examples.columns if c.startswith("iou_") and not c.endswith("_mean")]
    if iou_cols:
        iou = examples.melt(id_vars=id_cols, value_vars=iou_cols, var_name="column", value_name="iou")
        parts = iou["column"].str.split("_")
        iou["reference"] = parts.str[1]
        iou["k"] = parts.str[2].astype(int) / 100.0
        iou = iou.drop(columns="column")
    else:
        iou = pd.DataFrame()
    by = ("victim", "source", "target") if "source" in examples.columns else ("victim", "interpreter", "attack")
    keep = [c for c in examples.columns if not (c.startswith("iou_") and not c.endswith("_mean"))]
    summary = metrics.summarize(examples[keep], by=by) if len(examples) else pd.DataFrame()
    return ExperimentResult(experiment, setup.profile, setup.victim_name, examples, iou, summary, figures,
                            matrix, to_jsonable(config), time.perf_counter() - start, str(setup.store.root),
                            dict(setup.counts))


def _figures(tensors: dict, names, n=N_FIGURE_EXAMPLES) -> dict:
    return {k: tensors[k][:n].clone() for k in names if k in tensors}


def _run_batches(setup, key, batches, compute, desc):
    """For each ``(b, lo, hi)``: load the stored batch, or ``compute(lo, hi)`` -> (rows, tensors)
    and store it (under the store's per-batch lock). Returns the concatenated rows and tensors."""
    bounds = {b: (lo, hi) for b, lo, hi in batches}
    computed = []

    def compute_batch(b):
        computed.append(b)
        return compute(*bounds[b])

    out = setup.store.ensure_batches(key, list(bounds), compute_batch, desc=desc, progress=setup.progress,
                                     manifest_extra=setup.manifest_extra)
    setup.counts["computed"] += len(computed)
    setup.counts["loaded"] += len(bounds) - len(computed)
    return out


# =========================================================================== PGD (shared)

def _pgd_config(setup):
    return preset_for(setup.profile, "pgd", smoke=setup.smoke)


def _run_pgd(setup):
    """The shared PGD baseline on the selected images: ``(rows, tensors)`` (``x_adv``)."""
    cfg = _pgd_config(setup)
    key = setup.key("pgd", "none", "pgd", {"attack": to_jsonable(cfg)})

    def compute(lo, hi):
        x, ct, y = _dev(setup.x[lo:hi], setup), _dev(setup.ct[lo:hi], setup), _dev(setup.y[lo:hi], setup)
        res = PGD(setup.victim, config=cfg, seed=setup.seed, progress=setup.progress).attack(x, ct, true_class=y)
        rows = _rows(setup, torch.arange(lo, hi), "pgd", res.success, res.confidence, res.prediction,
                     res.iteration, res.selected, x, res.x_adv, res.seconds, {}, cpu_seconds=res.cpu_seconds)
        return rows, {"x_adv": res.x_adv}

    return _run_batches(setup, key, setup.batches(), compute, f"pgd/{setup.victim_name}")


# =========================================================================== main

def _adv2_config(setup, name):
    return preset_for(setup.profile, name, smoke=setup.smoke)


def _main_key(setup, interp, cfg):
    return setup.key("main", interp.name, "adv2", {"attack": to_jsonable(cfg), "interpreter": _interp_params(interp)})


def _main_interpreter(setup, interp, pgd_x):
    """ADV2 vs PGD for one interpreter, benign-map target; returns (rows, tensors)."""
    cfg = _adv2_config(setup, interp.name)
    key = _main_key(setup, interp, cfg)
    pgd_rows_all = None

    def compute(lo, hi):
        sel = torch.arange(lo, hi)
        x, y, ct = _dev(setup.x[lo:hi], setup), _dev(setup.y[lo:hi], setup), _dev(setup.ct[lo:hi], setup)
        x_pgd = _dev(pgd_x[lo:hi], setup)
        benign = benign_map(interp, x, y)
        pgd_map = interp(x_pgd, ct).detach()
        res = ADV2(setup.victim, interp, config=cfg, seed=setup.seed, progress=setup.progress).attack(
            x, ct, target_map=benign, true_class=y)
        adv = _rows(setup, sel, "adv2", res.success, res.confidence, res.prediction, res.iteration,
                    res.selected, x, res.x_adv, res.seconds, _map_rows(res.adv_map.cpu(), benign.cpu()),
                    cpu_seconds=res.cpu_seconds)
        pr, pc = _predict(setup.victim, x_pgd, ct)
        pgd = _rows(setup, sel, "pgd", pr == ct, pc, pr, torch.full_like(ct, -1), pr == ct, x, x_pgd, 0.0,
                    _map_rows(pgd_map.cpu(), benign.cpu()))
        rows = pd.concat([pgd, adv], ignore_index=True)
        rows.insert(0, "interpreter", interp.name)
        tensors = {"x": x, "x_adv": res.x_adv, "x_pgd": x_pgd, "benign_map": benign, "adv_map": res.adv_map,
                   "pgd_map": pgd_map, "target_map": benign, "true_class": y, "target_class": ct,
                   "index": setup.indices[sel]}
        return rows, tensors

    rows, tensors = _run_batches(setup, key, setup.batches(), compute, f"main/{setup.victim_name}/{interp.name}")
    return rows, tensors, cfg


@torch.no_grad()
def _predict(victim, x, ct):
    logits = victim(x)
    return logits.argmax(1), torch.softmax(logits, 1).gather(1, ct.view(-1, 1)).squeeze(1)


def _with_pgd_record(rows, pgd_rows):
    """Copy the shared PGD run's iteration and timings into an experiment's PGD rows."""
    rows = rows.copy()
    is_pgd = rows["attack"] == "pgd"
    source = pgd_rows.set_index("position").loc[rows.loc[is_pgd, "position"].tolist()]
    for col in ("iteration", "seconds", "cpu_seconds"):
        rows.loc[is_pgd, col] = source[col].to_numpy()
    return rows


def run_main(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=100, seed=0,
             smoke=False, device="auto", results_dir=None, batch_size=None, progress=True) -> ExperimentResult:
    """PGD vs ADV2 against each interpreter, benign-map target (the paper's main tables).

    Per interpreter and image: the PGD example's map and the ADV2 example's map (both for
    ``ct``, by the real interpreter) are compared with the benign map (for the true class).
    ``examples`` holds ``attack`` in {"pgd", "adv2"}; ``summary`` gives ASR, MC, mean L1 to the
    benign map and mean IoU per (interpreter, attack). See :class:`ExperimentResult`.
    """
    start = time.perf_counter()
    setup = _setup("main", profile, victim, n_images, seed, smoke, device, results_dir, batch_size, progress,
                   interpreters)
    pgd_rows, pgd_t = _run_pgd(setup)
    frames, figures, config = [], {}, {"pgd": _pgd_config(setup)}
    for name, interp in setup.interpreters.items():
        rows, tensors, cfg = _main_interpreter(setup, interp, pgd_t["x_adv"])
        frames.append(_with_pgd_record(rows, pgd_rows).drop(columns="batch"))
        figures[name] = _figures(tensors, ("x", "x_pgd", "x_adv", "benign_map", "pgd_map", "adv_map",
                                           "target_map", "true_class", "target_class", "index"))
        config[name] = cfg
    return _finish(setup, "main", frames, figures, config, start)


def _names(interpreters):
    names = [interpreters] if isinstance(interpreters, str) else list(interpreters)
    bad = [n for n in names if n not in INTERPRETERS]
    if bad or not names:
        raise ConfigError(f"unknown interpreter(s) {', '.join(map(repr, bad)) or '(none given)'}: "
                          f"choose from {', '.join(INTERPRETERS)} (--interpreters)")
    return names


# =========================================================================== patch / shape targets

def run_patch(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=100, seed=0,
              smoke=False, device="auto", results_dir=None, batch_size=None, progress=True,
              targets="shapes") -> ExperimentResult:
    """ADV2 towards random patch/shape maps (paper Table 7 and its IoU figure).

    ``targets="shapes"`` (default): the official generator, circles and rotated rectangles
    (seed ``777 + seed``); ``"patches"``: axis-aligned rectangles. ``n_images`` targets are
    drawn; each is paired with the selected benign image whose map is farthest from it, each
    image at most 3 times (official pairing). Rows give ``l1_target`` (Δt), ``l1_benign`` (Δb)
    and the IoU w.r.t. both, for ADV2 and -- as a reference -- for the shared PGD examples.
    """
    if targets not in ("shapes", "patches"):
        raise ConfigError(f"targets must be 'shapes' or 'patches', got {targets!r}")
    start = time.perf_counter()
    setup = _setup("patch", profile, victim, n_images, seed, smoke, device, results_dir, batch_size, progress,
                   interpreters)
    pgd_rows, pgd_t = _run_pgd(setup)
    frames, figures, config = [], {}, {"pgd": _pgd_config(setup), "targets": targets}
    for name, interp in setup.interpreters.items():
        cfg = _adv2_config(setup, name)
        size = interp.native_size
        generator = random_shape_maps if targets == "shapes" else random_patch_maps
        target_maps = generator(setup.n_images, size, seed=777 + setup.seed)
        benign_all = torch.cat([benign_map(interp, _dev(setup.x[lo:hi], setup), _dev(setup.y[lo:hi], setup)).cpu()
                                for _, lo, hi in setup.batches()])
        pair = pair_farthest(target_maps, benign_all, max_uses=3)
        key = setup.key("patch", name, "adv2", {"attack": to_jsonable(cfg), "interpreter": _interp_params(interp),
                                                "targets": targets})

        def compute(lo, hi, interp=interp, cfg=cfg, target_maps=target_maps, pair=pair, benign_all=benign_all):
            sel = pair[lo:hi]
            x, y, ct = _dev(setup.x[sel], setup), _dev(setup.y[sel], setup), _dev(setup.ct[sel], setup)
            mt, benign = target_maps[lo:hi], benign_all[sel]
            res = ADV2(setup.victim, interp, config=cfg, seed=setup.seed, progress=setup.progress).attack(
                x, ct, target_map=_dev(mt, setup), true_class=y)
            x_pgd = _dev(pgd_t["x_adv"][sel], setup)
            pgd_map = interp(x_pgd, ct).detach().cpu()
            pr, pc = _predict(setup.victim, x_pgd, ct)
            extra = {"target_id": torch.arange(lo, hi).numpy()}
            adv = _rows(setup, sel, "adv2", res.success, res.confidence, res.prediction, res.iteration,
                        res.selected, x, res.x_adv, res.seconds, _map_rows(res.adv_map.cpu(), benign, mt), extra,
                        cpu_seconds=res.cpu_seconds)
            pgd = _rows(setup, sel, "pgd", pr == ct, pc, pr, torch.full_like(ct, -1), pr == ct, x, x_pgd, 0.0,
                        _map_rows(pgd_map, benign, mt), extra)
            rows = pd.concat([pgd, adv], ignore_index=True)
            rows.insert(0, "interpreter", interp.name)
            return rows, {"x": x, "x_adv": res.x_adv, "x_pgd": x_pgd, "benign_map": benign, "adv_map": res.adv_map,
                          "pgd_map": pgd_map, "target_map": mt, "true_class": y, "target_class": ct,
                          "index": setup.indices[sel]}

        rows, tensors = _run_batches(setup, key, setup.batches(), compute, f"patch/{setup.victim_name}/{name}")
        frames.append(_with_pgd_record(rows, pgd_rows).drop(columns="batch"))
        figures[name] = _figures(tensors, ("x", "x_pgd", "x_adv", "benign_map", "pgd_map", "adv_map",
                                           "target_map", "true_class", "target_class", "index"))
        config[name] = cfg
    return _finish(setup, "patch", frames, figures, config, start)


# =========================================================================== random class

POOL_SIZE = {"full": 300, "smoke": 40}


def run_random_class(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=100, seed=0,
                     smoke=False, device="auto", results_dir=None, batch_size=None,
                     progress=True) -> ExperimentResult:
    """ADV2 towards another class's interpretation (paper Table 8).

    For each attacked image (prediction target ``ct``), the interpretation target is the map,
    for its own class ``c~t`` (``c~t`` not in {y, ct}), of a random correctly classified test
    image of class ``c~t`` drawn from a pool disjoint from the attacked images
    (:func:`adv2lib.targets.random_class_targets`). Rows: ASR, MC, ``l1_target``, IoU w.r.t.
    the target and the benign map, for ADV2 and for the shared PGD examples.
    """
    start = time.perf_counter()
    setup = _setup("random_class", profile, victim, n_images, seed, smoke, device, results_dir, batch_size,
                   progress, interpreters)
    pgd_rows, pgd_t = _run_pgd(setup)
    pool_n = POOL_SIZE["smoke" if smoke else "full"]
    pool_idx, pool_x, pool_y = select_correct(setup.victim, setup.dataset, pool_n, seed + 1000,
                                              exclude=setup.indices.tolist())
    frames, figures, config = [], {}, {"pgd": _pgd_config(setup), "pool_size": pool_n}
    for name, interp in setup.interpreters.items():
        cfg = _adv2_config(setup, name)
        key = setup.key("random_class", name, "adv2", {"attack": to_jsonable(cfg),
                                                       "interpreter": _interp_params(interp), "pool": pool_n,
                                                       "pool_data": fingerprint.tensors(pool_idx, pool_x, pool_y)})

        def compute(lo, hi, interp=interp, cfg=cfg):
            sel = torch.arange(lo, hi)
            x, y, ct = _dev(setup.x[lo:hi], setup), _dev(setup.y[lo:hi], setup), _dev(setup.ct[lo:hi], setup)
            mt, src_pos, src_class = random_class_targets(interp, _dev(pool_x, setup), pool_y, setup.y[lo:hi],
                                                          setup.ct[lo:hi], seed=setup.seed * 7919 + lo)
            mt = mt.detach()
            benign = benign_map(interp, x, y).cpu()
            res = ADV2(setup.victim, interp, config=cfg, seed=setup.seed, progress=setup.progress).attack(
                x, ct, target_map=mt, true_class=y)
            x_pgd = _dev(pgd_t["x_adv"][lo:hi], setup)
            pgd_map = interp(x_pgd, ct).detach().cpu()
            pr, pc = _predict(setup.victim, x_pgd, ct)
            extra = {"source_index": pool_idx[src_pos].numpy(), "source_class": src_class.numpy()}
            adv = _rows(setup, sel, "adv2", res.success, res.confidence, res.prediction, res.iteration,
                        res.selected, x, res.x_adv, res.seconds, _map_rows(res.adv_map.cpu(), benign, mt.cpu()),
                        extra, cpu_seconds=res.cpu_seconds)
            pgd = _rows(setup, sel, "pgd", pr == ct, pc, pr, torch.full_like(ct, -1), pr == ct, x, x_pgd, 0.0,
                        _map_rows(pgd_map, benign, mt.cpu()), extra)
            rows = pd.concat([pgd, adv], ignore_index=True)
            rows.insert(0, "interpreter", interp.name)
            return rows, {"x": x, "x_adv": res.x_adv, "x_pgd": x_pgd, "benign_map": benign, "adv_map": res.adv_map,
                          "pgd_map": pgd_map, "target_map": mt, "target_image": pool_x[src_pos],
                          "true_class": y, "target_class": ct, "source_class": src_class,
                          "index": setup.indices[sel]}

        rows, tensors = _run_batches(setup, key, setup.batches(), compute,
                                     f"random_class/{setup.victim_name}/{name}")
        frames.append(_with_pgd_record(rows, pgd_rows).drop(columns="batch"))
        figures[name] = _figures(tensors, ("x", "x_pgd", "x_adv", "benign_map", "pgd_map", "adv_map", "target_map",
                                           "target_image", "true_class", "target_class", "source_class", "index"))
        config[name] = cfg
    return _finish(setup, "random_class", frames, figures, config, start)


# =========================================================================== transfer

def run_transfer(profile="embedded", victim="resnet", interpreters=INTERPRETERS, n_images=100, seed=0,
                 smoke=False, device="auto", results_dir=None, batch_size=None, progress=True) -> ExperimentResult:
    """Transferability across interpreters (paper Table 9): the ADV2 inputs of the main
    experiment, built against interpreter A (rows; plus the shared PGD inputs, row ``pgd``),
    explained by interpreter B (columns) for ``ct``; entry = L1 to B's benign map.

    The adversarial inputs are *reused* from the main experiment's store (the main
    experiment runs first when they are missing). ``matrix`` is the full table, diagonal
    included (the diagonal equals the main experiment's ADV2 L1).
    """
    start = time.perf_counter()
    setup = _setup("transfer", profile, victim, n_images, seed, smoke, device, results_dir, batch_size, progress,
                   interpreters)
    _, pgd_t = _run_pgd(setup)
    sources, benign = {}, {}
    names, interps = list(setup.interpreters), setup.interpreters
    missing = []
    for name, interp in interps.items():
        key = _main_key(setup, interp, _adv2_config(setup, name))
        if any(setup.store.try_load(key, b) is None for b, _, _ in setup.batches()):
            missing.append(name)
    if missing:
        run_main(profile=profile, victim=victim, interpreters=missing, n_images=n_images, seed=seed, smoke=smoke,
                 device=device, results_dir=results_dir, batch_size=batch_size, progress=progress)
    for name, interp in interps.items():
        key = _main_key(setup, interp, _adv2_config(setup, name))
        rows, tensors = setup.store.load_run(key, [b for b, _, _ in setup.batches()])
        adv = rows[rows.attack == "adv2"].sort_values("position")
        sources[name] = (tensors["x_adv"], torch.tensor(adv["success"].to_numpy(dtype=bool).copy()))
        benign[name] = tensors["benign_map"]
    pr_all, _ = _predict(setup.victim, _dev(pgd_t["x_adv"], setup), _dev(setup.ct, setup))
    sources["pgd"] = (pgd_t["x_adv"], (pr_all.cpu() == setup.ct))
    frames, figures = [], {s: {"x_adv": sources[s][0][:N_FIGURE_EXAMPLES].clone(), "maps": {}} for s in sources}
    for tname, interp in interps.items():
        key = setup.key("transfer", tname, "transfer",
                        {"interpreter": _interp_params(interp), "sources": sorted(sources),
                         "attacks": {s: to_jsonable(_adv2_config(setup, s)) for s in names},
                         "pgd": to_jsonable(_pgd_config(setup))})

        def compute(lo, hi, interp=interp, tname=tname):
            out, maps = [], {}
            ct = _dev(setup.ct[lo:hi], setup)
            ref = benign[tname][lo:hi]
            for sname, (x_adv, success) in sources.items():
                m = interp(_dev(x_adv[lo:hi], setup), ct).detach().cpu()
                maps[f"map_{sname}"] = m
                cols = _map_rows(m, ref)
                out.append(pd.DataFrame({
                    "source": sname, "target": tname, "index": setup.indices[lo:hi].numpy(),
                    "position": torch.arange(lo, hi).numpy(), "true_class": setup.y[lo:hi].numpy(),
                    "target_class": setup.ct[lo:hi].numpy(), "success": success[lo:hi].numpy(),
                    "l1_benign": cols["l1_benign"], "iou_benign_mean": cols["iou_benign_mean"],
                    **{k: v for k, v in cols.items() if k.startswith("iou_benign_") and k != "iou_benign_mean"},
                }))
            return pd.concat(out, ignore_index=True), {"benign_map": ref, **maps}

        rows, tensors = _run_batches(setup, key, setup.batches(), compute, f"transfer/{setup.victim_name}/{tname}")
        frames.append(rows.drop(columns="batch"))
        for s in sources:
            figures[s]["maps"][tname] = tensors[f"map_{s}"][:N_FIGURE_EXAMPLES].clone()
        figures.setdefault("benign", {})[tname] = tensors["benign_map"][:N_FIGURE_EXAMPLES].clone()
    examples = pd.concat(frames, ignore_index=True)
    # A transfer row has no confidence of its own; ``asr`` in its summary is the source attack's.
    examples["confidence"] = float("nan")
    matrix = metrics.transfer_matrix(examples, "l1_benign")
    result = _finish(setup, "transfer", [examples], figures, {"sources": sorted(sources)}, start, matrix=matrix)
    result.summary = result.summary.drop(columns=["mc"], errors="ignore")
    result.examples = result.examples.drop(columns=["confidence"])
    return result


# =========================================================================== budget

BUDGET_FACTORS = (1, 2, 4)


def budget_label(factor) -> str:
    """The ``attack`` label of ADV2 rows run with ``factor`` times the preset's stage-2 budget."""
    return f"adv2 x{factor:g}"


def run_budget(profile="embedded", victim="resnet", interpreters=("grad", "mask"), n_images=20, seed=0,
               smoke=False, device="auto", results_dir=None, batch_size=None, progress=True,
               factors=BUDGET_FACTORS) -> ExperimentResult:
    """ADV2 with a larger iteration budget: is the gap between our numbers and the paper's a budget gap?

    The embedded presets run far fewer stage-2 iterations than the official code (GRAD 100 instead
    of 704, MASK 40 outer iterations instead of 1000). For each interpreter and ``factor`` this
    runs the main experiment's ADV2 (benign-map target, same images and target classes) with
    :func:`~adv2lib.attacks.scale_budget`\ ``(preset, factor)``: ``factor`` times the stage-2
    iterations, same warm start and, for MASK, the same number of full-MASK snapshots. Rows are
    labelled ``attack = "adv2 x<factor>"`` (column ``budget`` holds the factor and
    ``stage2_steps`` the iterations); PGD rows (the shared PGD inputs' maps) are the reference.
    Not an experiment of the paper.
    """
    start = time.perf_counter()
    factors = tuple(float(f) if float(f) != int(f) else int(f) for f in factors)
    if not factors or any(f <= 0 for f in factors):
        raise ConfigError(f"budget factors must be positive numbers, got {factors}")
    setup = _setup("budget", profile, victim, n_images, seed, smoke, device, results_dir, batch_size, progress,
                   interpreters)
    pgd_rows, pgd_t = _run_pgd(setup)
    frames, config = [], {"pgd": _pgd_config(setup), "factors": list(factors)}
    for name, interp in setup.interpreters.items():
        benign_all = {}

        def benign(lo, hi, interp=interp, benign_all=benign_all):
            if (lo, hi) not in benign_all:
                benign_all[(lo, hi)] = benign_map(interp, _dev(setup.x[lo:hi], setup),
                                                  _dev(setup.y[lo:hi], setup)).cpu()
            return benign_all[(lo, hi)]

        def reference(lo, hi, interp=interp, benign=benign):
            sel, ct = torch.arange(lo, hi), _dev(setup.ct[lo:hi], setup)
            x_pgd = _dev(pgd_t["x_adv"][lo:hi], setup)
            pgd_map = interp(x_pgd, ct).detach().cpu()
            pr, pc = _predict(setup.victim, x_pgd, ct)
            rows = _rows(setup, sel, "pgd", pr == ct, pc, pr, torch.full_like(ct, -1), pr == ct,
                         setup.x[lo:hi], x_pgd, 0.0, _map_rows(pgd_map, benign(lo, hi)), {"budget": 0.0})
            rows.insert(0, "interpreter", interp.name)
            return rows, {"pgd_map": pgd_map}

        key = setup.key("budget", name, "pgd", {"interpreter": _interp_params(interp)})
        rows, _ = _run_batches(setup, key, setup.batches(), reference, f"budget/{setup.victim_name}/{name}/pgd")
        frames.append(_with_pgd_record(rows, pgd_rows).drop(columns="batch"))
        config[name] = {}
        for factor in factors:
            cfg = scale_budget(_adv2_config(setup, name), factor)
            label = budget_label(factor)

            def compute(lo, hi, interp=interp, cfg=cfg, factor=factor, label=label, benign=benign):
                sel = torch.arange(lo, hi)
                x, y, ct = _dev(setup.x[lo:hi], setup), _dev(setup.y[lo:hi], setup), _dev(setup.ct[lo:hi], setup)
                target = benign(lo, hi)
                res = ADV2(setup.victim, interp, config=cfg, seed=setup.seed, progress=setup.progress).attack(
                    x, ct, target_map=_dev(target, setup), true_class=y)
                rows = _rows(setup, sel, label, res.success, res.confidence, res.prediction, res.iteration,
                             res.selected, x, res.x_adv, res.seconds, _map_rows(res.adv_map.cpu(), target),
                             {"budget": float(factor), "stage2_steps": int(cfg.steps)},
                             cpu_seconds=res.cpu_seconds)
                rows.insert(0, "interpreter", interp.name)
                return rows, {"x_adv": res.x_adv, "adv_map": res.adv_map}

            key = setup.key("budget", name, "adv2", {"attack": to_jsonable(cfg), "interpreter": _interp_params(interp),
                                                     "factor": factor})
            rows, _ = _run_batches(setup, key, setup.batches(), compute,
                                   f"budget/{setup.victim_name}/{name}/x{factor:g}")
            frames.append(rows.drop(columns="batch"))
            config[name][label] = cfg
    return _finish(setup, "budget", frames, {}, config, start)


EXPERIMENTS = {"main": run_main, "patch": run_patch, "random_class": run_random_class, "transfer": run_transfer,
               "budget": run_budget}
