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
    from adv2lib import experiments, tasks

    kwargs = dict(victim="resnet", interpreters=("cam",), n_images=4, smoke=True, device="cpu",
                  batch_size=2, progress=False)
    calls = {"n": 0}
    real = tasks.ADV2

    class Flaky(real):
        def attack(self, *args, **kw):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt("simulated interruption in batch 1")
            return super().attack(*args, **kw)

    monkeypatch.setattr(tasks, "ADV2", Flaky)
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


# --------------------------------------------------------------------------- compact, self-healing, shared

def test_batches_hold_compact_tensors_not_their_parents_storage(tmp_path):
    store = ResultsStore(tmp_path)
    parent = torch.rand(100, 3, 64, 64)                     # 4.9 MB
    view = parent[10:12]                                    # 98 KB, a view into the parent's storage
    path = store.save_batch(_key(), 0, [{"index": 10}, {"index": 11}], {"x": view})
    assert path.stat().st_size < 1.2 * view.numel() * view.element_size()
    _, tensors = store.load_batch(_key(), 0)
    assert torch.equal(tensors["x"], view)
    assert tensors["x"].untyped_storage().nbytes() == view.numel() * view.element_size()


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_unreadable_batch_is_named_moved_aside_and_recomputed(tmp_path, damage):
    from adv2lib.store import UnreadableResultWarning

    store = ResultsStore(tmp_path)
    key = _key()

    def compute(b):
        return [{"index": b, "value": float(b)}], {"x": torch.full((1, 2), float(b))}

    store.ensure_batches(key, [0, 1], compute, progress=False)
    path = store.batch_path(key, 1)
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"not a torch file"}[damage]
    path.write_bytes(damaged)
    calls = []
    with pytest.warns(UnreadableResultWarning, match=str(path)):
        rows, tensors = store.ensure_batches(key, [0, 1], lambda b: calls.append(b) or compute(b), progress=False)
    assert calls == [1]                                      # only the damaged batch is recomputed
    assert rows["index"].tolist() == [0, 1] and tensors["x"][:, 0].tolist() == [0.0, 1.0]
    aside = list((store.run_dir(key) / "unreadable").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith("batch_0001.pt.")
    assert aside[0].read_bytes() == damaged                  # kept for inspection, not deleted


def test_unreadable_batch_in_summary_is_set_aside_with_a_warning(tmp_path):
    from adv2lib.store import UnreadableResultWarning

    store = ResultsStore(tmp_path)
    store.save_batch(_key(), 0, [{"attack": "adv2", "success": True}])
    store.save_batch(_key(), 1, [{"attack": "adv2", "success": False}])
    store.batch_path(_key(), 1).write_bytes(b"")
    with pytest.warns(UnreadableResultWarning, match="batch_0001.pt"):
        table = store.summary(experiment="main")
    assert table["success"].tolist() == [True]
    assert not store.has_batch(_key(), 1)


def test_truncated_manifest_is_set_aside_and_rewritten(tmp_path):
    from adv2lib.store import UnreadableResultWarning

    store = ResultsStore(tmp_path)
    key = _key()
    store.save_batch(key, 0, [{"attack": "adv2", "success": True}])
    manifest = store.run_dir(key) / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    with pytest.warns(UnreadableResultWarning, match="manifest.json"):
        table = store.summary(experiment="main")             # still listed, key columns from the path
    assert table["params_hash"].tolist() == [key.params_hash] and table["victim"].tolist() == ["resnet"]
    store.ensure_manifest(key)
    assert json.loads(manifest.read_text())["params"]["eps"] == 0.1
    assert len(list((store.run_dir(key) / "unreadable").glob("manifest.json.*"))) == 1


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_result_files_respect_the_umask(tmp_path, umask):
    import os

    old = os.umask(umask)
    try:
        store = ResultsStore(tmp_path)
        path = store.save_batch(_key(), 0, [{"index": 1}], {"x": torch.zeros(1)})
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert path.stat().st_mode & 0o777 == expected
    assert (store.run_dir(_key()) / "manifest.json").stat().st_mode & 0o777 == expected


def _shared_worker(root, log, delay):
    """Runs in another process: compute batches 0-3 of one run key, logging each computation."""
    import os
    import time

    from adv2lib.store import ResultsStore

    def compute(b):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {b}\n")
        time.sleep(delay)
        return [{"batch_value": b * 10}], {"x": torch.full((1, 3), float(b))}

    rows, tensors = ResultsStore(root).ensure_batches(_key(), range(4), compute, progress=False)
    return rows["batch_value"].tolist(), tensors["x"][:, 0].tolist()


def test_two_runs_on_one_store_compute_each_batch_once(tmp_path):
    import multiprocessing as mp

    log = tmp_path / "computed.log"
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = [pool.apply_async(_shared_worker, (tmp_path / "store", log, 0.4)) for _ in range(2)]
        outputs = [r.get(timeout=120) for r in results]
    computed = [line.split() for line in log.read_text().splitlines()]
    batches = sorted(int(b) for _, b in computed)
    assert batches == [0, 1, 2, 3], f"each batch must be computed exactly once, log: {computed}"
    assert len({pid for pid, _ in computed}) == 2, f"the second run should take the free batches: {computed}"
    assert outputs[0] == outputs[1] == ([0, 10, 20, 30], [0.0, 1.0, 2.0, 3.0])
