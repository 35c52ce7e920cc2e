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

__all__ = ["victim_cards", "rts_cards", "card_table", "rts_evaluation", "accuracy_text"]


def accuracy_text(accuracy: float | None, n: int | None) -> str:
    """An accuracy measured on ``n`` images with its Wilson 95% interval (``"91.3% [90.7%, 91.9%]"``)."""
    from .. import stats
    from .present import interval_text

    if accuracy is None or not n:
        return "–"
    iv = stats.rate(k=int(round(accuracy * n)), n=int(n))
    return interval_text(iv.estimate, iv.lo, iv.hi, "{:.1%}")


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
            "test accuracy (95% interval)": accuracy_text(card.get("test_accuracy"), card.get("test_images")),
            "test images": card.get("test_images"),
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


def rts_evaluation(cards: Sequence[dict]) -> pd.DataFrame:
    """The masking test of RTS model cards: per network and measure (the victim's accuracy on the clean
    images, with only the mask kept, with the mask removed; per replacement), the accuracy with its
    Wilson 95% interval on the card's evaluation images."""
    rows = []
    for card in cards:
        ev = card.get("evaluation", {})
        n = ev.get("n_images")
        measures = {"clean": ev.get("clean_accuracy"), "preserved": ev.get("preserved_accuracy"),
                    "destroyed": ev.get("destroyed_accuracy")}
        for rep_, d in ev.get("by_replacement", {}).items():
            measures.update({f"preserved ({rep_})": d.get("preserved_accuracy"),
                             f"destroyed ({rep_})": d.get("destroyed_accuracy")})
        row = {"network": card.get("name"), "images": n}
        row.update({m: accuracy_text(v, n) for m, v in measures.items() if v is not None})
        rows.append(row)
    return pd.DataFrame(rows)


def card_table(cards: Sequence[dict], skip: Sequence[str] = ("versions.", "history", "evaluation.")) -> pd.DataFrame:
    """Model cards side by side: one row per (flattened) field, one column per card (the masking
    test's accuracies are left out: :func:`rts_evaluation` shows them with their intervals)."""
    columns = {}
    for card in cards:
        flat = {k: v for k, v in _flatten(card).items() if not any(k.startswith(s) for s in skip)}
        columns[card.get("name", "?")] = flat
    fields = list(dict.fromkeys(f for c in columns.values() for f in c))
    table = pd.DataFrame({name: [c.get(f, "") for f in fields] for name, c in columns.items()}, index=fields)
    table.index.name = "field"
    return table.astype(str)


def victims_display(profile: str = "embedded"):
    """``(table, caption)`` of the victims' cards for the models chapter (``None`` without cards)."""
    from .present import TableSpec, styled

    table = victim_cards(profile)
    if table.empty:
        where = paths.weights_dir() / profile
        note = ("The ImageNet victims are torchvision's pretrained ResNet-50 and DenseNet-169 (their published "
                "accuracies are on torchvision's model pages); no card is written." if profile == "imagenet"
                else f"No victim model cards under `{where}`.")
        return None, note
    spec = TableSpec(list(table.columns), formats={"parameters": "{:,}", "training time (s)": "{:.0f}"})
    return styled(table, spec), (f"**Victims.** Test accuracy on the {int(table['test images'].iloc[0]):,} "
                                 f"Fashion-MNIST test images, as recorded in the model cards, with its Wilson 95% "
                                 f"interval.")


def rts_display(profile: str = "embedded"):
    """``(table, caption)`` of the RTS networks' masking test with intervals (``None`` without cards)."""
    from .present import TableSpec, styled

    table = rts_evaluation(rts_cards(profile))
    if table.empty:
        return None, "No RTS model cards found for this profile."
    return styled(table, TableSpec(list(table.columns))), (
        "**The masking test of each RTS network** (from its model card): the victim's accuracy on the clean "
        "evaluation images, with only the mask's region kept (preserved: higher is better) and with it removed "
        "(destroyed: lower is better), by the replacement of the removed pixels, each with its Wilson 95% interval.")


def victim_cards_json(profile: str = "embedded") -> list[dict]:
    """The victims' model cards as dictionaries (``weights/<profile>/<victim>.json``)."""
    return [json.loads((paths.weights_dir() / profile / f"{v}.json").read_text()) for v in VICTIMS
            if (paths.weights_dir() / profile / f"{v}.json").is_file()]
