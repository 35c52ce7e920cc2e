"""Studies (adv2lib/studies): experiments keyed by their own code, so that adding or editing one
leaves the core experiments' keys (and the record's tables) as they are; and the cross-model
transfer study, checked against the victim's own predictions."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from adv2lib import experiments, fingerprint, record, studies
from adv2lib.errors import ConfigError
from adv2lib.studies import cross_model


def test_a_study_has_its_own_code_key_and_the_core_key_ignores_it(tmp_path):
    package = tmp_path / "adv2lib"
    shutil.copytree(fingerprint.code_files()[0].parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    core, study = fingerprint.code(package), studies.code("cross_model", package)
    assert package / "studies" / "cross_model.py" not in fingerprint.code_files(package)
    assert package / "experiments.py" in studies.code_files("cross_model", package)   # the core is in the study's
    target = package / "studies" / "cross_model.py"
    target.write_text(target.read_text().replace("prob.argmax(1)", "prob.argmax(dim=1)"))
    assert fingerprint.code(package) == core and studies.code("cross_model", package) != study
    (package / "metrics.py").write_text((package / "metrics.py").read_text() + "\nCHANGED = 1\n")
    assert fingerprint.code(package) != core and studies.code("cross_model", package) != study
    # registering another study leaves this one's key as it is
    registry = package / "studies" / "__init__.py"
    before = studies.code("cross_model", package)
    registry.write_text(registry.read_text().replace('STUDIES = {', 'STUDIES = {"another": "another", '))
    assert studies.code("cross_model", package) == before
    assert "study_code" in record.inputs("embedded", "cross_model")
    assert "study_code" not in record.inputs("embedded", "main")


def test_cross_model_rows_are_the_fed_victims_predictions_and_maps(tmp_path):
    kwargs = dict(profile="embedded", interpreters=("grad", "cam"), n_images=3, smoke=True, device="cpu",
                  results_dir=str(tmp_path), progress=False, engine="serial")
    result = cross_model.run_cross_model(victim="densenet", **kwargs)
    rows = result.examples
    assert len(rows) == 2 * 2 * 3 and set(rows["victim"]) == {"densenet"} and set(rows["source_victim"]) == {"resnet"}
    assert set(rows["attack"]) == {"pgd", "adv2"} and rows["l1_benign"].notna().all()
    # the source's inputs, fed to DenseNet by hand
    main = experiments.run_main(victim="resnet", **kwargs)
    spec = experiments.ExperimentSpec.make("main", "embedded", "resnet", ("grad", "cam"), 3, 0, True, "cpu",
                                           str(tmp_path), None, False)
    src = experiments.prepare(spec, "serial")
    _, tensors = src.store.load_run(experiments._main_key(src, "cam"))
    densenet = experiments.prepare(experiments.ExperimentSpec(**{**spec.__dict__, "victim": "densenet"}), "serial")
    with torch.no_grad():
        predicted = densenet.local.victim(tensors["x_adv"]).argmax(1).numpy()
    cam = rows[(rows["interpreter"] == "cam") & (rows["attack"] == "adv2")].sort_values("position")
    assert (cam["prediction"].to_numpy() == predicted).all()
    assert (cam["success"].to_numpy() == (predicted == cam["target_class"].to_numpy())).all()
    source = main.examples[(main.examples["interpreter"] == "cam") & (main.examples["attack"] == "adv2")]
    assert (cam["source_success"].to_numpy() == source.sort_values("position")["success"].to_numpy()).all()


# ------------------------------------------------------------------ the official-budget study
def test_official_budget_runs_the_preset_and_shares_of_the_official_counts(tmp_path):
    from adv2lib.attacks import preset_for
    from adv2lib.report import official_budget as report
    from adv2lib.studies import official_budget

    cfg = official_budget.official_config(preset_for("embedded", "rts"), "rts", 0.5)
    assert cfg.steps == 600 and cfg.lambda_start == preset_for("embedded", "rts").lambda_start
    result = official_budget.run_official_budget(victim="resnet", interpreters=("grad", "mask"), n_images=2,
                                                 smoke=True, device="cpu", results_dir=str(tmp_path), batch_size=1,
                                                 progress=False, engine="serial", fractions=(0.005, 0.01),
                                                 mask_images=1)
    rows = result.examples
    adv = rows[rows["attack"] == "adv2"]
    smoke = {i: preset_for("embedded", i, smoke=True).steps for i in ("grad", "mask")}
    for i, k in (("grad", 2), ("mask", 1)):                      # MASK on its first batch only
        mine = adv[adv["interpreter"] == i]
        assert mine.groupby("stage2_steps")["position"].nunique().eq(k).all()
        steps = sorted(mine["stage2_steps"].unique())
        assert smoke[i] in steps and len(steps) == 3
        assert (mine["budget"] == mine["stage2_steps"] / smoke[i]).all()
    # PGD once per interpreter and image, beside the preset's run
    pgd = rows[rows["attack"] == "pgd"]
    assert len(pgd) == 3 and (pgd["stage2_steps"] == pgd["interpreter"].map(smoke)).all()
    # the tests take the largest share run, paired with PGD on the same images
    top = report.at_official(rows)
    assert report.top_share(rows) == 0.01           # MASK's; the smoke GRAD preset is longer than its 1%
    assert set(top[top["attack"] == "adv2"]["position"]) <= {0, 1} and "stage2_steps" not in top
    assert len(top[(top["attack"] == "adv2") & (top["interpreter"] == "grad")]) == 2
    tests = report.claim_tests(rows)
    assert set(tests["claim"]) == {"l1", "iou"} and set(tests["interpreter"]) == {"grad", "mask"}
    assert report.claim_line(rows, "l1").startswith("At no less than 1% of the paper's iteration counts")


# ------------------------------------------------------------------ the ensemble designs study
def test_ensemble_designs_recompute_the_primary_and_score_out_of_fold(tmp_path):
    from adv2lib.report import designs as report
    from adv2lib.studies import ensemble_designs

    kwargs = dict(victim="resnet", interpreters=("grad", "cam", "rts"), n_images=2, smoke=True, device="cpu",
                  results_dir=str(tmp_path), progress=False, engine="serial", adaptive_images=2, calibration_images=8)
    rows = ensemble_designs.run_ensemble_designs(**kwargs).examples
    record = experiments.run_ensemble(**kwargs).examples
    primary = record[(record["kind"] == "detection") & (record["ensemble"] == "all")
                     & (record["score_kind"] == "distance") & (record["split"] == "evaluation")]
    mine = rows[(rows["kind"] == "detection") & (rows["members"] == "grad+cam+rts") & (rows["score_kind"] == "distance")]
    assert mine["score"].to_numpy() == pytest.approx(primary["score"].to_numpy())
    assert mine["threshold"].iloc[0] == pytest.approx(primary["threshold"].iloc[0])
    found = set(report.designs(rows))
    assert {("grad+cam", "distance"), ("grad+cam+rts", "max_pair"), ("grad+cam+rts", "logistic")} <= found
    assert len(found) == 2 + 3 + 1                # distance, max pair, 3 pairs (= without one), logistic
    det = rows[rows["kind"] == "detection"]
    assert not det.duplicated(["members", "score_kind", "attack", "source_interpreter", "position"]).any()
    # the why rows: a pair's distance, and each member's distance to the mean of the others
    pair = rows[(rows["score_kind"] == "pair") & (rows["members"] == "grad+cam")]
    assert len(pair) == len(mine) and (pair["score"] >= 0).all()
    assert set(rows[rows["score_kind"] == "member"]["interpreter"]) == {"grad", "cam", "rts"}


def test_the_learned_combiner_is_thresholded_on_the_calibration_images():
    from adv2lib.studies import ensemble_designs

    rng = np.random.default_rng(0)
    clean, attack = rng.normal(0, 1, (200, 3)), rng.normal(2, 1, (200, 3))
    calibration = rng.normal(0, 1, (500, 3))
    scores, threshold = ensemble_designs.logistic_scores(clean, attack, {"clean": clean, "attack": attack},
                                                         calibration)
    assert (scores["attack"] > threshold).mean() > 0.8 and (scores["clean"] > threshold).mean() < 0.1


def test_toward_estimates_sign_a_map_that_moves_toward_the_others():
    from adv2lib.report import designs as report

    n = 30
    rng = np.random.default_rng(1)

    def member(attack, source, interpreter, values):
        return pd.DataFrame({"victim": "resnet", "kind": None, "score_kind": "member", "attack": attack,
                             "source_interpreter": source, "interpreter": interpreter, "position": range(n),
                             "success": True, "score": values})

    rows = pd.concat([member("clean", None, "cam", 0.4 + rng.normal(0, 0.01, n)),
                      member("adv2", "cam", "cam", 0.2 + rng.normal(0, 0.01, n)),
                      member("pgd", None, "cam", 0.5 + rng.normal(0, 0.01, n))], ignore_index=True)
    est = report.toward_estimates(rows).set_index("change")
    assert est.loc["attacked", "estimate"] == pytest.approx(-0.2, abs=0.02) and est.loc["attacked", "hi"] < 0
    assert est.loc["pgd", "lo"] > 0
    assert report.toward_line(rows) == ("ResNet: ADV2 against it moves the map (toward the others: CAM); PGD moves "
                                        "the map (away from them: CAM).")


# ------------------------------------------------------------------ the AID premise study
def test_aid_premise_rows_are_rts_objective_per_image_with_a_seeded_draw(tmp_path):
    from adv2lib.interpreters.rts_aid import AIDConfig
    from adv2lib.interpreters.rts_train import saliency_loss
    from adv2lib.report import designs as report
    from adv2lib.studies import aid_premise

    rows = aid_premise.run_aid_premise(victim="resnet", n_images=2, smoke=True, device="cpu",
                                       results_dir=str(tmp_path), progress=False, engine="serial").examples
    assert len(rows) == 2 * 4 * 2 and set(rows["rts"]) == {"original", "AID"}
    assert set(rows["attack"]) == {"clean", "pgd", "adv2"}
    # the clean image 0 under the original RTS, by hand
    spec = experiments.ExperimentSpec.make("aid", "embedded", "resnet", ("rts",), 2, 0, True, "cpu", str(tmp_path),
                                           None, False)
    drv = experiments.prepare(spec, "serial")
    rts = drv.local.interpreter("rts")
    x, y = drv.x[:1], drv.y[:1]
    generator = torch.Generator().manual_seed(int(drv.indices[0]))
    with torch.no_grad():
        mask = rts.net(rts.encoder.pyramid(x), y)
        expected = saliency_loss(drv.local.victim, x, y, mask, torch.ones(1, dtype=torch.bool), AIDConfig().rts,
                                 generator)["loss"].item()
    row = rows[(rows["attack"] == "clean") & (rows["rts"] == "original") & (rows["position"] == 0)]
    assert row["rts_loss"].iloc[0] == pytest.approx(expected, rel=1e-5)
    tests = report.premise_tests(rows)
    assert list(tests["victim"]) == ["resnet"] and tests["bar"].iloc[0] == 0.0


# ------------------------------------------------------------------ the AID variants study
def test_aid_variants_train_each_network_and_attack_it(tmp_path, monkeypatch):
    from adv2lib.report import designs as report
    from adv2lib.report.files import Table
    from adv2lib.studies import aid_variants

    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    assert aid_variants.variant_config("longer", 1).steps == 1200 and aid_variants.variant_config("longer", 1).seed == 1
    kwargs = dict(victim="resnet", n_images=2, smoke=True, device="cpu", results_dir=str(tmp_path), progress=False,
                  engine="serial", eval_images=8)
    result = aid_variants.run_aid_variants(variants=("preset", "longer"), seeds=(0, 1), **kwargs)
    rows = result.examples
    networks = rows.groupby(["variant", "train_seed"]).ngroups
    assert networks == 4 and set(rows["attack"]) == {"adv2", "pgd"} and set(rows["rts"]) == {"AID"}
    assert set(result.config["training"]) == {"preset seed 1", "longer seed 0", "longer seed 1"}
    # two seeds train two networks: their maps of the same PGD inputs differ
    pgd = rows[(rows["attack"] == "pgd") & (rows["variant"] == "longer")]
    assert pgd.groupby("train_seed")["l1_benign"].sum().nunique() == 2
    # the tests set each network beside the original RTS of the AID experiment (same images)
    aid = experiments.run_aid(victim="resnet", n_images=2, smoke=True, device="cpu", results_dir=str(tmp_path),
                              progress=False, engine="serial").examples
    tests = report.variant_tests(rows, aid)
    assert len(tests) == 4 and set(tests["bar"]) == {0.1}
    assert report.variant_line(rows, aid).startswith("4 hardened networks")
    table = Table("aid_variants", rows, {"config": {"resnet": result.config}})
    shown = report.training_table(table).data
    assert len(shown) == 3 and set(shown["tie term at the end"]) == {"–"}


def test_aid_variants_refuse_an_unknown_variant_or_seed_before_anything_runs(tmp_path):
    from adv2lib.studies import aid_variants

    assert aid_variants.variant_config("selector", 0).train_selector
    assert aid_variants.variant_config("distill", 1).tie_weight == aid_variants.TIE_WEIGHT > 0
    for bad in (dict(variants=("preset", "longest")), dict(seeds=()), dict(seeds=(0.5,))):
        with pytest.raises(ConfigError):
            aid_variants.run_aid_variants(victim="resnet", n_images=2, smoke=True, device="cpu",
                                          results_dir=str(tmp_path), progress=False, engine="serial", **bad)
    assert not any(tmp_path.iterdir())
