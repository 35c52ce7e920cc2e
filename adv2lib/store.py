"""The results store: per-batch, atomic, resumable, shared safely, keyed by what produced the numbers.

Layout under ``root`` (default :func:`adv2lib.paths.results_dir`)::

    <experiment>/<profile>/<victim>/<interpreter>/<attack>/seed<seed>-<params hash>/
        manifest.json        # the key, the full parameters, library/torch versions, time
        batch_0000.pt        # {"rows": JSON columns, "tensors": {...}, "versions": {...}}
        batch_0001.pt
        locks/               # one lock file per batch (filelock), held while it is computed
        unreadable/          # damaged files moved aside (never deleted), with a time stamp

Guarantees, each tested in ``tests/test_store.py``:

* **Atomic.** Every file is written to a temporary name and renamed into place
  (:func:`adv2lib.fileio.atomic_write`): a run killed mid-write leaves the whole batch or none.
* **Keyed by everything that sets the numbers.** The parameters hash covers what the
  experiments put in :class:`RunKey`'s ``params``: the attack preset, the interpreter's
  settings and weights, a hash of the images and labels actually attacked, a hash of the
  victim's state dict, and a hash of the library code that computes the numbers
  (:mod:`adv2lib.fingerprint`). Versions of torch and Python and the device are recorded
  next to the results, not keyed (the same inputs on another machine reuse the results).
* **Self-healing.** A batch file or manifest that cannot be read (truncated, empty, not a
  torch file) is named in an :class:`UnreadableResultWarning`, moved to ``unreadable/`` and
  recomputed by the next run.
* **Shared.** :meth:`ResultsStore.ensure_batches` takes a lock per (run key, batch): a second
  run on the same store skips the batches the first is computing, does the others, then waits
  for the first's and loads them; every batch is computed once.
* **Compact.** Tensors are saved as compact copies, not as views into a larger storage.
* Files are created with mode ``0o666`` minus the umask, so a group-shared store stays readable.

>>> store = ResultsStore("/tmp/adv2-doc-store")                     # doctest: +SKIP
>>> key = RunKey("main", "embedded", "resnet", "cam", "adv2", {"eps": 0.1}, seed=0)  # doctest: +SKIP
>>> store.save_batch(key, 0, rows, {"x_adv": x_adv})                # doctest: +SKIP
>>> store.summary(experiment="main")                                # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from . import paths
from .fileio import atomic_write, sha256_bytes
from .utils import versions

__all__ = ["RunKey", "ResultsStore", "params_hash", "to_jsonable", "UnreadableResultWarning", "compact"]

KEY_COLUMNS = ("experiment", "profile", "victim", "interpreter", "attack", "seed", "params_hash")
MANIFEST = "manifest.json"
UNREADABLE_DIR = "unreadable"
LOCKS_DIR = "locks"


class UnreadableResultWarning(UserWarning):
    """A stored result file could not be read; it was moved aside and will be recomputed."""


def to_jsonable(obj):
    """Dataclasses, tensors, numpy values, tuples and paths -> JSON-compatible values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__type__": type(obj).__name__,
                **{f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if torch.is_tensor(obj):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):   # numpy array or scalar
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def params_hash(params) -> str:
    """A short, stable hash of ``params`` (JSON with sorted keys)."""
    text = json.dumps(to_jsonable(params), sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode())[:12]


def compact(tensor: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy of ``tensor`` that owns exactly its own elements.

    ``torch.save`` writes a tensor's whole storage: a slice ``x[lo:hi]`` of a 100-image batch
    would carry all 100 images. ``.clone()`` into contiguous memory allocates a fresh storage
    of the tensor's own size."""
    return tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)


@dataclass(frozen=True)
class RunKey:
    """What identifies a run: experiment, profile, victim, interpreter (``"none"`` for
    interpreter-free PGD), attack, the parameters (hashed) and the seed."""

    experiment: str
    profile: str
    victim: str
    interpreter: str
    attack: str
    params: dict = field(default_factory=dict, compare=False, hash=False)
    seed: int = 0

    @property
    def params_hash(self) -> str:
        return params_hash(self.params)

    def columns(self) -> dict:
        return {"experiment": self.experiment, "profile": self.profile, "victim": self.victim,
                "interpreter": self.interpreter, "attack": self.attack, "seed": self.seed,
                "params_hash": self.params_hash}

    def relpath(self) -> Path:
        return (Path(self.experiment) / self.profile / self.victim / (self.interpreter or "none")
                / self.attack / f"seed{self.seed}-{self.params_hash}")


def _columns_from_path(run: Path) -> dict:
    """Key columns recovered from a run directory's path (when its manifest is unreadable)."""
    experiment, profile, victim, interpreter, attack, leaf = run.parts[-6:]
    seed, _, phash = leaf.partition("-")
    return {"experiment": experiment, "profile": profile, "victim": victim, "interpreter": interpreter,
            "attack": attack, "seed": int(seed.removeprefix("seed") or 0), "params_hash": phash}


class ResultsStore:
    """Per-batch results on disk (see the module docstring)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else paths.results_dir()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    # ---------------------------------------------------------------- paths
    def run_dir(self, key: RunKey) -> Path:
        return self.root / key.relpath()

    def batch_path(self, key: RunKey, batch: int) -> Path:
        return self.run_dir(key) / f"batch_{int(batch):04d}.pt"

    def lock_path(self, key: RunKey, batch: int) -> Path:
        return self.run_dir(key) / LOCKS_DIR / f"batch_{int(batch):04d}.lock"

    # ---------------------------------------------------------------- damaged files
    def _set_aside(self, path: Path, err: BaseException) -> Path:
        """Move an unreadable file to ``<run>/unreadable/<name>.<time>`` and warn, naming it."""
        dest_dir = path.parent / UNREADABLE_DIR
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}"
        try:
            path.replace(dest)
        except FileNotFoundError:      # another run moved it first
            return dest
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'empty or truncated'}"
        warnings.warn(f"unreadable result file {path} ({reason[:200]}); moved to {dest}; it will be recomputed",
                      UnreadableResultWarning, stacklevel=3)
        return dest

    # ---------------------------------------------------------------- writing
    def write_manifest(self, key: RunKey, extra: dict | None = None) -> Path:
        """Write (or refresh) the run's manifest: key, parameters, versions, time."""
        path = self.run_dir(key) / MANIFEST
        payload = {**key.columns(), "params": to_jsonable(key.params), "versions": versions(),
                   "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if extra:
            payload.update(to_jsonable(extra))
        atomic_write(path, json.dumps(payload, indent=2, sort_keys=True))
        return path

    def ensure_manifest(self, key: RunKey, extra: dict | None = None) -> Path:
        """The run's manifest, written when missing or unreadable (an unreadable one is set aside)."""
        path = self.run_dir(key) / MANIFEST
        if path.is_file():
            try:
                json.loads(path.read_text())
                return path
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                self._set_aside(path, err)
        return self.write_manifest(key, extra)

    def save_batch(self, key: RunKey, batch: int, rows, tensors: dict | None = None) -> Path:
        """Atomically write batch ``batch`` of run ``key``: ``rows`` (a DataFrame or a list of
        dicts, one per example) and ``tensors`` (name -> tensor, first dimension = examples)."""
        import pandas as pd

        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        self.ensure_manifest(key)
        payload = {
            "rows": json.dumps({c: to_jsonable(frame[c].to_numpy()) for c in frame.columns}),
            "tensors": {k: compact(v) for k, v in (tensors or {}).items() if v is not None},
            "batch": int(batch),
            "versions": json.dumps(versions()),
        }
        path = self.batch_path(key, batch)
        atomic_write(path, lambda fh: torch.save(payload, fh))
        return path

    # ---------------------------------------------------------------- reading
    def has_batch(self, key: RunKey, batch: int) -> bool:
        """Whether batch ``batch`` of ``key`` exists (not whether it is readable: see :meth:`try_load`)."""
        return self.batch_path(key, batch).is_file()

    def batches(self, key: RunKey) -> list[int]:
        run = self.run_dir(key)
        if not run.is_dir():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in run.glob("batch_*.pt"))

    @staticmethod
    def _read(path: Path):
        import pandas as pd

        payload = torch.load(path, map_location="cpu", weights_only=True)
        # rows: JSON columns; stores written before that hold records, which DataFrame reads too
        return pd.DataFrame(json.loads(payload["rows"])), payload["tensors"]

    def _try_read(self, path: Path):
        """``(rows, tensors)`` of a batch file, or None when it is absent or unreadable (then set aside)."""
        if not path.is_file():
            return None
        try:
            return self._read(path)
        except Exception as err:  # noqa: BLE001 - zip, pickle, EOF, JSON, key errors: all mean unreadable
            self._set_aside(path, err)
            return None

    def try_load(self, key: RunKey, batch: int):
        """``(rows, tensors)`` of a finished batch, or None when it is missing or unreadable."""
        return self._try_read(self.batch_path(key, batch))

    def load_batch(self, key: RunKey, batch: int) -> tuple:
        """``(rows DataFrame, tensors dict)`` of one finished batch (FileNotFoundError when it is
        missing or was unreadable and has been set aside)."""
        data = self.try_load(key, batch)
        if data is None:
            raise FileNotFoundError(f"batch {batch} of {self.run_dir(key)} is not in the store; "
                                    "rerun the experiment to compute it")
        return data

    @staticmethod
    def concat(loaded: dict):
        """``{batch: (rows, tensors)}`` -> rows concatenated in batch order (with a ``batch``
        column) and every tensor concatenated along the example dimension."""
        import pandas as pd

        frames, tensors = [], {}
        for b, (rows, t) in loaded.items():
            rows = rows.copy()
            rows["batch"] = b
            frames.append(rows)
            for name, value in t.items():
                tensors.setdefault(name, []).append(value)
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return frame, {k: torch.cat(v) for k, v in tensors.items()}

    def load_run(self, key: RunKey, batches=None) -> tuple:
        """All (or the listed) batches of ``key``: rows concatenated (with a ``batch`` column)
        and every tensor concatenated along the example dimension."""
        wanted = self.batches(key) if batches is None else list(batches)
        return self.concat({b: self.load_batch(key, b) for b in wanted})

    # ---------------------------------------------------------------- computing
    def ensure_batches(self, key: RunKey, batch_ids: Iterable[int], compute: Callable[[int], tuple],
                       desc: str | None = None, progress: bool = True, manifest_extra: dict | None = None):
        """Every batch in ``batch_ids`` of run ``key``, loaded from the store or computed with
        ``compute(batch) -> (rows, tensors)`` and stored; returns them as :meth:`load_run` does
        (:meth:`ensure_jobs` with one run and an in-process computation)."""
        batch_ids = [int(b) for b in batch_ids]

        def run(jobs, save):
            for job in jobs:
                save(job, compute(job[1]))
            return []

        out, _, _ = self.ensure_jobs([(key, b, None) for b in batch_ids], run, desc=desc, progress=progress,
                                     manifest_extra=manifest_extra)
        return self.concat({b: out[(key.relpath(), b)] for b in batch_ids})

    def ensure_jobs(self, jobs, run: Callable, desc: str | None = None, progress: bool = True,
                    manifest_extra: dict | None = None, lock_all_first: bool = False):
        """Batches ``jobs = [(key, batch, payload)]``, loaded from the store or computed by
        ``run(missing_jobs, save) -> failures``, which calls ``save(job, (rows, tensors))`` for
        each job it finishes (the store writes it and reads it back). Returns
        ``({(relpath, batch): (rows, tensors)}, {"computed", "loaded"}, failures)``.

        Each batch is computed under its own lock file (``filelock``): a second process running
        the same key skips the batches the first one holds, computes the others, then waits
        for the held ones and loads them; a batch whose holder died is computed by the waiter.
        ``lock_all_first``: take every missing batch's lock before ``run`` gets them all at once
        (an engine that computes them in parallel); otherwise each is locked and run in turn.
        """
        from filelock import FileLock, Timeout
        from tqdm.auto import tqdm

        out, counts, failures = {}, {"computed": 0, "loaded": 0}, []
        for key in {key.relpath(): key for key, _, _ in jobs}.values():
            self.ensure_manifest(key, manifest_extra)
        todo = []
        for job in jobs:
            data = self.try_load(job[0], job[1])
            if data is None:
                todo.append(job)
            else:
                out[(job[0].relpath(), job[1])] = data
                counts["loaded"] += 1
        if not todo:
            return out, counts, failures
        bar = tqdm(total=len(todo), desc=desc, disable=not progress, leave=False)
        locks = {}

        def save(job, value):
            key, b = job[0], job[1]
            self.save_batch(key, b, *value)
            out[(key.relpath(), b)] = self.load_batch(key, b)
            counts["computed"] += 1
            bar.update()

        def claim(job, block: bool) -> bool:
            """Lock ``job``'s batch; False when another run holds it (or, after waiting, finished it)."""
            key, b = job[0], job[1]
            self.lock_path(key, b).parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.lock_path(key, b))
            try:
                lock.acquire(timeout=-1 if block else 0)
            except Timeout:
                return False
            data = self.try_load(key, b)            # another run may have finished it meanwhile
            if data is None:
                locks[id(job)] = lock
                return True
            lock.release()
            out[(key.relpath(), b)] = data
            counts["loaded"] += 1
            bar.update()
            return False

        def run_claimed(claimed):
            try:
                failures.extend(run(claimed, save) or [])
            finally:
                for job in claimed:
                    locks.pop(id(job)).release()

        try:
            elsewhere = []
            if lock_all_first:
                mine = []
                for job in todo:
                    (mine if claim(job, block=False) else elsewhere).append(job)
                run_claimed(mine)
            else:
                for job in todo:
                    if claim(job, block=False):
                        run_claimed([job])
                    else:
                        elsewhere.append(job)
            for job in elsewhere:
                if (job[0].relpath(), job[1]) in out:
                    continue
                bar.write(f"{desc or self.run_dir(job[0])}: batch {job[1]} is being computed by another run; "
                          "waiting for it")
                if claim(job, block=True):          # its holder died: compute it here
                    run_claimed([job])
        finally:
            for lock in locks.values():
                lock.release()
            bar.close()
        return out, counts, failures

    # ---------------------------------------------------------------- listing
    def manifests(self, **filters) -> list[dict]:
        """Every run's manifest (optionally filtered by key columns). A run whose manifest is
        unreadable is listed with the key columns its path gives (its manifest is set aside)."""
        out = []
        runs = {p.parent for p in self.root.glob("*/*/*/*/*/*/" + MANIFEST)}
        runs |= {p.parent for p in self.root.glob("*/*/*/*/*/*/batch_*.pt")}
        for run in sorted(runs):
            path = run / MANIFEST
            info = None
            if path.is_file():
                try:
                    info = json.loads(path.read_text())
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    self._set_aside(path, err)
            if info is None:
                info = _columns_from_path(run)
            if all(str(info.get(k)) == str(v) for k, v in filters.items() if v is not None):
                info["path"] = str(run)
                out.append(info)
        return out

    def summary(self, experiment: str | None = None, **filters):
        """Every stored per-example row (matching ``experiment`` and ``filters`` on the key
        columns), one tidy DataFrame with the key columns first. A column the rows carry
        themselves (e.g. ``attack`` when one batch holds PGD and ADV2 rows) keeps its values.
        Unreadable batch files are set aside (with a warning) and left out."""
        import pandas as pd

        frames = []
        for info in self.manifests(experiment=experiment, **filters):
            run = Path(info["path"])
            for path in sorted(run.glob("batch_*.pt")):
                data = self._try_read(path)
                if data is None:
                    continue
                rows = data[0]
                rows["batch"] = int(path.stem.split("_")[1])
                for col in KEY_COLUMNS:
                    if col not in rows:      # a row's own value (e.g. attack) wins over the key's
                        rows[col] = info[col]
                front = list(KEY_COLUMNS) + ["batch"]
                frames.append(rows[front + [c for c in rows.columns if c not in front]])
        if not frames:
            return pd.DataFrame(columns=list(KEY_COLUMNS))
        return pd.concat(frames, ignore_index=True)
