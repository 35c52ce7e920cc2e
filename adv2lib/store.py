"""The results store: per-batch, atomic, resumable, keyed by what produced the numbers.

Layout under ``root`` (default :func:`adv2lib.paths.results_dir`)::

    <experiment>/<profile>/<victim>/<interpreter>/<attack>/seed<seed>-<params hash>/
        manifest.json        # the key, the full parameters, library/torch versions, time
        batch_0000.pt        # {"rows": JSON records, "tensors": {...}, "versions": {...}}
        batch_0001.pt

Each batch file is written to a temporary name in the same directory and moved into place
with :func:`os.replace` (atomic on POSIX), so a run killed mid-write leaves either the
whole batch or nothing. A rerun with the same key finds the finished batches and skips
them (:meth:`ResultsStore.has_batch`). The parameters hash covers every parameter that
changes the numbers (attack preset, image selection, victim weights fingerprint, ...); the
versions are recorded next to the results but are not part of the key.

>>> store = ResultsStore("/tmp/adv2-doc-store")                     # doctest: +SKIP
>>> key = RunKey("main", "embedded", "resnet", "cam", "adv2", {"eps": 0.1}, seed=0)  # doctest: +SKIP
>>> store.save_batch(key, 0, rows, {"x_adv": x_adv})                # doctest: +SKIP
>>> store.summary(experiment="main")                                # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import paths
from .utils import versions

__all__ = ["RunKey", "ResultsStore", "params_hash", "to_jsonable"]

KEY_COLUMNS = ("experiment", "profile", "victim", "interpreter", "attack", "seed", "params_hash")


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
    if hasattr(obj, "item") and hasattr(obj, "dtype"):   # numpy scalar
        return obj.item()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def params_hash(params) -> str:
    """A short, stable hash of ``params`` (JSON with sorted keys)."""
    text = json.dumps(to_jsonable(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


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

    # ---------------------------------------------------------------- writing
    def write_manifest(self, key: RunKey, extra: dict | None = None) -> Path:
        """Write (or refresh) the run's manifest: key, parameters, versions, time."""
        path = self.run_dir(key) / "manifest.json"
        payload = {**key.columns(), "params": to_jsonable(key.params), "versions": versions(),
                   "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if extra:
            payload.update(to_jsonable(extra))
        data = json.dumps(payload, indent=2, sort_keys=True).encode()
        _atomic_write(path, lambda fh: fh.write(data))
        return path

    def save_batch(self, key: RunKey, batch: int, rows, tensors: dict | None = None) -> Path:
        """Atomically write batch ``batch`` of run ``key``: ``rows`` (a DataFrame or a list of
        dicts, one per example) and ``tensors`` (name -> tensor, first dimension = examples)."""
        import pandas as pd

        if isinstance(rows, pd.DataFrame):
            records = rows.to_dict(orient="records")
        else:
            records = list(rows)
        manifest = self.run_dir(key) / "manifest.json"
        if not manifest.exists():
            self.write_manifest(key)
        payload = {
            "rows": json.dumps(to_jsonable(records)),
            "tensors": {k: v.detach().cpu().contiguous() for k, v in (tensors or {}).items() if v is not None},
            "batch": int(batch),
            "versions": json.dumps(versions()),
        }
        path = self.batch_path(key, batch)
        _atomic_write(path, lambda fh: torch.save(payload, fh))
        return path

    # ---------------------------------------------------------------- reading
    def has_batch(self, key: RunKey, batch: int) -> bool:
        return self.batch_path(key, batch).is_file()

    def batches(self, key: RunKey) -> list[int]:
        run = self.run_dir(key)
        if not run.is_dir():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in run.glob("batch_*.pt"))

    def load_batch(self, key: RunKey, batch: int) -> tuple:
        """``(rows DataFrame, tensors dict)`` of one finished batch."""
        return self._load_file(self.batch_path(key, batch))

    @staticmethod
    def _load_file(path: Path):
        import pandas as pd

        payload = torch.load(path, map_location="cpu", weights_only=True)
        return pd.DataFrame(json.loads(payload["rows"])), payload["tensors"]

    def load_run(self, key: RunKey, batches=None) -> tuple:
        """All (or the listed) batches of ``key``: rows concatenated (with a ``batch`` column)
        and every tensor concatenated along the example dimension."""
        import pandas as pd

        frames, tensors = [], {}
        for b in (self.batches(key) if batches is None else batches):
            rows, t = self.load_batch(key, b)
            rows["batch"] = b
            frames.append(rows)
            for name, value in t.items():
                tensors.setdefault(name, []).append(value)
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return frame, {k: torch.cat(v) for k, v in tensors.items()}

    def manifests(self, **filters) -> list[dict]:
        """Every run's manifest (optionally filtered by key columns)."""
        out = []
        for path in sorted(self.root.glob("*/*/*/*/*/*/manifest.json")):
            info = json.loads(path.read_text())
            if all(str(info.get(k)) == str(v) for k, v in filters.items() if v is not None):
                info["path"] = str(path.parent)
                out.append(info)
        return out

    def summary(self, experiment: str | None = None, **filters):
        """Every stored per-example row (matching ``experiment`` and ``filters`` on the key
        columns), one tidy DataFrame with the key columns first. A column the rows carry
        themselves (e.g. ``attack`` when one batch holds PGD and ADV2 rows) keeps its values."""
        import pandas as pd

        frames = []
        for info in self.manifests(experiment=experiment, **filters):
            run = Path(info["path"])
            for path in sorted(run.glob("batch_*.pt")):
                rows, _ = self._load_file(path)
                rows["batch"] = int(path.stem.split("_")[1])
                for col in KEY_COLUMNS:
                    if col not in rows:      # a row's own value (e.g. attack) wins over the key's
                        rows[col] = info[col]
                front = list(KEY_COLUMNS) + ["batch"]
                frames.append(rows[front + [c for c in rows.columns if c not in front]])
        if not frames:
            return pd.DataFrame(columns=list(KEY_COLUMNS))
        return pd.concat(frames, ignore_index=True)
