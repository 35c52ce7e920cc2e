"""ImageNet-profile run keys: another image folder (ImageNet-val vs Imagenette) or another
local weights file must not reuse stored results (they used to: the victim fingerprint was
the constant "torchvision").

Nothing can be downloaded here, so the victim is a randomly initialised ResNet-50 saved as
the local weights file, and the "dataset" is a few generated images filed under the class
that this network predicts for them (index-named folders, one accepted layout).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from adv2lib import experiments


def make_weights(path, seed):
    from adv2lib.models import build_victim

    torch.manual_seed(seed)
    victim = build_victim("resnet", "imagenet").eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(victim.net.state_dict(), path)
    return victim


def make_folder(root, victim, seed, n=2):
    """``n`` random RGB images, each filed under the class ``victim`` predicts for it."""
    from PIL import Image

    from adv2lib.data import imagenet_transform

    rng = np.random.default_rng(seed)
    for i in range(n):
        image = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
        with torch.no_grad():
            label = int(victim(imagenet_transform()(image)[None]).argmax(1))
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        image.save(root / str(label) / f"img{i}.png")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("imagenet")
    victim = make_weights(base / "w1" / "imagenet" / "resnet50.pth", seed=0)
    make_folder(base / "val", victim, seed=1)
    make_folder(base / "imagenette", victim, seed=2)
    # the same network, one weight nudged: same predictions, other weights
    state = torch.load(base / "w1" / "imagenet" / "resnet50.pth", weights_only=True)
    state["fc.bias"] = state["fc.bias"] + 1e-4
    (base / "w2" / "imagenet").mkdir(parents=True)
    torch.save(state, base / "w2" / "imagenet" / "resnet50.pth")
    return base


def base_params(world, monkeypatch, folder, weights):
    monkeypatch.setenv("IMAGENET_VAL_DIR", str(world / folder))
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(world / weights))
    spec = experiments.ExperimentSpec.make("main", "imagenet", "resnet", ("cam",), n_images=1, smoke=True,
                                           device="cpu", results_dir=world / "store", batch_size=1, progress=False)
    driver = experiments.prepare(spec)
    return driver.base_params, driver.manifest_extra


def test_imagenet_keys_follow_the_folder_and_the_weights_file(world, monkeypatch):
    ref, extra = base_params(world, monkeypatch, "val", "w1")
    assert base_params(world, monkeypatch, "val", "w1")[0] == ref
    other_folder, _ = base_params(world, monkeypatch, "imagenette", "w1")
    other_weights, _ = base_params(world, monkeypatch, "val", "w2")
    assert other_folder["data"] != ref["data"] and other_folder["victim_weights"] == ref["victim_weights"]
    assert other_weights["victim_weights"] != ref["victim_weights"] and other_weights["data"] == ref["data"]
    assert extra["dataset"]["root"] == str(world / "val")


def test_imagenet_run_recomputes_for_another_folder(world, monkeypatch):
    """The whole experiment path on the ImageNet profile (ResNet-50, 224x224, CAM) with a few steps
    (about 6 s on a 2-core CPU)."""
    real = experiments.preset_for

    def tiny(profile, name, smoke=False):
        cfg = real(profile, name, smoke=True)
        return dataclasses.replace(cfg, steps=2) if name == "pgd" else dataclasses.replace(cfg, warm_steps=1, steps=2)

    monkeypatch.setattr(experiments, "preset_for", tiny)
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(world / "w1"))
    kwargs = dict(profile="imagenet", victim="resnet", interpreters=("cam",), n_images=1, smoke=True, device="cpu",
                  batch_size=1, progress=False, results_dir=world / "run-store")
    monkeypatch.setenv("IMAGENET_VAL_DIR", str(world / "val"))
    assert experiments.run_main(**kwargs).batches == {"computed": 3, "loaded": 0}
    assert experiments.run_main(**kwargs).batches == {"computed": 0, "loaded": 3}
    monkeypatch.setenv("IMAGENET_VAL_DIR", str(world / "imagenette"))
    assert experiments.run_main(**kwargs).batches == {"computed": 3, "loaded": 0}
