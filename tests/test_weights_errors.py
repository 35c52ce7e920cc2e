"""Weights that cannot be used are refused at load time with one line naming the file and the
remedy; loaded victims record where their weights came from (``weights_source``)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest
import torch

from adv2lib import paths
from adv2lib.errors import Adv2Error, WeightsError, WeightsMismatchError, WeightsNotFoundError
from adv2lib.interpreters.rts import RTS, RTSWeightsNotFoundError, rts_weights_path
from adv2lib.models import SmallResNet, load_victim, victim_weights_path
from adv2lib.models import imagenet as imagenet_module
from adv2lib.models import weights as weights_module

torch.set_num_threads(1)

EMBEDDED = paths.root() / "weights" / "embedded"
TORCH_ZIP = "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory"
DENSENET_URL = "https://download.pytorch.org/models/densenet169-b2777c0a.pth"


@pytest.fixture(autouse=True)
def committed_weights(monkeypatch):
    """Every test reads the committed weights of this checkout (whatever the environment says)."""
    monkeypatch.delenv("ADV2_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("ADV2_ROOT", raising=False)
    if not (EMBEDDED / "resnet.pt").is_file():
        pytest.skip("committed embedded weights are missing")


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    assert isinstance(err.value, Adv2Error) and isinstance(err.value, WeightsError)
    return text


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- embedded victims

def test_truncated_victim_weights(tmp_path):
    bad = tmp_path / "resnet.pt"
    bad.write_bytes((EMBEDDED / "resnet.pt").read_bytes()[:1000])
    with pytest.raises(WeightsMismatchError) as err:
        load_victim("resnet", weights=bad, device="cpu")
    assert one_line(err) == (
        f"{bad} cannot be read as PyTorch weights (1000 bytes, {TORCH_ZIP}); the file is truncated or damaged: "
        "replace it with an intact copy or use the committed weights/embedded/resnet.pt (weights='auto'), "
        "or retrain with python -m adv2lib train-victim resnet")
    assert isinstance(err.value, ValueError) and not isinstance(err.value, FileNotFoundError)


def test_empty_victim_weights(tmp_path):
    empty = tmp_path / "densenet.pt"
    empty.touch()
    with pytest.raises(WeightsMismatchError) as err:
        load_victim("densenet", weights=str(empty), device="cpu")
    assert one_line(err) == (
        f"{empty} cannot be read as PyTorch weights (0 bytes, EOFError); the file is truncated or damaged: "
        "replace it with an intact copy or use the committed weights/embedded/densenet.pt (weights='auto'), "
        "or retrain with python -m adv2lib train-victim densenet")


def test_damaged_committed_file_points_to_git(monkeypatch):
    """The committed file itself unreadable (simulated): restore it from git."""
    def damaged(path, *args, **kwargs):
        raise RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory. "
                           "This is an internal miniz error.")

    monkeypatch.setattr(weights_module.torch, "load", damaged)
    size = (EMBEDDED / "resnet.pt").stat().st_size
    with pytest.raises(WeightsMismatchError) as err:
        load_victim("resnet", device="cpu")
    assert one_line(err) == (
        f"weights/embedded/resnet.pt cannot be read as PyTorch weights ({size} bytes, {TORCH_ZIP}); the file is "
        "truncated or damaged: restore it with git checkout -- weights/embedded/resnet.pt "
        "or retrain with python -m adv2lib train-victim resnet")


MISMATCHES = [
    ("resnet", "densenet.pt", "weights/embedded/densenet.pt", "its model card says SmallDenseNet"),
    ("densenet", "resnet.pt", "weights/embedded/resnet.pt", "its model card says SmallResNet"),
    ("resnet", "densenet.pt (copy without card)", "{copy}", "its keys are those of SmallDenseNet, the 'densenet' victim"),
    ("resnet", "rts_resnet.pt", "weights/embedded/rts_resnet.pt",
     "it holds a dict with keys config, state_dict, not a state dict"),
]


@pytest.mark.parametrize("victim, file, shown, reason", MISMATCHES)
def test_weights_that_do_not_fit_the_architecture(tmp_path, victim, file, shown, reason):
    path = EMBEDDED / file.split(" ")[0]
    if "copy" in file:
        path = shutil.copy(path, tmp_path / "weights.pt")
    with pytest.raises(WeightsMismatchError) as err:
        load_victim(victim, weights=path, device="cpu")
    arch = {"resnet": "SmallResNet", "densenet": "SmallDenseNet"}[victim]
    assert one_line(err) == (
        f"{shown.format(copy=path)} does not fit the {arch} architecture of victim {victim!r} ({reason}): "
        f"pass the {victim} weights or retrain with python -m adv2lib train-victim {victim}")


def test_weights_of_an_unknown_architecture(tmp_path):
    narrow = tmp_path / "narrow.pt"
    torch.save(SmallResNet(widths=(2, 3, 4)).state_dict(), narrow)
    with pytest.raises(WeightsMismatchError) as err:
        load_victim("resnet", weights=narrow, device="cpu")
    text = one_line(err)
    assert text == (
        f"{narrow} does not fit the SmallResNet architecture of victim 'resnet' (its keys do not fit: "
        "46 of another shape (first 'stem.0.weight': [2, 1, 3, 3] instead of [32, 1, 3, 3])): "
        "pass the resnet weights or retrain with python -m adv2lib train-victim resnet")
    assert len(text) < 400    # torch's own message listed every key (~4,500 characters for densenet.pt)


def test_missing_victim_weights(tmp_path, monkeypatch):
    with pytest.raises(WeightsNotFoundError) as err:
        load_victim("resnet", weights=tmp_path / "nowhere.pt", device="cpu")
    assert one_line(err) == (
        f"no weights file at {tmp_path / 'nowhere.pt'} for the embedded 'resnet' victim: check the path, "
        "or omit weights= to use the committed weights/embedded/resnet.pt, "
        "or train them with: python -m adv2lib train-victim resnet")
    assert isinstance(err.value, FileNotFoundError)
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        load_victim("densenet", device="cpu")
    assert one_line(err) == (
        f"no trained weights for the embedded 'densenet' victim at {tmp_path / 'embedded' / 'densenet.pt'}: "
        "train them with: python -m adv2lib train-victim densenet")


def test_embedded_weights_source():
    model = load_victim("resnet", device="cpu")
    path = victim_weights_path("resnet")
    assert model.weights_source == {"kind": "file", "path": str(path.resolve()), "sha256": _sha256(path)}
    card = json.loads(rts_weights_path("resnet").with_suffix(".json").read_text())
    assert model.weights_source["sha256"] == card["victim_weights_sha256"]
    json.dumps(model.weights_source)
    assert load_victim("densenet", weights=None, device="cpu").weights_source == {"kind": "random"}


# --------------------------------------------------------------------------- RTS checkpoints

@pytest.fixture(scope="module")
def victims():
    return {name: load_victim(name, device="cpu") for name in ("resnet", "densenet")}


def rts_refusal(victim, weights) -> str:
    """The one-line message of the WeightsMismatchError that loading ``weights`` for ``victim`` raises."""
    with pytest.raises(WeightsMismatchError) as err:
        RTS(victim, weights=weights)
    return one_line(err)


def test_rts_checkpoint_of_the_other_victim(victims):
    assert rts_refusal(victims["resnet"], EMBEDDED / "rts_densenet.pt") == (
        "weights/embedded/rts_densenet.pt is an RTS masking network trained for victim 'densenet', not for the "
        "embedded 'resnet' victim (its model card names victim 'densenet', it expects encoder channels "
        "[102, 123] where the victim's encoder gives [64, 128]): pass weights/embedded/rts_resnet.pt or train "
        "one with python -m adv2lib train-rts resnet")
    assert rts_refusal(victims["densenet"], str(EMBEDDED / "rts_resnet.pt")) == (
        "weights/embedded/rts_resnet.pt is an RTS masking network trained for victim 'resnet', not for the "
        "embedded 'densenet' victim (its model card names victim 'resnet', it expects encoder channels "
        "[64, 128] where the victim's encoder gives [102, 123]): pass weights/embedded/rts_densenet.pt or train "
        "one with python -m adv2lib train-rts densenet")


def test_rts_checkpoint_of_the_other_victim_without_a_card(victims, tmp_path):
    copy = tmp_path / "saliency.pt"
    shutil.copy(EMBEDDED / "rts_densenet.pt", copy)
    assert rts_refusal(victims["resnet"], copy) == (
        f"{copy} is an RTS masking network trained for another victim, not for the embedded 'resnet' victim "
        "(it expects encoder channels [102, 123] where the victim's encoder gives [64, 128]): "
        "pass weights/embedded/rts_resnet.pt or train one with python -m adv2lib train-rts resnet")


def test_rts_checkpoint_for_another_number_of_classes():
    five = SmallResNet(num_classes=5).eval()
    assert rts_refusal(five, EMBEDDED / "rts_resnet.pt") == (
        "weights/embedded/rts_resnet.pt is an RTS masking network trained for victim 'resnet', not for the "
        "embedded 'resnet' victim (it selects among 10 classes, the victim has 5): "
        "pass weights/embedded/rts_resnet.pt or train one with python -m adv2lib train-rts resnet")


def test_truncated_rts_checkpoint(victims, tmp_path):
    bad = tmp_path / "rts_resnet.pt"
    bad.write_bytes((EMBEDDED / "rts_resnet.pt").read_bytes()[:1000])
    assert rts_refusal(victims["resnet"], bad) == (
        f"{bad} cannot be read as PyTorch weights (1000 bytes, {TORCH_ZIP}); the file is truncated or damaged: "
        "replace it with an intact copy or use the committed weights/embedded/rts_resnet.pt (weights='auto'), "
        "or retrain with python -m adv2lib train-rts resnet")


def test_victim_weights_are_not_an_rts_checkpoint(victims):
    assert rts_refusal(victims["resnet"], EMBEDDED / "resnet.pt") == (
        "weights/embedded/resnet.pt is not an RTS checkpoint (it holds a dict with keys normalize.mean, "
        "normalize.std, stem.0.weight, stem.1.weight, ..., not {'config', 'state_dict'}): pass an RTS file or "
        "train one with python -m adv2lib train-rts resnet")


def test_committed_rts_loads_and_stale_victim_weights_warn(victims, recwarn):
    RTS(victims["resnet"])
    RTS(victims["densenet"])
    assert not [w for w in recwarn.list if "trained on other weights" in str(w.message)]
    retrained = load_victim("resnet", device="cpu")
    retrained.weights_source = {**retrained.weights_source, "sha256": "0" * 64}
    with pytest.warns(UserWarning, match=r"^weights/embedded/rts_resnet.pt was trained on other weights of the "
                                         r"'resnet' victim .*: retrain it with python -m adv2lib train-rts resnet$"):
        RTS(retrained)


def test_missing_rts_checkpoint_is_a_weights_not_found_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(RTSWeightsNotFoundError) as err:
        RTS(SmallResNet().eval())
    assert one_line(err) == (
        "no trained RTS masking network for the embedded 'resnet' victim at "
        f"{tmp_path / 'embedded' / 'rts_resnet.pt'}: train it with: python -m adv2lib train-rts resnet")
    assert isinstance(err.value, WeightsNotFoundError) and isinstance(err.value, FileNotFoundError)


# --------------------------------------------------------------------------- ImageNet victims

@pytest.fixture(scope="module")
def resnet50_dir(tmp_path_factory):
    """A weights directory holding a randomly initialised ResNet-50 state dict as imagenet/resnet50.pth."""
    from torchvision import models

    root = tmp_path_factory.mktemp("imagenet-weights")
    (root / "imagenet").mkdir()
    torch.save(models.resnet50(weights=None).state_dict(), root / "imagenet" / "resnet50.pth")
    return root


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to download torchvision weights fails the test."""
    from torchvision.models import _api

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(_api.WeightsEnum, "get_state_dict", no_download)


def test_imagenet_local_file_is_used_without_download(resnet50_dir, offline, monkeypatch):
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(resnet50_dir))
    local = resnet50_dir / "imagenet" / "resnet50.pth"
    model = load_victim("resnet", "imagenet", device="cpu")
    assert model.weights_source == {"kind": "file", "path": str(local.resolve()), "sha256": _sha256(local)}
    json.dumps(model.weights_source)


def test_imagenet_weights_of_the_other_architecture(resnet50_dir, offline):
    path = resnet50_dir / "imagenet" / "resnet50.pth"
    with pytest.raises(WeightsMismatchError) as err:
        load_victim("densenet", "imagenet", device="cpu", weights=path)
    assert one_line(err) == (
        f"{path} does not fit the DenseNet-169 architecture of the ImageNet victim 'densenet' "
        f"(its keys are those of a ResNet): pass a DenseNet-169 state dict (DenseNet169_Weights.IMAGENET1K_V1, "
        f"{DENSENET_URL})")


def test_imagenet_truncated_and_missing_files(resnet50_dir, offline, tmp_path):
    bad = tmp_path / "resnet50.pth"
    bad.write_bytes((resnet50_dir / "imagenet" / "resnet50.pth").read_bytes()[:1000])
    with pytest.raises(WeightsMismatchError) as err:
        load_victim("resnet", "imagenet", device="cpu", weights=bad)
    assert one_line(err) == (
        f"{bad} cannot be read as PyTorch weights (1000 bytes, {TORCH_ZIP}); the file is truncated or damaged: "
        "re-download the ResNet-50 weights (ResNet50_Weights.IMAGENET1K_V1, "
        f"https://download.pytorch.org/models/resnet50-0676ba61.pth) or re-copy the state dict to {bad}")
    with pytest.raises(WeightsNotFoundError) as err:
        load_victim("densenet", "imagenet", device="cpu", weights=tmp_path / "none.pth")
    assert one_line(err) == (
        f"ImageNet weights file {tmp_path / 'none.pth'} does not exist: pass a DenseNet-169 state dict "
        f"(DenseNet169_Weights.IMAGENET1K_V1, {DENSENET_URL}), or weights='auto' for torchvision's")


def test_imagenet_random_and_torchvision_sources(monkeypatch, tmp_path):
    """weights=None is recorded as random; torchvision's weights by their enum and URL (whose
    file name carries torchvision's hash prefix). The download is simulated with old-style
    DenseNet keys (``norm.1``), as in torchvision's densenet169-b2777c0a.pth."""
    from torchvision.models import _api

    random = load_victim("densenet", "imagenet", device="cpu", weights=None)
    assert random.weights_source == {"kind": "random"}
    old_style = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))(\d)", r"\1.\2", k): v
                 for k, v in random.net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert any(".norm.1." in k for k in old_style)
    monkeypatch.setattr(_api.WeightsEnum, "get_state_dict", lambda self, *a, **k: dict(old_style))
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path))   # no local file: torchvision's weights
    model = load_victim("densenet", "imagenet", device="cpu")
    assert model.weights_source == {"kind": "torchvision", "enum": "DenseNet169_Weights.IMAGENET1K_V1",
                                    "url": DENSENET_URL}
    torch.testing.assert_close(model.net.features.denseblock1.denselayer1.norm1.weight,
                               random.net.features.denseblock1.denselayer1.norm1.weight)
    # the same old-style state dict copied to a local file (never downloaded) loads too
    local = tmp_path / "densenet169-b2777c0a.pth"
    torch.save(old_style, local)
    from_file = load_victim("densenet", "imagenet", device="cpu", weights=local)
    assert from_file.weights_source == {"kind": "file", "path": str(local.resolve()), "sha256": _sha256(local)}
    torch.testing.assert_close(from_file.net.features.denseblock4.denselayer32.conv2.weight,
                               random.net.features.denseblock4.denselayer32.conv2.weight)
    url = imagenet_module.torchvision_weights("resnet50").url
    assert url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"


def test_error_classes_are_the_library_ones():
    import adv2lib.errors as errors
    import adv2lib.models as models

    assert models.WeightsNotFoundError is errors.WeightsNotFoundError
    assert imagenet_module.WeightsNotFoundError is errors.WeightsNotFoundError
    assert models.WeightsMismatchError is errors.WeightsMismatchError
    assert issubclass(RTSWeightsNotFoundError, errors.WeightsNotFoundError)
    assert RTSWeightsNotFoundError.__name__ == "RTSWeightsNotFoundError"
