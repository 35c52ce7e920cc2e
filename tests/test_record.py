"""The record (adv2lib/record.py): a chapter whose request and inputs match the record renders
from it without computing; any change to the code, data, weights or request computes again."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from adv2lib import record, report
from test_plotting import _result


@pytest.fixture
def fake_main(monkeypatch):
    """``experiments.run_main`` replaced by a recorder returning a small fixed result."""
    from adv2lib import experiments

    calls = []

    def run_main(victim, **kwargs):
        calls.append((victim, kwargs))
        r = _result(victim)
        r.examples = r.examples.assign(seconds=0.5, cpu_seconds=0.4)
        return r

    monkeypatch.setattr(experiments, "run_main", run_main)
    return calls


def _chapter(**kw):
    args = dict(victims=["resnet", "densenet"], interpreters=["grad", "cam"], n_images=4, smoke=True, device="cpu",
                show=False)
    return report.run_chapter("main", **{**args, **kw})


def test_a_matching_record_renders_without_computing(fake_main, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    first = _chapter()
    assert len(fake_main) == 2 and first.tables == record.tables_dir("embedded", True) / "main_examples.csv.gz"
    meta = json.loads((record.tables_dir("embedded", True) / "main.json").read_text())
    assert meta["key"] == record.experiment_key(meta["request"], record.inputs("embedded"))
    again = _chapter(show=True)
    assert len(fake_main) == 2                                    # nothing ran
    assert shown[-1].startswith("Rendered from the record of commit") and "nothing was computed" in shown[-1]
    for a, b in zip(first.results, again.results):
        assert a.victim == b.victim
        pd.testing.assert_frame_equal(a.examples.reset_index(drop=True), b.examples, check_dtype=False)
        for name, t in a.figures["grad"].items():
            assert torch.equal(torch.as_tensor(t), torch.as_tensor(b.figures["grad"][name]))
    assert again.scale == first.scale


@pytest.mark.parametrize("change", ["code", "request", "recompute", "env"])
def test_anything_that_changes_the_results_computes_again(fake_main, monkeypatch, change):
    _chapter()
    if change == "code":
        real = record.inputs
        monkeypatch.setattr(record, "inputs", lambda profile, experiment=None, precision=None: {**real(profile, experiment, precision), "code": "0" * 16})
        _chapter()
    elif change == "request":
        _chapter(n_images=3)
    elif change == "recompute":
        _chapter(recompute=True)
    else:
        monkeypatch.setenv(record.RECOMPUTE_ENV, "1")
        _chapter()
    assert len(fake_main) == 4


def test_a_scratch_store_keeps_its_own_tables(fake_main, tmp_path):
    _chapter(results_dir=tmp_path)
    assert (tmp_path / "tables" / "embedded-smoke" / "main_examples.csv.gz").is_file()
    assert not record.tables_dir("embedded", True).exists()
    _chapter()                                                    # the record has no such table: computes
    assert len(fake_main) == 4


def test_tables_are_byte_stable_and_floats_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"l1": rng.random(50) / 7, "success": rng.random(50) > 0.5, "interpreter": "grad"})
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    record.write_table(frame, a)
    record.write_table(frame, b)
    assert a.read_bytes() == b.read_bytes()
    assert np.array_equal(record.read_table(a)["l1"].to_numpy(), frame["l1"].to_numpy())
    assert gzip.decompress(a.read_bytes()).decode().startswith("l1,success,interpreter")


def test_the_manifest_sums_the_attack_times_and_lists_every_file(fake_main):
    _chapter()
    path = record.write_manifest("embedded", True)
    m = json.loads(path.read_text())
    e = m["experiments"]["main"]
    rows = record.read_table(record.tables_dir("embedded", True) / "main_examples.csv.gz")
    assert e["rows"] == len(rows) and e["attack_seconds"] == pytest.approx(rows["seconds"].sum(), abs=0.1)
    assert set(e["files"]) == {"main_examples.csv.gz", "main.json", "main_figures.pt"}
    assert m["inputs"]["code"] == record.inputs("embedded")["code"] and m["machine"]["cpu_count"]
    assert m["bytes"] == pytest.approx(record.size(path.parent), rel=0.05)
    written = m["written_at"]
    assert json.loads(record.write_manifest("embedded", True).read_text())["written_at"] == written   # unchanged


# --------------------------------------------------------------------------- the committed record
COMMITTED = Path(__file__).resolve().parent.parent / "record" / "embedded-full"
#: The committed record's budget in git (issue 23).
BUDGET_BYTES = 25 * 10**6


@pytest.mark.skipif(not (COMMITTED / "manifest.json").is_file(), reason="no committed record")
def test_the_committed_record_fits_its_budget_and_lists_its_files():
    manifest = json.loads((COMMITTED / "manifest.json").read_text())
    assert record.size(COMMITTED) <= BUDGET_BYTES
    for name, e in manifest["experiments"].items():
        for file, info in e["files"].items():
            assert (COMMITTED / "tables" / file).stat().st_size == info["bytes"], f"{name}: {file} changed"


@pytest.mark.skipif(not (COMMITTED / "manifest.json").is_file(), reason="no committed record")
def test_the_committed_record_matches_this_code_data_and_weights():
    """A change to the numeric code, the data or the weights lands with the rebuilt record: else a
    fresh clone's book would recompute (or, worse, show numbers this code no longer gives)."""
    for meta_path in sorted((COMMITTED / "tables").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        now = record.inputs("embedded", meta["experiment"])
        assert meta["key"] == record.experiment_key(meta["request"], now), (
            f"{meta['experiment']}: the record was built from other inputs ({meta['inputs']}, now {now}); rebuild it "
            f"with make book and commit record/")


def test_the_runner_says_which_recorded_experiments_match(fake_main, monkeypatch):
    from adv2lib import runner

    scale = runner.Scale("embedded", True)
    runs = runner.declared_runs(scale)
    assert runner.record_status(runs, scale).startswith("record: none at")
    _chapter()
    assert runner.record_status(runs, scale).startswith("record: 1 of 1 experiments of the record")
    real = record.inputs
    monkeypatch.setattr(record, "inputs", lambda profile, experiment=None, precision=None: {**real(profile, experiment, precision), "weights": "changed"})
    assert "0 of 1" in runner.record_status(runs, scale) and "the others compute: main" in \
        runner.record_status(runs, scale)
