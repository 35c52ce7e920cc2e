"""The result tables the experiment chapters save and every later chapter reads: the record's
tables (:mod:`adv2lib.record`).

One experiment at one scale is three files under ``record/<profile>-<smoke|full>/tables/`` (under
``<results_dir>/tables/<profile>-<smoke|full>/`` when a chapter is given its own results store):
``<experiment>_examples.csv.gz``, the per-example rows of every victim; ``<experiment>.json``, what
produced them (the request and its key, images, victims, interpreters, attack presets, versions,
time); and ``<experiment>_figures.pt``, the example tensors the chapter draws.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import record
from ..errors import ResultsNotFoundError
from ..fileio import atomic_write
from ..names import INTERPRETERS

__all__ = ["EXPERIMENT_NAMES", "scale_label", "tables_dir", "save_experiment", "load_experiment", "available",
           "images_per_group", "Table", "load"]

#: The experiments whose tables the comparison chapter reads, in book order.
EXPERIMENT_NAMES = ("main", "patch", "random_class", "transfer")


def scale_label(profile: str, smoke: bool) -> str:
    """``"<profile>-smoke"`` or ``"<profile>-full"``: the name of a scale's tables folder."""
    return record.scale_label(profile, smoke)


def tables_dir(profile: str = "embedded", smoke: bool = False, results_dir: str | Path | None = None) -> Path:
    """Where a scale's tables are: the record's (``record/<scale>/tables/``), or with an explicit
    ``results_dir`` (a scratch store, a test) ``<results_dir>/tables/<scale>/``."""
    if results_dir:
        return Path(results_dir) / "tables" / scale_label(profile, smoke)
    return record.tables_dir(profile, smoke)


def save_experiment(results: Sequence, profile: str, smoke: bool, results_dir: str | Path | None = None,
                    n_images: int | None = None, request: dict | None = None) -> Path:
    """Write the per-example rows of ``results`` (one :class:`~adv2lib.experiments.ExperimentResult`
    per victim, all of the same experiment), their example tensors and a JSON describing them
    (with ``request``, the chapter's :func:`adv2lib.record.request`, and its key under the current
    inputs, by which a later build renders from these files); returns the table's path."""
    from ..runner import hardware
    from ..store import to_jsonable
    from ..utils import versions

    results = list(results)
    experiment = results[0].experiment
    if any(r.experiment != experiment for r in results):
        raise ValueError("save_experiment takes the results of one experiment (one per victim)")
    examples = pd.concat([r.examples for r in results], ignore_index=True)
    out = tables_dir(profile, smoke, results_dir)
    table = record.table_path(out, experiment)
    record.write_table(examples, table)
    record.save_figures(results, out)
    column = "interpreter" if "interpreter" in examples else "target"
    inputs = record.inputs(profile, experiment, record.request_precision(request) if request else None)
    meta = {
        "experiment": experiment, "profile": profile, "smoke": bool(smoke), "scale": scale_label(profile, smoke),
        "n_images_requested": n_images,
        "n_images": {r.victim: images_per_group(r.examples) for r in results},
        "victims": [r.victim for r in results],
        "interpreters": sorted(examples[column].dropna().unique().tolist(), key=_interpreter_rank),
        "seconds": {r.victim: round(float(r.seconds), 1) for r in results},
        "batches": {r.victim: dict(getattr(r, "batches", {})) for r in results},
        "config": {r.victim: to_jsonable(r.config) for r in results},
        "versions": versions(), "machine": hardware(), "commit": record.commit(),
        "request": request, "inputs": inputs,
        "key": record.experiment_key(request, inputs) if request is not None else None,
        "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write(out / f"{experiment}.json", json.dumps(meta, indent=2, sort_keys=True))
    return table


def images_per_group(examples: pd.DataFrame) -> int:
    """Attacked inputs per (interpreter, attack) -- or (source, target) -- group: the number of
    images behind each reported mean (in the patch experiment an image may serve up to three
    targets, so this counts targets, not distinct images)."""
    keys = [c for c in ("interpreter", "attack", "variant", "source_interpreter", "ensemble", "score_kind", "split",
                        "rts", "eps_255", "budget", "rule", "level", "record", "replacement", "members",
                        "crafted_against", "train_seed", "source_victim") if c in examples.columns]
    if examples.empty:
        return 0
    # a key missing from some rows (the ablation's PGD rows have no variant, the ensemble's detection
    # rows no attack) is a group of its own
    return int(examples.groupby(keys, dropna=False).size().max()) if keys else len(examples)


def load_experiment(experiment: str, profile: str = "embedded", smoke: bool = False,
                    results_dir: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """``(examples, meta)`` written by :func:`save_experiment`; a missing file raises
    :class:`~adv2lib.errors.ResultsNotFoundError` (a ``FileNotFoundError``) naming the command to run."""
    out = tables_dir(profile, smoke, results_dir)
    table, meta = record.table_path(out, experiment), out / f"{experiment}.json"
    if not table.is_file() or not meta.is_file():
        raise ResultsNotFoundError(
            f"no saved results for experiment {experiment!r} at {out}; run its notebook first, e.g. "
            f"python -m adv2lib book{' --smoke' if smoke else ''} --profile {profile}")
    return record.read_table(table), json.loads(meta.read_text())


def available(profile: str = "embedded", smoke: bool = False, results_dir=None) -> list[str]:
    """The experiments of :data:`EXPERIMENT_NAMES` whose table and JSON exist at this scale."""
    out = tables_dir(profile, smoke, results_dir)
    return [e for e in EXPERIMENT_NAMES if record.table_path(out, e).is_file() and (out / f"{e}.json").is_file()]


def _interpreter_rank(name: str) -> int:
    """Sort key: the paper's interpreters in table order, then PGD, then anything else."""
    order = (*INTERPRETERS, "pgd")
    return order.index(name) if name in order else len(order)


@dataclass(frozen=True)
class Table:
    """One experiment's saved table: its per-image ``rows`` (:mod:`adv2lib.rows`) and ``meta``
    (what produced them); ``scale`` is the caption sentence of its size."""

    experiment: str
    rows: pd.DataFrame
    meta: dict

    @property
    def scale(self) -> str:
        from .text import scale_text

        return scale_text(self.meta)


def load(experiment: str, profile: str = "embedded", smoke: bool = False,
         results_dir: str | Path | None = None) -> Table:
    """The saved table of ``experiment`` at a scale (:func:`save_experiment`): what every chapter,
    the comparison chapter included, reads, so that a chapter's figures and the verdict page
    show the same rows. A missing table raises :class:`~adv2lib.errors.ResultsNotFoundError`."""
    rows, meta = load_experiment(experiment, profile, smoke, results_dir)
    return Table(experiment, rows, meta)
