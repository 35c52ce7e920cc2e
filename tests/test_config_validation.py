"""Attack and MASK configs refuse bad values at construction, with one ConfigError line each."""
from __future__ import annotations

import json
import math
from dataclasses import fields

import numpy as np
import pytest

from adv2lib.attacks.config import (
    ADV2Config, ConfigTypeError, MaskADV2Config, PGDConfig, describe, preset_for, resolve_config, scale_budget,
    smoke_config,
)
from adv2lib.errors import Adv2Error, ConfigError
from adv2lib.interpreters.mask import MaskConfig

PGD_FIELDS = "eps, alpha, steps, loss, random_start, early_stop, stop_confidence, patience, check_every"

#: (config class, keyword arguments, the exact one-line message).
REFUSED = [
    # the three cases of the report: silent division by zero, a fractional count, an unnamed TypeError
    (ADV2Config, dict(check_every=0), "ADV2Config.check_every must be an integer >= 1, got 0"),
    (PGDConfig, dict(steps=2.5), "PGDConfig.steps must be an integer >= 1, got 2.5"),
    (PGDConfig, dict(eps="0.1"), "PGDConfig.eps must be a number in (0, 1], got '0.1'"),
    # integers are real integers
    (PGDConfig, dict(steps=True), "PGDConfig.steps must be an integer >= 1, got True"),
    (PGDConfig, dict(steps=3.0), "PGDConfig.steps must be an integer >= 1, got 3.0"),
    (PGDConfig, dict(steps=0), "PGDConfig.steps must be an integer >= 1, got 0"),
    (PGDConfig, dict(patience=0), "PGDConfig.patience must be an integer >= 1, got 0"),
    (PGDConfig, dict(check_every=None), "PGDConfig.check_every must be an integer >= 1, got None"),
    (ADV2Config, dict(warm_steps=-1), "ADV2Config.warm_steps must be an integer >= 0, got -1"),
    # numbers: int or float, finite, in range; not bool or str
    (PGDConfig, dict(eps=0.0), "PGDConfig.eps must be a number in (0, 1], got 0.0"),
    (PGDConfig, dict(eps=1.5), "PGDConfig.eps must be a number in (0, 1], got 1.5"),
    (PGDConfig, dict(eps=True), "PGDConfig.eps must be a number in (0, 1], got True"),
    (PGDConfig, dict(eps=math.nan), "PGDConfig.eps must be a number in (0, 1], got nan"),
    (PGDConfig, dict(alpha=0), "PGDConfig.alpha must be a number in (0, 1], got 0"),
    (PGDConfig, dict(stop_confidence=1.5), "PGDConfig.stop_confidence must be a number in (0, 1], got 1.5"),
    (ADV2Config, dict(warm_stop_confidence=0.0),
     "ADV2Config.warm_stop_confidence must be a number in (0, 1], got 0.0"),
    (ADV2Config, dict(label_smoothing=1.0), "ADV2Config.label_smoothing must be a number in [0, 1), got 1.0"),
    (ADV2Config, dict(lambda_start=-1), "ADV2Config.lambda_start must be a number >= 0, got -1"),
    (ADV2Config, dict(lambda_end=math.inf), "ADV2Config.lambda_end must be a number >= 0, got inf"),
    (ADV2Config, dict(encoder_ce_weight="0.1"),
     "ADV2Config.encoder_ce_weight must be a number >= 0, got '0.1'"),
    (MaskADV2Config, dict(margin=-1.0), "MaskADV2Config.margin must be a number >= 0, got -1.0"),
    (MaskADV2Config, dict(pred_step=-0.1), "MaskADV2Config.pred_step must be a number >= 0, got -0.1"),
    (MaskADV2Config, dict(interp_step_max=0), "MaskADV2Config.interp_step_max must be a number > 0, got 0"),
    # choices and flags
    (PGDConfig, dict(loss="l2"), "PGDConfig.loss must be one of 'ce', 'cw', got 'l2'"),
    (PGDConfig, dict(early_stop=1), "PGDConfig.early_stop must be True or False, got 1"),
    (ADV2Config, dict(select="first"), "ADV2Config.select must be one of 'last', 'best', got 'first'"),
    (ADV2Config, dict(int_reduction="max"), "ADV2Config.int_reduction must be one of 'mean', 'sum', got 'max'"),
    (ADV2Config, dict(warm_early_stop="yes"), "ADV2Config.warm_early_stop must be True or False, got 'yes'"),
    (MaskADV2Config, dict(warm_loss="ce2"), "MaskADV2Config.warm_loss must be one of 'ce', 'cw', got 'ce2'"),
    # optional values and tuples with a shape
    (ADV2Config, dict(select_confidence=1.0),
     "ADV2Config.select_confidence must be None or a number in (0, 1), got 1.0"),
    (ADV2Config, dict(lambda_stages=((1.0, 2.5),)),
     "ADV2Config.lambda_stages must be a sequence (possibly empty) of pairs (a number >= 0, an integer >= 1), "
     "got ((1.0, 2.5),)"),
    (ADV2Config, dict(lambda_stages=((-1.0, 2),)),
     "ADV2Config.lambda_stages must be a sequence (possibly empty) of pairs (a number >= 0, an integer >= 1), "
     "got ((-1.0, 2),)"),
    (ADV2Config, dict(lambda_stages=(1.0, 2)),
     "ADV2Config.lambda_stages must be a sequence (possibly empty) of pairs (a number >= 0, an integer >= 1), "
     "got (1.0, 2)"),
    (MaskADV2Config, dict(moment_decay=(0.5,)),
     "MaskADV2Config.moment_decay must be a pair (a number in (0, 1], a number in (0, 1]), got (0.5,)"),
    (MaskADV2Config, dict(moment_decay=(0.0, 0.25)),
     "MaskADV2Config.moment_decay must be a pair (a number in (0, 1], a number in (0, 1]), got (0.0, 0.25)"),
    (MaskADV2Config, dict(moment_decay=(0.5, 1.5)),
     "MaskADV2Config.moment_decay must be a pair (a number in (0, 1], a number in (0, 1]), got (0.5, 1.5)"),
    # MASK's counts
    (MaskADV2Config, dict(recompute_every=0), "MaskADV2Config.recompute_every must be an integer >= 1, got 0"),
    (MaskADV2Config, dict(unrolled_steps=0), "MaskADV2Config.unrolled_steps must be an integer >= 1, got 0"),
    (MaskADV2Config, dict(bisection_steps=0), "MaskADV2Config.bisection_steps must be an integer >= 1, got 0"),
    (MaskADV2Config, dict(late_after=-1), "MaskADV2Config.late_after must be an integer >= 0, got -1"),
    (MaskADV2Config, dict(reset_step=1.5), "MaskADV2Config.reset_step must be an integer >= 0, got 1.5"),
    # the MASK interpreter's own settings
    (MaskConfig, dict(image_blur=(4, 1.0)),
     "MaskConfig.image_blur must be a pair (an odd integer >= 1, a number > 0), got (4, 1.0)"),
    (MaskConfig, dict(mask_blur=(3, 0.0)),
     "MaskConfig.mask_blur must be a pair (an odd integer >= 1, a number > 0), got (3, 0.0)"),
    (MaskConfig, dict(tv_pairing="transposed"),
     "MaskConfig.tv_pairing must be one of 'textbook', 'official', got 'transposed'"),
    (MaskConfig, dict(jitter=-1), "MaskConfig.jitter must be an integer >= 0, got -1"),
    (MaskConfig, dict(iterations=2.5), "MaskConfig.iterations must be an integer >= 0, got 2.5"),
    (MaskConfig, dict(mask_size=0), "MaskConfig.mask_size must be an integer >= 1, got 0"),
    (MaskConfig, dict(init=1.5), "MaskConfig.init must be a number in [0, 1], got 1.5"),
    (MaskConfig, dict(lr=0.0), "MaskConfig.lr must be a number > 0, got 0.0"),
    (MaskConfig, dict(betas=(0.9, 1.0)),
     "MaskConfig.betas must be a pair (a number in [0, 1), a number in [0, 1)), got (0.9, 1.0)"),
]


@pytest.mark.parametrize("cls, kwargs, message", REFUSED, ids=[f"{c.__name__}-{next(iter(k))}-{i}"
                                                               for i, (c, k, _) in enumerate(REFUSED)])
def test_bad_values_are_refused_with_one_line(cls, kwargs, message):
    with pytest.raises(ConfigError) as err:
        cls(**kwargs)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, Adv2Error)


@pytest.mark.parametrize("cls", [PGDConfig, ADV2Config, MaskADV2Config, MaskConfig])
def test_every_field_declares_its_allowed_values(cls):
    for f in fields(cls):
        spec = f.metadata.get("check")
        assert spec is not None and spec.text, f"{cls.__name__}.{f.name} has no check"
    if cls is not MaskConfig:
        assert all(f.metadata.get("source") for f in fields(cls))


def test_accepted_values_are_normalised():
    cfg = PGDConfig(eps=1, alpha=np.float64(0.01), steps=np.int64(3))
    assert cfg.eps == 1.0 and type(cfg.eps) is float
    assert type(cfg.alpha) is float and type(cfg.steps) is int and cfg.steps == 3
    staged = ADV2Config(lambda_stages=[[0.1, 2], [1, 3]])
    assert staged.lambda_stages == ((0.1, 2), (1.0, 3)) and staged.steps == 5
    assert type(staged.lambda_stages[1][0]) is float
    mask = MaskADV2Config(moment_decay=[0.5, 1])
    assert mask.moment_decay == (0.5, 1.0)
    assert ADV2Config(select_confidence=None).select_confidence is None
    assert MaskConfig(image_blur=[5, 1]).image_blur == (5, 1.0)
    # still frozen and hashable
    assert len({cfg, PGDConfig(eps=1.0, alpha=0.01, steps=3)}) == 1
    with pytest.raises(Exception):
        cfg.steps = 4


def test_every_preset_constructs():
    for profile in ("embedded", "imagenet"):
        for attack in ("pgd", "grad", "cam", "rts", "mask", "toy"):
            for smoke in (False, True):
                cfg = preset_for(profile, attack, smoke=smoke)
                assert smoke_config(cfg) is not None
                json.dumps(describe(cfg, profile, attack)["value"].astype(str).tolist())
                if not isinstance(cfg, PGDConfig):
                    for factor in (0.5, 1, 2, 4):
                        assert scale_budget(cfg, factor).total_steps >= 1


def test_overrides_are_validated_too():
    with pytest.raises(ConfigError) as err:
        preset_for("embedded", "cam", check_every=0)
    assert str(err.value) == "ADV2Config.check_every must be an integer >= 1, got 0"
    with pytest.raises(ConfigError) as err:
        resolve_config("embedded", "pgd", steps=2.5)
    assert str(err.value) == "PGDConfig.steps must be an integer >= 1, got 2.5"


def test_unknown_override_names_list_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        resolve_config("embedded", "pgd", stepz=3, epz=0.1)
    assert str(err.value) == f"unknown PGDConfig option(s): epz, stepz; valid options: {PGD_FIELDS}"
    assert isinstance(err.value, TypeError) and isinstance(err.value, ConfigTypeError)  # as for a bad keyword
    with pytest.raises(ConfigError) as err:
        preset_for("imagenet", "pgd", stepz=3)
    assert str(err.value) == f"unknown PGDConfig option(s): stepz; valid options: {PGD_FIELDS}"
    assert "\n" not in str(err.value)


def test_unknown_profile_and_wrong_config_class():
    with pytest.raises(ConfigError) as err:
        preset_for("cifar", "pgd")
    assert str(err.value) == "unknown profile 'cifar'; expected one of embedded, imagenet"
    with pytest.raises(ConfigError) as err:
        MaskConfig.for_profile("cifar")
    assert str(err.value) == "unknown profile 'cifar'; expected 'embedded' or 'imagenet'"
    with pytest.raises(ConfigTypeError) as err:
        resolve_config("embedded", "cam", config=PGDConfig(), expected=ADV2Config)
    assert str(err.value) == "the 'cam' attack takes a config of class ADV2Config, got PGDConfig"


def test_scale_budget_factor():
    cam = preset_for("embedded", "cam")
    for bad in (0, -1, True, "2", math.inf):
        with pytest.raises(ConfigError) as err:
            scale_budget(cam, bad)
        assert str(err.value) == f"scale_budget factor must be a positive number, got {bad!r}"
    with pytest.raises(ConfigTypeError) as err:
        scale_budget(PGDConfig(), 2)
    assert str(err.value) == "scale_budget takes an ADV2 config (ADV2Config or MaskADV2Config), not PGDConfig"
