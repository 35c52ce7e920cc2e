"""Studies (adv2lib/studies): experiments keyed by their own code, so that adding or editing one
leaves the core experiments' keys (and the record's tables) as they are; and the cross-model
transfer study, checked against the victim's own predictions."""
from __future__ import annotations

import shutil

import pandas as pd
import torch

from adv2lib import experiments, fingerprint, record, studies
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
