"""The book runner: run keys, skipping, failure collection, timings (fast: a fake executor).

One test executes a real two-cell notebook through papermill (marked ``notebook``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from adv2lib import chapters, runner


def _write_notebook(path: Path, body: str = "print(answer)") -> None:
    params = new_code_cell("answer = 1")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A throw-away repository root: notebooks, library, weights, cache and book all under tmp."""
    root = tmp_path / "repo"
    (root / "adv2lib").mkdir(parents=True)
    (root / "adv2lib" / "mod.py").write_text("X = 1\n")
    (root / "weights" / "embedded").mkdir(parents=True)
    (root / "weights" / "embedded" / "resnet.json").write_text("{}")
    (root / "book").mkdir()
    monkeypatch.setenv("ADV2_ROOT", str(root))
    monkeypatch.setenv("ADV2_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(root / "weights"))
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(root / "results"))
    for var in ("PYTHONPATH", "TQDM_DISABLE"):  # the runner sets these for its kernels
        monkeypatch.setenv(var, os.environ.get(var, ""))
    for name in ("a", "b"):
        _write_notebook(root / "notebooks" / f"{name}.ipynb")
    return root


class FakeExecutor:
    """Records calls; writes a copy of the notebook as its 'executed' output; fails on request."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, run, output):
        self.calls.append(run.name)
        if run.name in self.fail:
            output.write_text("partial")
            raise RuntimeError(f"cell failed in {run.name}")
        output.write_text(run.source.read_text())


def _runs(answer=1):
    return [runner.NotebookRun("a", "a", {"answer": answer}), runner.NotebookRun("b", "b", {"answer": answer})]


SMOKE = runner.Scale("embedded", smoke=True)
FULL = runner.Scale("embedded", smoke=False)


def test_second_run_skips_everything(sandbox):
    ex = FakeExecutor()
    first = runner.run_notebooks(_runs(), SMOKE, execute=ex)
    assert first.executed == ["a", "b"] and first.ok
    second = runner.run_notebooks(_runs(), SMOKE, execute=ex)
    assert second.skipped == ["a", "b"] and second.executed == []
    assert ex.calls == ["a", "b"]
    assert (sandbox / "book" / "executed" / "a.ipynb").is_file()


def test_changed_parameters_notebook_or_library_rerun(sandbox):
    ex = FakeExecutor()
    runner.run_notebooks(_runs(), SMOKE, execute=ex)
    assert runner.run_notebooks(_runs(answer=2), SMOKE, execute=ex).executed == ["a", "b"]
    _write_notebook(sandbox / "notebooks" / "a.ipynb", body="print(answer + 1)")
    assert runner.run_notebooks(_runs(answer=2), SMOKE, execute=ex).executed == ["a"]
    (sandbox / "adv2lib" / "mod.py").write_text("X = 2\n")
    assert runner.run_notebooks(_runs(answer=2), SMOKE, execute=ex).executed == ["a", "b"]
    (sandbox / "weights" / "embedded" / "resnet.json").write_text('{"acc": 1}')
    assert runner.run_notebooks(_runs(answer=2), SMOKE, execute=ex).executed == ["a", "b"]


def test_outputs_only_change_does_not_rerun(sandbox):
    ex = FakeExecutor()
    runner.run_notebooks(_runs(), SMOKE, execute=ex)
    path = sandbox / "notebooks" / "a.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[1].execution_count = 7
    nbformat.write(nb, path)
    assert runner.run_notebooks(_runs(), SMOKE, execute=ex).skipped == ["a", "b"]


def test_read_files_are_part_of_the_key(sandbox):
    ex = FakeExecutor()
    runs = [runner.NotebookRun("a", "a", {}, reads=("results/tables/*.csv",))]
    runner.run_notebooks(runs, SMOKE, execute=ex)
    assert runner.run_notebooks(runs, SMOKE, execute=ex).skipped == ["a"]
    (sandbox / "results" / "tables").mkdir(parents=True)
    (sandbox / "results" / "tables" / "t.csv").write_text("x\n1\n")
    assert runner.run_notebooks(runs, SMOKE, execute=ex).executed == ["a"]


def test_smoke_and_full_keep_separate_stamps_and_outputs(sandbox):
    ex = FakeExecutor()
    runner.run_notebooks(_runs(), SMOKE, execute=ex)
    runner.run_notebooks(_runs(), FULL, execute=ex)
    assert ex.calls == ["a", "b", "a", "b"]
    assert runner.cached_output_path(SMOKE, "a") != runner.cached_output_path(FULL, "a")
    assert runner.run_notebooks(_runs(), SMOKE, execute=ex).skipped == ["a", "b"]
    assert runner.run_notebooks(_runs(), FULL, execute=ex).skipped == ["a", "b"]


def test_tampered_output_reruns(sandbox):
    ex = FakeExecutor()
    runner.run_notebooks(_runs(), SMOKE, execute=ex)
    runner.cached_output_path(SMOKE, "b").write_text("edited by hand")
    assert runner.run_notebooks(_runs(), SMOKE, execute=ex).executed == ["b"]


def test_failures_are_collected_after_trying_everything(sandbox):
    ex = FakeExecutor(fail={"a"})
    report = runner.run_notebooks(_runs(), SMOKE, execute=ex)
    assert ex.calls == ["a", "b"]
    assert not report.ok and list(report.failed) == ["a"] and "cell failed" in report.failed["a"]
    assert report.executed == ["b"]
    assert runner.read_stamp(SMOKE, "a") is None
    # the failed run is retried next time, the good one is not
    ex.fail.clear()
    assert runner.run_notebooks(_runs(), SMOKE, execute=ex).executed == ["a"]


def test_force_reruns(sandbox):
    ex = FakeExecutor()
    runner.run_notebooks(_runs(), SMOKE, execute=ex)
    assert runner.run_notebooks(_runs(), SMOKE, execute=ex, force=True).executed == ["a", "b"]


def test_timings_json(sandbox):
    runner.run_notebooks(_runs(), SMOKE, execute=FakeExecutor())
    path = runner.write_timings(SMOKE, _runs(), device="cpu")
    info = json.loads(path.read_text())
    assert info["scale"] == "embedded-smoke" and info["device"] == "cpu"
    assert [n["name"] for n in info["notebooks"]] == ["a", "b"]
    assert all(n["seconds"] >= 0 for n in info["notebooks"])
    assert info["hardware"]["cpu_count"] >= 1
    assert runner.timings_path("embedded-smoke") == path
    assert [n["computed_batches"] for n in info["notebooks"]] == [0, 0]


class StoreWritingExecutor(FakeExecutor):
    """Writes ``batches[name]`` result batches into the store, as an experiment notebook would."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __call__(self, run, output):
        super().__call__(run, output)
        root = Path(os.environ["ADV2_RESULTS_DIR"]) / "main" / run.name
        root.mkdir(parents=True, exist_ok=True)
        for b in range(self.batches.get(run.name, 0)):
            (root / f"batch_{b:04d}.pt").write_bytes(b"x")


def test_stamps_record_how_many_result_batches_a_run_computed(sandbox):
    runner.run_notebooks(_runs(), SMOKE, execute=StoreWritingExecutor({"a": 3}))
    assert runner.read_stamp(SMOKE, "a")["computed_batches"] == 3
    assert runner.read_stamp(SMOKE, "b")["computed_batches"] == 0
    # A forced rerun that finds its results in the store computes nothing new.
    runner.run_notebooks(_runs(), SMOKE, force=True, execute=StoreWritingExecutor({"a": 3}))
    assert runner.read_stamp(SMOKE, "a")["computed_batches"] == 0


def test_declared_runs_cover_the_book_and_both_victims(sandbox):
    runs = runner.declared_runs(SMOKE)
    assert [r.name for r in runs] == list(runner.BOOK_NOTEBOOKS)
    for r in runs:
        if r.name in runner.EXPERIMENT_NOTEBOOKS:
            assert r.parameters["victims"] == ["resnet", "densenet"]
            assert r.parameters["interpreters"] == ["grad", "cam", "mask", "rts"]
            assert r.parameters["smoke"] is True and r.parameters["n_images"] == runner.N_IMAGES["smoke"]
    full = {r.name: r for r in runner.declared_runs(FULL, n_images=7)}
    assert full["01_adv2_vs_pgd"].parameters["n_images"] == 7
    budget = runner.declared_runs(FULL)[list(runner.BOOK_NOTEBOOKS).index(runner.BUDGET_NOTEBOOK)].parameters
    assert budget["victims"] == ["resnet"] and budget["interpreters"] == ["grad", "mask"]
    assert budget["n_images"] == chapters.chapter(runner.BUDGET_NOTEBOOK).sizes["full"]["n_images"]
    assert budget["factors"] == [1, 2, 4]
    assert full[runner.BUDGET_NOTEBOOK].parameters["n_images"] == 7          # never more than the book's images
    only_cam = {r.name: r for r in runner.declared_runs(FULL, interpreters=["cam"])}
    assert only_cam[runner.BUDGET_NOTEBOOK].parameters["interpreters"] == ["cam"]
    # the confidence trade-off: every interpreter, both victims, all levels (smoke: the preset's only)
    full = {r.name: r for r in runner.declared_runs(FULL)}
    conf = full[runner.CONFIDENCE_NOTEBOOK].parameters
    assert conf["victims"] == ["resnet", "densenet"] and conf["n_images"] == 20 and 0.97 in conf["levels"]
    assert {r.name: r for r in runs}[runner.CONFIDENCE_NOTEBOOK].parameters["levels"] == [0.97]
    # the ablations: GRAD and MASK, at least 50 images per victim (the minimum)
    abl = full[runner.ABLATION_NOTEBOOK].parameters
    assert abl["interpreters"] == ["grad", "mask"] and abl["n_images"] >= 50 and abl["victims"] == ["resnet", "densenet"]
    # the paper's second half: every interpreter, both victims; the ensemble reads the main experiment's images
    rob = full[runner.ROBUSTNESS_NOTEBOOK].parameters
    assert rob["interpreters"] == ["grad", "cam", "mask", "rts"] and rob["victims"] == ["resnet", "densenet"]
    ens = full[runner.ENSEMBLE_NOTEBOOK].parameters
    assert ens["n_images"] == runner.N_IMAGES["full"] and ens["calibration_images"] == 500
    assert ens["adaptive_images"] <= ens["n_images"]
    assert full[runner.AID_NOTEBOOK].parameters["n_images"] == runner.N_IMAGES["full"]
    # an ensemble needs two interpreters, AID needs RTS: both chapters leave a book without them
    assert runner.ENSEMBLE_NOTEBOOK not in only_cam and runner.AID_NOTEBOOK not in only_cam


def test_toc_lists_every_executed_notebook():
    import yaml

    from adv2lib import paths

    toc = yaml.safe_load((paths.root() / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for p in toc["parts"] for c in p["chapters"]]
    for name in runner.BOOK_NOTEBOOKS:
        assert f"book/executed/{name}" in files
        assert (paths.notebooks_dir() / f"{name}.ipynb").is_file()


def test_book_notebooks_start_with_a_literal_parameters_cell():
    import ast

    from adv2lib import paths

    for name in runner.BOOK_NOTEBOOKS:
        nb = nbformat.read(paths.notebooks_dir() / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        for node in ast.parse(code[0].source).body:
            assert isinstance(node, ast.Assign), f"{name}: parameters cell holds more than assignments"
            ast.literal_eval(node.value)  # raises unless a literal


@pytest.mark.notebook
def test_papermill_executes_and_injects_parameters(sandbox):
    run = runner.NotebookRun("a", "a", {"answer": 42}, runtime={"engine": "serial"})
    report = runner.run_notebooks([run], SMOKE)
    assert report.ok, report.failed
    nb = nbformat.read(runner.cached_output_path(SMOKE, "a"), as_version=4)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "42" in outputs
    shown = _shown_parameter_cells(nb)                 # the values that ran, once, collapsed
    assert len(shown) == 1 and "hide-input" in shown[0].metadata["tags"]
    assert "answer = 42" in shown[0].source and 'engine = "serial"' in shown[0].source
    stamp = runner.read_stamp(SMOKE, "a")
    assert stamp["seconds"] > 0 and stamp["cpu_seconds"] > 0  # the kernel's CPU time is measured


# ------------------------------------------------------------------ engine and the parameters cell
def test_engine_reaches_the_experiment_notebooks_but_not_their_keys(sandbox, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")          # a cluster: every experiment notebook on Ray
    runs = {r.name: r for r in runner.declared_runs(SMOKE, engine="ray")}
    computing = (*runner.EXPERIMENT_NOTEBOOKS, runner.BUDGET_NOTEBOOK, runner.CONFIDENCE_NOTEBOOK,
                 runner.ABLATION_NOTEBOOK, runner.ROBUSTNESS_NOTEBOOK, runner.ENSEMBLE_NOTEBOOK, runner.AID_NOTEBOOK,
                 runner.PREMISE_NOTEBOOK, runner.VARIANTS_NOTEBOOK)
    for name in computing:
        assert runs[name].runtime == {"engine": "ray"} and "engine" not in runs[name].parameters
    assert all(not r.runtime for n, r in runs.items() if n not in computing)
    monkeypatch.delenv("RAY_ADDRESS")                            # a local cluster: the ensemble runs in its kernel
    local = {r.name: r.runtime for r in runner.declared_runs(SMOKE, engine="ray")}
    serial = {runner.ENSEMBLE_NOTEBOOK, runner.DESIGNS_NOTEBOOK, runner.PREMISE_NOTEBOOK}
    assert set(runner.SERIAL_ON_LOCAL_RAY) == serial
    assert {n for n in computing if local[n] == {"engine": "serial"}} == serial
    assert all(local[n] == {"engine": "ray"} for n in computing if n not in serial)
    assert all(r.runtime == {"engine": "serial"} for r in runner.declared_runs(SMOKE, engine="serial")
               if r.name in computing)
    serial = [runner.NotebookRun("a", "a", {"answer": 1}, runtime={"engine": "serial"})]
    ray = [runner.NotebookRun("a", "a", {"answer": 1}, runtime={"engine": "ray"})]
    assert runner.run_key(serial[0], SMOKE) == runner.run_key(ray[0], SMOKE)
    ex = FakeExecutor()
    assert runner.run_notebooks(serial, SMOKE, execute=ex).executed == ["a"]
    assert runner.run_notebooks(ray, SMOKE, execute=ex).skipped == ["a"]      # same numbers: not rerun
    stamp = runner.read_stamp(SMOKE, "a")
    assert "engine" not in json.dumps({k: v for k, v in stamp.items() if k != "runtime"})   # not in key or parameters
    assert stamp["runtime"] == {"engine": "serial"}    # how it last ran, for the Reproduce chapter's timings
    assert runner.stale_runs(SMOKE) and "a" not in runner.stale_runs(SMOKE)


def test_book_arguments_engine_and_ray_address(sandbox, monkeypatch):
    import argparse

    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    assert parser.parse_args([]).engine == "serial" and parser.parse_args([]).ray_address is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--engine", "dask"])
    seen = {}

    def fake_run_notebooks(runs, scale, force=False, only=None, **kw):
        seen.setdefault("runs", list(runs))
        seen["address"] = os.environ.get("RAY_ADDRESS")
        return runner.RunReport()

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(runner, "run_notebooks", fake_run_notebooks)
    args = parser.parse_args(["--smoke", "--engine", "ray", "--ray-address", "10.0.0.1:6379", "--no-build"])
    assert runner.main(args) == 0
    assert seen["address"] == "10.0.0.1:6379"
    assert {r.runtime.get("engine") for r in seen["runs"] if r.name in ("01_adv2_vs_pgd", "07_ensemble")} == {"ray"}


def _executed_by_papermill(defaults: str, injected: str, param_tags=("parameters",)):
    """A notebook as papermill leaves it: the notebook's parameters cell, papermill's injected cell, a body."""
    params = new_code_cell(defaults)
    params.metadata["tags"] = list(param_tags)
    inject = new_code_cell(injected)
    inject.metadata["tags"] = ["injected-parameters"]
    return new_notebook(cells=[params, inject, new_code_cell("print(profile, n_images)")])


def _shown_parameter_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))
            and "remove-cell" not in c.metadata.get("tags", [])]


DEFAULTS = 'profile = "embedded"      # or "imagenet"\nn_images = 100            # attacked images per victim\nseed = 0'
INJECTED = '# Parameters\nprofile = "embedded"\nn_images = 2\nengine = "ray"\n'


def test_an_executed_notebook_shows_the_parameters_that_ran_once_collapsed():
    nb = _executed_by_papermill(DEFAULTS, INJECTED)
    assert runner.show_parameters_once(nb)
    shown = _shown_parameter_cells(nb)
    assert len(shown) == 1 and shown[0].metadata["tags"] == ["injected-parameters", "hide-input"]
    assert shown[0].metadata["mystnb"]["code_prompt_show"] == "Show the parameters this chapter ran with"
    assert "remove-cell" in nb.cells[0].metadata["tags"] and "parameters" in nb.cells[0].metadata["tags"]
    source = shown[0].source
    assert 'n_images = 2              # attacked images per victim' in source     # the value that ran, comment kept
    assert "seed = 0" in source and 'engine = "ray"' in source                     # defaults and runtime values
    # the one cell gives the namespace the two cells gave
    both, alone = {}, {}
    exec(DEFAULTS + "\n" + INJECTED, both)
    exec(source, alone)
    assert {k: v for k, v in both.items() if k != "__builtins__"} == {k: v for k, v in alone.items() if k != "__builtins__"}


def test_parameter_display_tags_of_the_notebook_are_kept():
    nb = _executed_by_papermill(DEFAULTS, INJECTED, param_tags=("parameters", "remove-cell"))
    runner.show_parameters_once(nb)
    assert not _shown_parameter_cells(nb)                          # the intro hides its parameters entirely
    plain = new_notebook(cells=[_executed_by_papermill(DEFAULTS, INJECTED).cells[0]])
    assert runner.show_parameters_once(plain) and plain.cells[0].metadata["tags"] == ["parameters", "hide-input"]
    assert not runner.show_parameters_once(plain)                  # already collapsed: unchanged


def test_build_speedup_compares_computed_notebooks_only():
    from adv2lib import report

    before = {"notebooks": [{"name": "01", "seconds": 800.0, "cpu_seconds": 1600.0, "computed_batches": 24},
                            {"name": "02", "seconds": 700.0, "cpu_seconds": 1400.0, "computed_batches": 16},
                            {"name": "gone", "seconds": 5.0, "cpu_seconds": 5.0, "computed_batches": 0}]}
    now = {"notebooks": [{"name": "01", "seconds": 400.0, "cpu_seconds": 700.0, "computed_batches": 24},
                         {"name": "02", "seconds": 10.0, "cpu_seconds": 9.0, "computed_batches": 0},
                         {"name": "new", "seconds": 50.0, "cpu_seconds": 90.0, "computed_batches": 3}]}
    table = report.build_speedup(now, before).set_index("notebook")
    assert list(table.index) == ["01", "02", "total"]
    assert table.loc["01", "speed-up (wall)"] == 2.0
    assert table.loc["02", "speed-up (wall)"] != table.loc["02", "speed-up (wall)"]     # loaded only: NaN
    assert table.loc["total", "now: wall s"] == 410.0 and table.loc["total", "speed-up (wall)"] == 1500 / 410


def test_baseline_timings_are_committed_for_the_full_book():
    path, baseline = runner.baseline_timings(runner.Scale("embedded", smoke=False))
    assert path is not None and baseline["commit"] and baseline["notebooks"]
    assert runner.baseline_timings("embedded-nosuchscale") == (None, {})
