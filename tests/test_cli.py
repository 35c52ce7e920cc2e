"""The command line on bad input: every library error is one line with the remedy, exit 2,
before any work (no result directory left behind); ``--debug`` shows the traceback; Ctrl-C
says how to resume and exits 130."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from adv2lib import cli, paths


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ADV2_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "results"


def fails_with(capsys, argv, match):
    """Run the CLI in-process; assert exit 2 and one stderr line matching ``match``."""
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("adv2lib: error: ")
    assert match in err, err
    return err


@pytest.mark.parametrize("argv, match", [
    (["experiment", "main", "--n-images", "0"], "n_images must be a positive integer, got 0 (--n-images)"),
    (["experiment", "main", "--n-images", "-3"], "got -3 (--n-images)"),
    (["experiment", "main", "--batch-size", "0"], "batch_size must be a positive integer, got 0 (--batch-size)"),
    (["experiment", "main", "--batch-size", "-1"], "got -1 (--batch-size)"),
    (["experiment", "main", "--seed", "-1"], "seed must be a non-negative integer"),
    (["experiment", "main", "--interpreters", "grad", "lime"], "unknown interpreter(s) 'lime'"),
    (["experiment", "main", "--device", "tpu"], "unknown device 'tpu'"),
    (["book", "--n-images", "0", "--no-build"], "n_images must be a positive integer, got 0"),
    (["book", "--only", "nope", "--no-build"], "unknown notebook(s) nope"),
])
def test_bad_options_fail_before_any_work(capsys, store, argv, match):
    fails_with(capsys, argv, match)
    assert not store.exists(), "nothing may be written before the input is checked"


def test_missing_rts_weights_of_the_second_victim_stop_the_command_before_any_attack(capsys, store, tmp_path,
                                                                                     monkeypatch):
    weights = tmp_path / "weights"
    shutil.copytree(paths.weights_dir() / "embedded", weights / "embedded")
    (weights / "embedded" / "rts_densenet.pt").unlink()
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(weights))
    fails_with(capsys, ["experiment", "main", "--victim", "all", "--smoke", "--interpreters", "cam", "rts"],
               "train-rts densenet")
    assert not store.exists()


def test_imagenet_checks_the_data_before_the_weights(capsys, store, tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGENET_VAL_DIR", raising=False)
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(tmp_path / "no-weights"))   # nothing local: would download
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    fails_with(capsys, ["experiment", "main", "--profile", "imagenet", "--smoke"], "IMAGENET_VAL_DIR is not set")
    assert not (tmp_path / "torch-home").exists()


def test_debug_shows_the_traceback(store):
    from adv2lib.errors import ConfigError

    with pytest.raises(ConfigError, match="n_images"):
        cli.main(["--debug", "experiment", "main", "--n-images", "0"])
    with pytest.raises(ConfigError, match="n_images"):
        cli.main(["experiment", "main", "--n-images", "0", "--debug"])


def test_ctrl_c_says_how_to_resume_and_exits_130(capsys, monkeypatch, store):
    from adv2lib import experiments

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "preflight", lambda *a, **k: None)
    monkeypatch.setitem(experiments.EXPERIMENTS, "main", interrupted)
    assert cli.main(["experiment", "main", "--smoke"]) == 130
    err = capsys.readouterr().err
    assert "rerun the same command to resume from the last stored batch" in err


def test_the_real_command_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "adv2lib", "experiment", "main", "--n-images", "0"],
                          capture_output=True, text=True, cwd=paths.root(),
                          env={"PATH": "/usr/bin:/bin", "ADV2_RESULTS_DIR": str(tmp_path / "r")})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["adv2lib: error: n_images must be a positive integer, got 0 "
                                                "(--n-images)"]
