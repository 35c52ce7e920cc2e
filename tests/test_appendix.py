"""The Artifact Appendix (adv2lib/report/appendix.py): generated from the chapter plan, the claims
and the record."""
from __future__ import annotations

import json

from adv2lib import chapters, record
from adv2lib.report import appendix
from adv2lib.report.claims import CLAIM_RULES
from test_record import _chapter, fake_main  # noqa: F401 - the fixture


def _frame(styler):
    return styler.data


def test_every_judged_claim_and_every_experiment_is_listed(fake_main):  # noqa: F811
    _chapter()
    record.write_manifest("embedded", True)
    claims, text = appendix.claims_table("embedded", True)
    c = _frame(claims)
    judged = [r for r in CLAIM_RULES if r.experiment]
    assert list(c["claim"]) == [f"C{i}" for i in range(1, len(judged) + 1)]
    main_claims = c[c["experiment"].str.endswith("(main)")]
    assert len(main_claims) and (main_claims["verdict of the record"] != "not tested").all()
    assert (c[~c["experiment"].str.endswith("(main)")]["verdict of the record"] == "not tested").all()
    assert "ISIC" in text or "isic" in text.lower()
    experiments, _ = appendix.experiments_table("embedded", True)
    e = _frame(experiments)
    planned = [ch.experiment for ch in chapters.PLAN if ch.experiment]
    assert list(e["experiment"]) == [f"E{i}" for i in range(1, len(planned) + 1)]
    row = e[e["chapter"] == "01_adv2_vs_pgd"].iloc[0]
    assert row["command"] == "python -m adv2lib experiment main --victim all --engine ray"
    assert row["attack wall h"] > 0 and row["record MB"] > 0 and "C1" in row["expected result"]


def test_requirements_version_and_kept_verification_runs(fake_main):  # noqa: F811
    _chapter()
    record.write_manifest("embedded", True)
    req = _frame(appendix.requirements_table("embedded", True)[0])
    assert "t10k-images-idx3-ubyte.gz" in req.set_index("what").loc["data", "value"]
    version = _frame(appendix.version_table("embedded", True)[0]).set_index("")["value"]
    assert version["numeric code hash (the experiments' keys)"] == record.inputs("embedded")["code"]
    assert appendix.tolerance_table("embedded", True)[0] is None
    kept = record.scale_dir("embedded", True) / "verify" / "basic.json"
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps({"label": "2 threads, serial", "configuration": {"engine": "serial", "threads": 2},
                                "seconds": 12.0, "last_line": "reproduced: ...",
                                "table": [{"experiment": "main", "unit": "resnet cam, batch 1 (images 2-3)",
                                           "images": "2 of 4", "rows": 24, "identical values": 1.0,
                                           "largest difference": "none", "aggregates": 40, "outside interval": 0,
                                           "record seconds": 14.0, "seconds": 11.0},
                                          {"experiment": "aid", "unit": "not sampled: ...", "images": "0",
                                           "rows": 0, "identical values": None, "largest difference": "",
                                           "aggregates": 0, "outside interval": 0, "seconds": 0.0}]}))
    table = _frame(appendix.tolerance_table("embedded", True)[0])
    assert table.iloc[0]["configuration"] == "2 threads, serial" and table.iloc[0]["identical values"] == 1.0
    assert table.iloc[0]["batch"] == "resnet cam, batch 1 (images 2-3)" and len(table) == 2
    basic = appendix.basic_test("embedded", True)
    assert "1 batches (resnet cam, batch 1 (images 2-3)), 24 rows, 100.00%" in basic and "0 of 40" in basic
    assert version["released (CITATION.cff)"] == "2026-12-03" and version["repository"].startswith("https://")
