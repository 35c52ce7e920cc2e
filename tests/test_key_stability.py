"""The run keys of every experiment, pinned as they stood before experiments became plans of
batch tasks (issue 10): a refactor that changes how the work is organised must not change
what identifies a stored result, so existing stores stay valid.

The library-code hash is part of every key by design (a code change recomputes); it is held
fixed here so that what is pinned is everything else: experiment, victim, interpreter,
attack, seed, the data and weights hashes, the presets and the interpreters' settings. A
deliberate change to a key (e.g. ``EXPERIMENT_VERSION``) updates :data:`PINNED` in the same
commit and says so in its message.
"""
from __future__ import annotations

import pytest

from adv2lib import experiments, fingerprint
from test_keys import env, subset, tiny_presets  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not __import__("test_keys")._trained_resnet_available(),
                                reason="needs the trained embedded ResNet and Fashion-MNIST")

#: ``<experiment>/<profile>/<victim>/<interpreter>/<attack>/seed<seed>-<params hash>`` of every
#: run the five experiments store for the setup below (computed at commit 71414bd).
PINNED = sorted("""
budget/embedded/resnet/cam/adv2/seed0-14cc31d40e50
budget/embedded/resnet/cam/adv2/seed0-3f8c71b08c11
budget/embedded/resnet/cam/pgd/seed0-3746d2693ab7
budget/embedded/resnet/grad/adv2/seed0-4904ee08b30e
budget/embedded/resnet/grad/adv2/seed0-d3afb40f0f82
budget/embedded/resnet/grad/pgd/seed0-15894dd5ac22
budget/embedded/resnet/mask/adv2/seed0-7e7f1d9840a1
budget/embedded/resnet/mask/adv2/seed0-b0914d0a0d6e
budget/embedded/resnet/mask/pgd/seed0-5b6d6c038739
budget/embedded/resnet/rts/adv2/seed0-1f845199c366
budget/embedded/resnet/rts/adv2/seed0-300dab23b97d
budget/embedded/resnet/rts/pgd/seed0-41e950b80db2
main/embedded/resnet/cam/adv2/seed0-849e1b5d9962
main/embedded/resnet/grad/adv2/seed0-6d3880f90a8c
main/embedded/resnet/mask/adv2/seed0-0ab89ff595b6
main/embedded/resnet/rts/adv2/seed0-f48def1fa9db
patch/embedded/resnet/cam/adv2/seed0-e44d9ec9eed0
patch/embedded/resnet/grad/adv2/seed0-fd2a6b32c425
patch/embedded/resnet/mask/adv2/seed0-2ad8dadac19d
patch/embedded/resnet/rts/adv2/seed0-cae14bda1283
pgd/embedded/resnet/none/pgd/seed0-832a4d0543b9
random_class/embedded/resnet/cam/adv2/seed0-9ef5c40882ae
random_class/embedded/resnet/grad/adv2/seed0-4ea302736fd9
random_class/embedded/resnet/mask/adv2/seed0-8a5023b998f2
random_class/embedded/resnet/rts/adv2/seed0-8e31a1269266
transfer/embedded/resnet/cam/transfer/seed0-4fd12bdb806b
transfer/embedded/resnet/grad/transfer/seed0-dc84365f74bf
transfer/embedded/resnet/mask/transfer/seed0-2e8aeb760ed0
transfer/embedded/resnet/rts/transfer/seed0-b10a5091c29e
""".split())


def stored_runs(root) -> list[str]:
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("manifest.json"))


def test_run_keys_are_unchanged(env, monkeypatch):  # noqa: F811
    monkeypatch.setattr(fingerprint, "code", lambda package=None: "pinned-library-code")
    store = env / "store"
    common = dict(profile="embedded", victim="resnet", n_images=2, seed=0, smoke=True, device="cpu",
                  results_dir=store, batch_size=1, progress=False)
    for name, run in experiments.EXPERIMENTS.items():
        kwargs = {"factors": (1, 2)} if name == "budget" else {}
        run(interpreters=experiments.INTERPRETERS, **common, **kwargs)
    assert stored_runs(store) == PINNED
