"""Attacks on interpretable deep learning systems: PGD and ADV2.

>>> from adv2lib.attacks import PGD, ADV2, AttackResult, preset_for

* :class:`PGD` -- targeted L-inf PGD (the baseline, and ADV2's warm start);
* :class:`ADV2` -- the attack of Zhang et al. (USENIX Security 2020) against one
  interpreter (GRAD, CAM, MASK, RTS, SmoothGrad, a reader's own
  :class:`~adv2lib.interpreters.Interpreter`, or any map function), sharing PGD's loop; it
  asks the interpreter what it needs through the interpreters' attack protocol, and runs
  the bilevel routine of :mod:`~adv2lib.attacks.adv2_mask` for MASK;
* :class:`AttackResult` -- the adversarial batch and a per-example record;
* :func:`preset_for` -- the hyperparameters of a profile ("embedded" / "imagenet"), as
  frozen dataclasses whose fields name their source (:func:`describe`).
"""
from .adv2 import ADV2, map_loss
from .config import (ADV2Config, MaskADV2Config, PGDConfig, describe, preset_for, resolve_config,
                     scale_budget, smoke_config)
from .loop import project, quantize_8bit
from .pgd import PGD
from .result import AttackResult

__all__ = [
    "PGD", "ADV2", "AttackResult", "preset_for", "describe", "smoke_config", "resolve_config",
    "PGDConfig", "ADV2Config", "MaskADV2Config", "project", "quantize_8bit", "map_loss", "scale_budget",
]
