"""The batch tasks every experiment is made of: pure functions of their explicit inputs.

An experiment (:mod:`adv2lib.experiments`) is a plan: stages of tasks, each task one batch of
images. A task is ``fn(ctx, **inputs)``, where ``inputs`` are CPU tensors and small values
(classes, targets, frozen configs, seeds) and ``ctx`` is a :class:`Context`: the victim and
its interpreters, built in the process that runs the task from a :class:`WorkerSpec`
(profile, victim, smoke, device). The serial engine calls the functions in the driver's
process with the driver's context; the Ray engine (:mod:`adv2lib.engines`) ships the spec
and the inputs to a worker, which builds (and keeps, per process) its own context. Every
random draw inside a task comes from an explicit seed, so a task gives the same numbers in
whatever process, order or machine it runs (on the same device type and thread count).

==========================  ==============================================================
task                        returns
==========================  ==============================================================
:func:`select_chunk`        which images of a chunk the victim classifies correctly
:func:`maps_batch`          an interpreter's maps of a batch's clean and PGD images (stored once)
:func:`pgd_batch`           the shared PGD baseline on a batch: rows, ``x_adv``
:func:`attack_batch`        ADV2 on a batch (+ the PGD inputs' maps): rows, tensors
:func:`transfer_batch`      one interpreter's maps of other attacks' inputs: rows, tensors
:func:`noise_floor_batch`   an interpreter's own noise floor on clean images
:func:`ablation_batch`      one ablation variant of ADV2, with its probes
:func:`member_maps_batch`   the maps of an ensemble's members (for the classes given)
:func:`adaptive_batch`      adaptive ADV2 against several interpreters at once
:func:`faithfulness_batch`  the deletion test of an interpreter's maps of clean images
==========================  ==============================================================

A context checks that the weights it loaded are the driver's (the state-dict hashes that
are part of the run keys): a worker on a node with other weights files refuses to compute.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from . import fingerprint, metrics
from .attacks import ADV2, PGD
from .errors import WeightsMismatchError
from .targets import benign_map, random_class_targets

__all__ = ["WorkerSpec", "Context", "Batch", "context", "interpreter_params", "select_chunk", "maps_batch",
           "pgd_batch", "attack_batch", "pgd_maps_batch", "transfer_batch", "noise_floor_batch", "ablation_batch", "member_maps_batch", "adaptive_batch",
           "faithfulness_batch", "map_columns", "ROW_ORDER", "PGD_RECORD"]

#: MASK's iterations in smoke runs (the full preset runs 300 embedded / 500 ImageNet).
SMOKE_MASK_ITERATIONS = 20
#: Columns of a row in this order (then the map columns, then experiment-specific ones).
ROW_ORDER = ("interpreter", "attack", "index", "position", "true_class", "target_class", "prediction", "success",
             "confidence", "iteration", "selected", "linf", "seconds", "cpu_seconds")
#: What a PGD row of an interpreter's batch takes from the shared PGD run (joined by position).
PGD_RECORD = ("prediction", "success", "confidence", "iteration", "selected", "linf", "seconds", "cpu_seconds")


# =========================================================================== context

@dataclass(frozen=True)
class WorkerSpec:
    """What a process needs to rebuild an experiment's models: picklable and hashable."""

    profile: str
    victim: str
    smoke: bool
    device: str = "auto"


@dataclass
class Context:
    """The victim (on ``device``, eval mode) and its interpreters, built on first use."""

    spec: WorkerSpec
    victim: torch.nn.Module
    device: torch.device
    fingerprint: str
    interpreters: dict = field(default_factory=dict)
    checked: set = field(default_factory=set)

    def interpreter(self, name, **options):
        """The interpreter ``name`` built with ``options`` (constructor keywords, e.g. GRAD's
        ``tau`` or MASK's ``seed``), once per process. ``name`` may also be a pair
        ``(name, options)``, the form tasks receive for an interpreter variant."""
        if isinstance(name, (tuple, list)):
            name, more = name
            options = {**dict(more), **options}
        key = (name, tuple(sorted(options.items())))
        if key not in self.interpreters:
            from .interpreters import build_interpreter

            kwargs = {"iterations": SMOKE_MASK_ITERATIONS} if name == "mask" and self.spec.smoke else {}
            self.interpreters[key] = build_interpreter(name, self.victim, **{**kwargs, **options})
        return self.interpreters[key]

    def check(self, expected: dict | None) -> None:
        """Refuse to compute with weights other than the driver's (``expected``: the victim's
        and the interpreters' fingerprints, as in the run keys)."""
        for what, value in (expected or {}).items():
            if (what, value) in self.checked:
                continue
            if what == "victim_weights":
                mine = self.fingerprint
            else:
                mine = _params_digest(interpreter_params(self.interpreter(what)))
            if mine != value:
                raise WeightsMismatchError(
                    f"this worker's {what if what != 'victim_weights' else 'victim'} weights differ from the "
                    f"driver's ({mine} != {value}): give every node the same weights files (ADV2_WEIGHTS_DIR)")
            self.checked.add((what, value))

    def to_device(self, *tensors):
        return [None if t is None else t.to(self.device) for t in tensors]


def build_context(spec: WorkerSpec) -> Context:
    """Load the victim for ``spec`` (its committed or torchvision weights) on the spec's device."""
    from .models import load_victim
    from .utils import resolve_device

    device = resolve_device(spec.device)
    victim = load_victim(spec.victim, spec.profile, device=device)
    return Context(spec, victim, device, fingerprint.state_dict(victim))


_CONTEXTS: dict = {}


def context(spec: WorkerSpec, expected: dict | None = None) -> Context:
    """The process's context for ``spec`` (built once per process), checked against ``expected``.
    A cached context whose victim no longer matches ``expected`` (its file changed) is rebuilt."""
    ctx = _CONTEXTS.get(spec)
    if ctx is None or (expected and expected.get("victim_weights") not in (None, ctx.fingerprint)):
        ctx = _CONTEXTS[spec] = build_context(spec)
    ctx.check(expected)
    return ctx


def interpreter_params(interp) -> dict:
    """An interpreter's settings and weights, as they enter the run keys."""
    from .store import to_jsonable

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
    if getattr(interp, "surrogate", "relu_backward") != "relu_backward":
        params.update(surrogate=interp.surrogate, beta=interp.beta)
    return params


def _params_digest(params: dict) -> str:
    from .store import params_hash

    return params_hash(params)


# =========================================================================== batches and rows

@dataclass(frozen=True)
class Batch:
    """Images of one task: their rank in the selection (``positions``), test-set ``indices``,
    images ``x``, true classes ``y`` and target classes ``ct`` (CPU tensors)."""

    positions: torch.Tensor
    indices: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    ct: torch.Tensor

    def __len__(self) -> int:
        return len(self.positions)

    def identity(self) -> dict:
        return {"index": self.indices.numpy(), "position": self.positions.numpy(),
                "true_class": self.y.numpy(), "target_class": self.ct.numpy()}


def map_columns(adv_map, benign, target=None) -> dict:
    """L1 and IoU columns of ``adv_map`` against the benign map (and a distinct target)."""
    adv_map, benign = adv_map.cpu(), benign.cpu()
    out = {"l1_benign": metrics.l1_distance(adv_map, benign).numpy()}
    out.update(_iou_columns(adv_map, benign, "benign"))
    ref = benign if target is None else target.cpu()
    out["l1_target"] = metrics.l1_distance(adv_map, ref).numpy()
    if target is not None:
        out.update(_iou_columns(adv_map, ref, "target"))
    return out


def _iou_columns(a, b, name) -> dict:
    curve = metrics.iou_curve(a, b)
    out = {f"iou_{name}_{int(round(k * 100)):02d}": curve[:, j].numpy() for j, k in enumerate(metrics.IOU_KS)}
    out[f"iou_{name}_mean"] = curve.mean(1).numpy()
    return out


def _frame(batch: Batch, columns: dict, extra: dict | None = None) -> pd.DataFrame:
    """Rows of ``batch`` in :data:`ROW_ORDER`, then the remaining columns, then ``extra``."""
    cols = {**batch.identity(), **columns}
    ordered = {c: cols.pop(c) for c in ROW_ORDER if c in cols}
    frame = pd.DataFrame({**ordered, **cols})
    for k, v in (extra or {}).items():
        frame[k] = v
    return frame


def result_rows(batch: Batch, res, label: str, map_cols: dict, extra: dict | None = None) -> pd.DataFrame:
    """Rows of an :class:`~adv2lib.attacks.result.AttackResult` (via its ``to_frame``) for ``batch``."""
    rec = res.to_frame(batch.x)
    n = max(1, len(batch))
    cols = {c: rec[c].to_numpy() for c in ("prediction", "success", "confidence", "iteration", "selected", "linf")}
    cols["success"], cols["selected"] = cols["success"].astype(bool), cols["selected"].astype(bool)
    cols.update(interpreter=res.interpreter or "none", attack=label, seconds=float(res.seconds) / n,
                cpu_seconds=float(res.cpu_seconds) / n, **map_cols)
    return _frame(batch, cols, extra)


# =========================================================================== tasks

@torch.no_grad()
def select_chunk(ctx: Context, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Which images of ``x`` the victim classifies as ``y`` (bool, CPU)."""
    (xd,) = ctx.to_device(x)
    return ctx.victim(xd).argmax(1).cpu() == y


def _pgd_map(ctx: Context, interp, xp: torch.Tensor, ct: torch.Tensor, pgd_map=None) -> torch.Tensor:
    """The map of the PGD inputs ``xp`` for ``ct``: the stored one (:func:`maps_batch`) when given,
    else computed here, with the same call."""
    return interp(xp, ct).detach() if pgd_map is None else ctx.to_device(pgd_map)[0]


def maps_batch(ctx: Context, interpreter, batch: Batch, x_pgd=None):
    """``interpreter``'s maps of ``batch``: ``benign_map`` (the clean images, true classes) and,
    given the shared PGD inputs ``x_pgd``, ``pgd_map`` (those inputs, target classes).

    The experiments store this once per selection and interpreter (:meth:`_Driver.maps
    <adv2lib.experiments._Driver.maps>`) and hand the maps to every attack on the same batch,
    which would otherwise recompute them: for MASK each map is a full 150-step optimisation.
    The values are the ones :func:`attack_batch` computes itself (same calls, same batch)."""
    interp = ctx.interpreter(interpreter)
    x, y, ct = ctx.to_device(batch.x, batch.y, batch.ct)
    tensors = {"benign_map": benign_map(interp, x, y)}
    if x_pgd is not None:
        (xp,) = ctx.to_device(x_pgd)
        tensors["pgd_map"] = _pgd_map(ctx, interp, xp, ct)
    rows = _frame(batch, {"interpreter": interp.name, "maps": "+".join(tensors)})
    return rows, tensors


def pgd_batch(ctx: Context, batch: Batch, config, seed: int, progress: bool = False):
    """The shared PGD baseline on ``batch``: rows and ``{"x_adv"}``."""
    x, y, ct = ctx.to_device(batch.x, batch.y, batch.ct)
    res = PGD(ctx.victim, config=config, seed=seed, progress=progress).attack(x, ct, true_class=y)
    rows = result_rows(batch, res, "pgd", {})
    return rows.drop(columns="interpreter"), {"x_adv": res.x_adv}


def attack_batch(ctx: Context, interpreter: str, batch: Batch, config, seed: int, *,
                 target_map=None, benign=None, pool=None, pool_seed: int | None = None, x_pgd=None,
                 pgd_record=None, pgd_map=None, extra: dict | None = None, keep=None, levels=(),
                 progress: bool = False):
    """ADV2 against ``interpreter`` on ``batch``: its rows and tensors. Given the shared PGD
    inputs ``x_pgd`` and their stored record ``pgd_record`` (the PGD run's rows for these
    images, :data:`PGD_RECORD` columns), also a PGD row per image: the record joined with the
    maps of the PGD input under ``interpreter``.

    The interpretation target is ``target_map`` when given; else, with ``pool = (test-set
    indices, images, classes)``, another class's map (:func:`~adv2lib.targets.random_class_targets`, seeded by
    ``pool_seed``); else the benign map. ``benign`` (maps of the clean images) is computed
    when not given, and so is ``pgd_map`` (the maps of ``x_pgd``, :func:`maps_batch`).
    ``keep``: names of the tensors to return (default: all). ``interpreter``
    may be a variant ``(name, options)`` (:meth:`Context.interpreter`).

    ``levels`` (confidence levels, ``None`` for argmax only): also one row per level and
    image for the selection rule at that level, recorded in the same run
    (:class:`~adv2lib.attacks.loop.LevelRecord`): ``record = "level"``, ``rule = "select"``,
    ``level`` (0 for argmax only), ``success`` whether a checked iterate reached the level, its
    ``confidence`` and its map's distances (:mod:`adv2lib.rows`). The attack's own probes
    (``AttackResult.probes``, e.g. MASK's ``inner_map``) are returned as ``probe_<name>`` tensors.
    """
    interp = ctx.interpreter(interpreter)
    x, y, ct = ctx.to_device(batch.x, batch.y, batch.ct)
    tensors, extra = {}, dict(extra or {})
    if benign is None:
        benign = benign_map(interp, x, y)
    if pool is not None:
        pool_idx, pool_x, pool_y = pool
        target_map, src_pos, src_class = random_class_targets(interp, ctx.to_device(pool_x)[0], pool_y, batch.y,
                                                              batch.ct, seed=pool_seed)
        target_map = target_map.detach()
        extra.update(source_index=pool_idx[src_pos].numpy(), source_class=src_class.numpy())
        tensors.update(target_image=pool_x[src_pos], source_class=src_class)
    own_target = target_map is not None
    mt = benign if target_map is None else target_map
    res = ADV2(ctx.victim, interp, config=config, seed=seed, progress=progress, levels=levels).attack(
        x, ct, target_map=ctx.to_device(mt)[0], true_class=y)
    ref = mt.cpu() if own_target else None
    rows = [result_rows(batch, res, "adv2", map_columns(res.adv_map, benign, ref), extra)]
    for level, rec in res.levels.items():
        found = rec["found"]
        cols = {"attack": "adv2", "record": "level", "rule": "select", "level": 0.0 if level is None else float(level),
                "success": found.numpy(), "confidence": rec["confidence"].masked_fill(~found, float("nan")).numpy(),
                **map_columns(rec["map"], benign, ref)}
        rows.append(_frame(batch, cols, {k: v for k, v in extra.items() if k not in cols}))
    tensors.update(x=x, x_adv=res.x_adv, benign_map=benign, adv_map=res.adv_map, target_map=mt,
                   true_class=batch.y, target_class=batch.ct, index=batch.indices,
                   **{f"probe_{k}": v for k, v in res.probes.items()})
    if x_pgd is not None:
        (xp,) = ctx.to_device(x_pgd)
        pgd_map = _pgd_map(ctx, interp, xp, ct, pgd_map)
        rows.insert(0, _pgd_rows(batch, interp.name, pgd_record, map_columns(pgd_map, benign, ref), extra))
        tensors.update(x_pgd=xp, pgd_map=pgd_map)
    out = pd.concat(rows, ignore_index=True)
    out["interpreter"] = interp.name
    if keep is not None:
        tensors = {k: tensors[k] for k in keep}
    return out, tensors


def _pgd_rows(batch: Batch, interpreter: str, record, map_cols: dict, extra: dict | None) -> pd.DataFrame:
    """PGD rows: the shared PGD run's stored record of these images joined with their maps."""
    record = record.reset_index(drop=True)
    if record["position"].tolist() != batch.positions.tolist():
        raise ValueError("the PGD record does not belong to this batch's images")
    cols = {c: record[c].to_numpy() for c in PGD_RECORD}
    return _frame(batch, {"interpreter": interpreter, "attack": "pgd", **cols, **map_cols}, extra)


def pgd_maps_batch(ctx: Context, interpreter: str, batch: Batch, x_pgd, pgd_record, extra: dict | None = None,
                   benign=None, pgd_map=None):
    """PGD rows of ``batch`` under ``interpreter`` (the PGD record joined with the maps of the
    PGD inputs against the benign map) and ``{"pgd_map"}``; ``benign`` and ``pgd_map`` are
    computed when not given (:func:`maps_batch`)."""
    interp = ctx.interpreter(interpreter)
    x, y, ct, xp = ctx.to_device(batch.x, batch.y, batch.ct, x_pgd)
    pgd_map = _pgd_map(ctx, interp, xp, ct, pgd_map)
    benign = benign_map(interp, x, y) if benign is None else benign
    rows = _pgd_rows(batch, interp.name, pgd_record, map_columns(pgd_map, benign), extra)
    return rows, {"pgd_map": pgd_map}


def transfer_batch(ctx: Context, interpreter: str, batch: Batch, sources: dict, benign):
    """``interpreter``'s maps (for ``ct``) of every source's adversarial inputs (``sources``:
    name -> ``(x_adv, success)`` for ``batch``; name ``"pgd"`` or the interpreter ADV2 attacked),
    compared with its benign maps ``benign``. Rows: ``interpreter`` (the one explaining),
    ``attack`` ("pgd" or "adv2") and ``source_interpreter`` (the one ADV2 attacked; None for PGD)."""
    interp = ctx.interpreter(interpreter)
    (ct,) = ctx.to_device(batch.ct)
    frames, maps = [], {}
    for name, (x_adv, success) in sources.items():
        m = interp(ctx.to_device(x_adv)[0], ct).detach().cpu()
        maps[f"map_{name}"] = m
        cols = map_columns(m, benign)
        cols.pop("l1_target")
        frames.append(pd.DataFrame({
            "interpreter": interp.name, "attack": "pgd" if name == "pgd" else "adv2",
            "source_interpreter": None if name == "pgd" else name, **batch.identity(), "success": success.numpy(),
            "l1_benign": cols.pop("l1_benign"), "iou_benign_mean": cols.pop("iou_benign_mean"), **cols}))
    return pd.concat(frames, ignore_index=True), {"benign_map": benign, **maps}


def noise_floor_batch(ctx: Context, interpreter: str, batch: Batch, seeds=(0, 1)):
    """The interpreter's own noise floor on clean images: L1 (and IoU) between two maps of
    the same image for its true class, computed with the interpreter's ``seed`` set to each
    of ``seeds`` (MASK's jitter offsets); an interpreter without a seed is simply run twice,
    which measures whether it is deterministic. Rows: ``l1_floor``, ``iou_floor_mean``."""
    x, y = ctx.to_device(batch.x, batch.y)
    name = interpreter if isinstance(interpreter, str) else interpreter[0]
    seeded = hasattr(ctx.interpreter(interpreter), "seed")
    maps = [ctx.interpreter(interpreter, **({"seed": s} if seeded else {}))(x, y).detach().cpu() for s in seeds]
    cols = map_columns(maps[1], maps[0])
    return _frame(batch, {"interpreter": name, "attack": "floor", "seeded": seeded, "l1_floor": cols["l1_benign"],
                          "iou_floor_mean": cols["iou_benign_mean"]}), {"maps": torch.stack(maps, 1)}


def ablation_batch(ctx: Context, interpreter, batch: Batch, config, seed: int, *, probes=(),
                   x_pgd=None, pgd_record=None, pgd_map=None, benign=None, extra: dict | None = None,
                   progress: bool = False):
    """:func:`attack_batch` for one ablation variant, plus the measurements ``probes`` asks
    for, as columns of the ADV2 rows (and, where they apply, of the PGD rows):

    * ``"surrogate"`` (GRAD): ``l1_surrogate_<at>`` between the attack map (surrogate
      ReLU or softplus network) and the exact map, at the clean image (``benign``, true
      class), the PGD input and the returned ADV2 input (target class);
    * ``"inner"`` (MASK): ``l1_inner_full``, between the attack's warm-started inner mask on
      the final iterate and MASK rerun from scratch (with jitter) on it, and
      ``l1_inner_target``, the inner mask's distance to the benign map (what the attack sees);
    * ``"no_jitter"`` (MASK): ``l1_benign_nojitter``: the L1 to the benign map with MASK's
      jitter switched off (benign and attacked maps both recomputed that way).
    """
    rows, tensors = attack_batch(ctx, interpreter, batch, config, seed, x_pgd=x_pgd,
                                 pgd_record=pgd_record, pgd_map=pgd_map, benign=benign, extra=extra,
                                 progress=progress)
    interp = ctx.interpreter(interpreter)
    x, y, ct = ctx.to_device(batch.x, batch.y, batch.ct)
    adv = (rows["attack"] == "adv2").to_numpy()
    inputs = {"benign": (x, y), "adv": (tensors["x_adv"], ct)}
    if x_pgd is not None:
        inputs["pgd"] = (tensors["x_pgd"], ct)
    if "surrogate" in probes:
        for at, (xi, ci) in inputs.items():
            with torch.enable_grad():
                approx = interp.attack_map(xi, ci).detach()
            d = metrics.l1_distance(approx.cpu(), interp(xi, ci).detach().cpu()).numpy()
            rows[f"l1_surrogate_{at}"] = float("nan")
            if at == "pgd":
                rows.loc[~adv, f"l1_surrogate_{at}"] = d
            else:
                rows.loc[adv, f"l1_surrogate_{at}"] = d
    if "inner" in probes and "probe_inner_map" in tensors:
        inner, full = tensors["probe_inner_map"].cpu(), tensors["probe_final_map"].cpu()
        rows["l1_inner_full"] = float("nan")
        rows["l1_inner_target"] = float("nan")
        rows.loc[adv, "l1_inner_full"] = metrics.l1_distance(inner, full).numpy()
        rows.loc[adv, "l1_inner_target"] = metrics.l1_distance(inner, tensors["benign_map"].cpu()).numpy()
    if "no_jitter" in probes:
        still = ctx.interpreter(interpreter, jitter=0)
        clean = still(x, y).detach().cpu()
        rows["l1_benign_nojitter"] = float("nan")
        rows.loc[adv, "l1_benign_nojitter"] = metrics.l1_distance(still(tensors["x_adv"], ct).detach().cpu(), clean).numpy()
        if x_pgd is not None:
            rows.loc[~adv, "l1_benign_nojitter"] = metrics.l1_distance(
                still(tensors["x_pgd"], ct).detach().cpu(), clean).numpy()
    keep = ("x_adv", "adv_map", "benign_map", "probe_inner_map", "probe_final_map")
    return rows, {k: v for k, v in tensors.items() if k in keep}


def member_maps_batch(ctx: Context, interpreters, batch: Batch):
    """Each interpreter's maps of the images of ``batch`` for the classes ``batch.ct`` (the
    ensemble detector's inputs; for clean images pass their predicted class): rows (the
    batch's identity) and ``{"map_<name>": (N, 1, h, w)}``. ``interpreters``: names."""
    x, c = ctx.to_device(batch.x, batch.ct)
    out = {}
    for name in interpreters:
        interp = ctx.interpreter(name)
        out[f"map_{interp.name}"] = interp(x, c).detach().cpu()
    return _frame(batch, {"attack": "clean"}), out


def adaptive_batch(ctx: Context, members, batch: Batch, seed: int, *, evaluate=(), configs=None, weights=None,
                   benign: dict | None = None, extra: dict | None = None, progress: bool = False):
    """Adaptive ADV2 against the interpreters ``members`` at once
    (:class:`~adv2lib.attacks.ensemble.EnsembleADV2`), benign-map targets. Rows: one per image
    and interpreter, for every member and every interpreter of ``evaluate`` (e.g. one left out
    of the attack; column ``attacked`` says which): the attack's outcome, and ``l1_benign`` and
    ``iou_benign_mean`` of that interpreter's map of the returned input (for ``ct``) against its
    benign map (``benign``: name -> maps, computed when missing).
    Tensors: ``x_adv`` and ``map_<name>`` of every member and evaluated interpreter."""
    from .attacks.ensemble import EnsembleADV2

    x, y, ct = ctx.to_device(batch.x, batch.y, batch.ct)
    interps = [ctx.interpreter(m) for m in members]
    attack = EnsembleADV2(ctx.victim, interps, configs=configs, weights=weights, seed=seed, progress=progress)
    targets = {i.name: (benign or {}).get(i.name) for i in interps}
    targets = {k: (ctx.to_device(v)[0] if v is not None else None) for k, v in targets.items()}
    res = attack.attack(x, ct, target_maps={k: v for k, v in targets.items() if v is not None}, true_class=y)
    maps = {n: res.probes[f"map_{n}"] for n in attack.names}
    ref = {n: res.probes["target_maps"][n] for n in attack.names}
    for name in evaluate:
        interp = ctx.interpreter(name)
        if interp.name in maps:
            continue
        given = (benign or {}).get(interp.name)
        ref[interp.name] = ctx.to_device(given)[0] if given is not None else benign_map(interp, x, y)
        maps[interp.name] = interp(res.x_adv, ct).detach()
    frames = []
    for n, m in maps.items():
        mc = map_columns(m, ref[n])
        rows = result_rows(batch, res, "adaptive", {"l1_benign": mc["l1_benign"], "iou_benign_mean": mc["iou_benign_mean"]},
                           {"attacked": n in attack.names, **(extra or {})})
        rows["interpreter"] = n
        frames.append(rows)
    rows = pd.concat(frames, ignore_index=True)
    tensors = {"x_adv": res.x_adv, **{f"map_{n}": m for n, m in maps.items()},
               **{f"benign_{n}": r for n, r in ref.items()}}
    return rows, tensors


def faithfulness_batch(ctx: Context, interpreter, batch: Batch, fraction: float = 0.2, replacement: str = "zero",
                       n_random: int = 5, seed: int = 0):
    """The deletion test (:func:`adv2lib.faithfulness.deletion_scores`) of ``interpreter``'s maps
    of the clean images of ``batch`` for their true classes: per image ``p_clean``, ``p_top``
    (the top ``fraction`` of the map deleted) and ``p_random`` (as many random pixels)."""
    from .faithfulness import deletion_scores

    interp = ctx.interpreter(interpreter)
    x, y = ctx.to_device(batch.x, batch.y)
    maps = interp(x, y).detach()
    s = deletion_scores(ctx.victim, maps, x, y, fraction, replacement, n_random, seed)
    cols = {k: v.cpu().numpy() for k, v in s.items()}
    return _frame(batch, {"interpreter": interp.name, "attack": "deletion", **cols,
                          "replacement": replacement, "fraction": fraction}), {}
