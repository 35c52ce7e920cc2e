"""Every name the project spells out, in one place: profiles, victims, interpreters, labels.

The paper attacks four interpreters (:data:`INTERPRETERS`, in the paper's table order) on two
victims (:data:`VICTIMS`) in two profiles (:data:`PROFILES`). :data:`LABELS` maps each name to
the way the book writes it. An interpreter added through the protocol (e.g. ``smoothgrad``)
is buildable by name (:func:`adv2lib.interpreters.build_interpreter`) but is not one of the
paper's four, so the book's experiments do not run it unless asked.
"""
from __future__ import annotations

PROFILES = ("embedded", "imagenet")
VICTIMS = ("resnet", "densenet")
#: The paper's interpreters, in its tables' order (GRAD, CAM, MASK, RTS).
INTERPRETERS = ("grad", "cam", "mask", "rts")
ATTACKS = ("pgd", "adv2")

#: How the book writes each name.
LABELS = {
    "grad": "GRAD", "cam": "CAM", "mask": "MASK", "rts": "RTS", "smoothgrad": "SmoothGrad",
    "pgd": "PGD", "adv2": "ADV2", "benign": "benign", "target": "target",
    "resnet": "ResNet", "densenet": "DenseNet",
}


def label(name: str) -> str:
    """The display label of ``name`` (the name itself when it has none)."""
    return LABELS.get(name, name)


def expand_victims(name: str) -> list[str]:
    """``"all"`` -> every victim; any other name -> ``[name]`` (checked by the caller)."""
    return list(VICTIMS) if name == "all" else [name]
