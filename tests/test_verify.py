"""``python -m adv2lib verify`` (adv2lib/verify.py): a recomputed sample equals the record, and an
edited number of the record is caught and named."""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest

from adv2lib import record, report, verify


@pytest.fixture
def smoke_record(tmp_path, monkeypatch):
    """A smoke record of the main experiment (ResNet, GRAD and CAM, 3 images in batches of 2:
    batch 0 holds images 0 and 1, batch 1 image 2), computed here."""
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "store"))
    report.run_chapter("main", victims=["resnet"], interpreters=["grad", "cam"], n_images=3, smoke=True,
                       device="cpu", engine="serial", show=False, batch_size=2)
    return record.tables_dir("embedded", True)


def _verify(tables, tmp_path, units=None):
    samples, _ = verify.plan(tables, only=["main"], everything=True)
    if units is not None:
        samples = [s for s in samples if (s.interpreters[0], s.batch) in units]
    return verify.verify(samples, tables, tmp_path / "scratch", say=lambda *_: None)


def test_every_batch_is_recomputed_identically_and_every_aggregate_is_inside(smoke_record, tmp_path):
    v = _verify(smoke_record, tmp_path)
    assert [(s.interpreters, s.batch, s.lo, s.hi) for s in v.samples] == [
        (("grad",), 0, 0, 2), (("grad",), 1, 2, 3), (("cam",), 0, 0, 2), (("cam",), 1, 2, 3)]
    c = v.comparison.groupby("metric")[["rows"]].sum()
    assert {"l1_benign", "confidence", "success", "iou_benign_mean", "linf"} <= set(c.index)
    assert (c["rows"] == 3 * 4).all()                  # PGD and ADV2, under GRAD and CAM, on 3 images
    assert (v.comparison["identical"] == 1.0).all() and (v.comparison["max_diff"] == 0).all()
    assert len(v.aggregates) and v.aggregates["inside"].all() and v.failures(exact=True) == []
    table = verify.report_table(v)
    assert (table["identical values"] == 1.0).all() and list(table["images"]) == ["2 of 3", "1 of 3"] * 2
    assert (table["outside interval"] == 0).all() and (table["aggregates"] > 0).all()
    # the whole experiment came back: its aggregates with every image recomputed, and every claim test of
    # main judged again from the recomputed rows
    whole = v.aggregates[v.aggregates["unit"] == verify.WHOLE]
    assert len(whole) and (whole["sampled"] == 3).all() and whole["inside"].all()
    assert (whole["with_sample"].fillna(-1) == whole["estimate"].fillna(-1)).all()
    claims = v.claims
    assert {"effective", "l1", "iou", "qualitative"} <= set(claims["claim"]) and claims["same"].all()
    assert (claims["estimate"].fillna(-1) == claims["estimate_new"].fillna(-1)).all()


def test_a_kept_whole_fp32_run_names_its_cpu_and_cpu_time_and_keeps_its_aggregates(smoke_record):
    """``verify --all --keep NAME`` in fp32: the control of the reduced-precision acceptance test and a
    chapter's time for the book's sum (adv2lib.report.reproduce.whole_times) read these fields."""
    parser = argparse.ArgumentParser()
    verify.add_arguments(parser)
    assert verify.main(parser.parse_args(["--smoke", "--all", "--only", "main", "--keep", "control"])) == 0
    kept = json.loads((smoke_record.parent / "verify" / "control.json").read_text())
    config = kept["configuration"]
    assert config["minutes"] is None and config["precision"] == "fp32" and config["cpu"] and config["cpu_count"] >= 1
    assert 0 < kept["cpu_seconds"] and 0 < kept["seconds"] and kept["failures"] == []
    assert {a["unit"] for a in kept["aggregates"]} == {verify.WHOLE} and all(a["inside"] for a in kept["aggregates"])
    assert kept["claims"] and all(c["same"] for c in kept["claims"])


def test_all_recomputes_transfer_as_a_whole_run_after_main_and_names_it(smoke_record, tmp_path):
    """A sample recomputes transfer's first batch only (it gathers its sources from its whole run by
    order); ``--all`` recomputes it whole, as a book build does, and every row comes back."""
    report.run_chapter("transfer", victims=["resnet"], interpreters=["grad", "cam"], n_images=3, smoke=True,
                       device="cpu", engine="serial", show=False, batch_size=2)
    parser = argparse.ArgumentParser()
    verify.add_arguments(parser)
    assert verify.main(parser.parse_args(["--smoke", "--all", "--only", "main", "transfer", "--keep", "w"])) == 0
    kept = json.loads((smoke_record.parent / "verify" / "w.json").read_text())
    assert kept["configuration"]["whole_runs"] == ["transfer"]
    [unit] = [r for r in kept["table"] if r["experiment"] == "transfer"]
    recorded = record.read_table(record.table_path(smoke_record, "transfer"))
    assert unit["unit"] == "resnet grad+cam, whole run" and unit["images"] == "3 of 3"
    assert unit["rows"] == len(recorded) and unit["identical values"] == 1.0
    whole = [a for a in kept["aggregates"] if a["experiment"] == "transfer"]
    assert whole and {a["unit"] for a in whole} == {verify.WHOLE} and all(a["sampled"] == 3 for a in whole)


def test_one_batch_alone_is_the_record_batch_and_nothing_else_is_computed(smoke_record, tmp_path):
    v = _verify(smoke_record, tmp_path, units={("cam", 1)})
    c = v.comparison.set_index("metric")
    assert (c["rows"] == 2).all() and (c["identical"] == 1.0).all()     # PGD and ADV2 under CAM, image 2
    assert "batch 1 (images 2-2)" in v.samples[0].label
    runs = {p.parent.name for p in (tmp_path / "scratch").rglob("*") if p.is_file() and "batch" in p.name}
    stored = [p for p in (tmp_path / "scratch").rglob("*") if p.is_file()]
    assert not any("grad" in str(p) and "adv2" in str(p) for p in stored), runs      # GRAD's ADV2 not computed


def test_a_later_batch_of_an_experiment_that_pairs_targets_with_the_whole_selection(tmp_path, monkeypatch):
    """The patch experiment pairs each target map with the benign map farthest from it among all
    the images: its batch 1 alone needs every image's maps, and comes back identical."""
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "store"))
    report.run_chapter("patch", victims=["resnet"], interpreters=["cam"], n_images=4, smoke=True, device="cpu",
                       engine="serial", show=False, batch_size=2)
    tables = record.tables_dir("embedded", True)
    samples, _ = verify.plan(tables, only=["patch"], everything=True)
    v = verify.verify([s for s in samples if s.batch == 1], tables, tmp_path / "scratch", say=lambda *_: None)
    c = v.comparison.set_index("metric")
    assert c.loc["l1_target", "rows"] >= 2 and (c["identical"] == 1.0).all() and v.failures(exact=True) == []
    assert "target_id" not in v.aggregates.columns and (v.aggregates["n"] == 4).all()   # per interpreter, not target


def test_a_later_batch_of_the_cross_model_study(tmp_path, monkeypatch):
    """A study's batch alone: the source victim's main batch is computed first, and the success
    flags it hands on are found by position."""
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "store"))
    report.run_chapter("cross_model", victims=["densenet"], interpreters=["cam"], n_images=3, smoke=True,
                       device="cpu", engine="serial", show=False, batch_size=2)
    tables = record.tables_dir("embedded", True)
    samples, _ = verify.plan(tables, only=["cross_model"], everything=True)
    assert [(s.victim, s.batch) for s in samples] == [("densenet", 0), ("densenet", 1)]
    v = verify.verify(samples[1:], tables, tmp_path / "scratch", say=lambda *_: None)
    c = v.comparison.set_index("metric")
    assert (c["rows"] == 2).all() and (c["identical"] == 1.0).all() and v.failures(exact=True) == []


def test_a_later_batch_of_the_official_budget_and_aid_premise_studies(tmp_path, monkeypatch):
    """The studies' own batches alone: the official-budget study (MASK on its first batch only) and
    the AID premise (which reads the AID experiment's batch, computed first)."""
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "store"))
    report.run_chapter("official_budget", victims=["resnet"], interpreters=["cam", "mask"], n_images=2, smoke=True,
                       device="cpu", engine="serial", show=False)
    report.run_chapter("aid_premise", victims=["resnet"], n_images=3, smoke=True, device="cpu", engine="serial",
                       show=False, batch_size=2)
    tables = record.tables_dir("embedded", True)
    samples, _ = verify.plan(tables, only=["official_budget", "aid_premise"], everything=True)
    assert {(s.experiment, s.interpreters, s.batch) for s in samples} >= {("official_budget", ("mask",), 0),
                                                                          ("official_budget", ("cam",), 1),
                                                                          ("aid_premise", ("rts",), 1)}
    later = [s for s in samples if s.batch == 1]
    v = verify.verify(later, tables, tmp_path / "scratch", say=lambda *_: None)
    assert (v.comparison["identical"] == 1.0).all() and v.failures(exact=True) == []
    assert set(v.comparison["experiment"]) == {"official_budget", "aid_premise"}


def test_an_edited_number_is_caught_and_named(smoke_record, tmp_path):
    path = record.table_path(smoke_record, "main")
    rows = record.read_table(path)
    edit = rows.index[(rows["interpreter"] == "cam") & (rows["attack"] == "adv2") & (rows["position"] == 1)][0]
    rows.loc[edit, "l1_benign"] += 0.5
    record.write_table(rows, path)
    v = _verify(smoke_record, tmp_path)
    c = v.comparison[v.comparison["metric"] == "l1_benign"].set_index("unit")
    unit = "resnet cam, batch 0 (images 0-1)"
    assert c.loc[unit, "identical"] == pytest.approx(3 / 4) and c.loc[unit, "max_diff"] == pytest.approx(0.5)
    assert "interpreter=cam" in c.loc[unit, "where"] and "position=1" in c.loc[unit, "where"]
    assert (c.drop(index=unit)["identical"] == 1.0).all()
    failures = v.failures(exact=True)
    assert len(failures) == 1 and "l1_benign" in failures[0] and "position=1" in failures[0]
    assert (v.comparison[v.comparison["metric"] != "l1_benign"]["identical"] == 1.0).all()
    l1 = v.claims[(v.claims["claim"] == "l1")].set_index("interpreter")
    assert l1.loc["cam", "estimate"] > l1.loc["cam", "estimate_new"]        # the record's ADV2 L1 was raised
    assert l1.loc["grad", "estimate"] == l1.loc["grad", "estimate_new"]
    one = _verify(smoke_record, tmp_path, units={("cam", 1)})
    assert one.claims.empty and verify.WHOLE not in set(one.aggregates["unit"])   # one batch: nothing whole
    whole = v.aggregates[(v.aggregates["unit"] == verify.WHOLE) & (v.aggregates["metric"] == "l1_benign")]
    cam = whole[(whole["interpreter"] == "cam") & (whole["attack"] == "adv2")].iloc[0]
    assert cam["with_sample"] < cam["estimate"] and cam["sampled"] == 3


def test_an_aggregate_outside_the_record_interval_fails_without_exact():
    recorded = pd.DataFrame({"experiment": "main", "victim": "resnet", "interpreter": "grad", "attack": "adv2",
                             "position": range(20), "index": range(20), "l1_benign": np.linspace(0.1, 0.2, 20)})
    recomputed = recorded.iloc[:5].assign(l1_benign=5.0)
    agg = verify.aggregates("main", recorded, recomputed)
    [row] = agg.to_dict("records")
    assert row["sampled"] == 5 and not row["inside"] and row["with_sample"] > row["hi"]
    v = verify.Verdict([verify.Sample("main", {}, "resnet", ("grad",), 0, 0, 20, 20, 1.0)],
                       verify.compare("main", recorded, recomputed), agg)
    assert len(v.failures()) == 1 and "outside the record's" in v.failures()[0]


def _fake_record(tmp_path, experiments):
    """A record of ``{name: (interpreters, n, seconds per row)}`` on both victims (batches of 50)."""
    import json

    for name, (interpreters, n, seconds) in experiments.items():
        rows = pd.DataFrame([{"victim": v, "interpreter": i, "position": p, "l1_benign": 0.1}
                             for v in ("resnet", "densenet") for i in interpreters for p in range(n)])
        if seconds is not None:
            rows["seconds"] = seconds
        record.write_table(rows, record.table_path(tmp_path, name))
        req = record.request(name, "embedded", False, ["resnet", "densenet"], interpreters, n, 0)
        (tmp_path / f"{name}.json").write_text(json.dumps({"experiment": name, "request": req}))


def test_the_plan_draws_every_experiment_victim_and_interpreter_within_the_minutes(tmp_path):
    _fake_record(tmp_path, {"main": (["grad", "cam", "mask", "rts"], 100, 1.0),     # 50 s a batch
                            "transfer": (["grad", "cam", "mask", "rts"], 100, None),
                            "aid": (["rts"], 100, 2.0)})                            # 100 s a batch
    units, missing = verify.plan(tmp_path, everything=True)
    assert len(units) == 2 * 4 * 2 + 2 + 2 * 2 and missing == {}      # transfer: one whole run per victim
    transfer = [u for u in units if u.experiment == "transfer"]
    assert transfer[0].interpreters == ("grad", "cam", "mask", "rts") and transfer[0].whole
    assert (transfer[0].lo, transfer[0].hi, transfer[0].seconds) == (0, 100, 400.0)     # main's whole run first
    assert transfer[0].label.endswith("whole run")
    chosen, missing = verify.plan(tmp_path, minutes=10)
    sampled = [u for u in chosen if u.experiment == "transfer"]             # a sample: the first batch only
    assert sampled and all((u.batch, u.seconds) == (0, 200.0) for u in sampled)
    assert sum(u.seconds for u in chosen) <= 600 and {u.experiment for u in chosen} == {"main", "transfer", "aid"}
    main = [u for u in chosen if u.experiment == "main"]
    # first round: one unit each within a third of the minutes (350 s); then in turn what still fits
    assert len(main) == 2 and {u.victim for u in main} == {"resnet", "densenet"}       # the other victim next
    assert len({u.interpreters for u in main}) == 2                                   # and another interpreter
    assert chosen == verify.plan(tmp_path, minutes=10)[0] != verify.plan(tmp_path, minutes=10, seed=1)[0]
    small, missing = verify.plan(tmp_path, minutes=1.5)                             # 90 s: main only
    assert {u.experiment for u in small} == {"main"} and missing == {"transfer": 200.0, "aid": 100.0}
    assert {u.experiment for u in verify.plan(tmp_path, minutes=5, only=["aid"])[0]} == {"aid"}


def test_a_study_derived_from_a_whole_run_is_named_not_sampled_and_recomputed_whole_by_all(tmp_path):
    _fake_record(tmp_path, {"main": (["grad"], 50, 1.0), "ensemble_designs": (["grad", "cam"], 100, None),
                            "ensemble": (["grad", "cam"], 100, 2.0)})
    units, missing = verify.plan(tmp_path, minutes=10)
    assert "ensemble_designs" not in {u.experiment for u in units} and missing == {"ensemble_designs": math.inf}
    units, missing = verify.plan(tmp_path, everything=True)
    designs = [u for u in units if u.experiment == "ensemble_designs"]
    assert missing == {} and [(u.victim, u.interpreters, u.whole) for u in designs] == [
        ("resnet", ("grad", "cam"), True), ("densenet", ("grad", "cam"), True)]
    # the ensemble's whole run first, and main's, which it runs (through transfer) first; designs: no seconds
    assert designs[0].seconds == 2 * 100 * 2.0 + 50 * 1.0
    assert verify.requires("ensemble_designs") == ["ensemble", "transfer", "main"] and verify.requires("main") == []
    assert [u.whole for u in units if u.experiment == "ensemble"] == [True, True]
    table = verify.report_table(verify.Verdict([], pd.DataFrame(), pd.DataFrame(),
                                               not_sampled={"ensemble_designs": math.inf}))
    assert table["unit"].iloc[0].startswith("not sampled: it scores the ensemble experiment's stored maps")


def test_rows_on_other_inputs_and_run_settings_are_not_compared():
    recorded = pd.DataFrame({"victim": "resnet", "interpreter": "grad", "attack": "adv2", "position": [0, 1],
                             "index": [5, 6], "target_class": [1, 2], "threshold": 0.5, "l1_benign": [0.1, 0.2]})
    recomputed = recorded.assign(target_class=[1, 3], threshold=0.6, l1_benign=[0.1, 0.9])
    c = verify.compare("main", recorded, recomputed).set_index("metric")
    assert "threshold" not in c.index and c.loc["l1_benign", "rows"] == 1 and c.loc["l1_benign", "other_inputs"] == 1
    assert c.loc["l1_benign", "identical"] == 1.0
    assert verify.aggregates("main", recorded, recomputed)["inside"].all()
