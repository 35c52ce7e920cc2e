"""``python -m adv2lib verify`` (adv2lib/verify.py): a recomputed sample equals the record, and an
edited number of the record is caught and named."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adv2lib import record, report, verify


@pytest.fixture
def smoke_record(tmp_path, monkeypatch):
    """A smoke record of the main experiment (ResNet, GRAD and CAM, 3 images), computed here."""
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "store"))
    report.run_chapter("main", victims=["resnet"], interpreters=["grad", "cam"], n_images=3, smoke=True,
                       device="cpu", engine="serial", show=False)
    return record.tables_dir("embedded", True)


def _verify(tables, tmp_path, k=None):
    [sample] = verify.plan(tables, only=["main"])
    if k is not None:
        sample = verify.Sample(sample.experiment, sample.request, k, sample.n, sample.seconds_per_image)
    return verify.verify([sample], tables, tmp_path / "scratch", say=lambda *_: None)


def test_the_sample_is_recomputed_identically_and_every_aggregate_is_inside(smoke_record, tmp_path):
    v = _verify(smoke_record, tmp_path)
    c = v.comparison.set_index("metric")
    assert {"l1_benign", "confidence", "success", "iou_benign_mean", "linf"} <= set(c.index)
    assert (c["rows"] == 3 * 4).all()                  # PGD and ADV2, under GRAD and CAM, on 3 images
    assert (c["identical"] == 1.0).all() and (c["max_diff"] == 0).all()
    assert len(v.aggregates) and v.aggregates["inside"].all() and v.failures(exact=True) == []
    table = verify.report_table(v)
    assert table.loc[0, "identical values"] == 1.0 and table.loc[0, "images"] == "3 of 3"


def test_a_prefix_of_the_images_is_the_same_images(smoke_record, tmp_path):
    v = _verify(smoke_record, tmp_path, k=2)
    c = v.comparison.set_index("metric")
    assert (c["rows"] == 2 * 4).all() and (c.loc[["true_class", "target_class"], "identical"] == 1.0).all()


def test_an_edited_number_is_caught_and_named(smoke_record, tmp_path):
    path = record.table_path(smoke_record, "main")
    rows = record.read_table(path)
    edit = rows.index[(rows["interpreter"] == "cam") & (rows["attack"] == "adv2") & (rows["position"] == 1)][0]
    rows.loc[edit, "l1_benign"] += 0.5
    record.write_table(rows, path)
    v = _verify(smoke_record, tmp_path)
    c = v.comparison.set_index("metric")
    assert c.loc["l1_benign", "identical"] == pytest.approx(11 / 12)
    assert c.loc["l1_benign", "max_diff"] == pytest.approx(0.5)
    assert "interpreter=cam" in c.loc["l1_benign", "where"] and "position=1" in c.loc["l1_benign", "where"]
    failures = v.failures(exact=True)
    assert any("l1_benign" in f and "position=1" in f for f in failures)
    assert (c.drop(index="l1_benign")["identical"] == 1.0).all()


def test_an_aggregate_outside_the_record_interval_fails_without_exact():
    recorded = pd.DataFrame({"experiment": "main", "victim": "resnet", "interpreter": "grad", "attack": "adv2",
                             "position": range(20), "index": range(20), "l1_benign": np.linspace(0.1, 0.2, 20)})
    recomputed = recorded.iloc[:5].assign(l1_benign=5.0)
    agg = verify.aggregates("main", recorded, recomputed)
    [row] = agg.to_dict("records")
    assert row["sampled"] == 5 and not row["inside"] and row["with_sample"] > row["hi"]
    v = verify.Verdict([verify.Sample("main", {}, 5, 20, 1.0)], verify.compare("main", recorded, recomputed), agg)
    assert len(v.failures()) == 1 and "outside the record's" in v.failures()[0]


def test_the_plan_shares_the_minutes_and_charges_untimed_experiments_the_dearest_cost(tmp_path):
    import json

    def table(name, n, seconds):
        rows = pd.DataFrame({"victim": "resnet", "position": range(n), "l1_benign": 0.1})
        if seconds is not None:
            rows["seconds"] = seconds
        record.write_table(rows, record.table_path(tmp_path, name))
        (tmp_path / f"{name}.json").write_text(json.dumps({"experiment": name, "request": {"victims": ["resnet"]}}))

    table("main", 100, 6.0)          # 6 s per image
    table("aid", 100, 1.0)
    table("transfer", 100, None)     # no attack time kept
    plan = {s.experiment: s for s in verify.plan(tmp_path, minutes=1.5)}     # 30 s each
    assert [s for s in plan] == ["main", "transfer", "aid"]
    assert (plan["main"].k, plan["aid"].k, plan["transfer"].k) == (5, 30, 5)
    assert all(s.k == s.n for s in verify.plan(tmp_path, everything=True))
    assert [s.experiment for s in verify.plan(tmp_path, minutes=1, only=["aid"])] == ["aid"]


def test_rows_on_other_inputs_and_run_settings_are_not_compared():
    recorded = pd.DataFrame({"victim": "resnet", "interpreter": "grad", "attack": "adv2", "position": [0, 1],
                             "index": [5, 6], "target_class": [1, 2], "threshold": 0.5, "l1_benign": [0.1, 0.2]})
    recomputed = recorded.assign(target_class=[1, 3], threshold=0.6, l1_benign=[0.1, 0.9])
    c = verify.compare("main", recorded, recomputed).set_index("metric")
    assert "threshold" not in c.index and c.loc["l1_benign", "rows"] == 1 and c.loc["l1_benign", "other_inputs"] == 1
    assert c.loc["l1_benign", "identical"] == 1.0
    assert verify.aggregates("main", recorded, recomputed)["inside"].all()
