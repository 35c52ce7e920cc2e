"""The interpreters attacked by ADV2: the paper's four (paper-spec section (c)) and SmoothGrad.

>>> from adv2lib.interpreters import GRAD, CAM, MASK, RTS, SmoothGrad, INTERPRETERS, build_interpreter

Every interpreter is built from a victim and called as ``interp(x, target)``: images
``(N, C, H, W)`` in [0, 1] and a LongTensor of classes give maps ``(N, 1, h, w)`` in [0, 1]
at ``interp.native_size``, differentiable w.r.t. ``x``.

==============  ===================================  ==========  ==========
name            method                               embedded    ImageNet
==============  ===================================  ==========  ==========
``grad``        vanilla gradient (Simonyan 2014)     14x14       56x56
``cam``         class activation map (Zhou 2016)     7x7         7x7
``mask``        meaningful perturbation (Fong 2017)  14x14       28x28
``rts``         real-time saliency (Dabkowski 2017)  14x14       56x56
``smoothgrad``  noise-averaged gradient (Smilkov     14x14       56x56
                2017), not in the paper
==============  ===================================  ==========  ==========

:data:`INTERPRETERS` holds the paper's four (:mod:`adv2lib.names`), the ones the book's
experiments run; :data:`REGISTRY` holds every interpreter :func:`build_interpreter` builds by
name. SmoothGrad is the worked example of the attack protocol (:class:`Interpreter`): it
reaches ADV2 through that protocol alone.

``RTS`` is imported lazily from :mod:`adv2lib.interpreters.rts`, so the others are usable
even where that module (or its trained weights) is missing.
"""
from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from ..names import INTERPRETERS
from ._common import gaussian_blur
from .base import AttackTerms, Interpreter, MapFunction, minmax_normalize, upsample_map
from .cam import CAM
from .grad import GRAD
from .mask import MASK, MaskConfig, MaskState
from .smoothgrad import SmoothGrad, SmoothGradConfig
from .surrogate import soft_relu_backward

__all__ = [
    "GRAD", "CAM", "MASK", "RTS", "SmoothGrad", "INTERPRETERS", "REGISTRY", "build_interpreter",
    "Interpreter", "AttackTerms", "MapFunction", "MaskConfig", "MaskState", "SmoothGradConfig",
    "minmax_normalize", "upsample_map", "soft_relu_backward", "gaussian_blur",
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


def _rts(victim, **kwargs) -> Interpreter:
    """``RTS(victim, **kwargs)``, its module imported on first use."""
    return _load_rts()(victim, **kwargs)


#: name -> constructor ``(victim, **kwargs) -> Interpreter`` of every interpreter buildable by
#: name: the paper's four and SmoothGrad. An interpreter class is such a constructor.
REGISTRY: dict[str, Callable[..., Interpreter]] = {
    "grad": GRAD, "cam": CAM, "mask": MASK, "rts": _rts, "smoothgrad": SmoothGrad,
}


def build_interpreter(name: str, victim, **kwargs) -> Interpreter:
    """The interpreter called ``name`` (a key of :data:`REGISTRY`) for ``victim``.

    Keyword arguments go to the interpreter's constructor (e.g. ``iterations`` for MASK,
    ``n_samples`` for SmoothGrad).

    >>> from adv2lib.models import build_victim
    >>> build_interpreter("cam", build_victim("resnet")).native_size
    (7, 7)
    """
    key = str(name).lower()
    if key not in REGISTRY:
        raise ConfigError(f"unknown interpreter {name!r}; expected one of {', '.join(REGISTRY)}")
    return REGISTRY[key](victim, **kwargs)
