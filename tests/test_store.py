"""The results store: round trip, atomic writes, keys, summaries, and resuming an
interrupted experiment."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from adv2lib.store import ResultsStore, RunKey, params_hash


def _key(**params):
    return RunKey("main", "embedded", "resnet", "cam", "adv2", {"eps": 0.1, **params}, seed=0)


def test_round_trip_and_versions(tmp_path):
    store = ResultsStore(tmp_path)
    key = _key()
    rows = pd.DataFrame({"index": [3, 7], "success": [True, False], "l1_benign": [0.1, 0.2]})
    store.save_batch(key, 0, rows, {"x_adv": torch.ones(2, 1, 4, 4)})
    store.save_batch(key, 1, rows.assign(index=[8, 9]), {"x_adv": torch.zeros(2, 1, 4, 4)})
    assert store.has_batch(key, 0) and store.has_batch(key, 1) and not store.has_batch(key, 2)
    frame, tensors = store.load_run(key)
    assert frame["index"].tolist() == [3, 7, 8, 9] and frame["batch"].tolist() == [0, 0, 1, 1]
    assert tensors["x_adv"].shape == (4, 1, 4, 4) and tensors["x_adv"][:2].eq(1).all()
    manifest = json.loads((store.run_dir(key) / "manifest.json").read_text())
    assert manifest["versions"]["torch"] == torch.__version__ and manifest["params"]["eps"] == 0.1
    assert not list(store.run_dir(key).glob("*.tmp"))


def test_keys_separate_parameters_and_seeds(tmp_path):
    assert params_hash({"a": 1, "b": (1, 2)}) == params_hash({"b": [1, 2], "a": 1})
    assert _key().params_hash != _key(eps=0.2).params_hash
    other_seed = RunKey("main", "embedded", "resnet", "cam", "adv2", {"eps": 0.1}, seed=1)
    assert ResultsStore(tmp_path).run_dir(other_seed) != ResultsStore(tmp_path).run_dir(_key())


def test_failed_write_leaves_no_batch(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    key = _key()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        store.save_batch(key, 0, [{"index": 1}], {"x": torch.zeros(1)})
    assert not store.has_batch(key, 0)
    assert not list(store.run_dir(key).glob("*.tmp"))


def test_summary_is_tidy_and_rows_keep_their_own_columns(tmp_path):
    store = ResultsStore(tmp_path)
    store.save_batch(_key(), 0, [{"attack": "pgd", "success": True}, {"attack": "adv2", "success": True}])
    store.save_batch(RunKey("patch", "embedded", "densenet", "grad", "adv2", {}, seed=0), 0, [{"success": False}])
    table = store.summary()
    assert list(table.columns[:7]) == ["experiment", "profile", "victim", "interpreter", "attack", "seed",
                                       "params_hash"]
    assert len(table) == 3
    main = store.summary(experiment="main")
    assert main["attack"].tolist() == ["pgd", "adv2"]
    assert store.summary(experiment="patch", victim="densenet")["interpreter"].tolist() == ["grad"]
    assert store.summary(experiment="transfer").empty


# --------------------------------------------------------------------------- experiments

def _trained_resnet_available():
    from adv2lib.data import locate_fashion_mnist
    from adv2lib.models import victim_weights_path

    return victim_weights_path("resnet").is_file() and locate_fashion_mnist("test") is not None


@pytest.mark.skipif(not _trained_resnet_available(), reason="needs the trained embedded ResNet and Fashion-MNIST")
def test_experiment_resumes_after_interruption(tmp_path, monkeypatch):
    from adv2lib import experiments

    kwargs = dict(victim="resnet", interpreters=("cam",), n_images=4, smoke=True, device="cpu",
                  batch_size=2, progress=False)
    calls = {"n": 0}
    real = experiments.ADV2

    class Flaky(real):
        def attack(self, *args, **kw):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt("simulated interruption in batch 1")
            return super().attack(*args, **kw)

    monkeypatch.setattr(experiments, "ADV2", Flaky)
    with pytest.raises(KeyboardInterrupt):
        experiments.run_main(results_dir=tmp_path / "a", **kwargs)
    store = ResultsStore(tmp_path / "a")
    assert len(store.summary(experiment="main")) == 4        # batch 0: 2 images x (pgd, adv2)
    calls["n"] = 10                                           # no more failures
    resumed = experiments.run_main(results_dir=tmp_path / "a", **kwargs)
    assert calls["n"] == 11                                   # only the missing batch ran
    fresh = experiments.run_main(results_dir=tmp_path / "b", **kwargs)
    cols = ["interpreter", "attack", "index", "target_class", "success", "confidence", "l1_benign"]
    pd.testing.assert_frame_equal(resumed.examples[cols], fresh.examples[cols])
    assert set(resumed.summary["attack"]) == {"pgd", "adv2"}
    assert resumed.figures["cam"]["adv_map"].shape == (4, 1, 7, 7)

    # The transfer experiment reuses the stored ADV2 examples instead of attacking again.
    before = calls["n"]
    transfer = experiments.run_transfer(results_dir=tmp_path / "a", **kwargs)
    assert calls["n"] == before
    assert list(transfer.matrix.index) == ["cam", "pgd"] and list(transfer.matrix.columns) == ["cam"]
    adv = resumed.examples[(resumed.examples.attack == "adv2") & resumed.examples.success]
    assert transfer.matrix.loc["cam", "cam"] == pytest.approx(adv["l1_benign"].mean(), abs=1e-6)
