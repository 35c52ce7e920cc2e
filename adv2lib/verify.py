"""``python -m adv2lib verify``: recompute a sample of the record's batches and compare them with the record.

Anyone can check that the numbers of the book come from this code without recomputing all of it.
Every experiment of the record (``--only`` picks some) computed its images in batches (50 images
on the embedded profile; the boundaries are part of the run keys), one run per victim and
interpreter. Verify recomputes a **seeded, stratified random sample of those batches** into a
scratch results store, each with the record's own images, targets and batch boundaries, so that
on the record's configuration every value comes back identical to the last bit:

* a **unit** is one batch of one experiment, victim and interpreter (transfer and ensemble: one
  batch of one victim with every interpreter, since their runs need all of them; and their first
  batch, since they gather their inputs by order from the first). Its cost is the record's own
  attack time for it (transfer and ensemble add the main experiment's batch they recompute first);
* the sample (:func:`plan`): first every experiment, the cheapest first, draws one unit that
  costs at most an equal share of ``--minutes`` (or its cheapest unit, when none does), then the
  experiments in turn draw further units that still fit, each time from the victim and interpreter
  drawn least often so far, until nothing fits;
  ``--seed`` sets the draw. An experiment none of whose units fits is named, with the minutes it
  needs. The studies of :data:`NEVER_SAMPLED` (the ensemble detector's designs, scored from a
  whole run; AID's variants, whose batches retrain networks first) are named as not sampled, with
  the reason;
* ``--all`` (``make reproduce``) recomputes every batch, and the experiments a sample cannot split
  (:data:`FIRST_BATCH_ONLY` and :data:`NEVER_SAMPLED`) as **whole runs**: one unit per victim,
  every batch and interpreter, computed by the experiment's function as a book build computes it
  (the run's configuration names them, ``whole_runs``);
* the batch is recomputed by the experiment's own function with its other batches left out
  (:func:`only_batch`), so the experiments it calls (transfer calls main, ensemble calls transfer)
  compute the same batch and nothing else;
* rows whose inputs differ from the record's are counted, not compared (none should, with the
  record's batches);
* per experiment and metric: the rows compared, the share **identical to the last bit**, the
  largest difference and where it is (victim, interpreter, attack, ..., position);
* per published aggregate (the mean of a metric per victim, interpreter, attack and the
  experiment's typed columns, over every image of the record): its value with the sample's
  images replaced by their recomputed values, against the record's 95% interval
  (:func:`adv2lib.stats.mean`; rates: Wilson). An aggregate outside its interval means a reader
  would see a different result: verify says what is "not reproduced" and exits with status 1.
  ``--exact`` also fails on any value that is not identical to the last bit (for a check on the
  machine and configuration the record was built with).

The scratch store is a temporary folder (``--results-dir`` keeps it). The comparison is
:func:`compare`; the output is one table (:func:`report_table`). The sample design follows the
USENIX Security artifact evaluation's "Results Reproduced" badge: the main results obtained again
within a stated tolerance (https://secartifacts.github.io/usenixsec2020/).
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import record, stats, studies
from .precision import FP32_INTERPRETERS, PRECISIONS, PrecisionEngine, claim_store, current, native, store_dir

__all__ = ["IDENTITY", "TIMING", "Sample", "plan", "only_batch", "recompute", "compare", "aggregates", "Verdict",
           "verify", "WHOLE", "recomputed_whole", "requires", "claim_moves", "report_table", "add_arguments", "main"]

#: The columns that say which measurement a row is (with the image, ``index``), never compared.
IDENTITY = ("experiment", "profile", "victim", "interpreter", "attack", "source_interpreter", "variant", "budget",
            "stage2_steps", "eps_255", "rule", "level", "record", "rts", "train_seed", "crafted_against", "attacked",
            "kind", "ensemble", "members", "score_kind", "split", "replacement", "seeded", "target_id", "position", "index", "reference")
#: Measured times: they differ on every run and are not results.
TIMING = ("seconds", "cpu_seconds")
#: What a row was computed *from*: when these differ, the recomputed row attacked another input,
#: so it is counted, not compared.
INPUTS = ("true_class", "target_class", "source_index", "source_class", "target_id")
#: Settings of a whole run stored on every row (the detector's threshold): not per-image measurements.
RUN_SETTINGS = ("threshold",)
#: Experiments whose runs need every interpreter of the request (a unit is a victim's batch).
WHOLE_REQUEST = ("transfer", "ensemble")
#: Experiments recomputed on their first batch only: they gather their inputs from their whole run
#: by order (the sources' success flags, the detector's image numbers), see :func:`only_batch`.
FIRST_BATCH_ONLY = ("transfer", "ensemble")
#: Experiments that compute another experiment's batch first when the scratch store lacks it (the
#: cross-model study: the other victim's; charged the fed victim's batch, about the same): the
#: ensemble runs transfer first, which runs main; the ensemble's designs run the ensemble. All that
#: an experiment runs first: :func:`requires`.
DEPENDS = {"transfer": "main", "ensemble": "transfer", "cross_model": "main", "aid_premise": "aid",
           "ensemble_designs": "ensemble"}


def requires(experiment: str) -> list[str]:
    """Every experiment ``experiment`` runs first (:data:`DEPENDS` followed), the nearest first."""
    out = []
    while experiment in DEPENDS:
        experiment = DEPENDS[experiment]
        out.append(experiment)
    return out
#: Studies verify never samples, with the reason it names: one computed from another experiment's stored
#: results as a whole (no batch of its own to recompute alone; it is checked through the experiment it
#: reads), and one whose every batch would first retrain networks the record's attack times do not count.
NEVER_SAMPLED = {"ensemble_designs": "it scores the ensemble experiment's stored maps as a whole (its learned combiner "
                               "trains across every image): not sampled; it rests on the ensemble experiment",
           "aid_variants": "every batch first retrains its hardened networks (minutes each, not in the record's "
                           "attack times): not sampled"}


@dataclass(frozen=True)
class Sample:
    """One unit to recompute: the record's batch ``batch`` (positions ``lo`` to ``hi - 1`` of
    ``n``) of ``experiment`` on ``victim`` under ``interpreters``, with the record's ``request``;
    ``batch`` None: the whole run (every batch, as a book build computes it)."""

    experiment: str
    request: dict
    victim: str
    interpreters: tuple
    batch: int | None
    lo: int
    hi: int
    n: int
    seconds: float        # the record's attack time for this unit (an estimate of what it costs)

    @property
    def whole(self) -> bool:
        return self.batch is None

    @property
    def label(self) -> str:
        return f"{self.victim} {'+'.join(self.interpreters)}, " + (
            "whole run" if self.whole else f"batch {self.batch} (images {self.lo}-{self.hi - 1})")


def _spec(experiment: str, req: dict, victim: str):
    """The :class:`~adv2lib.experiments.ExperimentSpec` the record's request gave ``victim``
    (the experiment's defaults for what the request leaves out)."""
    from . import experiments

    defaults = inspect.signature(studies.run_function(experiment)).parameters
    interpreters = req.get("interpreters") or defaults["interpreters"].default
    n = req.get("n_images") or defaults["n_images"].default
    return experiments.ExperimentSpec.make(experiment, req["profile"], victim, interpreters, n, req["seed"],
                                           req["smoke"], device="cpu",
                                           batch_size=(req.get("options") or {}).get("batch_size"))


def _units(experiment: str, req: dict, rows: pd.DataFrame, whole: bool = False) -> list[Sample]:
    """The units of ``experiment``'s record ``rows``: its batches, or with ``whole``, one whole run
    per victim (every interpreter), charged the record's seconds of all its rows."""
    out = []
    for victim in req["victims"]:
        spec = _spec(experiment, req, victim)
        if whole:
            mine = rows["victim"] == victim if "victim" in rows else np.ones(len(rows), bool)
            seconds = float(rows.loc[mine, "seconds"].fillna(0).sum()) if "seconds" in rows else 0.0
            out.append(Sample(experiment, req, victim, tuple(spec.interpreters), None, 0, spec.n_images,
                              spec.n_images, seconds))
            continue
        groups = [tuple(spec.interpreters)] if experiment in WHOLE_REQUEST else [(i,) for i in spec.interpreters]
        batches = spec.batches()[:1] if experiment in FIRST_BATCH_ONLY else spec.batches()
        for interpreters in groups:
            for b, lo, hi in batches:
                seconds = 0.0
                if "position" in rows:
                    # a batch holds positions lo..hi-1, or, where targets are paired with images (patch), targets
                    where = rows["target_id"] if "target_id" in rows else rows["position"]
                    mine = (rows["victim"] == victim) & where.between(lo, hi - 1)
                    if experiment not in WHOLE_REQUEST:
                        mine &= rows["interpreter"].isin(interpreters)
                    if not mine.any():      # a batch the study left out (its MASK runs on the first images only)
                        continue
                    seconds = float(rows.loc[mine, "seconds"].fillna(0).sum()) if "seconds" in rows else 0.0
                out.append(Sample(experiment, req, victim, interpreters, b, lo, hi, spec.n_images, seconds))
    return out


def plan(tables: Path, minutes: float | None = None, only: Sequence[str] | None = None,
         everything: bool = False, seed: int = 0) -> tuple[list[Sample], dict]:
    """The units of the record in ``tables`` to recompute, and ``{experiment: seconds}`` for each
    experiment none of whose units fits ``minutes`` (the cheapest unit's cost). See the module's
    docstring for the draw; ``everything``: every unit, and the experiments of :data:`FIRST_BATCH_ONLY`
    and :data:`NEVER_SAMPLED` as whole runs."""
    metas = {}
    for path in sorted(Path(tables).glob("*.json")):
        meta = json.loads(path.read_text())
        if meta.get("request") and record.table_path(tables, meta["experiment"]).is_file():
            metas[meta["experiment"]] = meta
    if only:
        unknown = sorted(set(only) - set(metas))
        if unknown:
            from .errors import ConfigError

            raise ConfigError(f"the record at {tables} has no experiment {', '.join(unknown)} (--only): it has "
                              f"{', '.join(metas) or 'none'}")
        metas = {k: v for k, v in metas.items() if k in only}
    order = _book_order(metas)
    rows = {name: record.read_table(record.table_path(tables, name)) for name in order}
    whole = set(FIRST_BATCH_ONLY) | set(NEVER_SAMPLED) if everything or minutes is None else set()
    units = {name: [] if name in NEVER_SAMPLED and name not in whole else
             _units(name, metas[name]["request"], rows[name], name in whole) for name in order}
    for name in order:                            # what recomputing its batch (its whole run) costs first
        extra = Counter()
        for dependency in requires(name) if units[name] else []:
            dep_rows = rows.get(dependency)
            if dep_rows is None and record.table_path(tables, dependency).is_file():
                dep_rows = record.read_table(record.table_path(tables, dependency))
            if dep_rows is not None:
                extra.update(_batch_costs(dependency, metas[name]["request"], dep_rows, name in whole))
        if extra:
            units[name] = [Sample(u.experiment, u.request, u.victim, u.interpreters, u.batch, u.lo, u.hi, u.n,
                                  u.seconds + extra.get((u.victim, u.batch), 0.0)) for u in units[name]]
    if whole:
        return [u for name in order for u in units[name]], {}
    rng = np.random.default_rng(seed)
    for name in order:
        units[name] = [units[name][i] for i in rng.permutation(len(units[name]))]
    left, chosen, drawn = 60.0 * minutes, [], Counter()
    share = left / max(1, len(order))

    def take(u):
        nonlocal left
        chosen.append(u)
        drawn.update([(u.experiment, u.victim), (u.experiment, u.interpreters), u.victim, u.interpreters])
        left -= u.seconds
        return u

    def draw(name, limit):
        fitting = [u for u in units[name] if u not in chosen and u.seconds <= limit]
        if not fitting:
            return None
        return min(fitting, key=lambda u: (drawn[name, u.victim] + drawn[name, u.interpreters],
                                           drawn[u.victim] + drawn[u.interpreters], fitting.index(u)))

    cheapest = {name: min((u.seconds for u in units[name]), default=math.inf) for name in order}
    for name in sorted(order, key=cheapest.get):      # one each, the cheapest experiments first
        u = draw(name, min(max(share, cheapest[name]), left))
        if u is not None:
            take(u)
    while True:                                       # then in turn, what still fits
        added = [take(u) for u in (draw(name, left) for name in order) if u is not None]
        if not added:
            break
    sampled = {u.experiment for u in chosen}
    missing = {name: min(u.seconds for u in units[name]) for name in order if name not in sampled and units[name]}
    missing.update({name: math.inf for name in order if name in NEVER_SAMPLED})
    position = {name: i for i, name in enumerate(order)}
    return sorted(chosen, key=lambda u: (position[u.experiment], u.victim, u.interpreters, u.batch)), missing


def _batch_costs(experiment: str, req: dict, rows: pd.DataFrame, whole: bool = False) -> dict:
    """``{(victim, batch): seconds}``: the record's attack time of a whole batch of ``experiment``
    (every interpreter of ``req``), which a dependent experiment recomputes first; ``whole``: of its
    whole run (``batch`` None)."""
    out = {}
    for u in _units(experiment, {**req, "experiment": experiment}, rows, whole):
        out[u.victim, u.batch] = out.get((u.victim, u.batch), 0.0) + u.seconds
    return out


def _book_order(names) -> list[str]:
    from .report.chapter import CHAPTER_EXPERIMENTS

    return [e for e in CHAPTER_EXPERIMENTS if e in names] + sorted(set(names) - set(CHAPTER_EXPERIMENTS))


@contextlib.contextmanager
def only_batch(batch: int, lo: int):
    """Within the block, every experiment computes only its batch ``batch`` (first position
    ``lo``) of its own runs: :meth:`~adv2lib.experiments.ExperimentSpec.batches` keeps that batch
    with its boundaries (the images, targets and batch composition of the record) and leaves out
    the others. The shared PGD run and the interpreters' maps (:meth:`_Driver.pgd
    <adv2lib.experiments._Driver.pgd>`, ``_Driver.maps``) keep every batch: an experiment may
    draw its inputs from the whole selection (the patch experiment pairs each target with the
    benign map farthest from it), and they cost little beside the attacks. A run's tensors read
    back from the one batch alone (:meth:`~adv2lib.store.ResultsStore.concat`) start with ``lo``
    rows of zeros, so that the experiment's slices by image position (``[lo:hi]``) find the batch
    where they look for it; no value of those zeros is ever read. Verify's own switch, set in the
    driver process (the engines' workers call none of these). Transfer and ensemble gather their
    inputs from their whole run by order, so verify recomputes their first batch only
    (:data:`FIRST_BATCH_ONLY`)."""
    import torch

    from .experiments import ExperimentSpec, _Driver
    from .store import ResultsStore

    every, concat, pgd, maps = ExperimentSpec.batches, ResultsStore.concat, _Driver.pgd, _Driver.maps
    whole = [0]          # > 0 while the shared runs are computed: every batch

    def batches(self, n=None):
        out = every(self, n)
        return out if n is not None or whole[0] else [t for t in out if t[0] == batch]

    def padded(loaded: dict):
        rows, tensors = concat(loaded)
        if list(loaded) == [batch] and lo > 0:
            tensors = {k: torch.cat([v.new_zeros((lo, *v.shape[1:])), v]) for k, v in tensors.items()}
        return rows, tensors

    def on_every_batch(method):
        def run(self, *args, **kwargs):
            whole[0] += 1
            try:
                return method(self, *args, **kwargs)
            finally:
                whole[0] -= 1
        return run

    ExperimentSpec.batches, ResultsStore.concat = batches, staticmethod(padded)
    _Driver.pgd, _Driver.maps = on_every_batch(pgd), on_every_batch(maps)
    try:
        yield
    finally:
        ExperimentSpec.batches, ResultsStore.concat, _Driver.pgd, _Driver.maps = every, staticmethod(concat), pgd, maps


def recompute(sample: Sample, results_dir: Path, engine=None, device: str = "cpu") -> pd.DataFrame:
    """The rows of ``sample``'s batch, computed into ``results_dir`` with the record's request."""
    req = sample.request
    options = {k: v for k, v in (req.get("options") or {}).items() if k != "n_images"}
    kwargs = dict(profile=req["profile"], victim=sample.victim, interpreters=list(sample.interpreters),
                  seed=req["seed"], smoke=req["smoke"], device=device, results_dir=str(results_dir),
                  progress=False, n_images=sample.n, **options)
    if engine is not None:
        kwargs["engine"] = engine
    with contextlib.nullcontext() if sample.whole else only_batch(sample.batch, sample.lo):
        return studies.run_function(sample.experiment)(**kwargs).examples


def _identity(frame: pd.DataFrame) -> list[str]:
    return [c for c in IDENTITY if c in frame.columns]


def _is_measure(column: pd.Series) -> bool:
    """Numbers and booleans (a boolean column with missing values reads back as objects)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return True
    values = column.dropna()
    return len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)


def _metrics(frame: pd.DataFrame) -> list[str]:
    """The compared columns: every numeric or boolean column that is not identity or timing."""
    return [c for c in frame.columns
            if c not in IDENTITY and c not in TIMING and c not in RUN_SETTINGS and _is_measure(frame[c])]


def _key_text(v) -> str:
    """One key value as text: missing "", whole numbers without a fraction, others by ``repr``."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    if isinstance(v, (bool, np.bool_, str)):
        return str(v)
    x = float(v)
    return str(int(x)) if x.is_integer() else repr(x)


def _normalise(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Key columns as text, so that rows read back from CSV match rows computed now."""
    out = frame.copy()
    for c in keys:
        out[c] = out[c].map(_key_text)
    return out


def matched(recorded: pd.DataFrame, recomputed: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The record's rows and the recomputed rows of the same measurement and image, side by side
    (``<metric>`` and ``<metric>_new``), with the identity and metric columns."""
    keys = [c for c in _identity(recomputed) if c in recorded.columns]
    metrics = [m for m in _metrics(recomputed) if m in recorded.columns and _is_measure(recorded[m])]
    a = _normalise(recorded, keys)[keys + metrics]
    b = _normalise(recomputed, keys)[keys + metrics]
    both = a.merge(b, on=keys, how="inner", suffixes=("", "_new"), validate="one_to_one")
    same_input = np.ones(len(both), bool)
    for c in INPUTS:
        if c in metrics:
            same_input &= _identical(both[c].astype(float).to_numpy(), both[f"{c}_new"].astype(float).to_numpy())
    kept = both[same_input].reset_index(drop=True)
    kept.attrs["other_inputs"] = int((~same_input).sum())
    return kept, keys, metrics


def _identical(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


def compare(experiment: str, recorded: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """Per metric: ``rows`` compared, ``identical`` (share equal to the last bit, NaN = NaN),
    ``max_diff`` (largest absolute difference) and ``where`` (the identity of that row)."""
    both, keys, metrics = matched(recorded, recomputed)
    out = []
    for m in metrics:
        a = both[m].astype(float).to_numpy()
        b = both[f"{m}_new"].astype(float).to_numpy()
        same = _identical(a, b)
        diff = np.where(same, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)          # a value on one side only
        worst = int(np.argmax(diff)) if len(diff) else 0
        where = "" if not len(diff) or diff[worst] == 0 else ", ".join(
            f"{k}={both.iloc[worst][k]}" for k in keys if both.iloc[worst][k] != "" and k not in ("experiment",
                                                                                                   "profile"))
        out.append({"experiment": experiment, "metric": m, "rows": len(both),
                    "other_inputs": both.attrs.get("other_inputs", 0),
                    "identical": float(same.mean()) if len(same) else float("nan"),
                    "max_diff": float(diff.max()) if len(diff) else float("nan"), "where": where,
                    "record": float(a[worst]) if len(a) else float("nan"),
                    "recomputed": float(b[worst]) if len(b) else float("nan")})
    return pd.DataFrame(out)


def _interval(values: np.ndarray, rate: bool) -> stats.Interval:
    values = values[~np.isnan(values)]
    if rate:
        return stats.rate(values.astype(bool))
    return stats.mean(values)


def aggregates(experiment: str, recorded: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """Per published aggregate that the sample touches (a metric's mean per group of the record's
    identity columns but the image): the record's estimate and 95% interval over all its images,
    and ``with_sample``: the same mean with the sample's values replaced by the recomputed ones;
    ``inside``: whether that lies in the interval."""
    both, keys, metrics = matched(recorded, recomputed)
    group_keys = [k for k in keys if k not in ("position", "index", "target_id")]      # image-level ids
    rec = _normalise(recorded, keys)
    out = []
    for key, g in rec.groupby(group_keys, sort=False) if group_keys else [((), rec)]:
        key = key if isinstance(key, tuple) else (key,)
        sel = np.logical_and.reduce([both[k] == v for k, v in zip(group_keys, key)]) if group_keys else \
            np.ones(len(both), bool)
        sample = both[sel]
        if sample.empty:
            continue
        for m in metrics:
            values = g[m]
            rate = not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
            full = values.astype(float).to_numpy()
            if np.all(np.isnan(full)):
                continue
            iv = _interval(full, rate)
            ids = [c for c in ("position", "index", "target_id") if c in g]
            replaced = g.set_index(ids)[m].astype(float).copy()
            new = sample.set_index(ids)[f"{m}_new"].astype(float)
            replaced.loc[new.index] = new.to_numpy()
            r = replaced.to_numpy()
            with_sample = float(np.nanmean(r)) if np.any(~np.isnan(r)) else float("nan")
            if math.isfinite(iv.lo) and math.isfinite(iv.hi):
                inside = bool(iv.lo - 1e-12 <= with_sample <= iv.hi + 1e-12) if math.isfinite(with_sample) else False
            else:       # too few images for an interval: the mean itself must come back
                inside = bool(with_sample == iv.estimate or (math.isnan(with_sample) and math.isnan(iv.estimate)))
            out.append({"experiment": experiment, **dict(zip(group_keys, key)), "metric": m,
                        "estimate": iv.estimate, "lo": iv.lo, "hi": iv.hi, "n": iv.n, "sampled": len(sample),
                        "with_sample": with_sample, "inside": inside})
    return pd.DataFrame(out)


@dataclass
class Verdict:
    """What verify found: per experiment the comparison and aggregates, the seconds it took."""

    samples: list[Sample] = field(default_factory=list)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    aggregates: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: dict = field(default_factory=dict)        # per unit (its label), what recomputing it took
    claims: pd.DataFrame = field(default_factory=pd.DataFrame)  # claim_moves: verdicts of fully recomputed experiments
    not_sampled: dict = field(default_factory=dict)    # experiment -> the cheapest unit's seconds

    def failures(self, exact: bool = False) -> list[str]:
        """One line per aggregate outside its interval (and with ``exact``, per metric not identical)."""
        out = []
        if not self.aggregates.empty:
            bad = self.aggregates[~self.aggregates["inside"].astype(bool)]
            for _, r in bad.iterrows():
                where = ", ".join(f"{k}={r[k]}" for k in r.index if k not in (
                    "experiment", "profile", "metric", "estimate", "lo", "hi", "n", "sampled", "with_sample",
                    "inside", "unit") and isinstance(r[k], str) and r[k] != "")
                which = "every image" if r.get("unit") == WHOLE else "the sample"
                out.append(f"{r['experiment']} ({where}): {r['metric']} {r['with_sample']:.6g} with {which} "
                           f"recomputed, outside the record's {r['estimate']:.6g} [{r['lo']:.6g}, {r['hi']:.6g}]")
        if exact and not self.comparison.empty:
            for _, r in self.comparison[self.comparison["identical"] < 1].iterrows():
                out.append(f"{r['experiment']}: {r['metric']} identical on {r['identical']:.1%} of {r['rows']} rows; "
                           f"largest difference {r['max_diff']:.3g} at {r['where']} (record {r['record']:.6g}, "
                           f"recomputed {r['recomputed']:.6g})")
        return out


def verify(samples: Sequence[Sample], tables: Path, results_dir: Path, engine=None, device: str = "cpu",
           say=print) -> Verdict:
    """Recompute every unit into ``results_dir`` and compare it with the record in ``tables``
    (the record's rows of the unit's images only)."""
    verdict = Verdict(list(samples))
    comparisons, aggs, tables_read, units = [], [], {}, {}
    for s in samples:
        say(f"verify: {s.experiment}: {s.label} (the record took {s.seconds:.0f} s for it) ...")
        start = time.perf_counter()
        new = recompute(s, results_dir, engine, device)
        verdict.seconds[s.experiment, s.label] = time.perf_counter() - start
        if s.experiment not in tables_read:
            tables_read[s.experiment] = record.read_table(record.table_path(tables, s.experiment))
        recorded = tables_read[s.experiment]
        unit = new[new["victim"] == s.victim]
        if s.experiment not in WHOLE_REQUEST and not s.whole and "interpreter" in unit:
            unit = unit[unit["interpreter"].isin(s.interpreters) | (unit["interpreter"] == "none")]
        units.setdefault(s.experiment, []).append(unit)
        comparisons.append(compare(s.experiment, recorded, unit).assign(unit=s.label))
        aggs.append(aggregates(s.experiment, recorded, unit).assign(unit=s.label))
        say(f"verify: {s.experiment}: {verdict.seconds[s.experiment, s.label]:.0f} s")
    verdict.comparison = pd.concat(comparisons, ignore_index=True) if comparisons else pd.DataFrame()
    whole = recomputed_whole(tables_read, units)
    for experiment, new in whole.items():        # the aggregates with every image recomputed
        aggs.append(aggregates(experiment, tables_read[experiment], new).assign(unit=WHOLE))
    verdict.aggregates = pd.concat(aggs, ignore_index=True) if aggs else pd.DataFrame()
    verdict.claims = claim_moves(tables_read, whole)
    return verdict


#: The ``unit`` of the aggregates computed with every image of an experiment recomputed.
WHOLE = "all batches"


def recomputed_whole(recorded: dict, recomputed: dict) -> dict:
    """The experiments that came back in full (every row of the record matched by a recomputed one
    on the same inputs): experiment -> its recomputed rows, one per measurement."""
    out = {}
    for experiment, frames in recomputed.items():
        new = pd.concat(frames, ignore_index=True)
        new = new.drop_duplicates(subset=_identity(new), ignore_index=True)   # PGD's rows come with every unit
        if len(matched(recorded[experiment], new)[0]) == len(recorded[experiment]):
            out[experiment] = new
    return out


def claim_moves(recorded: dict, whole: dict) -> pd.DataFrame:
    """Per test of a claim (:data:`adv2lib.report.claims.CLAIM_RULES`) of an experiment that came
    back in full (``whole``: :func:`recomputed_whole`): the record's estimate, interval and verdict
    beside those judged from the recomputed rows alone. Claims that also need another experiment's
    table are left out."""
    from .report import claims
    from .report.cells import CELL_KEYS

    shown = ["estimate", "lo", "hi", "verdict"]
    out = []
    for experiment, new in whole.items():
        before, after = claims.claim_tests({experiment: recorded[experiment]}), claims.claim_tests({experiment: new})
        if before.empty or after.empty:
            continue
        cell = ["claim", *(c for c in CELL_KEYS if c in before and c in after), "statistic"]
        both = before[cell + shown].merge(after[cell + shown], on=cell, suffixes=("", "_new"), validate="one_to_one")
        out.append(both.assign(same=both["verdict"] == both["verdict_new"]).assign(experiment=experiment))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def report_table(verdict: Verdict) -> pd.DataFrame:
    """One row per unit recomputed: its rows compared, the share of values identical to the last
    bit (over every metric), the metric with the largest difference and where, the aggregates it
    touches and how many fall outside the record's interval, the record's seconds and the
    recomputation's; then one row per experiment left out (none of its units fits the minutes)."""
    out = []
    for s in verdict.samples:
        def mine(frame):
            if frame.empty:
                return frame
            return frame[(frame["experiment"] == s.experiment) & (frame["unit"] == s.label)]

        c, a = mine(verdict.comparison), mine(verdict.aggregates)
        values = float((c["rows"] * c["identical"]).sum() / c["rows"].sum()) if len(c) and c["rows"].sum() else \
            float("nan")
        worst = c.loc[c["max_diff"].idxmax()] if len(c) and c["max_diff"].max() > 0 else None
        out.append({"experiment": s.experiment, "unit": s.label, "images": f"{s.hi - s.lo} of {s.n}",
                    "rows": int(c["rows"].max()) if len(c) else 0,
                    "rows on other inputs": int(c["other_inputs"].max()) if len(c) else 0,
                    "identical values": values,
                    "largest difference": "none" if worst is None else
                    f"{worst['max_diff']:.3g} in {worst['metric']} ({worst['where']})",
                    "aggregates": len(a), "outside interval": int((~a["inside"].astype(bool)).sum()) if len(a) else 0,
                    "record seconds": round(s.seconds, 1),
                    "seconds": round(verdict.seconds.get((s.experiment, s.label), float("nan")), 1)})
    for name, seconds in verdict.not_sampled.items():
        out.append({"experiment": name, "unit": _not_sampled(name, seconds),
                    "images": "0", "rows": 0, "rows on other inputs": 0, "identical values": float("nan"),
                    "largest difference": "", "aggregates": 0, "outside interval": 0,
                    "record seconds": round(seconds, 1) if math.isfinite(seconds) else float("nan"),
                    "seconds": 0.0})
    return pd.DataFrame(out)


def _not_sampled(name: str, seconds: float) -> str:
    return f"not sampled: {NEVER_SAMPLED[name]}" if name in NEVER_SAMPLED else \
        f"not sampled: its cheapest unit took the record {seconds:.0f} s"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=10.0,
                   help="about how long the recomputation may take, by the record's own times (default 10)")
    p.add_argument("--seed", type=int, default=0, help="the draw of the batches (default 0)")
    p.add_argument("--all", dest="everything", action="store_true",
                   help="recompute every batch of every experiment, and as whole runs those a sample cannot "
                        "split (transfer, ensemble, ensemble_designs, aid_variants) (make reproduce)")
    p.add_argument("--only", nargs="+", metavar="EXPERIMENT", help="verify only these experiments")
    p.add_argument("--profile", default="embedded", choices=["embedded", "imagenet"])
    p.add_argument("--smoke", action="store_true", help="the smoke record")
    p.add_argument("--results-dir", default=None,
                   help="the scratch store (default: a temporary folder, removed afterwards)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--engine", choices=["serial", "ray"], default="serial")
    p.add_argument("--threads", type=int, default=0, help="torch threads of the serial engine (0: torch's default)")
    p.add_argument("--exact", action="store_true",
                   help="also fail on any value not identical to the last bit (same machine and configuration)")
    p.add_argument("--json", dest="json_out", default=None, metavar="FILE",
                   help="write the comparison and the aggregates as JSON")
    p.add_argument("--keep", default=None, metavar="NAME",
                   help="keep the summary in the record (record/<scale>/verify/NAME.json), where the Reproduce and "
                        "Artifact Appendix chapters show it")
    p.add_argument("--label", default=None, help="how the kept run is named in the book (default: NAME)")
    p.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="recompute with the victims' passes in this precision (adv2lib.precision: image selection and "
                        "MASK's tasks keep fp32; with --results-dir, that precision's store) and compare with the "
                        "record (the setting's, ADV2_PRECISION, default fp32): bf16 against the fp32 record is the "
                        "test of a reduced precision")


def main(args: argparse.Namespace) -> int:
    import torch

    from .engines import resolve_engine
    from .errors import ConfigError

    if args.threads:
        torch.set_num_threads(args.threads)
    # the record is the setting's (ADV2_PRECISION, default fp32); --precision recomputes in another,
    # e.g. bf16 against the fp32 record: the test of a reduced precision
    args.precision = args.precision or current()
    engine = resolve_engine(args.engine)
    if args.precision != "fp32":
        engine = PrecisionEngine(args.precision, engine, torch.device(args.device).type)  # checks the device
    store = claim_store(store_dir(args.results_dir, args.precision), args.precision) if args.results_dir else None
    tables = record.tables_dir(args.profile, args.smoke)
    if not tables.is_dir():
        raise ConfigError(f"no record at {tables}: build the book first (make book)")
    start, cpu_start = time.perf_counter(), time.process_time()
    samples, not_sampled = plan(tables, None if args.everything else args.minutes, args.only, args.everything,
                                args.seed)
    manifest = record.read_manifest(tables.parent)
    print(f"verify: the record at {tables.parent} (commit {((manifest.get('commit') or {}).get('sha') or '?')[:10]},"
          f" code {(manifest.get('inputs') or {}).get('code', '?')}); this code: {record.inputs(args.profile)['code']}; "
          f"{len(samples)} batches of {len({s.experiment for s in samples})} experiments (seed {args.seed}), "
          f"engine {args.engine}, torch threads {torch.get_num_threads()}, precision {args.precision}")
    for name, seconds in not_sampled.items():
        print(f"verify: {name}: " + (_not_sampled(name, seconds) if name in NEVER_SAMPLED else
                                     f"no batch fits --minutes {args.minutes:g} (its cheapest took the record "
                                     f"{seconds:.0f} s)"))
    with tempfile.TemporaryDirectory(prefix="adv2-verify-") as scratch:
        verdict = verify(samples, tables, store or claim_store(Path(scratch), args.precision), engine, args.device)
    verdict.not_sampled = not_sampled
    table = report_table(verdict)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 80):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "table": table.to_dict("records"), "comparison": verdict.comparison.to_dict("records"),
            "aggregates": verdict.aggregates.to_dict("records"),
            "configuration": {"engine": args.engine, "threads": torch.get_num_threads(), "device": args.device,
                              "seed": args.seed, "minutes": args.minutes, "precision": args.precision}},
            indent=2, default=str))
    failures = verdict.failures(args.exact)
    if failures:
        lines = [f"not reproduced ({len(failures)}):", *(f"  {line}" for line in failures)]
    else:
        lines = ["reproduced: every aggregate the sample touches stays inside the record's 95% interval"
                 + (" and every value is identical to the last bit" if args.exact else "")]
    print("\n".join(lines))
    if args.keep:
        from .allocator import describe
        from .fileio import atomic_write
        from .runner import hardware

        machine = hardware()
        kept = {"label": args.label or args.keep, "table": table.to_dict("records"),
                "configuration": {"engine": args.engine, "threads": torch.get_num_threads(), "device": args.device,
                                  "allocator": describe(), "exact": bool(args.exact), "seed": args.seed,
                                  "precision": args.precision,
                                  "fp32_interpreters": sorted(FP32_INTERPRETERS) if args.precision != "fp32" else [],
                                  "native": native(args.precision, torch.device(args.device).type),
                                  "minutes": None if args.everything else args.minutes,
                                  "whole_runs": sorted({s.experiment for s in samples if s.whole}),
                                  **{k: machine[k] for k in ("cpu", "cpu_count")}},
                "seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": round(time.process_time() - cpu_start, 1), "last_line": lines[0],
                "code": record.inputs(args.profile)["code"], "failures": failures}
        # the Reproduce chapter's precision table reads every aggregate (an fp32 run recomputed whole: the
        # control, how often fp32 itself leaves the record's intervals); of an experiment recomputed in
        # full, its whole aggregates only
        if args.precision != "fp32" or args.everything:
            aggs = verdict.aggregates
            whole = set(aggs.loc[aggs["unit"] == WHOLE, "experiment"]) if len(aggs) else set()
            kept["aggregates"] = aggs[(aggs["unit"] == WHOLE) | ~aggs["experiment"].isin(whole)].to_dict("records") \
                if len(aggs) else []
            kept["claims"] = verdict.claims.to_dict("records")
        atomic_write(tables.parent / "verify" / f"{args.keep}.json", json.dumps(kept, indent=2, default=str))
    return 1 if failures else 0
