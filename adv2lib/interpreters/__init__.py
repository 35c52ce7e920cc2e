"""The four interpreters attacked by ADV2 (paper-spec section (c)).

>>> from adv2lib.interpreters import GRAD, CAM, MASK, RTS, INTERPRETERS, build_interpreter

Every interpreter is built from a victim and called as ``interp(x, target)``: images
``(N, C, H, W)`` in [0, 1] and a LongTensor of classes give maps ``(N, 1, h, w)`` in [0, 1]
at ``interp.native_size``, differentiable w.r.t. ``x``.

=========  ==================================  ==========  ==========
name       method                              embedded    ImageNet
=========  ==================================  ==========  ==========
``grad``   vanilla gradient (Simonyan 2014)    14x14       56x56
``cam``    class activation map (Zhou 2016)    7x7         7x7
``mask``   meaningful perturbation (Fong 2017) 14x14       28x28
``rts``    real-time saliency (Dabkowski 2017) 14x14       56x56
=========  ==================================  ==========  ==========

``RTS`` is imported lazily from :mod:`adv2lib.interpreters.rts`, so the other three are
usable even where that module (or its trained weights) is missing.
"""
from __future__ import annotations

from ..errors import ConfigError
from .base import Interpreter, minmax_normalize, upsample_map
from .cam import CAM
from .grad import GRAD
from .mask import MASK, MaskConfig, MaskState
from .surrogate import soft_relu_backward

INTERPRETERS = ("grad", "cam", "mask", "rts")

__all__ = [
    "GRAD", "CAM", "MASK", "RTS", "INTERPRETERS", "build_interpreter", "Interpreter", "MaskConfig",
    "MaskState", "minmax_normalize", "upsample_map", "soft_relu_backward",
]


def _load_rts():
    try:
        from .rts import RTS
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.rts":
            raise
        raise ImportError(
            "RTS is not available: adv2lib/interpreters/rts.py is missing from this checkout"
        ) from err
    return RTS


def __getattr__(name: str):
    # PEP 562: ``from adv2lib.interpreters import RTS`` imports the module on first use.
    if name == "RTS":
        return _load_rts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_interpreter(name: str, victim, **kwargs) -> Interpreter:
    """The interpreter called ``name`` (one of :data:`INTERPRETERS`) for ``victim``.

    Keyword arguments go to the interpreter's constructor (e.g. ``iterations`` for MASK).

    >>> from adv2lib.models import build_victim
    >>> build_interpreter("cam", build_victim("resnet")).native_size
    (7, 7)
    """
    key = str(name).lower()
    if key not in INTERPRETERS:
        raise ConfigError(f"unknown interpreter {name!r}; expected one of {', '.join(INTERPRETERS)}")
    cls = {"grad": GRAD, "cam": CAM, "mask": MASK}.get(key) or _load_rts()
    return cls(victim, **kwargs)
