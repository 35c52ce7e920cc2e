"""Run keys cover every input that sets the numbers: change one at a time and the rerun
recomputes; change nothing and it computes nothing (issue: results keyed by the data).

The experiment runs here are real (trained embedded ResNet, Fashion-MNIST images written to
a temporary ``FASHION_MNIST_DIR``) with the presets cut to a few steps so that each run takes
about a second; which batches a run computed is read from ``ExperimentResult.batches``.
"""
from __future__ import annotations

import dataclasses
import gzip
import shutil
import struct

import numpy as np
import pytest
import torch

from adv2lib import experiments, fingerprint, paths

N_SUBSET = 300


def _trained_resnet_available():
    from adv2lib.data import locate_fashion_mnist
    from adv2lib.models import victim_weights_path

    return victim_weights_path("resnet").is_file() and locate_fashion_mnist("test") is not None


pytestmark = pytest.mark.skipif(not _trained_resnet_available(),
                                reason="needs the trained embedded ResNet and Fashion-MNIST")


def write_idx(directory, images: np.ndarray, labels: np.ndarray, split="test") -> None:
    """Write ``images`` (N, 28, 28) uint8 and ``labels`` (N,) as gzipped IDX files."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = "t10k" if split == "test" else "train"
    with gzip.open(directory / f"{stem}-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">HBBIII", 0, 8, 3, *images.shape) + images.tobytes())
    with gzip.open(directory / f"{stem}-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">HBBI", 0, 8, 1, len(labels)) + labels.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def subset():
    from adv2lib.data import fashion_mnist

    test = fashion_mnist("test")
    return test.images[:N_SUBSET, 0].numpy().copy(), test.labels[:N_SUBSET].numpy().copy()


@pytest.fixture
def tiny_presets(monkeypatch):
    """The smoke presets with a handful of steps (the keys still hash the full config)."""
    real = experiments.preset_for

    def tiny(profile, name, smoke=False):
        cfg = real(profile, name, smoke=True)
        if name == "pgd":
            return dataclasses.replace(cfg, steps=4)
        return dataclasses.replace(cfg, warm_steps=2, steps=3)

    monkeypatch.setattr(experiments, "preset_for", tiny)
    return tiny


@pytest.fixture
def env(tmp_path, monkeypatch, subset, tiny_presets):
    """A Fashion-MNIST subset in FASHION_MNIST_DIR and a copy of the weights in ADV2_WEIGHTS_DIR."""
    images, labels = subset
    write_idx(tmp_path / "fm", images, labels)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "fm"))
    shutil.copytree(paths.weights_dir() / "embedded", tmp_path / "weights" / "embedded")
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path / "weights"))
    return tmp_path


def run(env, interpreters=("cam",), **kw):
    return experiments.run_main(victim="resnet", interpreters=interpreters, n_images=2, smoke=True, device="cpu",
                                batch_size=2, progress=False, results_dir=env / "store", **kw)


def numbers(result):
    cols = ["interpreter", "attack", "index", "target_class", "prediction", "confidence", "l1_benign"]
    return result.examples[cols].reset_index(drop=True)


def perturb_weights(path, scale=1e-3):
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in state:                      # RTS checkpoint: {"config", "state_dict"}
        target = state["state_dict"]
    else:
        target = state
    name = next(k for k, v in target.items() if v.is_floating_point() and v.numel() > 1)
    target[name] = target[name] + scale
    torch.save(state, path)


def test_unchanged_inputs_compute_nothing(env):
    first = run(env)
    assert first.batches == {"computed": 3, "loaded": 0}          # the shared PGD batch, CAM's maps, the CAM batch
    again = run(env)
    assert again.batches == {"computed": 0, "loaded": 3}
    assert numbers(again).equals(numbers(first))


def test_other_images_are_recomputed_and_match_a_fresh_store(env, subset, monkeypatch, tmp_path):
    first = run(env)
    images, labels = subset
    write_idx(tmp_path / "flipped", images[:, :, ::-1].copy(), labels)     # the left-right flip
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "flipped"))
    flipped = run(env)
    assert flipped.batches["computed"] == 3
    assert not numbers(flipped).equals(numbers(first))
    fresh = experiments.run_main(victim="resnet", interpreters=("cam",), n_images=2, smoke=True, device="cpu",
                                 batch_size=2, progress=False, results_dir=tmp_path / "fresh")
    assert numbers(flipped).equals(numbers(fresh))


def test_other_labels_are_recomputed(env, subset, monkeypatch, tmp_path):
    run(env)
    images, labels = subset
    write_idx(tmp_path / "relabelled", images, (labels + 1) % 10)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "relabelled"))
    assert run(env).batches["computed"] == 3


def test_other_victim_weights_are_recomputed(env):
    run(env)
    perturb_weights(env / "weights" / "embedded" / "resnet.pt")
    assert run(env).batches["computed"] == 3


def test_other_rts_weights_recompute_the_rts_batch_only(env):
    assert run(env, interpreters=("rts",)).batches["computed"] == 3
    perturb_weights(env / "weights" / "embedded" / "rts_resnet.pt")
    assert run(env, interpreters=("rts",)).batches == {"computed": 2, "loaded": 1}   # RTS maps and ADV2; PGD reused


def test_other_presets_are_recomputed(env, monkeypatch, tiny_presets):
    run(env)

    def other_adv2(profile, name, smoke=False):
        cfg = tiny_presets(profile, name, smoke)
        return cfg if name == "pgd" else dataclasses.replace(cfg, alpha=cfg.alpha / 2)

    monkeypatch.setattr(experiments, "preset_for", other_adv2)
    assert run(env).batches == {"computed": 1, "loaded": 2}                          # ADV2 only

    def other_pgd(profile, name, smoke=False):
        cfg = other_adv2(profile, name, smoke)
        return dataclasses.replace(cfg, steps=5) if name == "pgd" else cfg

    monkeypatch.setattr(experiments, "preset_for", other_pgd)
    assert run(env).batches["computed"] == 3     # the CAM rows hold the PGD examples' maps: all recomputed


def test_other_library_code_is_recomputed(env, monkeypatch):
    run(env)
    monkeypatch.setattr(fingerprint, "code", lambda package=None: "0123456789abcdef")
    assert run(env).batches["computed"] == 3


def test_code_fingerprint_follows_code_not_docstrings_or_presentation(tmp_path):
    pkg = tmp_path / "adv2lib"
    shutil.copytree(fingerprint.code_files()[0].parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    base = fingerprint.code(pkg)
    pgd = pkg / "attacks" / "pgd.py"
    source = pgd.read_text()
    pgd.write_text(source.replace('"""', '"""Edited docstring. ', 1) + "\n# a comment\n")
    assert fingerprint.code(pkg) == base
    for presentation in (pkg / "report" / "tables.py", pkg / "plotting.py"):   # a subpackage and a module
        presentation.write_text(presentation.read_text() + "\nX = 1\n")
        assert fingerprint.code(pkg) == base
    pgd.write_text(source + "\nEXTRA_CONSTANT = 2\n")
    assert fingerprint.code(pkg) != base


def test_book_stamps_follow_the_dataset(env, subset, monkeypatch, tmp_path):
    from adv2lib import runner

    scale = runner.Scale("embedded", smoke=True)
    intro = next(r for r in runner.declared_runs(scale) if r.name == "intro")
    key = runner.run_key(intro, scale)
    assert runner.run_key(intro, scale) == key
    images, labels = subset
    write_idx(tmp_path / "flipped", images[:, :, ::-1].copy(), labels)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "flipped"))
    assert runner.run_key(intro, scale) != key


def test_book_stamps_follow_the_imagenet_folder_and_weights(tmp_path, monkeypatch):
    from adv2lib import runner

    scale = runner.Scale("imagenet", smoke=True)
    intro = next(r for r in runner.declared_runs(scale) if r.name == "intro")
    for name in ("val", "imagenette"):
        (tmp_path / name / "0").mkdir(parents=True)
        (tmp_path / name / "0" / "a.png").write_bytes(b"x" * (3 if name == "val" else 4))
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("IMAGENET_VAL_DIR", str(tmp_path / "val"))
    key = runner.run_key(intro, scale)
    monkeypatch.setenv("IMAGENET_VAL_DIR", str(tmp_path / "imagenette"))
    other_folder = runner.run_key(intro, scale)
    (tmp_path / "weights" / "imagenet").mkdir(parents=True)
    (tmp_path / "weights" / "imagenet" / "resnet50.pth").write_bytes(b"local weights")
    local_weights = runner.run_key(intro, scale)
    assert len({key, other_folder, local_weights}) == 3


def _scratch_package(tmp_path):
    pkg = tmp_path / "adv2lib"
    shutil.copytree(fingerprint.code_files()[0].parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def test_code_files_are_the_import_closure_of_the_tasks_and_plans():
    """Issue 22: the key covers what the tasks import (module level or inside a function), found
    by following imports, not a hand-kept list: faithfulness.py (imported inside
    tasks.faithfulness_batch) is in; the report, the plots, the runner and the statistics are out."""
    pkg = fingerprint.code_files()[0].parent
    names = {p.relative_to(pkg).as_posix() for p in fingerprint.code_files()}
    assert {"tasks.py", "experiments.py", "faithfulness.py", "metrics.py", "targets.py", "attacks/adv2.py",
            "interpreters/mask.py", "interpreters/rts.py", "rows.py"} <= names
    assert not {n for n in names if n.startswith("report/")}
    assert not names & {"plotting.py", "runner.py", "cli.py", "stats.py", "chapters.py", "allocator.py"}


def test_editing_deletion_scores_recomputes_the_aid_rows_and_a_report_edit_does_not(tmp_path, monkeypatch):
    """Editing ``faithfulness.deletion_scores`` in a scratch copy of the package changes the code
    hash, so the AID experiment's stored deletion rows are recomputed; editing a report module
    changes nothing and reloads them."""
    from adv2lib import experiments

    if not (paths.weights_dir() / "embedded" / "rts_aid_resnet.pt").is_file():
        pytest.skip("needs the committed AID-hardened RTS")
    pkg = _scratch_package(tmp_path)
    base = fingerprint.code(pkg)
    report = pkg / "report" / "claims.py"
    report.write_text(report.read_text() + "\nNEW_BAR = 0.6\n")
    assert fingerprint.code(pkg) == base
    faith = pkg / "faithfulness.py"
    source = faith.read_text()
    assert "def deletion_scores(" in source
    faith.write_text(source.replace("def deletion_scores(", "def _unused():\n    return 1\n\n\ndef deletion_scores(", 1))
    edited = fingerprint.code(pkg)
    assert edited != base

    kwargs = dict(victim="resnet", n_images=2, smoke=True, results_dir=tmp_path / "results", progress=False,
                  factors=(1,), batch_size=2)
    monkeypatch.setattr(fingerprint, "code", lambda package=None: base)
    first = experiments.run_aid(**kwargs)
    assert first.batches["computed"] > 0
    assert experiments.run_aid(**kwargs).batches["computed"] == 0          # a report edit: all reloaded
    monkeypatch.setattr(fingerprint, "code", lambda package=None: edited)
    again = experiments.run_aid(**kwargs)
    assert again.batches["computed"] == first.batches["computed"]          # every AID batch, deletion rows included
    assert (again.examples["attack"] == "deletion").any()
