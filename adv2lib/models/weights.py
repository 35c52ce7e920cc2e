"""Reading weights files, for every loader of the library (victims, RTS networks).

A file that cannot be read (truncated, empty, not a torch file) or whose state dict belongs
to another architecture is refused with one :class:`~adv2lib.errors.WeightsMismatchError`
line naming the file and the remedy, instead of torch's zip error or a several-thousand-
character list of state-dict keys.
"""
from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .. import paths
from ..errors import WeightsMismatchError, WeightsNotFoundError

__all__ = ["display_path", "first_sentence", "repair_hint", "read_card", "read_weights_file", "state_dict_mismatch",
           "load_fitting_state_dict"]

def display_path(path) -> str:
    """``path`` relative to the repository root when it lies inside it, else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(paths.root().resolve()))
    except ValueError:
        return str(path)


def repair_hint(path, default, retrain: str) -> str:
    """What to do about a damaged weights file: restore the committed one from git (when
    ``path`` is the committed file ``default`` inside the repository), else use an intact copy;
    or retrain with the command ``retrain``."""
    path = Path(path)
    shown = display_path(path)
    committed = default is not None and path.resolve() == Path(default).resolve() and shown != str(path.resolve())
    if committed:
        return f"restore it with git checkout -- {shown} or retrain with {retrain}"
    where = f" or use the committed {display_path(default)} (weights='auto')" if default is not None else ""
    return f"replace it with an intact copy{where}, or retrain with {retrain}"


def read_card(path) -> dict | None:
    """The model card next to a weights file (``<file>.json``), or None when there is none or it
    is not a JSON object."""
    card = Path(path).with_suffix(".json")
    try:
        data = json.loads(card.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def first_sentence(err: BaseException, limit: int = 100) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = text.split(". ")[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_weights_file(path, remedy: str):
    """``torch.load(path)`` on the CPU with ``weights_only=True``.

    A missing file raises :class:`~adv2lib.errors.WeightsNotFoundError`; a file torch cannot
    read (truncated, empty, not a PyTorch file) raises one
    :class:`~adv2lib.errors.WeightsMismatchError` line naming the file, its size and
    ``remedy``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"no weights file at {display_path(path)}: {remedy}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, pickle.UnpicklingError,
            zipfile.BadZipFile) as err:
        reason = first_sentence(err)
        raise WeightsMismatchError(
            f"{display_path(path)} cannot be read as PyTorch weights ({path.stat().st_size} bytes, "
            f"{type(err).__name__}{': ' + reason if reason else ''}); the file is truncated or damaged: {remedy}"
        ) from err


def state_dict_mismatch(model: nn.Module, state) -> str | None:
    """Why ``state`` cannot be loaded into ``model`` (strictly), in a few words; None if it can."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        if isinstance(state, Mapping):
            keys = ", ".join(map(str, list(state)[:4])) + (", ..." if len(state) > 4 else "")
            return f"it holds a dict with keys {keys}, not a state dict"
        return f"it holds a {type(state).__name__}, not a state dict"
    expected = model.state_dict()
    # BatchNorm fills in a missing ``num_batches_tracked`` when the file predates it (old
    # torchvision checkpoints); if it cannot, load_state_dict's own error is still caught.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or reshaped):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the {len(expected)} keys missing (first {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]!r})")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} of another shape (first {k!r}: {list(state[k].shape)} "
                     f"instead of {list(expected[k].shape)})")
    return "its keys do not fit: " + ", ".join(parts)


def load_fitting_state_dict(model: nn.Module, state, path, architecture: str, owner: str, remedy: str,
                            guess=None) -> None:
    """Load ``state`` (read from ``path``) into ``model`` strictly, or raise one
    :class:`~adv2lib.errors.WeightsMismatchError` line saying that the file does not fit
    ``architecture`` of ``owner``: the model card's ``architecture`` when a card next to the
    file names another one, else what ``guess(state)`` recognises, else which keys differ."""
    why = state_dict_mismatch(model, state)
    if why is None:
        try:
            model.load_state_dict(state)
            return
        except RuntimeError as err:   # e.g. a dtype that cannot be copied
            why = first_sentence(err)
    card = read_card(path) or {}
    card_arch = card.get("architecture")
    if isinstance(card_arch, str) and card_arch != architecture:
        why = f"its model card says {card_arch}"
    elif guess is not None and (recognised := guess(state)):
        why = f"its keys are those of {recognised}"
    raise WeightsMismatchError(
        f"{display_path(path)} does not fit the {architecture} architecture of {owner} ({why}): {remedy}"
    )


