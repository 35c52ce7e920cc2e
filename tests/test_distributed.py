"""The Ray engine on a local 2-CPU cluster: the same stored numbers as the serial engine, a
killed worker retried, a raising task reported with its key while the rest is stored, and a
rerun (on either engine) computing only what is missing.

The experiments are the real smoke ones (trained embedded ResNet, Fashion-MNIST) with the
presets cut to a few steps, as in ``test_keys.py``; both engines compute with one torch
thread per task (conftest pins the serial side).
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from adv2lib import experiments
from adv2lib.store import ResultsStore
from test_keys import env, subset, tiny_presets  # noqa: F401  (fixtures)

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.distributed,
              pytest.mark.skipif(not __import__("test_keys")._trained_resnet_available(),
                                 reason="needs the trained embedded ResNet and Fashion-MNIST")]

TIMING = ["seconds", "cpu_seconds"]


@pytest.fixture(scope="module")
def cluster():
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, object_store_memory=100 * 2**20,
             log_to_driver=False)
    yield
    ray.shutdown()


def engine(**kw):
    from adv2lib.engines import RayEngine

    return RayEngine(num_cpus=1, **kw)


def hook(action: str, task: str, marker) -> dict:
    return {"env_vars": {"ADV2_TEST_TASK_HOOK": f"{action}:{task}:{marker}"}}


def args(env, store, interpreters=("grad", "cam")):  # noqa: F811
    return dict(victim="resnet", interpreters=interpreters, n_images=4, batch_size=2, smoke=True, device="cpu",
                progress=False, results_dir=env / store)


def stored(root) -> dict:
    """Every stored batch: ``(run, batch) -> (rows without timings, tensors)``."""
    out = {}
    for path in sorted(root.glob("*/*/*/*/*/*/batch_*.pt")):
        rows, tensors = ResultsStore._read(path)
        out[(str(path.parent.relative_to(root)), path.name)] = (rows.drop(columns=TIMING, errors="ignore"), tensors)
    return out


def assert_same_store(a, b):
    sa, sb = stored(a), stored(b)
    assert sa.keys() == sb.keys() and sa
    for k in sa:
        pd.testing.assert_frame_equal(sa[k][0], sb[k][0], check_exact=True)
        assert sa[k][1].keys() == sb[k][1].keys()
        for name in sa[k][1]:
            assert torch.equal(sa[k][1][name], sb[k][1][name]), (k, name)


def test_ray_stores_what_serial_stores_and_retries_a_killed_worker(env, cluster, tmp_path):  # noqa: F811
    serial = experiments.run_main(**args(env, "serial"))
    marker = tmp_path / "killed"
    dist = experiments.run_main(**args(env, "ray"), engine=engine(max_retries=2,
                                                                  runtime_env=hook("kill", "attack_batch", marker)))
    assert marker.exists()                                    # a worker did die mid-stage ...
    assert dist.batches == {"computed": 10, "loaded": 0}      # ... and its batch was retried (PGD, maps, ADV2)
    assert_same_store(env / "serial", env / "ray")
    pd.testing.assert_frame_equal(serial.examples.drop(columns=TIMING), dist.examples.drop(columns=TIMING))
    for name in ("grad", "cam"):
        for t in serial.figures[name]:
            assert torch.equal(serial.figures[name][t], dist.figures[name][t])


def test_a_raising_task_is_reported_with_its_key_and_a_rerun_fills_the_gap(env, cluster, tmp_path):  # noqa: F811
    from adv2lib.engines import BatchesFailed

    marker = tmp_path / "raised"
    with pytest.raises(BatchesFailed) as info:
        experiments.run_main(**args(env, "ray"), engine=engine(runtime_env=hook("raise", "attack_batch", marker)))
    failures = info.value.failures
    assert len(failures) == 1 and "main/embedded/resnet/" in failures[0][0] and "batch" in failures[0][0]
    assert "raised on purpose" in failures[0][1]
    assert len(list((env / "ray").glob("main/*/*/*/*/*/batch_*.pt"))) == 3     # the other ADV2 batches
    rerun = experiments.run_main(**args(env, "ray"), engine=engine())
    assert rerun.batches == {"computed": 1, "loaded": 9}
    serial_rerun = experiments.run_main(**args(env, "ray"))                    # the stores are interchangeable
    assert serial_rerun.batches == {"computed": 0, "loaded": 10}
    experiments.run_main(**args(env, "serial"))
    assert_same_store(env / "serial", env / "ray")


def test_every_experiment_runs_on_ray_as_serially(env, cluster):  # noqa: F811
    options = {"budget": {"factors": (1, 2)}, "robustness": {"eps": (8, 26), "factors": (0.5, 1)},
               "ensemble": {"adaptive_images": 2, "calibration_images": 4}}
    members = {"ensemble": ("cam", "rts"), "aid": ("rts",)}      # an ensemble needs two; AID hardens RTS
    for name, run in experiments.EXPERIMENTS.items():
        extra = options.get(name, {})
        a = run(**args(env, "serial", members.get(name, ("cam",))), **extra)
        b = run(**args(env, "ray", members.get(name, ("cam",))), **extra, engine=engine())
        pd.testing.assert_frame_equal(a.examples.drop(columns=TIMING, errors="ignore"),
                                      b.examples.drop(columns=TIMING, errors="ignore"))
    assert_same_store(env / "serial", env / "ray")
