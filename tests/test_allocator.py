"""The faster allocator (adv2lib.allocator): chosen as documented, really loaded, and the
attacks' numbers bit-identical with and without it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adv2lib import allocator

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD and glibc tunables are Linux's")


def test_tcmalloc_is_preloaded_before_what_was_there():
    env = allocator.fast_env({"LD_PRELOAD": "/opt/other.so"}, tcmalloc="/lib/libtcmalloc_minimal.so.4")
    assert env == {allocator.ENV: "tcmalloc", "LD_PRELOAD": "/lib/libtcmalloc_minimal.so.4:/opt/other.so"}


def test_without_tcmalloc_glibc_keeps_blocks_up_to_32_mib_on_the_heap():
    env = allocator.fast_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, tcmalloc=None)
    assert env[allocator.ENV] == "glibc"
    assert env["GLIBC_TUNABLES"].startswith("glibc.malloc.arena_max=2:")
    assert "glibc.malloc.mmap_threshold=33554432" in env["GLIBC_TUNABLES"]   # glibc ignores larger values
    assert "LD_PRELOAD" not in env


@pytest.mark.parametrize("environ, expected", [
    ({allocator.ENV: "system"}, {}),                                  # the user's opt-out
    ({allocator.ENV: "tcmalloc"}, {}),                                # already re-executed: no loop
    ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, {allocator.ENV: "preloaded"}),
])
def test_nothing_to_change(environ, expected):
    assert allocator.fast_env(environ, tcmalloc="/lib/libtcmalloc_minimal.so.4") == expected


def _info(env) -> dict:
    out = subprocess.run([sys.executable, "-m", "adv2lib", "info"], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def _clean_env(**extra) -> dict:
    return {**allocator.without(), **extra}


def test_the_command_line_restarts_itself_with_the_allocator():
    expected = "tcmalloc" if allocator.find_tcmalloc() else "glibc tunables"
    assert _info(_clean_env())["allocator"].startswith(expected)
    assert _info(_clean_env(**{allocator.ENV: "system"}))["allocator"].startswith("C library defaults")


def test_an_unknown_setting_is_refused_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "adv2lib", "info"], env=_clean_env(**{allocator.ENV: "fast"}),
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "adv2lib: error: ADV2_ALLOCATOR='fast' is not understood: set it to 'system' to keep the C library's "
        "allocator, or unset it"]


def test_a_claimed_but_missing_tcmalloc_is_not_reported():
    info = _info(_clean_env(**{allocator.ENV: "tcmalloc"}))     # claimed, but nothing preloaded
    assert info["allocator"] == "C library defaults (ADV2_ALLOCATOR=tcmalloc)"


_ATTACK = r"""
import sys, torch
from adv2lib.allocator import ENV
from adv2lib.attacks import ADV2, PGD, preset_for
from adv2lib.interpreters import build_interpreter
from adv2lib.models import load_victim
torch.manual_seed(0)
torch.set_num_threads(1)
maps = open("/proc/self/maps").read()
victim = load_victim("resnet", device="cpu")
x = torch.rand(6, 1, 28, 28)
ct = torch.tensor([1, 2, 3, 4, 5, 6])
out = {"tcmalloc_loaded": "tcmalloc" in maps}
out["pgd"] = PGD(victim, config=preset_for("embedded", "pgd", smoke=True)).attack(x, ct).x_adv
for name in ("grad", "cam"):
    attack = ADV2(victim, build_interpreter(name, victim), config=preset_for("embedded", name, smoke=True))
    out[name] = attack.attack(x, ct).x_adv
torch.save(out, sys.argv[1])
"""


def test_attacks_are_bit_identical_with_the_faster_allocator(tmp_path):
    results = {}
    for label, env in (("system", _clean_env(**{allocator.ENV: "system"})),
                       ("fast", _clean_env(**allocator.fast_env(_clean_env())))):
        path = tmp_path / f"{label}.pt"
        subprocess.run([sys.executable, "-c", _ATTACK, str(path)], env=env, cwd=ROOT, check=True)
        results[label] = torch.load(path)
    assert not results["system"]["tcmalloc_loaded"]
    assert results["fast"]["tcmalloc_loaded"] == bool(allocator.find_tcmalloc())
    for name in ("pgd", "grad", "cam"):
        assert torch.equal(results["system"][name], results["fast"][name]), name
