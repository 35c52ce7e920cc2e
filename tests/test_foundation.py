"""Foundation: paths, data loaders, victim contract, committed weights, ImageNet profile."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adv2lib import data, paths
from adv2lib.models import (VICTIMS, WeightsNotFoundError, build_victim, load_victim, victim_card,
                            victim_weights_path)
from adv2lib.models.train import augment_batch, evaluate_accuracy
from adv2lib.utils import resolve_device, seed_everything


# ------------------------------------------------------------------ paths and utilities
def test_paths_overridable_by_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path / "w"))
    assert paths.results_dir() == (tmp_path / "r").resolve()
    assert paths.weights_dir() == (tmp_path / "w").resolve()
    monkeypatch.delenv("ADV2_RESULTS_DIR")
    assert paths.results_dir() == paths.root() / "results"
    assert (paths.root() / "adv2lib" / "paths.py").is_file()


def test_resolve_device():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_seed_everything_reaches_torch_and_numpy():
    seed_everything(3)
    a = torch.rand(3), np.random.rand(3)
    seed_everything(3)
    b = torch.rand(3), np.random.rand(3)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# ------------------------------------------------------------------ Fashion-MNIST
def test_read_idx_roundtrip(tmp_path):
    import gzip
    import struct

    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 2, 3, 4) + arr.tobytes()
    (tmp_path / "a").write_bytes(raw)
    with gzip.open(tmp_path / "b.gz", "wb") as fh:
        fh.write(raw)
    assert np.array_equal(data.read_idx(tmp_path / "a"), arr)
    assert np.array_equal(data.read_idx(tmp_path / "b.gz"), arr)


def test_fashion_mnist_test_split():
    test = data.fashion_mnist("test")
    assert len(test) == 10_000 and len(test.classes) == 10
    x, y = test.tensors(range(16))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == torch.long and set(test.labels.tolist()) == set(range(10))


def test_fashion_mnist_env_dir_takes_precedence(monkeypatch, tmp_path):
    import shutil

    src = data.locate_fashion_mnist("test")
    for p in src:
        shutil.copy(p, tmp_path / p.name)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    assert data.locate_fashion_mnist("test")[0].parent == tmp_path


def test_missing_fashion_mnist_gives_actionable_error(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "DEBIAN_FASHION_MNIST", tmp_path / "nope")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("ADV2_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.fashion_mnist("test")
    assert "apt-get install dataset-fashion-mnist" in str(err.value)
    assert "data fetch" in str(err.value)
    with pytest.raises(ValueError, match="split"):
        data.fashion_mnist("validation")


# ------------------------------------------------------------------ victims: contract
@pytest.mark.parametrize("name", VICTIMS)
def test_embedded_victim_contract(name):
    torch.manual_seed(0)
    model = build_victim(name).eval()
    x = torch.rand(3, 1, 28, 28)
    pyramid = model.pyramid(x)
    assert [f.shape[-1] for f in pyramid] == [28, 14, 7]  # CAM grid 7x7, like the paper's
    logits, features = model.forward_with_features(x)
    assert features.shape[-2:] == (7, 7) and (features >= 0).all()  # after the final ReLU
    # GAP -> one linear layer: logits are exactly the classifier on the pooled features
    torch.testing.assert_close(logits, model.classifier(features.mean((2, 3))))
    torch.testing.assert_close(model(x), logits)
    assert model.num_classes == 10 and len(model.classes) == 10
    # every ReLU is a module (the GRAD surrogate context swaps them)
    assert any(isinstance(m, torch.nn.ReLU) for m in model.modules())


@pytest.mark.parametrize("name", VICTIMS)
def test_normalisation_lives_inside_the_model(name):
    model = build_victim(name)
    assert model.normalize.mean.numel() == 1
    x = torch.rand(2, 1, 28, 28)
    xn = (x - 0.2860) / 0.3530
    torch.testing.assert_close(model.normalize(x), xn)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown victim"):
        load_victim("vgg")
    with pytest.raises(ValueError, match="unknown profile"):
        load_victim("resnet", profile="cifar")


def test_missing_weights_name_the_training_command(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="train-victim resnet"):
        load_victim("resnet", weights=tmp_path / "missing.pt")


def test_augment_batch_is_a_seeded_shift_or_flip():
    x = torch.rand(8, 1, 28, 28)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    # pixels are only moved (or padded with zeros), never changed
    assert set(a.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


# ------------------------------------------------------------------ committed weights
@pytest.mark.parametrize("name", VICTIMS)
def test_committed_victim_reaches_90_percent_on_full_test_set(name):
    """Evaluates the committed weights on all 10 000 test images (not a number from a file)."""
    model = load_victim(name, device="cpu")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    accuracy = evaluate_accuracy(model, data.fashion_mnist("test"), device="cpu")
    assert accuracy >= 0.90, f"{name}: {accuracy:.4f}"
    card = victim_card(name)
    assert abs(card["test_accuracy"] - accuracy) < 1e-3  # the card tells the truth
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    assert card["cam_grid"] == [7, 7]


def test_model_cards_are_complete():
    for name in VICTIMS:
        card = json.loads(victim_weights_path(name).with_suffix(".json").read_text())
        for key in ("architecture", "parameters", "test_accuracy", "training_seconds", "config", "versions"):
            assert key in card
        assert "seed" in card["config"] and "torch" in card["versions"]


def test_checkpoints_resume_only_their_own_configuration_and_cards_sit_next_to_the_weights(tmp_path, monkeypatch):
    from adv2lib import checkpoints
    from adv2lib.fileio import sha256_file
    from adv2lib.models.weights import read_card

    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    path = checkpoints.checkpoint_path("resnet-seed0")
    assert path == (tmp_path / "cache" / "train" / "resnet-seed0.pt").resolve()
    checkpoints.save_checkpoint(path, config={"epochs": 2}, epoch=1)
    assert checkpoints.load_checkpoint(path, {"epochs": 2})["epoch"] == 1
    assert checkpoints.load_checkpoint(path, {"epochs": 3}) is None           # other settings start over
    assert checkpoints.load_checkpoint(tmp_path / "none.pt", {"epochs": 2}) is None
    weights = tmp_path / "weights" / "resnet.pt"
    checkpoints.save_weights(weights, {"w": torch.ones(2)}, {"name": "resnet", "architecture": "SmallResNet"})
    assert read_card(weights) == {"name": "resnet", "architecture": "SmallResNet"}
    assert torch.equal(torch.load(weights, weights_only=True)["w"], torch.ones(2))
    assert checkpoints.file_sha256(weights) == sha256_file(weights) and checkpoints.file_sha256(None) is None
    assert sorted(p.name for p in weights.parent.iterdir()) == ["resnet.json", "resnet.pt"]   # no temporary files


def test_victim_training_resumed_from_a_checkpoint_ends_where_an_uninterrupted_run_does(monkeypatch, tmp_path):
    """Two epochs on 64 random images; the run is 'interrupted' by putting back its epoch-1 checkpoint."""
    import copy

    from adv2lib import checkpoints
    from adv2lib.models import train as train_mod

    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path / "weights"))
    g = torch.Generator().manual_seed(0)
    tiny = data.TensorImageDataset(torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8),
                                   torch.randint(0, 10, (64,), generator=g), tuple(map(str, range(10))))
    monkeypatch.setattr(data, "fashion_mnist", lambda split="test", **k: tiny)
    saved, save = [], checkpoints.save_checkpoint
    monkeypatch.setattr(checkpoints, "save_checkpoint",
                        lambda path, **state: (saved.append(copy.deepcopy(state)), save(path, **state)))
    cfg = train_mod.TrainConfig(epochs=2, batch_size=32, seed=1)
    card = train_mod.train_victim("resnet", cfg, device="cpu", resume=False, progress=False)
    uninterrupted = torch.load(victim_weights_path("resnet"), weights_only=True)
    save(checkpoints.checkpoint_path("resnet-seed1"), **saved[0])
    train_mod.train_victim("resnet", cfg, device="cpu", resume=True, progress=False)
    resumed = torch.load(victim_weights_path("resnet"), weights_only=True)
    assert [state["epoch"] for state in saved] == [1, 2, 2]        # the second run trained epoch 2 only
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)
    assert json.loads(victim_weights_path("resnet").with_suffix(".json").read_text())["history"] == card["history"]


@pytest.mark.slow
def test_training_is_deterministic_on_cpu(monkeypatch, tmp_path):
    """Two short trainings with the same seed give identical weights (1 epoch on 1/20 of the data)."""
    from adv2lib.models import train as train_mod

    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path))
    full = data.fashion_mnist("train")
    small = data.TensorImageDataset(full.images[:3000], full.labels[:3000], full.classes)
    monkeypatch.setattr(data, "fashion_mnist", lambda split="test", **k: small)
    cfg = train_mod.TrainConfig(epochs=1, seed=5)
    a = train_mod.train_victim("resnet", cfg, device="cpu", resume=False, write=False, progress=False)
    b = train_mod.train_victim("resnet", cfg, device="cpu", resume=False, write=False, progress=False)
    assert a["history"] == b["history"]


# ------------------------------------------------------------------ ImageNet profile
@pytest.fixture(scope="module")
def tiny_image_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for folder in ("n01440764", "n03888605"):  # Imagenette wnids: tench (0), parachute (701)
        (root / folder).mkdir()
        for i in range(2):
            arr = rng.integers(0, 256, size=(300, 260, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / folder / f"{i}.JPEG")
    return root


def test_imagenet_folder_maps_to_imagenet_indices(tiny_image_folder):
    ds = data.ImageNetFolder(tiny_image_folder)
    x, y = ds.tensors()
    assert x.shape == (4, 3, 224, 224) and 0 <= x.min() and x.max() <= 1
    assert sorted(set(y.tolist())) == [0, 701]


def test_imagenet_folder_with_index_names(tmp_path):
    from PIL import Image

    (tmp_path / "42").mkdir()
    Image.fromarray(np.zeros((240, 240, 3), np.uint8)).save(tmp_path / "42" / "a.png")
    assert data.ImageNetFolder(tmp_path)[0][1] == 42


def test_imagenet_missing_dir_error(tmp_path):
    with pytest.raises(data.DatasetNotFoundError, match="IMAGENET_VAL_DIR"):
        data.ImageNetFolder(tmp_path / "missing")


@pytest.mark.parametrize("name,channels", [("resnet", 2048), ("densenet", 1664)])
def test_imagenet_victims_random_init(name, channels, tiny_image_folder):
    """The ImageNet wrappers, randomly initialised (no download): same contract as the embedded ones."""
    torch.manual_seed(0)
    model = load_victim(name, profile="imagenet", weights=None, device="cpu")
    x, _ = data.ImageNetFolder(tiny_image_folder).tensors([0])
    with torch.no_grad():
        logits, features = model.forward_with_features(x)
    assert logits.shape == (1, 1000) and features.shape == (1, channels, 7, 7)
    torch.testing.assert_close(logits, model.classifier(features.mean((2, 3))), rtol=1e-4, atol=1e-4)
    assert model.normalize.mean.numel() == 3 and len(model.classes) == 1000


def test_imagenet_weights_offline_error(monkeypatch, tmp_path):
    """Offline without a local file: a clear error naming both remedies."""
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from torchvision.models import _api

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(_api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(WeightsNotFoundError) as err:
        load_victim("resnet", profile="imagenet", device="cpu")
    assert "internet" in str(err.value) and "resnet50.pth" in str(err.value)


def test_imagenet_local_weights_file(monkeypatch, tmp_path):
    from torchvision import models

    state = models.densenet169(weights=None).state_dict()
    (tmp_path / "imagenet").mkdir()
    torch.save(state, tmp_path / "imagenet" / "densenet169.pth")
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path))
    model = load_victim("densenet", profile="imagenet", device="cpu")
    torch.testing.assert_close(model.net.features.conv0.weight, state["features.conv0.weight"])
