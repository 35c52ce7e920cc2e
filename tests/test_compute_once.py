"""Maps computed once (issue 13): each interpreter's maps of the clean and the PGD images are a
stored run of their own, handed to every attack on the same batch. The attacks' numbers must
be the ones they compute without them, bit for bit, and no experiment may recompute them."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from adv2lib import experiments, tasks
from adv2lib.attacks import PGD, preset_for
from adv2lib.tasks import Batch, Context, WorkerSpec, attack_batch, maps_batch, pgd_maps_batch

from test_attacks import batch, victim  # noqa: F401  (fixtures)
from test_keys import _trained_resnet_available, env, subset, tiny_presets  # noqa: F401  (fixtures)

TIMES = ["seconds", "cpu_seconds"]


def _inputs(victim, batch):  # noqa: F811
    x, ct = batch
    y = (ct + 1) % 10
    ctx = Context(WorkerSpec("embedded", "resnet", True, "cpu"), victim, torch.device("cpu"), "test")
    b = Batch(torch.arange(len(x)), torch.arange(len(x)), x, y, ct)
    res = PGD(victim, config=preset_for("embedded", "pgd", smoke=True)).attack(x, ct, true_class=y)
    record = pd.DataFrame({"position": range(len(x)), "prediction": res.prediction.numpy(),
                           "success": res.success.numpy(), "confidence": res.confidence.numpy(), "iteration": 0,
                           "selected": 0, "linf": 0.0, "seconds": 0.0, "cpu_seconds": 0.0})
    return ctx, b, res.x_adv, record


@pytest.mark.parametrize("name", ["cam", "grad", "mask"])
def test_given_maps_change_nothing(victim, batch, name):  # noqa: F811
    ctx, b, x_pgd, record = _inputs(victim, batch)
    cfg = preset_for("embedded", name, smoke=True)
    rows, tensors = attack_batch(ctx, name, b, cfg, 0, x_pgd=x_pgd, pgd_record=record)
    _, maps = maps_batch(ctx, name, b, x_pgd=x_pgd)
    assert torch.equal(maps["benign_map"], tensors["benign_map"])
    assert torch.equal(maps["pgd_map"], tensors["pgd_map"])
    rows2, tensors2 = attack_batch(ctx, name, b, cfg, 0, x_pgd=x_pgd, pgd_record=record,
                                   benign=maps["benign_map"], pgd_map=maps["pgd_map"])
    pd.testing.assert_frame_equal(rows.drop(columns=TIMES), rows2.drop(columns=TIMES))
    assert tensors.keys() == tensors2.keys()
    for k in tensors:
        assert torch.equal(tensors[k], tensors2[k]), k
    pgd_rows, _ = pgd_maps_batch(ctx, name, b, x_pgd, record)
    pgd_rows2, _ = pgd_maps_batch(ctx, name, b, x_pgd, record, benign=maps["benign_map"], pgd_map=maps["pgd_map"])
    pd.testing.assert_frame_equal(pgd_rows, pgd_rows2)


@pytest.mark.skipif(not _trained_resnet_available(), reason="needs the trained embedded ResNet and Fashion-MNIST")
def test_experiments_compute_each_map_once(env, monkeypatch):  # noqa: F811
    """Main, patch, random class and budget on the same images: the maps are computed in one
    batch task per interpreter and batch, and no attack computes a benign map of its own."""
    calls = {"maps": 0, "benign": 0}
    real_maps, real_benign = experiments.maps_batch, tasks.benign_map

    def counted_maps(*args, **kwargs):
        calls["maps"] += 1
        return real_maps(*args, **kwargs)

    def counted_benign(*args, **kwargs):
        calls["benign"] += 1
        return real_benign(*args, **kwargs)

    monkeypatch.setattr(experiments, "maps_batch", counted_maps)
    monkeypatch.setattr(tasks, "benign_map", counted_benign)
    common = dict(victim="resnet", interpreters=("cam", "mask"), n_images=2, smoke=True, device="cpu",
                  batch_size=1, progress=False, results_dir=env / "store")
    experiments.run_main(**common)
    assert calls == {"maps": 4, "benign": 4}            # 2 interpreters x 2 batches, nothing else
    experiments.run_random_class(**common)
    experiments.run_patch(**common)
    experiments.run_budget(**common, factors=(1, 2))
    assert calls == {"maps": 4, "benign": 4}            # loaded from the store by every later experiment
