"""The record: what a book build publishes, so that a fresh clone renders every chapter without
computing and anyone can check that the numbers come from this code.

A record is one folder per profile and scale, ``record/<profile>-<smoke|full>/`` (``ADV2_RECORD_DIR``
moves the ``record/`` folder; the embedded full-scale one is committed, the smoke ones are not)::

    manifest.json             the commit, code, data and weights it was built from, the machine,
                              per experiment its request, key, rows, compute time and files
    tables/<exp>_examples.csv.gz   each experiment's per-image rows (adv2lib.rows), the one table
    tables/<exp>.json              its chapter, the comparison chapter and verify read; what produced it
    tables/<exp>_figures.pt        the example tensors its chapter draws (image grids)
    executed/<notebook>.ipynb      the executed notebooks, as the site shows them
    stamps/<notebook>.json         the runner's key of each, and its wall and CPU time
    timings.json                   the per-notebook times of the build

The model is showyourwork's (Luger et al., 2021, https://show-your.work): an expensive result is
published once and restored only while every input that produced it is unchanged. Here an
experiment's **key** (:func:`experiment_key`) is the hash of its request (victims,
interpreters, images, seed, the experiment's own sizes) and of the inputs its stored results'
keys are made of: the numeric code (:func:`adv2lib.fingerprint.code`, the import closure of the
batch tasks), the dataset's content and the profile's weights. When a chapter's key equals the
record's, :func:`adv2lib.report.run_chapter` renders from the record and computes nothing; when
it differs, the experiment runs (the results store serves what it already has) and rewrites its
part of the record. ``python -m adv2lib verify`` recomputes a sample and compares.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import paths
from .fileio import atomic_write, sha256_file

__all__ = ["ENV", "RECOMPUTE_ENV", "root", "scale_label", "scale_dir", "tables_dir", "inputs", "request",
           "request_precision", "experiment_key", "weights_hash", "Recorded", "lookup", "recompute_requested",
           "write_table", "read_table",
           "save_figures", "load_figures", "commit", "write_manifest", "read_manifest", "size"]

#: The environment variable that moves the ``record/`` folder (the tests point it at a scratch folder).
ENV = "ADV2_RECORD_DIR"
#: Set to ``1`` (``python -m adv2lib book --recompute``): the chapters run their experiments even
#: when the record's key matches (the results store still serves what it has).
RECOMPUTE_ENV = "ADV2_RECOMPUTE"


def root() -> Path:
    """The folder of every record: ``ADV2_RECORD_DIR``, else ``record/`` in the repository."""
    value = os.environ.get(ENV)
    return Path(value).expanduser().resolve() if value else paths.root() / "record"


def scale_label(profile: str, smoke: bool, precision: str | None = None) -> str:
    """``"<profile>-smoke"`` or ``"<profile>-full"``, and for a precision other than fp32 (default: the
    setting, :func:`adv2lib.precision.current`) its suffix: ``"embedded-full-bf16"``."""
    from .precision import suffix

    return f"{profile}-{'smoke' if smoke else 'full'}{suffix(precision)}"


def scale_dir(profile: str, smoke: bool, precision: str | None = None) -> Path:
    """``record/<profile>-<smoke|full>[-<precision>]/``."""
    return root() / scale_label(profile, smoke, precision)


def tables_dir(profile: str, smoke: bool, precision: str | None = None) -> Path:
    return scale_dir(profile, smoke, precision) / "tables"


# --------------------------------------------------------------------------- keys
def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def weights_hash(profile: str) -> str:
    """Hash of the committed weights of ``profile`` (victims, RTS, AID-hardened RTS), by relative name."""
    directory = paths.weights_dir() / profile
    h = hashlib.sha256()
    for f in sorted(p for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else []:
        h.update(f.relative_to(directory).as_posix().encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()[:16]


def inputs(profile: str, experiment: str | None = None, precision: str | None = None) -> dict:
    """What every stored result's key is made of besides its request: the numeric code, the
    dataset's content (by file name, wherever it is installed) and the profile's weights; for a
    study (:mod:`adv2lib.studies`) also its own code (``study_code``); for a precision other than fp32
    (default: the setting, :func:`adv2lib.precision.current`) the precision and the code that applies
    it (``precision_code``, :func:`adv2lib.precision.code`)."""
    from . import fingerprint, precision as precisions, studies

    data = fingerprint.dataset_files(profile)
    if profile == "embedded":
        data = {Path(p).name: h for p, h in sorted((data.get("test") or {}).items())}
    else:
        data = {"listing": data.get("listing")}
    out = {"code": fingerprint.code(), "data": data, "weights": weights_hash(profile)}
    if profile == "imagenet":
        out["imagenet_weights"] = fingerprint.imagenet_weights()
    if experiment is not None and studies.is_study(experiment):
        out["study_code"] = studies.code(experiment)
    precision = precisions.current() if precision is None else precisions.check(precision, "cuda")
    if precision != "fp32":
        out["precision"], out["precision_code"] = precision, precisions.code()
    return out


def request(experiment: str, profile: str, smoke: bool, victims: Sequence[str], interpreters, n_images,
            seed: int, options: dict | None = None, precision: str | None = None) -> dict:
    """One chapter's request, in a canonical form (lists, sorted options, no engine or device); a
    precision other than fp32 (default: the setting, :func:`adv2lib.precision.current`) is part of it,
    fp32 is not (so the fp32 requests are those from before the setting)."""
    from . import precision as precisions

    precision = precisions.current() if precision is None else precisions.check(precision, "cuda")
    req = {"experiment": experiment, "profile": profile, "smoke": bool(smoke), "victims": list(victims),
           "interpreters": None if interpreters is None else list(interpreters),
           "n_images": None if n_images is None else int(n_images), "seed": int(seed),
           "options": json.loads(json.dumps(dict(sorted((options or {}).items())), default=list))}
    return req if precision == "fp32" else {**req, "precision": precision}


def request_precision(req: dict) -> str:
    """The precision of a request (:func:`request`): ``fp32`` unless it names another."""
    return req.get("precision", "fp32")


def experiment_key(req: dict, inp: dict) -> str:
    """The key of one experiment of a record: the hash of its request and its inputs."""
    return _short(json.dumps({"request": req, "inputs": inp}, sort_keys=True, default=str))


def recompute_requested() -> bool:
    return os.environ.get(RECOMPUTE_ENV, "") not in ("", "0")


# --------------------------------------------------------------------------- tables and figures
def table_path(directory: Path, experiment: str) -> Path:
    return Path(directory) / f"{experiment}_examples.csv.gz"


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as gzip-compressed CSV with a fixed header time, so that the same rows give the
    same bytes (floats are written with the shortest text that reads back to the same value)."""
    atomic_write(path, gzip.compress(frame.to_csv(index=False).encode(), compresslevel=9, mtime=0))


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, compression="gzip")


def figures_path(directory: Path, experiment: str) -> Path:
    return Path(directory) / f"{experiment}_figures.pt"


def save_figures(results: Sequence, directory: Path) -> Path | None:
    """The example tensors of ``results`` (one :class:`~adv2lib.experiments.ExperimentResult` per
    victim), ``{victim: figures}``; None when no result has any."""
    import io

    import torch

    figures = {r.victim: r.figures for r in results if getattr(r, "figures", None)}
    path = figures_path(directory, results[0].experiment)
    if not figures:
        path.unlink(missing_ok=True)
        return None
    buffer = io.BytesIO()
    torch.save(figures, buffer)
    atomic_write(path, buffer.getvalue())
    return path


def load_figures(directory: Path, experiment: str) -> dict:
    import torch

    path = figures_path(directory, experiment)
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}


# --------------------------------------------------------------------------- lookup
@dataclass(frozen=True)
class Recorded:
    """An experiment of the record whose key matches a chapter's request: its rows, figures and
    what produced them, and the manifest of the record it belongs to."""

    experiment: str
    rows: pd.DataFrame
    meta: dict
    figures: dict
    manifest: dict

    def results(self) -> list:
        """One :class:`~adv2lib.experiments.ExperimentResult` per victim, built from the record
        (``examples`` and ``figures``; ``iou`` and ``summary`` are left empty: the chapters read
        the table)."""
        from .experiments import ExperimentResult

        out = []
        for v in self.meta.get("victims", []):
            examples = self.rows[self.rows["victim"] == v].reset_index(drop=True)
            out.append(ExperimentResult(self.experiment, self.meta.get("profile", "embedded"), v, examples,
                                        pd.DataFrame(), pd.DataFrame(), self.figures.get(v, {}),
                                        config=(self.meta.get("config") or {}).get(v, {}),
                                        seconds=float((self.meta.get("seconds") or {}).get(v, 0.0)),
                                        batches={"computed": 0, "loaded": 0}))
        return out

    @property
    def line(self) -> str:
        """``"Rendered from the record of commit abc1234 (built 2026-12-03 on AMD EPYC, 2 CPUs) ..."``"""
        m = self.manifest
        built = self.meta.get("commit") or m.get("commit") or {}
        machine = self.meta.get("machine") or m.get("machine") or {}
        where = f"{machine.get('cpu', 'an unnamed machine')}, {machine.get('cpu_count', '?')} CPUs"
        if machine.get("cuda"):
            where += f", {machine['cuda']}"
        when = (self.meta.get("written_at") or "")[:10]
        sha = (built.get("sha") or "unknown")[:10] + ("+changes" if built.get("dirty") else "")
        cost = ""
        if "seconds" in self.rows and "victim" in self.rows:
            per = self.rows.groupby("victim", sort=False)["seconds"].sum()
            cost = " Its attacks took " + ", ".join(f"{v} {s:,.0f} s" for v, s in per.items()) + " when computed."
        return (f"Rendered from the record of commit {sha} (code {self.meta.get('inputs', {}).get('code', '?')}, "
                f"built {when} on {where}): nothing was computed.{cost} `python -m adv2lib book --recompute` "
                f"recomputes it; `python -m adv2lib verify` recomputes a sample and compares.")


def lookup(experiment: str, req: dict, directory: Path, inp: dict | None = None) -> Recorded | None:
    """The record's ``experiment`` in ``directory`` (a tables folder) when its key equals that of
    ``req`` with the current inputs (``inp``: :func:`inputs` of the request's profile), else None."""
    directory = Path(directory)
    meta_path, table = directory / f"{experiment}.json", table_path(directory, experiment)
    if not (meta_path.is_file() and table.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return None
    inp = inputs(req["profile"], experiment, request_precision(req)) if inp is None else inp
    if meta.get("key") != experiment_key(req, inp):
        return None
    manifest = read_manifest(directory.parent)
    return Recorded(experiment, read_table(table), meta, load_figures(directory, experiment), manifest)


# --------------------------------------------------------------------------- manifest
def commit() -> dict:
    """The repository's commit (``sha``) and whether the working tree differs from it (``dirty``);
    empty outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=paths.root(), capture_output=True, text=True, timeout=30)

    try:
        sha = git("rev-parse", "HEAD")
        if sha.returncode != 0:
            return {}
        status = git("status", "--porcelain", "--untracked-files=no", "--", "adv2lib", "notebooks", "weights")
        return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def size(directory: Path) -> int:
    """Bytes of the files under ``directory``."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def read_manifest(directory: Path) -> dict:
    try:
        return json.loads((Path(directory) / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_manifest(profile: str, smoke: bool) -> Path:
    """``manifest.json`` of a record from its tables and timings: the commit, the inputs, the
    machine the experiments were computed on (``"several"`` when they differ; each experiment names
    its own), per experiment its request, key, rows, victims, the attacks' summed wall and CPU time
    (the per-image ``seconds`` / ``cpu_seconds`` of its rows: the cost of computing it, whoever
    renders it later) and its files with their sizes and hashes, and the record's size."""
    directory = scale_dir(profile, smoke)
    tables = directory / "tables"
    experiments = {}
    for meta_path in sorted(tables.glob("*.json")) if tables.is_dir() else []:
        meta = json.loads(meta_path.read_text())
        name = meta.get("experiment", meta_path.stem)
        table = table_path(tables, name)
        if not table.is_file():
            continue
        rows = read_table(table)
        files = [p for p in (table, meta_path, figures_path(tables, name)) if p.is_file()]
        experiments[name] = {
            "key": meta.get("key"), "request": meta.get("request"), "rows": len(rows),
            "victims": meta.get("victims"), "n_images": meta.get("n_images"), "written_at": meta.get("written_at"),
            "machine": meta.get("machine"), "commit": meta.get("commit"),
            "attack_seconds": round(float(rows["seconds"].sum()), 1) if "seconds" in rows else None,
            "attack_cpu_seconds": round(float(rows["cpu_seconds"].sum()), 1) if "cpu_seconds" in rows else None,
            "files": {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files},
        }
    timings = {}
    try:
        timings = json.loads((directory / "timings.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    previous = read_manifest(directory)
    machines = {json.dumps(e["machine"], sort_keys=True) for e in experiments.values() if e.get("machine")}
    machine = json.loads(machines.pop()) if len(machines) == 1 else ({"cpu": "several"} if machines else None)
    manifest = {
        "scale": scale_label(profile, smoke), "profile": profile, "smoke": bool(smoke),
        "commit": commit(), "inputs": inputs(profile),
        "machine": machine,
        "experiments": experiments,
        "notebooks": {n["name"]: {"seconds": n.get("seconds"), "cpu_seconds": n.get("cpu_seconds"),
                                  "machine_cpu_seconds": n.get("machine_cpu_seconds"),
                                  "computed_batches": n.get("computed_batches")}
                      for n in timings.get("notebooks", [])},
        "bytes": 0,
    }
    path = directory / "manifest.json"
    stable = {k: v for k, v in manifest.items() if k not in ("commit", "bytes", "written_at")}
    if previous and {k: v for k, v in previous.items() if k not in ("commit", "bytes", "written_at")} == stable:
        return path                 # nothing changed: the file (and what reads it) stays as it is
    manifest["written_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    others = size(directory) - (path.stat().st_size if path.is_file() else 0)
    text = json.dumps(manifest, indent=2, sort_keys=True)
    manifest["bytes"] = others + len(text) + 16          # about its own size, too
    atomic_write(path, json.dumps(manifest, indent=2, sort_keys=True))
    return path
