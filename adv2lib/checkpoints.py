"""What the two trainers (victims, RTS networks) write: resumable checkpoints, then the trained
weights with their model card.

* A checkpoint is one ``torch.save`` dictionary under ``ADV2_CACHE_DIR/train`` holding the
  training configuration (as a dict) and everything a run needs to go on (model and optimiser
  states, generator state, step, history). :func:`save_checkpoint` replaces it atomically, so
  a run killed mid-write keeps the previous one; :func:`load_checkpoint` returns it only when
  it was written for the same configuration. A :class:`Checkpoint` names the objects whose
  state a trainer keeps and saves or restores them together.
* The trained weights go to ``weights/<profile>/<name>.pt`` and the model card, a JSON
  object describing them, next to them (``<name>.json``, read back by
  :func:`adv2lib.models.weights.read_card`): :func:`save_weights`.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "run.pt"
>>> save_checkpoint(path, config={"lr": 0.1}, step=3)
>>> load_checkpoint(path, {"lr": 0.1})["step"], load_checkpoint(path, {"lr": 0.2})
(3, None)
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from . import paths
from .fileio import atomic_write, sha256_file

__all__ = ["Checkpoint", "checkpoint_path", "save_checkpoint", "load_checkpoint", "save_weights", "file_sha256"]


def checkpoint_path(name: str) -> Path:
    """``ADV2_CACHE_DIR/train/<name>.pt``: where the training run ``name`` keeps its checkpoint."""
    return paths.cache_dir() / "train" / f"{name}.pt"


def save_checkpoint(path: str | Path, **state) -> None:
    """Atomically replace the checkpoint at ``path`` with ``state`` (one dictionary); ``state``
    holds ``config``, the training configuration :func:`load_checkpoint` compares."""
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | Path, config: dict) -> dict | None:
    """The checkpoint at ``path`` when there is one written for ``config`` (the configuration as a
    dict, e.g. ``dataclasses.asdict(config)``), else None: a run with other settings starts over."""
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state if state.get("config") == config else None


class Checkpoint:
    """The checkpoint at ``path`` (e.g. :func:`checkpoint_path`) of a run with configuration
    ``config`` (a dict), holding the state of each object in ``stateful`` by name: modules,
    optimisers and schedulers (``state_dict``) or ``torch.Generator`` objects (``get_state``).

    >>> import tempfile, pathlib
    >>> net = torch.nn.Linear(2, 1)
    >>> ckpt = Checkpoint(pathlib.Path(tempfile.mkdtemp()) / "demo.pt", {"lr": 0.1}, net=net)
    >>> ckpt.save(step=5)
    >>> ckpt.restore()["step"]            # loads net's weights back, returns the whole dictionary
    5
    """

    def __init__(self, path: str | Path, config: dict, **stateful):
        self.path, self.config, self.stateful = Path(path), config, stateful

    def save(self, **progress) -> None:
        """Save the objects' states and ``progress`` (step, elapsed time, history ...)."""
        states = {key: obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()
                  for key, obj in self.stateful.items()}
        save_checkpoint(self.path, config=self.config, **states, **progress)

    def restore(self) -> dict | None:
        """Put the saved states back into the objects and return the checkpoint, or None (and
        change nothing) when there is no checkpoint for this configuration."""
        state = load_checkpoint(self.path, self.config)
        if state is not None:
            for key, obj in self.stateful.items():
                obj.set_state(state[key]) if isinstance(obj, torch.Generator) else obj.load_state_dict(state[key])
        return state


def save_weights(path: str | Path, weights, card: dict) -> None:
    """Write trained ``weights`` (anything ``torch.save`` takes, e.g. a state dict) to ``path``
    and their model ``card`` next to them (``path`` with ``.json``), each atomically."""
    path = Path(path)
    atomic_write(path, lambda fh: torch.save(weights, fh))
    atomic_write(path.with_suffix(".json"), json.dumps(card, indent=2) + "\n")


def file_sha256(path: str | Path | None) -> str | None:
    """The SHA-256 of the file at ``path`` (:func:`adv2lib.fileio.sha256_file`), None when there is
    none; cards record the weights they were trained against this way."""
    return sha256_file(path) if path is not None and Path(path).is_file() else None
