"""``python -m adv2lib verify``: recompute a sample of the record and compare it with the record.

Anyone can check that the numbers of the book come from this code without recomputing all of it.
For every experiment of the record (``--only`` picks some), verify reruns the experiment's request
(:mod:`adv2lib.record`) on its first ``k`` images into a scratch results store, then compares the
recomputed per-image rows with the record's rows of the same images:

* the **sample**: the first ``k`` images of the experiment's seeded random selection (the
  selection and the target classes of ``k`` images are the first ``k`` of those of ``n``), for
  every victim and every interpreter of the request, with ``k`` chosen per experiment from the
  record's own attack times so that the whole run fits ``--minutes`` (one image at least);
  ``--all`` recomputes every image (``make reproduce``);
* rows whose inputs differ from the record's (another target paired with the image: the patch and
  random-class experiments draw their targets from the whole selection) are counted, not compared;
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
:func:`compare`; the output is one table (:func:`report_table`).
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import record, stats

__all__ = ["IDENTITY", "TIMING", "Sample", "plan", "recompute", "compare", "aggregates", "Verdict", "verify",
           "report_table", "add_arguments", "main"]

#: The columns that say which measurement a row is (with the image, ``index``), never compared.
IDENTITY = ("experiment", "profile", "victim", "interpreter", "attack", "source_interpreter", "variant", "budget",
            "stage2_steps", "eps_255", "rule", "level", "record", "rts", "attacked", "kind", "ensemble",
            "score_kind", "split", "replacement", "seeded", "target_id", "position", "index", "reference")
#: Measured times: they differ on every run and are not results.
TIMING = ("seconds", "cpu_seconds")
#: What a row was computed *from*: when these differ, the recomputed row attacked another input
#: (a smaller run pairs images with other targets), so it is counted, not compared.
INPUTS = ("true_class", "target_class", "source_index", "source_class", "target_id")
#: Settings of a whole run stored on every row (the detector's threshold, set on held-out images
#: that a smaller run chooses differently): not per-image measurements.
RUN_SETTINGS = ("threshold",)
#: Size options that count images and are capped at the sample's ``k``.
IMAGE_COUNTS = ("adaptive_images",)


@dataclass(frozen=True)
class Sample:
    """One experiment to recompute: its record ``request`` on its first ``k`` images."""

    experiment: str
    request: dict
    k: int
    n: int
    seconds_per_image: float        # the record's attack wall time per image (all victims and interpreters)


def _images(meta: dict, rows: pd.DataFrame) -> int:
    if "position" in rows:
        return int(rows.groupby("victim")["position"].nunique().max())
    return int(max((meta.get("n_images") or {"": 1}).values()))


def plan(tables: Path, minutes: float | None = None, only: Sequence[str] | None = None,
         everything: bool = False) -> list[Sample]:
    """The experiments of the record in ``tables`` to recompute, each with its ``k``: the budget
    (``minutes``) is shared equally among them and ``k`` is what its share buys at the record's
    attack time per image (at least one image); ``everything``: every image."""
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
    share = None if minutes is None else 60.0 * minutes / max(1, len(metas))
    sizes, costs = {}, {}
    for name in _book_order(metas):
        rows = record.read_table(record.table_path(tables, name))
        sizes[name] = _images(metas[name], rows)
        if "seconds" in rows:
            costs[name] = float(rows["seconds"].sum()) / max(1, sizes[name])
    # an experiment whose rows keep no attack time (transfer: it explains stored inputs, and computes
    # the main experiment's when they are missing) is charged the dearest known cost per image
    unknown = max(costs.values(), default=0.0)
    out = []
    for name in _book_order(metas):
        n, per_image = sizes[name], costs.get(name, unknown)
        if everything or share is None:
            k = n
        else:
            k = int(max(1, min(n, math.floor(share / per_image) if per_image > 0 else 1)))
        out.append(Sample(name, metas[name]["request"], k, n, per_image))
    return out


def _book_order(names) -> list[str]:
    from .report.chapter import CHAPTER_EXPERIMENTS

    return [e for e in CHAPTER_EXPERIMENTS if e in names] + sorted(set(names) - set(CHAPTER_EXPERIMENTS))


def recompute(sample: Sample, results_dir: Path, engine=None, device: str = "cpu") -> pd.DataFrame:
    """The rows of ``sample``'s request on its first ``k`` images, computed into ``results_dir``."""
    from . import experiments

    req = sample.request
    options = {key: (min(value, sample.k) if key in IMAGE_COUNTS and value is not None else value)
               for key, value in (req.get("options") or {}).items() if key != "n_images"}
    kwargs = dict(profile=req["profile"], seed=req["seed"], smoke=req["smoke"], device=device,
                  results_dir=str(results_dir), progress=False, n_images=sample.k, **options)
    if req.get("interpreters") is not None:
        kwargs["interpreters"] = req["interpreters"]
    if engine is not None:
        kwargs["engine"] = engine
    run = getattr(experiments, f"run_{sample.experiment}")
    return pd.concat([run(victim=v, **kwargs).examples for v in req["victims"]], ignore_index=True)


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
    group_keys = [k for k in keys if k not in ("position", "index")]
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
            replaced = g.set_index([c for c in ("position", "index") if c in g])[m].astype(float).copy()
            new = sample.set_index([c for c in ("position", "index") if c in sample])[f"{m}_new"].astype(float)
            replaced.loc[new.index] = new.to_numpy()
            r = replaced.to_numpy()
            with_sample = float(np.nanmean(r)) if np.any(~np.isnan(r)) else float("nan")
            inside = bool(iv.lo - 1e-12 <= with_sample <= iv.hi + 1e-12) if math.isfinite(with_sample) else False
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
    seconds: dict = field(default_factory=dict)

    def failures(self, exact: bool = False) -> list[str]:
        """One line per aggregate outside its interval (and with ``exact``, per metric not identical)."""
        out = []
        if not self.aggregates.empty:
            bad = self.aggregates[~self.aggregates["inside"]]
            for _, r in bad.iterrows():
                where = ", ".join(f"{k}={r[k]}" for k in r.index if k not in (
                    "experiment", "profile", "metric", "estimate", "lo", "hi", "n", "sampled", "with_sample",
                    "inside") and isinstance(r[k], str) and r[k] != "")
                out.append(f"{r['experiment']} ({where}): {r['metric']} {r['with_sample']:.6g} with the sample "
                           f"recomputed, outside the record's {r['estimate']:.6g} [{r['lo']:.6g}, {r['hi']:.6g}]")
        if exact and not self.comparison.empty:
            for _, r in self.comparison[self.comparison["identical"] < 1].iterrows():
                out.append(f"{r['experiment']}: {r['metric']} identical on {r['identical']:.1%} of {r['rows']} rows; "
                           f"largest difference {r['max_diff']:.3g} at {r['where']} (record {r['record']:.6g}, "
                           f"recomputed {r['recomputed']:.6g})")
        return out


def verify(samples: Sequence[Sample], tables: Path, results_dir: Path, engine=None, device: str = "cpu",
           say=print) -> Verdict:
    """Recompute every sample into ``results_dir`` and compare it with the record in ``tables``."""
    verdict = Verdict(list(samples))
    comparisons, aggs = [], []
    for s in samples:
        say(f"verify: {s.experiment}: recomputing the first {s.k} of {s.n} images "
            f"(the record took {s.seconds_per_image * s.k:.0f} s of attack time for them) ...")
        start = time.perf_counter()
        new = recompute(s, results_dir, engine, device)
        verdict.seconds[s.experiment] = time.perf_counter() - start
        recorded = record.read_table(record.table_path(tables, s.experiment))
        comparisons.append(compare(s.experiment, recorded, new))
        aggs.append(aggregates(s.experiment, recorded, new))
        say(f"verify: {s.experiment}: {verdict.seconds[s.experiment]:.0f} s")
    verdict.comparison = pd.concat(comparisons, ignore_index=True) if comparisons else pd.DataFrame()
    verdict.aggregates = pd.concat(aggs, ignore_index=True) if aggs else pd.DataFrame()
    return verdict


def report_table(verdict: Verdict) -> pd.DataFrame:
    """One row per experiment: images recomputed, rows compared, the share of values identical to
    the last bit (over every metric), the metric with the largest difference and where, the
    aggregates checked and how many fall outside the record's interval, and the seconds taken."""
    out = []
    for s in verdict.samples:
        c = verdict.comparison[verdict.comparison["experiment"] == s.experiment] if len(verdict.comparison) else \
            pd.DataFrame()
        a = verdict.aggregates[verdict.aggregates["experiment"] == s.experiment] if len(verdict.aggregates) else \
            pd.DataFrame()
        values = float((c["rows"] * c["identical"]).sum() / c["rows"].sum()) if len(c) and c["rows"].sum() else \
            float("nan")
        worst = c.loc[c["max_diff"].idxmax()] if len(c) and c["max_diff"].max() > 0 else None
        out.append({"experiment": s.experiment, "images": f"{s.k} of {s.n}",
                    "rows": int(c["rows"].max()) if len(c) else 0,
                    "rows on other inputs": int(c["other_inputs"].max()) if len(c) else 0,
                    "identical values": values,
                    "largest difference": "none" if worst is None else
                    f"{worst['max_diff']:.3g} in {worst['metric']} ({worst['where']})",
                    "aggregates": len(a), "outside interval": int((~a["inside"]).sum()) if len(a) else 0,
                    "seconds": round(verdict.seconds.get(s.experiment, float("nan")), 1)})
    return pd.DataFrame(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=10.0,
                   help="about how long the recomputation may take (default 10; shared among the experiments)")
    p.add_argument("--all", dest="everything", action="store_true",
                   help="recompute every image of every experiment (make reproduce)")
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


def main(args: argparse.Namespace) -> int:
    import torch

    from .engines import resolve_engine
    from .errors import ConfigError

    if args.threads:
        torch.set_num_threads(args.threads)
    tables = record.tables_dir(args.profile, args.smoke)
    if not tables.is_dir():
        raise ConfigError(f"no record at {tables}: build the book first (make book)")
    start = time.perf_counter()
    samples = plan(tables, None if args.everything else args.minutes, args.only, args.everything)
    engine = resolve_engine(args.engine)
    manifest = record.read_manifest(tables.parent)
    print(f"verify: the record at {tables.parent} (commit {((manifest.get('commit') or {}).get('sha') or '?')[:10]},"
          f" code {(manifest.get('inputs') or {}).get('code', '?')}); this code: {record.inputs(args.profile)['code']}; "
          f"{len(samples)} experiments, engine {args.engine}, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="adv2-verify-") as scratch:
        verdict = verify(samples, tables, Path(args.results_dir or scratch), engine, args.device)
    table = report_table(verdict)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 80):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "table": table.to_dict("records"), "comparison": verdict.comparison.to_dict("records"),
            "aggregates": verdict.aggregates.to_dict("records"),
            "configuration": {"engine": args.engine, "threads": torch.get_num_threads(), "device": args.device}},
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

        kept = {"label": args.label or args.keep, "table": table.to_dict("records"),
                "configuration": {"engine": args.engine, "threads": torch.get_num_threads(), "device": args.device,
                                  "allocator": describe(), "exact": bool(args.exact)},
                "seconds": round(time.perf_counter() - start, 1), "last_line": lines[0],
                "code": record.inputs(args.profile)["code"], "failures": failures}
        atomic_write(tables.parent / "verify" / f"{args.keep}.json", json.dumps(kept, indent=2, default=str))
    return 1 if failures else 0
