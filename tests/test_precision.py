"""Reduced-precision passes (adv2lib.precision): what they change, what they leave, where they are refused."""
from __future__ import annotations

import argparse
import doctest

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adv2lib import precision, verify
from adv2lib.errors import ConfigError
from adv2lib.models import load_victim
from adv2lib.models.victim import Victim


def test_doctests():
    assert doctest.testmod(precision).failed == 0


def test_bf16_passes_return_float32_close_to_fp32_and_are_undone_after_the_block():
    victim = load_victim("resnet", device="cpu")
    x = torch.rand(8, 1, 28, 28)
    y = victim(x).argmax(1)
    originals = Victim.pyramid, Victim.head

    def logits_and_grad():
        xa = x.clone().requires_grad_(True)
        logits = victim(xa)
        return logits.detach(), torch.autograd.grad(F.cross_entropy(logits, y), xa)[0]

    ref_logits, ref_grad = logits_and_grad()
    with precision.victim_passes("bf16"):
        assert (Victim.pyramid, Victim.head) != originals
        logits, grad = logits_and_grad()
        features = victim.features(x)
    assert (Victim.pyramid, Victim.head) == originals
    assert logits.dtype == grad.dtype == features.dtype == torch.float32
    assert not torch.equal(logits, ref_logits)                       # the passes did change precision
    assert torch.allclose(logits, ref_logits, atol=0.2 * ref_logits.abs().max().item())
    assert (logits.argmax(1) == ref_logits.argmax(1)).float().mean() >= 0.75
    assert (grad.sign() == ref_grad.sign()).float().mean() > 0.8
    with precision.victim_passes("fp32"):                              # fp32: nothing patched
        assert (Victim.pyramid, Victim.head) == originals
        assert torch.equal(victim(x), ref_logits)


def test_the_patch_is_undone_when_the_block_raises():
    originals = Victim.pyramid, Victim.head
    with pytest.raises(RuntimeError):
        with precision.victim_passes("bf16"):
            raise RuntimeError("inside")
    assert (Victim.pyramid, Victim.head) == originals


def test_double_backward_runs_in_bf16():
    """GRAD's attack differentiates an input gradient: it must run through the bf16 passes."""
    victim = load_victim("resnet", device="cpu")
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    with precision.victim_passes("bf16"):
        g = torch.autograd.grad(victim(x)[:, 0].sum(), x, create_graph=True)[0]
        (second,) = torch.autograd.grad(g.abs().sum(), x)
    assert second.dtype == torch.float32 and torch.isfinite(second).all()


def test_unknown_or_unavailable_precisions_are_refused():
    with pytest.raises(ConfigError, match="unknown precision"):
        precision.check("fp16")
    with pytest.raises(ConfigError, match="CUDA"):
        precision.check("tf32", "cpu")
    assert precision.check("bf16", "cpu") == "bf16"


def test_verify_in_a_reduced_precision_keeps_to_that_precisions_store(tmp_path):
    parser = argparse.ArgumentParser()
    verify.add_arguments(parser)
    (tmp_path / "results-bf16").mkdir()
    (tmp_path / "results-bf16" / precision.MARKER).write_text("fp32\n")       # a store of another precision
    args = parser.parse_args(["--precision", "bf16", "--results-dir", str(tmp_path / "results")])
    with pytest.raises(ConfigError, match="holds fp32 results, not bf16"):
        verify.main(args)


def test_the_reproduce_chapter_sets_a_bf16_run_beside_the_fp32_record(tmp_path, monkeypatch):
    import json

    from adv2lib import record
    from adv2lib.report import reproduce

    monkeypatch.setattr(record, "scale_dir", lambda profile, smoke: tmp_path)
    assert reproduce.precision("embedded", False)[0] is None
    (tmp_path / "verify").mkdir()
    base = {"experiment": "main", "victim": "resnet", "n": 100, "sampled": 100}
    aggregates = [
        {**base, "interpreter": "cam", "attack": "adv2", "metric": "l1_benign", "estimate": 0.10, "lo": 0.08,
         "hi": 0.12, "with_sample": 0.11, "inside": True},
        {**base, "interpreter": "cam", "attack": "adv2", "metric": "success", "estimate": 1.0, "lo": 0.96,
         "hi": 1.0, "with_sample": 1.0, "inside": True},
        {**base, "interpreter": "mask", "attack": "adv2", "metric": "l1_benign", "estimate": 0.20, "lo": 0.18,
         "hi": 0.22, "with_sample": 0.23, "inside": False}]
    (tmp_path / "verify" / "bf16.json").write_text(json.dumps(
        {"label": "bf16", "configuration": {"precision": "bf16"}, "table": [], "aggregates": aggregates}))
    (tmp_path / "verify" / "fp32.json").write_text(json.dumps(
        {"label": "fp32", "configuration": {"engine": "serial"}, "table": [], "aggregates": aggregates}))
    table, text = reproduce.precision("embedded", False)
    rows = table.data.set_index("interpreter")
    assert list(rows.index) == ["CAM", "MASK"] and set(rows["precision"]) == {"bf16"}     # the fp32 run is left out
    assert rows.loc["CAM", "outside interval"] == 0 and rows.loc["CAM", "largest move"] == pytest.approx(0.5)
    assert rows.loc["MASK", "outside interval"] == 1 and rows.loc["MASK", "largest move"] == pytest.approx(1.5)
    # an asymmetric interval: a move inside it stays below 1 (0.0008 of the 0.001 left above the estimate)
    aggregates[1] = {**aggregates[1], "estimate": 0.999, "lo": 0.95, "hi": 1.0, "with_sample": 0.9998}
    (tmp_path / "verify" / "bf16.json").write_text(json.dumps(
        {"label": "bf16", "configuration": {"precision": "bf16"}, "table": [], "aggregates": aggregates}))
    rows = reproduce.precision("embedded", False)[0].data.set_index("interpreter")
    assert rows.loc["CAM", "largest move"] == pytest.approx(0.8) and rows.loc["CAM", "in"] == "success"
    assert rows.loc["MASK", "in"] == "l1_benign" and "95% interval" in text


def test_the_reproduce_chapter_names_every_verdict_a_bf16_run_changes(tmp_path, monkeypatch):
    import json

    from adv2lib import record
    from adv2lib.report import reproduce

    monkeypatch.setattr(record, "scale_dir", lambda profile, smoke: tmp_path)
    assert reproduce.precision_verdicts("embedded", False)[0] is None
    (tmp_path / "verify").mkdir()
    test = {"experiment": "main", "claim": "l1", "victim": "resnet", "statistic": "L1 ratio", "estimate": 0.6,
            "lo": 0.55, "hi": 0.65, "verdict": "does not hold", "estimate_new": 0.6, "lo_new": 0.55, "hi_new": 0.65,
            "verdict_new": "does not hold", "same": True}
    moved = {**test, "interpreter": "rts", "estimate": 0.52, "lo": 0.45, "hi": 0.58, "verdict": "inconclusive",
             "estimate_new": 0.58, "lo_new": 0.52, "hi_new": 0.64, "verdict_new": "does not hold", "same": False}
    (tmp_path / "verify" / "bf16.json").write_text(json.dumps(
        {"label": "bf16", "configuration": {"precision": "bf16"}, "table": [],
         "claims": [{**test, "interpreter": "cam"}, moved]}))
    [row] = reproduce.precision_verdicts("embedded", False)[0].data.to_dict("records")
    assert (row["claim"], row["tests"], row["same verdict"]) == ("l1", 2, 1)
    assert row["changed"].startswith("ResNet RTS") and "inconclusive → 0.580 [0.520, 0.640] does not hold" in row["changed"]


def test_precision_engine_runs_selection_and_mask_tasks_in_fp32_and_the_rest_in_bf16():
    from types import SimpleNamespace

    from adv2lib.engines import Call

    victim = load_victim("resnet", device="cpu")
    x = torch.rand(4, 1, 28, 28)
    ref = victim(x)
    seen = {}

    def logits(ctx, interpreter=None, members=None):
        return ctx.victim(x)

    calls = [Call(logits, {"interpreter": "cam"}, "cam"), Call(logits, {"interpreter": ("mask", {"seed": 1})}, "variant"),
             Call(logits, {"members": ["grad", "mask"]}, "ensemble"), Call(logits, {}, "pgd")]
    local = SimpleNamespace(victim=victim, to_device=lambda *t: t)
    engine = precision.PrecisionEngine("bf16")
    assert engine.name == "serial" and engine.run(calls, None, local, lambda c, v: seen.__setitem__(c.label, v)) == []
    assert torch.equal(seen["variant"], ref) and torch.equal(seen["ensemble"], ref)
    assert not torch.equal(seen["cam"], ref) and not torch.equal(seen["pgd"], ref)
    assert torch.allclose(seen["cam"], ref, atol=0.5)
    assert torch.equal(victim(x), ref)                          # nothing left patched
    with pytest.raises(ConfigError, match="CUDA"):
        precision.PrecisionEngine("tf32")


def test_the_reproduce_chapter_times_a_sample_in_both_precisions(tmp_path, monkeypatch):
    import json

    from adv2lib import record
    from adv2lib.report import reproduce

    monkeypatch.setattr(record, "scale_dir", lambda profile, smoke: tmp_path)
    assert reproduce.precision_times("embedded", False)[0] is None
    (tmp_path / "verify").mkdir()
    sample = {"seed": 0, "minutes": 40, "engine": "serial", "threads": 2, "device": "cpu"}

    def units(seconds):
        return [{"experiment": e, "unit": u, "seconds": s} for (e, u), s in seconds.items()]

    fp32 = {**{("patch", f"b{i}"): 30.0 + i for i in range(5)}, ("budget", "b0"): 12.0}
    bf16 = {**{("patch", f"b{i}"): 20.0 + i for i in range(5)}, ("budget", "b0"): 8.0, ("budget", "b9"): 99.0}
    not_sampled = {"experiment": "transfer", "unit": "not sampled: too long", "seconds": 0.0}
    for name, config, seconds in [("a-fp32", {**sample, "precision": "fp32"}, fp32),
                                  ("b-bf16", {**sample, "precision": "bf16", "fp32_interpreters": ["mask"]}, bf16),
                                  ("c-other", {**sample, "seed": 1, "precision": "bf16"}, bf16),     # another sample
                                  ("c-unpolicied", {**sample, "precision": "bf16"}, fp32),  # kept before the policy
                                  ("d-whole", {**sample, "minutes": None, "precision": "bf16",
                                               "fp32_interpreters": ["mask"]}, fp32)]:
        (tmp_path / "verify" / f"{name}.json").write_text(json.dumps(
            {"label": name, "configuration": config, "table": units(seconds) + [not_sampled]}))
    table, text = reproduce.precision_times("embedded", False)
    rows = table.data.set_index("experiment")
    patch = rows.loc["patch"]
    assert (patch["batches"], patch["fp32 s"], patch["bf16 s"]) == (5, 160.0, 110.0)
    assert patch["speed-up"].startswith("1.45 [") and patch["in fp32"] == "selection, MASK"
    assert patch["run"] == "b-bf16"
    assert rows.loc["budget", "speed-up"] == "1.50 (n = 1, no interval)"      # b9: no pair
    assert rows.loc["all sampled", "batches"] == 6
    assert "transfer" not in rows.index and len(rows) == 3                     # the whole run is not a sample
    assert "paired bootstrap" in text


def test_the_whole_runs_add_up_to_the_books_time_per_precision_and_name_what_is_not_measured(tmp_path, monkeypatch):
    import json

    from adv2lib import record
    from adv2lib.report import reproduce

    monkeypatch.setattr(record, "scale_dir", lambda profile, smoke: tmp_path)
    (tmp_path / "verify").mkdir()
    (tmp_path / "manifest.json").write_text(json.dumps({"experiments": {
        "main": {"attack_seconds": 300.0}, "transfer": {"attack_seconds": None}, "budget": {"attack_seconds": 100.0},
        "aid_variants": {"attack_seconds": 50.0}}}))
    assert reproduce.whole_times("embedded", False)[0] is None

    def keep(name, config, seconds, **extra):
        table = [{"experiment": e, "unit": f"batch {i}", "seconds": s} for e, ss in seconds.items()
                 for i, s in enumerate(ss)]
        (tmp_path / "verify" / f"{name}.json").write_text(json.dumps(
            {"label": name, "configuration": config, "table": table, "seconds": 1000.0, **extra}))

    keep("a-sample", {"precision": "fp32", "minutes": 40}, {"main": [99.0]})                 # a sample: not whole
    keep("b-fp32", {"precision": "fp32", "minutes": None, "cpu": "Xeon"}, {"main": [40.0, 50.0], "transfer": [5.0]},
         cpu_seconds=1900.0)
    keep("c-bf16", {"precision": "bf16", "minutes": None, "native": False, "fp32_interpreters": ["mask"]},
         {"main": [30.0, 35.0], "budget": [7.0]})
    keep("d-unpolicied", {"precision": "bf16", "minutes": None}, {"main": [1.0]})      # kept before the policy
    keep("e-alone", {"precision": "fp32", "minutes": None}, {"transfer": [500.0]})    # recomputed main within it
    table, text = reproduce.whole_times("embedded", False)
    rows = table.data.set_index("experiment")
    assert list(rows.index) == ["main", "transfer", "budget", "aid_variants"]          # book order
    assert rows.loc["main", ["fp32 s", "fp32 run", "bf16 s"]].tolist() == [90.0, "b-fp32", 65.0]
    # not e-alone's 500; verify recomputes transfer's first batch only: shown, marked, out of the sum
    assert rows.loc["transfer", ["fp32 s", "fp32 run"]].tolist() == [5.0, "b-fp32 (first batch only)"]
    assert "Left out: e-alone (transfer without main)" in text
    assert rows.loc["transfer", "share of the record's attack time"] == "no attack of its own"
    assert rows.loc["budget", "fp32 run"] == "not recomputed whole yet" and np.isnan(rows.loc["budget", "fp32 s"])
    assert rows.loc["aid_variants", "fp32 run"] == ("not recomputed whole yet (a sample never recomputes it; "
                                                    "`verify --all` does, as a whole run)")
    assert "in fp32, 1 of 4 experiments took 90 s (0.03 h; 67% of the record's attack time); not yet: transfer " \
           "(first batch only), budget, aid_variants" in text
    assert "in bf16, 2 of 4 experiments took 72 s" in text and "not yet: transfer, aid_variants" in text
    assert "b-fp32 (fp32, Xeon, 1,000 s wall, 1,900 s CPU)" in text
    assert "c-bf16 (bf16, CPU not recorded, bf16 in hardware: no, emulated, 1,000 s wall, CPU time not recorded)" in text
    assert "d-unpolicied" not in text and "a-sample" not in text
    # a run that recomputed transfer as a whole run (verify --all now) comes before its first batch alone,
    # though kept earlier by file name; main's time stays the later run's
    keep("a-whole", {"precision": "fp32", "minutes": None, "whole_runs": ["transfer"]},
         {"main": [60.0], "transfer": [200.0, 210.0]})
    table, text = reproduce.whole_times("embedded", False)
    rows = table.data.set_index("experiment")
    assert rows.loc["transfer", ["fp32 s", "fp32 run"]].tolist() == [410.0, "a-whole"]
    assert rows.loc["main", ["fp32 s", "fp32 run"]].tolist() == [90.0, "b-fp32"]
    assert "in fp32, 2 of 4 experiments took 500 s (0.14 h; 67% of the record's attack time); not yet: budget, " \
           "aid_variants" in text
    assert "in bf16, 2 of 4 experiments took 72 s" in text and "not yet: transfer, aid_variants" in text


def test_a_run_recomputed_whole_only_where_verify_all_ran_the_experiment_whole():
    """Runs kept before ``verify --all`` had whole runs recomputed transfer and the ensemble on their
    first batch; a sample never recomputes anything whole."""
    from adv2lib.report import reproduce

    old, new = {"minutes": None}, {"minutes": None, "whole_runs": ["transfer"]}
    assert reproduce._whole(old, "main") and not reproduce._whole(old, "transfer")
    assert reproduce._whole(new, "transfer") and not reproduce._whole(new, "ensemble")
    assert not reproduce._whole({"minutes": 40, "whole_runs": ["transfer"]}, "transfer")
    aggs = [{"experiment": "transfer", "metric": m} for m in ("a", "b", "c")]
    runs = [{"name": "first", "configuration": old, "aggregates": aggs},             # more aggregates, first batch
            {"name": "whole", "configuration": new, "aggregates": aggs[:2]},
            {"name": "sample", "configuration": {"minutes": 40}, "aggregates": aggs}]
    chosen = reproduce._largest_runs(runs, lambda config: True)["aggregates"]["transfer"]
    assert chosen[0] == "whole" and chosen[1]["whole"].all()


def test_the_precision_engine_wraps_any_engine_with_picklable_tasks_and_reports_the_original_calls():
    """The Ray engine ships ``call.fn`` to another process: a wrapped task must survive pickling and
    patch the victims where it runs; the driver must get its own Call objects back."""
    import pickle
    from types import SimpleNamespace

    from adv2lib.engines import Call, SerialEngine

    class Shipping(SerialEngine):             # an engine that pickles every task, as Ray does
        name = "ray"

        def run(self, calls, worker, local, on_result):
            for call in calls:
                on_result(call, pickle.loads(pickle.dumps(call.fn))(local, **call.inputs))
            return []

    victim = load_victim("resnet", device="cpu")
    x = torch.rand(3, 1, 28, 28)
    ref = victim(x)
    calls = [Call(_logits_of(x), {"interpreter": "cam"}, "cam"), Call(_logits_of(x), {"interpreter": "mask"}, "mask")]
    got = {}
    engine = precision.PrecisionEngine("bf16", Shipping())
    assert engine.name == "ray"
    engine.run(calls, None, SimpleNamespace(victim=victim), lambda call, value: got.__setitem__(id(call), value))
    assert set(got) == {id(c) for c in calls}
    assert not torch.equal(got[id(calls[0])], ref) and torch.equal(got[id(calls[1])], ref)
    assert torch.equal(victim(x), ref)


class _logits_of:
    """A picklable task: the victim's logits of fixed images."""

    def __init__(self, x):
        self.x = x

    def __call__(self, ctx, interpreter=None):
        return ctx.victim(self.x)


def test_each_precision_has_its_own_store_and_a_store_refuses_another_precision(tmp_path):
    fp32 = tmp_path / "results"
    bf16 = precision.store_dir(fp32, "bf16")
    assert bf16 == tmp_path / "results-bf16" and precision.store_dir(fp32, "fp32") == fp32
    assert precision.claim_store(bf16, "bf16") == bf16 and (bf16 / precision.MARKER).read_text().strip() == "bf16"
    assert precision.claim_store(bf16, "bf16") == bf16                          # again: its own
    with pytest.raises(ConfigError, match="holds bf16 results, not fp32"):
        precision.claim_store(bf16, "fp32")
    (fp32 / "main" / "run").mkdir(parents=True)                                 # an unmarked store with runs: fp32
    (fp32 / "main" / "run" / "manifest.json").write_text("{}")
    assert precision.claim_store(fp32, "fp32") == fp32 and not (fp32 / precision.MARKER).exists()
    with pytest.raises(ConfigError, match="holds fp32 results, not bf16"):
        precision.claim_store(fp32, "bf16")
    engine, store = precision.setup("bf16", "serial", fp32, "cpu")
    assert isinstance(engine, precision.PrecisionEngine) and engine.name == "serial" and store == str(bf16)
    assert precision.setup("fp32", "serial", fp32, "cpu") == ("serial", fp32)


def test_a_reduced_precision_is_part_of_the_record_key_and_fp32_keys_are_as_before(monkeypatch):
    from adv2lib import record

    args = ("main", "embedded", True, ["resnet"], ["cam"], 4, 0, {})
    monkeypatch.delenv(precision.ENV, raising=False)
    fp32_req, fp32_inputs = record.request(*args), record.inputs("embedded", "main")
    assert "precision" not in fp32_req and "precision_code" not in fp32_inputs
    assert record.scale_label("embedded", False) == "embedded-full"
    monkeypatch.setenv(precision.ENV, "bf16")
    req, inp = record.request(*args), record.inputs("embedded", "main")
    assert req == {**fp32_req, "precision": "bf16"} and record.request_precision(req) == "bf16"
    assert inp == {**fp32_inputs, "precision": "bf16", "precision_code": precision.code()}
    assert record.experiment_key(req, inp) != record.experiment_key(fp32_req, fp32_inputs)
    assert record.scale_label("embedded", False) == "embedded-full-bf16"
    assert record.request(*args, precision="fp32") == fp32_req                  # named explicitly
    monkeypatch.setenv(precision.ENV, "fp16")
    with pytest.raises(ConfigError, match="unknown precision"):
        precision.current()


def test_the_precision_code_key_follows_the_precision_module_but_not_the_core_key(tmp_path):
    import shutil

    from adv2lib import fingerprint

    package = tmp_path / "adv2lib"
    shutil.copytree(fingerprint.code_files()[0].parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    core, key = fingerprint.code(package), precision.code(package)
    assert package / "precision.py" not in fingerprint.code_files(package)
    target = package / "precision.py"
    target.write_text(target.read_text().replace('FP32_INTERPRETERS = frozenset({"mask"})',
                                                 'FP32_INTERPRETERS = frozenset({"mask", "grad"})'))
    assert fingerprint.code(package) == core and precision.code(package) != key


def test_a_bf16_chapter_computes_into_its_own_store_and_record_folder(monkeypatch, tmp_path):
    """The book's setting reaches the chapter: the bf16 request, the bf16 store and engine, the
    bf16 record folder; the fp32 chapter is not served from it."""
    from adv2lib import experiments, record, report
    from test_plotting import _result

    seen = []

    def run_main(victim, **kwargs):
        seen.append(kwargs)
        return _result(victim)

    monkeypatch.setattr(experiments, "run_main", run_main)
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv(precision.ENV, "bf16")
    args = dict(victims=["resnet"], interpreters=["grad", "cam"], n_images=4, smoke=True, device="cpu", show=False)
    report.run_chapter("main", **args)
    assert seen[-1]["results_dir"] == str(tmp_path / "results-bf16")
    assert isinstance(seen[-1]["engine"], precision.PrecisionEngine) and seen[-1]["engine"].precision == "bf16"
    meta = (record.tables_dir("embedded", True) / "main.json")
    assert meta.is_file() and meta.parent.parent.name == "embedded-smoke-bf16"
    report.run_chapter("main", **args)
    assert len(seen) == 1                                                       # rendered from the bf16 record
    monkeypatch.delenv(precision.ENV)
    report.run_chapter("main", **args)
    assert len(seen) == 2 and seen[-1]["results_dir"] is None and "engine" not in seen[-1]


def test_the_acceptance_tables_judge_each_interpreter_and_each_experiment_recomputed_whole(tmp_path, monkeypatch):
    import json

    from adv2lib import record
    from adv2lib.report import reproduce

    monkeypatch.setattr(record, "scale_dir", lambda profile, smoke: tmp_path)
    (tmp_path / "verify").mkdir()
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"experiments": {"main": {"attack_seconds": 300.0}, "budget": {"attack_seconds": 100.0}}}))

    def agg(experiment, interpreter, metric="l1", estimate=0.5, lo=0.4, hi=0.6, new=0.5):
        return {"experiment": experiment, "victim": "resnet", "interpreter": interpreter, "attack": "adv2",
                "metric": metric, "estimate": estimate, "lo": lo, "hi": hi, "n": 100, "sampled": 100,
                "with_sample": new, "inside": lo <= new <= hi, "unit": "all batches"}

    def run(name, aggregates, claims=(), minutes=None, fp32=("mask",)):
        (tmp_path / "verify" / f"{name}.json").write_text(json.dumps(
            {"label": name, "table": [], "aggregates": aggregates, "claims": list(claims),
             "configuration": {"precision": "bf16", "fp32_interpreters": list(fp32), "minutes": minutes}}))

    claim = {"experiment": "main", "victim": "densenet", "interpreter": "mask", "claim": "qualitative"}
    run("policy", [agg("main", "cam", new=0.7), agg("main", "grad", "linf", 0.1, 0.1, 0.1, 0.1 + 1e-9),
                   agg("main", "rts", "linf", 0.1, 0.09, 0.1, 0.1 + 1e-10),       # past a bound, not zero width
                   agg("main", "rts", "iou", 0.5, 0.4, 0.6, 0.6 + 1e-5),          # past it by more: a move
                   agg("main", "mask"), agg("budget", "grad"), agg("budget", "mask"), agg("transfer", "grad"),
                   {**agg("ensemble", ""), "source_interpreter": "rts"}],      # a detector's row: the attack's
        claims=[{**claim, "same": False}, {**claim, "interpreter": "cam", "same": True}])
    run("sample", [agg("ablation", "grad")], minutes=40)
    run("old-policy", [agg("budget", "grad", new=0.9)], fp32=())                 # before the policy: not counted
    no_control = reproduce.precision_acceptance("embedded", False, "experiment")
    assert set(no_control[0].data[reproduce.CONTROL]) == {"not recomputed whole in fp32"}
    assert "is not measured" in no_control[1]
    for name, minutes in [("fp32-whole", None), ("fp32-sample", 40)]:          # the control: fp32 recomputed whole
        (tmp_path / "verify" / f"{name}.json").write_text(json.dumps(
            {"label": name, "table": [], "configuration": {"precision": "fp32", "minutes": minutes},
             "aggregates": [agg("main", "cam", new=0.65), agg("main", "grad"), agg("main", "rts"),
                            agg("cross_model", "grad", new=0.9)],           # fp32 only: counted apart
             "claims": [{**claim, "same": True}]}))
    interp = reproduce.precision_acceptance("embedded", False, "interpreter")[0].data.set_index("interpreter")
    assert interp.loc["CAM", reproduce.CONTROL] == "1 / 1, 0 of 0"
    assert interp.loc["MASK", reproduce.CONTROL] == "0 / 0, 0 of 1"          # its claim test only
    assert interp.loc["CAM", ["outside interval", "passes"]].tolist() == [1, "no"]
    assert interp.loc["GRAD", ["outside interval", "past a bound by rounding only", "passes"]].tolist() == [0, 1, "yes"]
    assert interp.loc["MASK", ["verdicts moved", "passes"]].tolist() == [1, "no"]
    assert interp.loc["RTS", ["outside interval", "past a bound by rounding only", "passes"]].tolist() == [1, 1, "no"]
    assert interp.loc["RTS", "aggregates"] == 3 and "" not in interp.index
    text = reproduce.precision_acceptance("embedded", False, "interpreter")[1]
    assert "any tolerance of at least 1.0e-09 and under 1.0e-05" in text
    table, text = reproduce.precision_acceptance("embedded", False, "experiment")
    exp = table.data.set_index("experiment")
    assert exp.loc["budget", ["recomputed", "passes", "share of the record's attack time"]].tolist() == [
        "whole", "yes", "25.0%"]
    assert exp.loc["main", "passes"] == "no" and exp.loc["ablation", "passes"].startswith("not tested whole")
    # a run kept before verify --all recomputed transfer whole: its first batch only; nothing moved, not tested whole
    assert exp.loc["transfer", ["recomputed", "passes"]].tolist() == ["first batch only",
                                                                     "not tested whole (nothing moved)"]
    assert "pass as a whole: budget (25.0% of the record's attack time)." in text
    assert exp.loc["main", reproduce.CONTROL] == "1 / 3, 0 of 1"
    assert exp.loc["budget", reproduce.CONTROL] == "not recomputed whole in fp32"
    assert ("Over the experiments both cover (main), fp32 left 1 of 3 aggregates outside (0 past a bound by "
            "rounding only) and moved 0 of 1 verdicts; the reduced precision, 2 of 5 outside and 1 of 2 moved. "
            "Recomputed whole in fp32 only (cross_model): 1 of 1 aggregates outside.") in text


def test_a_bf16_run_on_a_cpu_without_bfloat16_hardware_warns_that_it_is_emulated(tmp_path, monkeypatch):
    """The CPU's own probes decide; both answers are forced here, so the test holds on any machine."""
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert precision.native("fp32") and not precision.native("bf16", "cpu")
    with pytest.warns(RuntimeWarning, match="no bf16 arithmetic in hardware"):
        precision.setup("bf16", "serial", tmp_path / "results", "cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.native("bf16", "cpu")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        precision.setup("bf16", "serial", tmp_path / "results", "cpu")
