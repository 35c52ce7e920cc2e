"""The model cards of the victims and RTS networks, as the models chapter shows them.

A card is the JSON written next to a weights file when it was trained
(:func:`adv2lib.checkpoints.save_weights`): architecture, data, accuracy, training time and
configuration, the per-epoch or per-step history and the package versions.
"""
from __future__ import annotations

import json
from typing import Sequence

import pandas as pd

from .. import paths
from ..names import VICTIMS, label

__all__ = ["victim_cards", "rts_cards", "card_table"]


def victim_cards(profile: str = "embedded") -> pd.DataFrame:
    """One row per embedded victim from its committed model card (``weights/embedded/*.json``)."""
    rows = []
    for name in VICTIMS:
        path = paths.weights_dir() / profile / f"{name}.json"
        if not path.is_file():
            continue
        card = json.loads(path.read_text())
        cfg = card.get("config", {})
        rows.append({
            "victim": label(name), "architecture": card.get("architecture"),
            "parameters": card.get("parameters"), "dataset": card.get("dataset"),
            "test accuracy": card.get("test_accuracy"), "test images": card.get("test_images"),
            "epochs": cfg.get("epochs"), "training time (s)": card.get("training_seconds"),
            "trained on": card.get("training_device"), "description": card.get("description"),
        })
    return pd.DataFrame(rows)


def rts_cards(profile: str = "embedded", hardened: bool = False) -> list[dict]:
    """The RTS model cards (``weights/<profile>/rts_<victim>.json``), as dictionaries; with
    ``hardened``, those of the AID-hardened networks (``rts_aid_<victim>.json``) instead."""
    directory = paths.weights_dir() / profile
    if not directory.is_dir():
        return []
    paths_ = sorted(p for p in directory.glob("rts_*.json") if p.name.startswith("rts_aid_") == hardened)
    return [json.loads(p.read_text()) for p in paths_]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], dict):
            continue  # histories are plotted, not tabulated
        else:
            out[key] = ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
    return out


def card_table(cards: Sequence[dict], skip: Sequence[str] = ("versions.", "history")) -> pd.DataFrame:
    """Model cards side by side: one row per (flattened) field, one column per card."""
    columns = {}
    for card in cards:
        flat = {k: v for k, v in _flatten(card).items() if not any(k.startswith(s) for s in skip)}
        columns[card.get("name", "?")] = flat
    fields = list(dict.fromkeys(f for c in columns.values() for f in c))
    table = pd.DataFrame({name: [c.get(f, "") for f in fields] for name, c in columns.items()}, index=fields)
    table.index.name = "field"
    return table.astype(str)
