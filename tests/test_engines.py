"""The engine layer without Ray: choosing an engine, the serial engine's errors, the Ray
engine's argument checks, and that the serial path never imports Ray."""
from __future__ import annotations

import subprocess
import sys

import pytest

from adv2lib.engines import BatchesFailed, Call, RayEngine, SerialEngine, Shared, resolve_engine
from adv2lib.errors import ConfigError


def test_resolve_engine(monkeypatch):
    monkeypatch.delenv("ADV2_ENGINE", raising=False)
    assert isinstance(resolve_engine(None), SerialEngine)
    assert isinstance(resolve_engine("ray"), RayEngine)
    monkeypatch.setenv("ADV2_ENGINE", "ray")
    assert isinstance(resolve_engine(None), RayEngine)
    engine = RayEngine(num_cpus=2)
    assert resolve_engine(engine) is engine
    with pytest.raises(ConfigError, match="unknown engine 'dask'"):
        resolve_engine("dask")
    with pytest.raises(ConfigError, match="engine object"):
        resolve_engine(42)


def test_ray_engine_checks_its_arguments():
    with pytest.raises(ConfigError, match="num_gpus"):
        RayEngine(num_gpus=-1)
    with pytest.raises(ConfigError, match="num_cpus"):
        RayEngine(num_cpus=0)


def double(ctx, value, shared):
    if value < 0:
        raise ValueError("negative")
    return ctx * value + shared


def test_serial_engine_runs_in_order_and_names_the_failing_task():
    seen = []
    shared = Shared(100)
    calls = [Call(double, {"value": v, "shared": shared}, f"task {v}") for v in (1, 2, -1, 3)]
    with pytest.raises(ValueError, match="negative") as info:
        SerialEngine().run(calls, worker=None, local=10, on_result=lambda c, v: seen.append(v))
    assert seen == [110, 120]                                # the first error stops the run
    assert "while computing task -1" in "".join(getattr(info.value, "__notes__", []))


def test_batches_failed_is_one_line_and_lists_the_keys():
    err = BatchesFailed([(f"main/embedded/resnet/cam/adv2/seed0-abc batch {b}", "RuntimeError: boom\nmore")
                         for b in range(5)])
    text = str(err)
    assert "\n" not in text and "5 batch task(s) failed" in text and "batch 0" in text and "2 more" in text
    assert len(err.failures) == 5


def test_serial_path_does_not_import_ray():
    code = ("import sys, adv2lib, adv2lib.experiments, adv2lib.engines, adv2lib.cli; "
            "adv2lib.engines.resolve_engine('serial'); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_only_flags_need_the_ray_engine(capsys, monkeypatch):
    from adv2lib import cli

    monkeypatch.delenv("ADV2_ENGINE", raising=False)
    assert cli.main(["experiment", "main", "--gpus-per-task", "0.5", "--n-images", "2"]) == 2
    assert "only apply to the Ray engine: add --engine ray" in capsys.readouterr().err
