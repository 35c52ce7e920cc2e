"""Run the book's notebooks with papermill, then build the Jupyter Book.

``python -m adv2lib book [--smoke] [--profile imagenet] [--device cuda] [--engine ray] [--force] [--no-build]``

The runner follows the papermill -> Jupyter Book pattern of QuantEcon's lectures and
cal-itp's portfolio site:

* a *declared* list of runs (:func:`declared_runs`): one :class:`NotebookRun` per
  (notebook x parameters), in book order;
* each run is keyed by the notebook's source, its parameters, the scale, the library's
  source, the victim weights and any result files it reads (:func:`run_key`); a run whose
  key matches its stamp (``<cache>/book/<scale>/<name>.json``) and whose executed copy is
  intact is skipped. Where the experiments compute (``--engine serial`` or ``ray``, and
  ``--ray-address``) reaches the notebooks but not the keys: the numbers do not depend on
  it, so a rebuild with another engine skips what is up to date;
* an executed notebook shows its parameters once, collapsed: the values that ran (the
  notebook's defaults with the runner's values put in; :func:`show_parameters_once`);
* executed copies are kept per scale (``<cache>/book/<scale>/executed/``), so smoke and
  full runs never overwrite each other, and copied to ``book/executed/`` (git-ignored),
  where ``_toc.yml`` points;
* every failure is collected; the runner tries every run, then reports them all and exits
  non-zero (the book is not built from failed notebooks);
* the wall time of every execution goes to ``<cache>/book/<scale>/timings.json``, which the
  "Reproduce" chapter reads;
* finally ``jupyter-book build`` runs with notebook execution off (``_config.yml``) and
  warnings as errors (``-W -n --keep-going``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import chapters, paths
from .engines import ENGINES
from .errors import ConfigError
from .fileio import atomic_write, sha256_bytes, sha256_file
from .names import INTERPRETERS, PROFILES, VICTIMS

#: Notebook sources under ``notebooks/``, in book order, and the sizes of their experiments: the
#: chapter plan (:mod:`adv2lib.chapters`).
EXPERIMENT_NOTEBOOKS = ("01_adv2_vs_pgd", "02_targeted_patch", "03_random_class", "04_transferability",
                        "04b_cross_model", "05d_official_budget", "07b_ensemble_designs")
BUDGET_NOTEBOOK = "05_attack_budget"
CONFIDENCE_NOTEBOOK, ABLATION_NOTEBOOK = "05b_confidence", "05c_ablations"
ROBUSTNESS_NOTEBOOK, ENSEMBLE_NOTEBOOK, AID_NOTEBOOK = "06_robustness", "07_ensemble", "08_aid"
DESIGNS_NOTEBOOK, PREMISE_NOTEBOOK, VARIANTS_NOTEBOOK = "07b_ensemble_designs", "08b_aid_premise", "08c_aid_variants"
BOOK_NOTEBOOKS = chapters.NOTEBOOKS
N_IMAGES = chapters.N_IMAGES

BUILD_DIR_NAME = "_build"


# --------------------------------------------------------------------------- scale and runs
@dataclass(frozen=True)
class Scale:
    """What a book build is made of: the profile (``embedded`` or ``imagenet``) and smoke or full."""

    profile: str = "embedded"
    smoke: bool = False

    @property
    def label(self) -> str:
        """The record's folder name: ``embedded-full``, or with a precision other than fp32 (the setting,
        :func:`adv2lib.precision.current`) ``embedded-full-bf16``."""
        from .record import scale_label

        return scale_label(self.profile, self.smoke)


@dataclass(frozen=True)
class NotebookRun:
    """One papermill execution: ``notebooks/<notebook>.ipynb`` with ``parameters``.

    ``reads`` names files (relative to the repository root, globs allowed, or absolute)
    whose contents feed the run, e.g. the result tables the comparison chapter reads; they
    are hashed into the run's key when the run starts, so they may be written by earlier runs.
    ``runtime`` holds parameters that decide how the notebook computes but not what (the
    experiments' ``engine``): papermill passes them like the others, but they stay out of the
    run's key and stamp.
    """

    name: str
    notebook: str
    parameters: dict
    reads: tuple[str, ...] = ()
    runtime: dict = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return paths.notebooks_dir() / f"{self.notebook}.ipynb"


#: Notebooks that run in their kernel (serial engine) when the book's engine is a *local* Ray
#: cluster of one-thread workers: their longest task runs alone, so one worker's thread computes
#: while the other core idles. Measured 2026-12-02 (both victims, from the same store, one after
#: the other): the ensemble experiment took 92.9 s serially and 131.3 s on Ray; the transfer
#: experiment 148.8 s and 144.8 s, so it stays on Ray. On a cluster (``--ray-address`` or
#: ``RAY_ADDRESS``) every experiment notebook uses Ray. The designs and premise studies attack
#: nothing (their few tasks score stored inputs): starting a local cluster would cost more than they do.
SERIAL_ON_LOCAL_RAY = (ENSEMBLE_NOTEBOOK, DESIGNS_NOTEBOOK, PREMISE_NOTEBOOK)


def declared_runs(scale: Scale = Scale(), device: str = "auto", n_images: int | None = None, seed: int = 0,
                  results_dir: str | None = None, victims: Sequence[str] = VICTIMS,
                  interpreters: Sequence[str] = INTERPRETERS, engine: str = "serial") -> list[NotebookRun]:
    """Every run of the book at ``scale``, in the order they must execute.

    Each experiment notebook runs once and covers both victims (``victims`` parameter); the
    experiment notebooks also get ``engine`` (a runtime parameter, outside their keys), except
    that those in :data:`SERIAL_ON_LOCAL_RAY` run serially when ``engine`` is a local Ray cluster
    (no ``RAY_ADDRESS``).
    """
    from .report import tables_dir

    n = n_images if n_images is not None else N_IMAGES["smoke" if scale.smoke else "full"]
    common = {"profile": scale.profile, "smoke": scale.smoke, "device": device, "seed": seed,
              "results_dir": results_dir}
    tables = tables_dir(scale.profile, scale.smoke, results_dir)
    runs = [NotebookRun("intro", "intro", {**common, "n_images": n}),
            NotebookRun("models", "models", {"profile": scale.profile}, reads=("weights/embedded/*.json",))]
    local_ray = engine == "ray" and not os.environ.get("RAY_ADDRESS")

    def runtime(name: str) -> dict:
        return {"engine": "serial" if local_ray and name in SERIAL_ON_LOCAL_RAY else engine}

    reads = {name: ("weights/embedded/rts_aid_*.json",) for name in (AID_NOTEBOOK, PREMISE_NOTEBOOK, VARIANTS_NOTEBOOK)}
    rts_only, ensembles = ("aid", "aid_premise", "aid_variants"), ("ensemble", "ensemble_designs")
    for ch in chapters.PLAN:
        if ch.experiment is None:
            continue
        # a chapter of some interpreters runs those asked for, or (budget, ablation) all asked for; AID needs RTS
        interps = [i for i in interpreters if i in ch.interpreters] if ch.interpreters else list(interpreters)
        interps = interps or ([] if ch.experiment in rts_only else list(interpreters))
        if (ch.experiment in ensembles and len(interps) < 2) or not interps:
            continue                    # an ensemble needs two interpreters; AID needs RTS
        params = {**common, "victims": list(victims)[:1] if ch.one_victim else list(victims),
                  **chapters.sizes(ch.experiment, scale.smoke, n)}
        if ch.experiment != "aid":
            params["interpreters"] = interps
        runs.append(NotebookRun(ch.notebook, ch.notebook, params, reads=reads.get(ch.notebook, ()),
                                runtime=runtime(ch.notebook)))
    runs += [NotebookRun("paper_vs_ours", "paper_vs_ours",
                         {"profile": scale.profile, "smoke": scale.smoke, "results_dir": results_dir},
                         reads=(str(tables / "*_examples.csv.gz"), str(tables / "*.json"))),
             NotebookRun("reproduce", "reproduce",
                         {"profile": scale.profile, "smoke": scale.smoke, "results_dir": results_dir},
                         reads=(str(timings_path(scale)), "requirements-lock.txt", "weights/embedded/*.json",
                                "book/baselines/*.json", str(scale_dir(scale) / "verify" / "*.json"),
                                str(tables / "*_examples.csv.gz"))),
             NotebookRun("artifact_appendix", "artifact_appendix",
                         {"profile": scale.profile, "smoke": scale.smoke, "results_dir": results_dir},
                         reads=(str(tables / "*_examples.csv.gz"), str(tables / "*.json"),
                                str(scale_dir(scale) / "manifest.json"), str(scale_dir(scale) / "verify" / "*.json"),
                                "requirements-lock.txt", "CITATION.cff"))]
    return runs


# --------------------------------------------------------------------------- locations
def scale_dir(scale: Scale) -> Path:
    """The record of ``scale`` (:mod:`adv2lib.record`): the runner keeps its stamps, executed
    notebooks and timings there, beside the experiments' tables."""
    from . import record

    return record.scale_dir(scale.profile, scale.smoke)


def stamp_path(scale: Scale, name: str) -> Path:
    return scale_dir(scale) / "stamps" / f"{name}.json"


def cached_output_path(scale: Scale, name: str) -> Path:
    return scale_dir(scale) / "executed" / f"{name}.ipynb"


def executed_dir() -> Path:
    """Where ``_toc.yml`` expects the executed notebooks (git-ignored)."""
    return paths.book_dir() / "executed"


def timings_path(scale: Scale | str) -> Path:
    """The JSON with per-notebook wall times and the hardware they were measured on."""
    if isinstance(scale, str):
        profile, _, kind = scale.partition("-")
        scale = Scale(profile, kind == "smoke")
    return scale_dir(scale) / "timings.json"


def baseline_timings(scale: Scale | str) -> tuple[Path | None, dict]:
    """The committed timings of an earlier full build at ``scale`` (``book/baselines/timings-<scale>-<commit>.json``,
    the newest by name), for the Reproduce chapter's speed-up table; ``(None, {})`` when none."""
    label = scale if isinstance(scale, str) else scale.label
    found = sorted((paths.root() / "book" / "baselines").glob(f"timings-{label}-*.json"))
    if not found:
        return None, {}
    return found[-1], json.loads(found[-1].read_text())


def build_html_dir() -> Path:
    return paths.root() / BUILD_DIR_NAME / "html"


# --------------------------------------------------------------------------- hashing


def notebook_source_hash(path: Path) -> str:
    """Hash of what a notebook *does*: cell types, sources and tags (not outputs or counts)."""
    nb = json.loads(Path(path).read_text())
    cells = [(c.get("cell_type"), "".join(c.get("source", "")), sorted(c.get("metadata", {}).get("tags", [])))
             for c in nb.get("cells", [])]
    return sha256_bytes(json.dumps(cells, sort_keys=True).encode())


def _hash_files(files: Iterable[Path], base: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(set(files)):
        try:
            rel = f.relative_to(base).as_posix()
        except ValueError:
            rel = f.as_posix()
        h.update(rel.encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def library_hash() -> str:
    """Hash of every ``adv2lib`` source file: a change anywhere in the library re-runs everything."""
    pkg = paths.root() / "adv2lib"
    return _hash_files((p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts), pkg)


def weights_hash(profile: str) -> str:
    """Hash of the committed weights a profile uses (embedded victims and RTS models): the
    record's (:func:`adv2lib.record.weights_hash`)."""
    from .record import weights_hash as record_weights

    return record_weights(profile)


def _expand(patterns: Sequence[str]) -> list[Path]:
    root = paths.root()
    found: list[Path] = []
    for pattern in patterns:
        p = Path(pattern)
        if p.is_absolute():
            found += sorted(p.parent.glob(p.name)) if p.parent.is_dir() else []
        else:
            found += sorted(root.glob(pattern))
    return [f for f in found if f.is_file()]


def inputs_fingerprint(profile: str) -> dict:
    """The dataset and the ImageNet weights a profile reads, by content (:func:`adv2lib.record.inputs`,
    without the code, which :func:`library_hash` covers): a run executed with other data or weights
    is out of date; the same files installed elsewhere (the Debian package or a download) are not."""
    from . import record

    return {k: v for k, v in record.inputs(profile).items() if k not in ("code", "weights")}


def run_key(run: NotebookRun, scale: Scale, lib_hash: str | None = None, w_hash: str | None = None,
            inputs: dict | None = None) -> str:
    """The key under which a run is up to date: notebook source, parameters, scale, library,
    weights, dataset and the contents of the files it reads."""
    parts = {
        "scale": scale.label,
        "notebook": notebook_source_hash(run.source),
        "parameters": run.parameters,
        "library": lib_hash if lib_hash is not None else library_hash(),
        "weights": w_hash if w_hash is not None else weights_hash(scale.profile),
        "inputs": inputs if inputs is not None else inputs_fingerprint(scale.profile),
        "reads": _hash_files(_expand(run.reads), paths.root()),
    }
    return sha256_bytes(json.dumps(parts, sort_keys=True, default=str).encode())


# --------------------------------------------------------------------------- stamps
def read_stamp(scale: Scale, name: str) -> dict | None:
    try:
        return json.loads(stamp_path(scale, name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_up_to_date(run: NotebookRun, scale: Scale, key: str) -> bool:
    stamp = read_stamp(scale, run.name)
    out = cached_output_path(scale, run.name)
    return bool(stamp and stamp.get("key") == key and out.is_file()
                and stamp.get("output_sha256") == sha256_file(out))


def stale_runs(scale: Scale) -> list[str]:
    """Names of the declared runs at ``scale`` whose executed copy is missing or out of date
    (checked with the parameters each was last executed with)."""
    stale = []
    lib, weights, inputs = library_hash(), weights_hash(scale.profile), inputs_fingerprint(scale.profile)
    for run in declared_runs(scale):
        stamp = read_stamp(scale, run.name)
        if stamp is None:
            stale.append(run.name)
            continue
        run = replace(run, parameters=stamp["parameters"])
        if not is_up_to_date(run, scale, run_key(run, scale, lib, weights, inputs)):
            stale.append(run.name)
    return stale



def write_stamp(scale: Scale, run: NotebookRun, key: str, seconds: float, cpu_seconds: float | None = None,
                computed_batches: int | None = None, machine_cpu_seconds: float | None = None) -> dict:
    def rounded(v):
        return None if v is None or v != v else round(v, 2)

    stamp = {
        "name": run.name, "notebook": run.notebook, "key": key, "seconds": round(seconds, 2),
        "cpu_seconds": rounded(cpu_seconds), "machine_cpu_seconds": rounded(machine_cpu_seconds),
        "computed_batches": computed_batches,
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": run.parameters, "runtime": run.runtime,
        "output_sha256": sha256_file(cached_output_path(scale, run.name)),
    }
    atomic_write(stamp_path(scale, run.name), json.dumps(stamp, indent=2))
    return stamp


# --------------------------------------------------------------------------- execution
def papermill_execute(run: NotebookRun, output: Path) -> None:
    """Execute ``run`` with papermill into ``output`` (the default executor), then leave one
    parameters cell on show (:func:`show_parameters_once`)."""
    import nbformat
    import papermill as pm

    pm.execute_notebook(
        str(run.source), str(output), parameters={**run.parameters, **run.runtime}, kernel_name="python3",
        cwd=str(paths.root()), progress_bar={"unit": "cell", "desc": f"  {run.name}", "disable": False, "leave": True},
        log_output=False,
    )
    nb = nbformat.read(str(output), as_version=4)
    if show_parameters_once(nb):
        nbformat.write(nb, str(output))


#: How the book shows the parameters cell of an executed notebook whose own cell has no
#: display tag: collapsed behind a toggle (MyST-NB), whose prompts say what it holds.
PARAMETERS_DISPLAY = ("hide-input",)
PARAMETERS_PROMPTS = {"code_prompt_show": "Show the parameters this chapter ran with",
                      "code_prompt_hide": "Hide the parameters"}


def show_parameters_once(nb) -> bool:
    """Make an executed notebook show its parameters once: the values that ran, collapsed.

    papermill leaves two cells, the notebook's ``parameters`` cell (defaults) and its own
    ``injected-parameters`` cell (the runner's values). The injected cell is rewritten to the
    notebook's cell with the runner's values put in (comments kept, names the notebook lacks
    appended), so that executing it alone gives the namespace both cells gave; it takes the
    display tags of the notebook's cell (:data:`PARAMETERS_DISPLAY` when it has none; a hidden
    cell's toggle reads :data:`PARAMETERS_PROMPTS`), and the notebook's cell is tagged
    ``remove-cell``. Without an injected cell the parameters cell itself gets the display tags.
    Returns whether ``nb`` changed.
    """
    cells = nb.cells
    params = next((c for c in cells if "parameters" in c.metadata.get("tags", [])), None)
    if params is None:
        return False
    injected = next((c for c in cells if "injected-parameters" in c.metadata.get("tags", [])), None)
    tags = list(params.metadata.get("tags", []))
    display = [t for t in tags if t.startswith(("remove-", "hide-"))] or list(PARAMETERS_DISPLAY)
    shown = params if injected is None else injected
    before = (list(shown.metadata.get("tags", [])), dict(shown.metadata.get("mystnb", {})))
    if injected is not None:
        injected.source = merged_parameters(params.source, injected.source)
        params.metadata["tags"] = [t for t in tags if not t.startswith(("remove-", "hide-"))] + ["remove-cell"]
    base = ["injected-parameters"] if injected is not None else [t for t in tags if t not in display]
    shown.metadata["tags"] = base + display
    if any(t.startswith("hide-") for t in display):
        shown.metadata["mystnb"] = {**shown.metadata.get("mystnb", {}), **PARAMETERS_PROMPTS}
    return injected is not None or before != (shown.metadata["tags"], shown.metadata.get("mystnb", {}))


def merged_parameters(defaults: str, injected: str) -> str:
    """The source of a parameters cell (``defaults``: literal assignments) with the values that
    papermill ``injected`` (its generated assignments) in place of the defaults."""
    import ast
    import tokenize
    from io import StringIO

    given = {node.targets[0].id: ast.get_source_segment(injected, node.value)
             for node in ast.parse(injected).body
             if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}
    lines = defaults.splitlines()
    comments = {t.start[0]: t for t in tokenize.generate_tokens(StringIO(defaults + "\n").readline)
                if t.type == tokenize.COMMENT}
    out, skip_to = [], 0
    for node in ast.parse(defaults).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        out += lines[skip_to:node.lineno - 1]
        skip_to = node.end_lineno
        if name not in given:
            out += lines[node.lineno - 1:node.end_lineno]
            continue
        text = f"{name} = {given.pop(name)}"
        comment = comments.get(node.end_lineno)
        if comment is not None:       # kept, in its column when the new value leaves room
            column = comment.start[1]
            text = (f"{text:<{column}}" if len(text) < column else f"{text}  ") + comment.string
        out.append(text)
    out += lines[skip_to:]
    out += [f"{name} = {value}" for name, value in given.items()]
    header = "# The parameters this chapter ran with: its defaults, with the book runner's values put in"
    return "\n".join([header, *out])


def count_result_batches(run: NotebookRun) -> int:
    """Result batches in the store ``run`` writes to (its ``results_dir`` parameter, else the default).

    The runner counts them before and after each execution: a notebook that computed nothing new
    found every result in the store and only loaded it, so its wall time is not the cost of its
    experiment (the attack times stored with the results are; see :func:`adv2lib.report.attack_times`).
    """
    root = Path(run.parameters.get("results_dir") or paths.results_dir())
    return sum(1 for _ in root.rglob("batch_*.pt")) if root.is_dir() else 0


def _children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (the notebook kernels).

    Unlike wall time, it does not grow when other work shares the CPU, so the Reproduce
    chapter reports both."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    except (ImportError, OSError):  # not available on every platform
        return float("nan")


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``: user, nice, system,
    irq, softirq, steal; NaN where there is no ``/proc``).

    The kernel's CPU time (:func:`_children_cpu_seconds`) misses the Ray engine's workers, which
    are not the kernel's children; the difference of this counter over a notebook counts them,
    and everything else the machine ran meanwhile, so it is only the notebook's cost on a machine
    that runs nothing else."""
    try:
        fields_ = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields_[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return float("nan")


def hardware() -> dict:
    """What the timings were measured on."""
    info = {"machine": platform.machine(), "system": f"{platform.system()} {platform.release()}",
            "cpu_count": os.cpu_count(), "cpu": platform.processor() or "unknown"}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        import torch

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - hardware info is best effort
        info["cuda"] = None
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    from .allocator import describe

    info["allocator"] = describe()
    return info


@dataclass
class RunReport:
    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def _say(msg: str) -> None:
    print(msg, flush=True)


def run_notebooks(runs: Sequence[NotebookRun], scale: Scale, force: bool = False,
                  execute: Callable[[NotebookRun, Path], None] = papermill_execute,
                  only: Sequence[str] | None = None) -> RunReport:
    """Execute every out-of-date run, collecting failures; copy outputs to ``book/executed``.

    A failed run keeps its partial output (with the traceback) in the cache for inspection,
    gets no stamp, and the remaining runs still execute.
    """
    report = RunReport()
    os.environ.setdefault("TQDM_DISABLE", "1")  # kernels inherit this: no progress bars in the book
    root = str(paths.root())
    if root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    lib, weights, inputs = library_hash(), weights_hash(scale.profile), inputs_fingerprint(scale.profile)
    selected = [r for r in runs if not only or r.name in only]
    for i, run in enumerate(selected, 1):
        prefix = f"[{i}/{len(selected)}] {run.name}"
        try:
            key = run_key(run, scale, lib, weights, inputs)
            output = cached_output_path(scale, run.name)
            if not force and is_up_to_date(run, scale, key):
                stamp = read_stamp(scale, run.name) or {}
                report.skipped.append(run.name)
                report.seconds[run.name] = float(stamp.get("seconds", float("nan")))
                _say(f"{prefix}: up to date ({scale.label}, last run took {stamp.get('seconds', '?')} s), skipped")
            else:
                _say(f"{prefix}: executing {run.source.relative_to(paths.root())} ({scale.label}) ...")
                output.parent.mkdir(parents=True, exist_ok=True)
                stamp_path(scale, run.name).unlink(missing_ok=True)
                batches_before = count_result_batches(run)
                start, cpu_start, machine_start = time.perf_counter(), _children_cpu_seconds(), machine_cpu_seconds()
                execute(run, output)
                seconds = time.perf_counter() - start
                cpu = _children_cpu_seconds() - cpu_start
                machine = machine_cpu_seconds() - machine_start
                computed = max(0, count_result_batches(run) - batches_before)
                write_stamp(scale, run, key, seconds, cpu, computed, machine)
                report.executed.append(run.name)
                report.seconds[run.name] = seconds
                _say(f"{prefix}: done in {seconds:.1f} s (kernel CPU time {cpu:.1f} s, "
                     f"{computed} new result batch{'es' if computed != 1 else ''})")
        except Exception as exc:  # noqa: BLE001 - collect every failure, report them all at the end
            if getattr(exc, "ename", None):  # papermill: the exception raised inside the notebook
                report.failed[run.name] = f"{exc.ename}: {exc.evalue} (cell {getattr(exc, 'exec_count', '?')})"
            else:
                report.failed[run.name] = f"{type(exc).__name__}: {exc}".strip()
            _say(f"{prefix}: FAILED ({report.failed[run.name].splitlines()[0][:200]}); "
                 f"partial output in {cached_output_path(scale, run.name)}")
            continue
        dest = executed_dir() / f"{run.name}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached_output_path(scale, run.name), dest)
    return report


def write_timings(scale: Scale, runs: Sequence[NotebookRun], device: str) -> Path:
    """Collect the stamps' wall times into the JSON that the Reproduce chapter reads."""
    notebooks = []
    for run in runs:
        if run.name in LAST:  # the chapters that print this file cannot time themselves
            continue
        stamp = read_stamp(scale, run.name)
        if stamp:
            notebooks.append({"name": run.name, "seconds": stamp["seconds"], "cpu_seconds": stamp.get("cpu_seconds"),
                              "machine_cpu_seconds": stamp.get("machine_cpu_seconds"),
                              "engine": (stamp.get("runtime") or {}).get("engine"),
                              "computed_batches": stamp.get("computed_batches"),
                              "finished_at": stamp["finished_at"],
                              "parameters": stamp["parameters"]})
    info = {"scale": scale.label, "profile": scale.profile, "smoke": scale.smoke, "device": device,
            "hardware": hardware(), "notebooks": notebooks,
            "total_seconds": round(sum(n["seconds"] for n in notebooks), 1)}
    path = timings_path(scale)
    previous = None
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    # Only rewrite when something changed, so that an up-to-date Reproduce chapter stays up to date.
    if previous is None or {k: v for k, v in previous.items() if k != "hardware"} != \
            {k: v for k, v in info.items() if k != "hardware"}:
        atomic_write(path, json.dumps(info, indent=2))
    return path


# --------------------------------------------------------------------------- the book
def book_sources() -> list[Path]:
    root = paths.root()
    files = [root / "_config.yml", root / "_toc.yml"]
    book = paths.book_dir()
    files += [p for p in book.rglob("*") if p.is_file() and "_build" not in p.parts and "__pycache__" not in p.parts]
    return [f for f in files if f.is_file()]


def book_key(scale: Scale) -> str:
    return sha256_bytes(f"{scale.label}\n{_hash_files(book_sources(), paths.root())}".encode())


def jupyter_book_executable() -> list[str]:
    candidate = Path(sys.executable).parent / "jupyter-book"
    if candidate.is_file():
        return [str(candidate)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    return [sys.executable, "-m", "jupyter_book.cli.main"]


def build_book(scale: Scale, force: bool = False) -> float | None:
    """``jupyter-book build`` (warnings as errors); skipped when nothing changed since the last build.

    Returns the build time in seconds, or ``None`` when skipped. Raises on failure.
    """
    html = build_html_dir()
    marker = html / "adv2-build.json"
    key = book_key(scale)
    if not force and marker.is_file() and (html / "index.html").is_file():
        try:
            if json.loads(marker.read_text()).get("key") == key:
                _say(f"book: up to date ({html}), skipped")
                return None
        except json.JSONDecodeError:
            pass
    marker.unlink(missing_ok=True)
    cmd = [*jupyter_book_executable(), "build", str(paths.root()), "--builder", "html", "--all",
           "-W", "-n", "--keep-going"]
    _say("book: " + " ".join(cmd))
    start = time.perf_counter()
    # the launch buttons open the record's executed notebooks of this profile (book/_ext/record_links.py)
    proc = subprocess.run(cmd, cwd=paths.root(), env={**os.environ, "ADV2_BOOK_PROFILE": scale.profile})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}); see the messages above")
    atomic_write(marker, json.dumps({"key": key, "scale": scale.label, "seconds": round(seconds, 1),
                                           "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
                                          indent=2))
    _say(f"book: built in {seconds:.1f} s -> {html / 'index.html'}")
    return seconds


#: The chapters that read the build's timings and the record's manifest: they run last.
LAST = ("reproduce", "artifact_appendix")


def _write_manifest(scale: Scale, results_dir, say: bool = False) -> None:
    """The record's manifest (:func:`adv2lib.record.write_manifest`), when the chapters wrote their
    tables into the record (no ``--results-dir``)."""
    if results_dir:
        return
    from . import record

    manifest = record.write_manifest(scale.profile, scale.smoke)
    if say:
        _say(f"record: {manifest.parent} ({record.size(manifest.parent) / 2**20:.1f} MiB)")


def record_status(runs: Sequence[NotebookRun], scale: Scale) -> str:
    """One line: how many of the record's experiments were computed from the current code, data and
    weights (their chapters render from the record without computing), at which commit and on which
    machine, and how to recompute."""
    import json as _json

    from . import record
    from .report.files import tables_dir

    results_dirs = {r.parameters.get("results_dir") for r in runs}
    tables = tables_dir(scale.profile, scale.smoke, next(iter(results_dirs)) if len(results_dirs) == 1 else None)
    matched, stale, commits, machines = [], [], set(), set()
    for path in sorted(tables.glob("*.json")) if tables.is_dir() else []:
        meta = _json.loads(path.read_text())
        if not meta.get("request"):
            continue
        ok = meta.get("key") == record.experiment_key(meta["request"], record.inputs(
            scale.profile, meta.get("experiment"), record.request_precision(meta["request"])))
        (matched if ok else stale).append(meta.get("experiment", path.stem))
        commits.add(((meta.get("commit") or {}).get("sha") or "unknown")[:10])
        machines.add((meta.get("machine") or {}).get("cpu", "an unnamed machine"))
    if record.recompute_requested():
        return f"record: --recompute: every chapter runs its experiment (the record at {tables.parent} is rewritten)"
    if not matched and not stale:
        return f"record: none at {tables.parent}: every chapter computes its experiment and writes it there"
    head = (f"record: {len(matched)} of {len(matched) + len(stale)} experiments of the record (computed at commit "
            f"{', '.join(sorted(commits))} on {', '.join(sorted(machines))}) match this code, data and weights: "
            f"their chapters render without computing")
    tail = (f"; the others compute: {', '.join(stale)}" if stale else "") + " (--recompute recomputes all)"
    return head + tail


def main(args: argparse.Namespace) -> int:
    from . import precision

    # the kernels inherit the setting: their chapters request, compute and record in it
    os.environ[precision.ENV] = precision.check(args.precision, "cuda")
    scale = Scale(args.profile, args.smoke)
    if args.n_images is not None and (isinstance(args.n_images, bool) or args.n_images < 1):
        raise ConfigError(f"n_images must be a positive integer, got {args.n_images} (--n-images)")
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address  # the kernels inherit it; ray.init() joins that cluster
    if getattr(args, "recompute", False):
        from . import record

        os.environ[record.RECOMPUTE_ENV] = "1"        # the kernels inherit it: run_chapter computes
        args.force = True
    runs = declared_runs(scale, device=args.device, n_images=args.n_images, seed=args.seed,
                         results_dir=args.results_dir, victims=args.victims, interpreters=args.interpreters,
                         engine=args.engine)
    if args.only:
        unknown = sorted(set(args.only) - {r.name for r in runs})
        if unknown:
            raise ConfigError(f"unknown notebook(s) {', '.join(unknown)}: choose from "
                              f"{', '.join(r.name for r in runs)} (--only)")
    start = time.perf_counter()
    _say(f"adv2lib book: {len(runs)} notebooks at scale {scale.label} (device={args.device}, engine={args.engine})")
    _say(record_status(runs, scale))
    # The Reproduce and Artifact Appendix chapters read the timings and the record's manifest, so
    # these are written before they run (and again after).
    report = run_notebooks([r for r in runs if r.name not in LAST], scale, force=args.force, only=args.only)
    write_timings(scale, runs, args.device)
    _write_manifest(scale, args.results_dir)
    last = run_notebooks([r for r in runs if r.name in LAST], scale, force=args.force, only=args.only)
    report.executed += last.executed
    report.skipped += last.skipped
    report.failed.update(last.failed)
    report.seconds.update(last.seconds)
    write_timings(scale, runs, args.device)
    _write_manifest(scale, args.results_dir, say=True)

    _say("\nper-notebook wall time (s):")
    for run in runs:
        if run.name in report.seconds:
            tag = "skipped, last run" if run.name in report.skipped else "executed"
            _say(f"  {run.name:<20} {report.seconds[run.name]:8.1f}  ({tag})")
        elif run.name in report.failed:
            _say(f"  {run.name:<20}   FAILED")
    if report.failed:
        _say(f"\n{len(report.failed)} notebook(s) failed; the book was not built:")
        for name, err in report.failed.items():
            _say(f"  {name}: {err.splitlines()[0] if err else ''}")
            _say(f"    see {cached_output_path(scale, name)}")
        return 1
    if args.no_build:
        _say("--no-build: notebooks executed, book not built")
        return 0
    try:
        build_book(scale, force=args.force)
    except RuntimeError as exc:
        _say(f"\n{exc}")
        return 1
    _say(f"total: {time.perf_counter() - start:.1f} s")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--smoke", action="store_true", help="a few images and very few attack steps (minutes on a CPU)")
    p.add_argument("--profile", default="embedded", choices=PROFILES)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--engine", default="serial", choices=ENGINES,
                   help="where the experiments compute: this process (serial) or a Ray cluster (ray); "
                        "the numbers are the same, so notebooks executed with the other engine are not rerun")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="the Ray cluster to join (sets RAY_ADDRESS for the notebooks; default: RAY_ADDRESS, "
                        "else a local cluster)")
    p.add_argument("--force", action="store_true", help="re-execute every notebook and rebuild the book")
    p.add_argument("--recompute", action="store_true",
                   help="run every chapter's experiment even where the record holds it (implies --force; the "
                        "results store still serves what it has: point --results-dir at an empty folder to "
                        "compute everything)")
    p.add_argument("--no-build", action="store_true", help="execute the notebooks only")
    p.add_argument("--only", nargs="+", metavar="NAME", help="execute only these notebooks (by name)")
    p.add_argument("--n-images", type=int, default=None,
                   help=f"images per experiment (default: {N_IMAGES['smoke']} smoke, {N_IMAGES['full']} full)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--victims", nargs="+", default=list(VICTIMS), choices=VICTIMS, metavar="VICTIM",
                   help="victims attacked in every experiment (default: both)")
    p.add_argument("--interpreters", nargs="+", default=list(INTERPRETERS), choices=INTERPRETERS,
                   metavar="NAME", help="interpreters attacked (default: all four)")
    p.add_argument("--results-dir", default=None, help="results store location (default: ADV2_RESULTS_DIR or results/)")
    p.add_argument("--precision", default=os.environ.get("ADV2_PRECISION") or "fp32", choices=["fp32", "bf16", "tf32"],
                   help="the victims' passes (adv2lib.precision): fp32 (default, the committed record's), bf16 (its "
                        "own store results-bf16/ and record folder record/<scale>-bf16/; image selection and MASK "
                        "keep fp32), tf32 (CUDA only)")
