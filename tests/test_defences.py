"""The paper's second half (issue 12): the ensemble detector's threshold rule and scores, the
adaptive ADV2's invariants, AID's determinism, and the three experiments end to end (smoke)."""
from __future__ import annotations

import copy
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from adv2lib import ensemble as ens
from adv2lib import paths
from adv2lib.attacks import preset_for
from adv2lib.attacks.config import scale_eps
from adv2lib.attacks.ensemble import EnsembleADV2
from adv2lib.errors import ConfigError
from adv2lib.interpreters import CAM, GRAD, MASK, RTS

from test_attacks import batch, victim  # noqa: E402,F401  (fixtures)

EPS = 0.1


# --------------------------------------------------------------------------- the detector

@pytest.mark.parametrize("n", [1, 7, 20, 99, 100, 101, 1000])
@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.2])
def test_threshold_gives_at_most_the_false_positive_rate_on_its_own_scores(n, fpr):
    rng = np.random.default_rng(n)
    for scores in (rng.normal(size=n), rng.integers(0, 4, size=n).astype(float)):   # with and without ties
        t = ens.threshold_at_fpr(scores, fpr)
        assert (scores > t).mean() <= fpr + 1e-12
        assert t in scores                                   # an observed score
        lower = scores[scores < t]
        if lower.size:                                       # the smallest such: any lower one flags too many
            assert (scores > lower.max()).mean() > fpr


def test_threshold_refuses_what_it_cannot_use():
    with pytest.raises(ConfigError):
        ens.threshold_at_fpr([], 0.05)
    with pytest.raises(ConfigError):
        ens.threshold_at_fpr([0.1, float("nan")], 0.05)
    with pytest.raises(ConfigError):
        ens.threshold_at_fpr([0.1, 0.2], 1.0)


def test_disagreement_is_zero_for_agreeing_maps_and_grows_with_disagreement():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(6, 1, 14, 14, generator=g)
    same = {"a": base, "b": base.clone() * 3 + 1, "c": torch.nn.functional.avg_pool2d(base, 2)}
    # min-max normalisation removes scale and offset; the 7x7 map is upsampled back to 14x14
    for score in ens.SCORES:
        s = ens.disagreement({"a": base, "b": same["b"]}, score)
        assert s.shape == (6,) and s.abs().max() < 1e-6
        other = {"a": base, "b": torch.rand(6, 1, 14, 14, generator=g)}
        assert (ens.disagreement(other, score) > 0.05).all()
    stack = ens.common_maps(same)
    assert stack.shape == (6, 3, 196) and stack.min() >= 0 and stack.max() <= 1
    with pytest.raises(ConfigError):
        ens.disagreement({"a": base}, "distance")
    with pytest.raises(ConfigError):
        ens.disagreement(same, "entropy")


def test_roc_and_detection_rate():
    out = ens.roc([0.1, 0.2, 0.3], [0.4, 0.5])
    assert out["auc"] == pytest.approx(1.0)
    assert ens.roc([0.4, 0.5], [0.1, 0.2])["auc"] == pytest.approx(0.0)
    assert ens.detection_rate([0.1, 0.5, 0.9], 0.5) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- adaptive ADV2

class _Counting:
    """Wraps an interpreter and counts the attack_terms calls (one term per member per step)."""

    def __init__(self, interp):
        self.interp, self.calls = interp, 0
        orig = interp.attack_terms

        def counted(x, target):
            self.calls += 1
            return orig(x, target)

        interp.attack_terms = counted


def test_adaptive_attack_stays_in_the_ball_and_takes_one_term_per_interpreter(victim, batch):
    x, y = batch
    ct = (y + 1) % 10
    members = [CAM(victim), GRAD(victim)]
    counters = [_Counting(m) for m in members]
    cfgs = {m.name: preset_for("embedded", m.name, smoke=True, eps=EPS, alpha=EPS / 13) for m in members}
    attack = EnsembleADV2(victim, members, configs=cfgs, steps=6, check_every=2)
    res = attack.attack(x, ct, true_class=y)
    assert res.x_adv.shape == x.shape
    assert (res.x_adv - x).abs().max().item() <= EPS + 1e-6
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    # every stage-2 step asks each member once for its term (frozen examples leave the batch)
    assert counters[0].calls == counters[1].calls and 1 <= counters[0].calls <= 6
    assert set(res.probes) == {"map_cam", "map_grad", "target_maps"}
    for m in members:
        assert torch.allclose(res.probes[f"map_{m.name}"], m(res.x_adv, ct), atol=1e-5)
    # each member's lambda is read at the same fraction of its own schedule
    assert attack.lambda_at("grad", 0) == cfgs["grad"].lambda_at(0)
    assert attack.lambda_at("grad", 5) == cfgs["grad"].lambda_at(cfgs["grad"].steps - 1)


def test_a_zero_weight_removes_a_members_term(fmnist_batch):
    from adv2lib.models import load_victim

    victim = load_victim("resnet")          # trained: the attack reaches the targets and selects by the maps
    x, y = fmnist_batch
    ct = (y + 1) % 10
    cam, grad = CAM(victim), GRAD(victim)
    cfg = {n: preset_for("embedded", n, smoke=True, min_confidence=None) for n in ("cam", "grad")}
    runs = [EnsembleADV2(victim, [cam, grad], configs=cfg, weights={"grad": w}, steps=6, check_every=1)
            .attack(x, ct, true_class=y) for w in (0.0, 1.0)]
    assert all(r.success.all() for r in runs)
    assert not torch.equal(runs[0].x_adv, runs[1].x_adv)


def test_adaptive_attack_refuses_mask_and_duplicates(victim):
    with pytest.raises(ConfigError, match="bilevel"):
        EnsembleADV2(victim, [CAM(victim), MASK(victim)])
    with pytest.raises(ConfigError, match="once"):
        EnsembleADV2(victim, [CAM(victim), CAM(victim)])
    with pytest.raises(ConfigError, match="two"):
        EnsembleADV2(victim, [CAM(victim)])


def test_scale_eps_keeps_the_step_ratio():
    for name in ("pgd", "cam", "mask"):
        cfg = preset_for("embedded", name)
        small = scale_eps(cfg, 4 / 255)
        assert small.eps == pytest.approx(4 / 255)
        assert small.eps / small.alpha == pytest.approx(cfg.eps / cfg.alpha)
    with pytest.raises(ConfigError):
        scale_eps(preset_for("embedded", "cam"), 0)


# --------------------------------------------------------------------------- AID

def _tiny_aid(seed=0):
    from adv2lib.interpreters.rts_aid import AIDConfig

    return AIDConfig(steps=3, batch_size=8, pool_size=8, refresh_every=2, refresh_size=4, attack_warm_steps=2,
                     attack_steps=2, checkpoint_every=10, seed=seed)


def test_aid_training_is_deterministic_under_its_seed(tmp_path, monkeypatch):
    from adv2lib.data import fashion_mnist
    from adv2lib.interpreters.rts_aid import train_aid
    from adv2lib.models import load_victim

    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    test = fashion_mnist("test")
    runs = [train_aid("resnet", _tiny_aid(seed), train_set=test, test_set=test, device="cpu", write=False,
                      progress=False, eval_images=20, resume=False) for seed in (0, 0, 1)]
    a, b, c = (r["state_dict"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    base = RTS(load_victim("resnet")).net
    changed = [k for k in a if not torch.equal(a[k].cpu(), base.state_dict()[k].cpu())]
    assert changed and not any(k.startswith("selector.") for k in changed)    # only the decoder moves
    assert runs[0]["pool_refreshes"][0]["step"] == 0 and len(runs[0]["pool_refreshes"]) == 2


def test_aid_readings_train_the_selector_and_tie_adversarial_masks_to_their_clean_sources(tmp_path, monkeypatch):
    """The two readings beside the default: ``train_selector`` moves the class selector too, and
    the distillation term is the mean |mask(x*, c) - teacher(x, c)| over the pool's half of a
    batch, with the starting network as the teacher; it pulls those masks toward the teacher's."""
    from dataclasses import replace

    from adv2lib.data import fashion_mnist
    from adv2lib.interpreters.rts_aid import AIDConfig, train_aid
    from adv2lib.models import load_victim

    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    test = fashion_mnist("test")
    kw = dict(train_set=test, test_set=test, device="cpu", write=False, progress=False, eval_images=20, resume=False)
    base = RTS(load_victim("resnet")).net.state_dict()
    default = train_aid("resnet", _tiny_aid(), **kw)
    selector = train_aid("resnet", replace(_tiny_aid(), train_selector=True), **kw)
    moved = {k for k, v in selector["state_dict"].items() if not torch.equal(v, base[k])}
    assert any(k.startswith("selector.") for k in moved) and selector["trained_parameters"] > default["trained_parameters"]
    assert "tie" not in default["final_losses"] and "class selector" in selector["method"]
    tied = train_aid("resnet", replace(_tiny_aid(), tie_weight=5.0), **kw)
    assert tied["final_losses"]["tie"] > 0 and "tie" in tied["method"]
    # the default path draws and computes exactly as before the options: same network as an explicit 0
    again = train_aid("resnet", replace(_tiny_aid(), tie_weight=0.0, train_selector=False), **kw)
    assert all(torch.equal(default["state_dict"][k], again["state_dict"][k]) for k in base)
    # a strong tie pulls the adversarial masks toward the teacher's masks of the clean sources
    from adv2lib.interpreters import rts_aid

    recorded = {}
    real = rts_aid.craft_pool

    def craft(*args, **kwargs):
        out = real(*args, **kwargs)
        recorded.setdefault("pool", out)
        return out

    monkeypatch.setattr(rts_aid, "craft_pool", craft)
    gaps = {}
    for weight in (0.0, 200.0):
        recorded.clear()
        cfg = replace(_tiny_aid(), steps=12, refresh_every=100, lr=2e-3, tie_weight=weight)
        card = train_aid("resnet", cfg, **kw)
        x_adv, label, _, clean = recorded["pool"]
        victim = load_victim("resnet")
        start = RTS(victim)
        net = copy.deepcopy(start.net)
        net.load_state_dict(card["state_dict"])
        with torch.no_grad():
            student = net(start.encoder.pyramid(x_adv), label)
            teacher = start.net(start.encoder.pyramid(clean), label)
        gaps[weight] = float((student - teacher).abs().mean())
    assert gaps[200.0] < gaps[0.0]
    with pytest.raises(ConfigError):
        AIDConfig(tie_weight=-1)
    with pytest.raises(ConfigError):
        AIDConfig(train_selector="yes")


def test_hardened_rts_missing_says_how_to_train_it(tmp_path, monkeypatch):
    from adv2lib.interpreters.rts import RTSWeightsNotFoundError
    from adv2lib.models import load_victim

    weights = tmp_path / "weights"
    shutil.copytree(paths.weights_dir() / "embedded", weights / "embedded")
    for p in (weights / "embedded").glob("rts_aid_*"):
        p.unlink()
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(weights))
    with pytest.raises(RTSWeightsNotFoundError, match="train-aid resnet"):
        RTS(load_victim("resnet"), weights="aid")


# --------------------------------------------------------------------------- the experiments (smoke)

@pytest.mark.slow
def test_robustness_experiment_smoke(tmp_path):
    from adv2lib import experiments
    from adv2lib.report import defences

    r = experiments.run_robustness(victim="resnet", interpreters=("cam", "rts"), n_images=2, smoke=True,
                                   results_dir=tmp_path, progress=False, eps=(8, 26), factors=(0.5, 1))
    ex = r.examples
    assert set(ex["eps_255"]) == {8.0, 26.0} and set(ex["budget"]) == {0.5, 1.0}
    assert (ex.loc[ex["attack"] == "adv2", "linf"] <= ex.loc[ex["attack"] == "adv2", "eps_255"] / 255 + 1e-6).all()
    est = defences.robustness_estimates(ex)
    assert set(zip(est["eps_255"], est["budget"])) == {(8.0, 1.0), (26.0, 0.5), (26.0, 1.0)}
    budgets = defences.robust_budgets(ex)
    assert set(budgets["sweep"]) == {"eps_255", "budget"} and set(budgets["interpreter"]) == {"cam", "rts"}
    assert len(defences.disparate_tests(ex)) == 1
    again = experiments.run_robustness(victim="resnet", interpreters=("cam", "rts"), n_images=2, smoke=True,
                                       results_dir=tmp_path, progress=False, eps=(8, 26), factors=(0.5, 1))
    assert again.batches["computed"] == 0


@pytest.mark.slow
def test_ensemble_experiment_smoke(tmp_path):
    from adv2lib import experiments
    from adv2lib.report import defences

    r = experiments.run_ensemble(victim="resnet", interpreters=("cam", "rts", "mask"), n_images=2, smoke=True,
                                 results_dir=tmp_path, progress=False, adaptive_images=2, calibration_images=8)
    det = r.examples[r.examples["kind"] == "detection"]
    assert set(det["ensemble"]) == {"all", "adaptive"}
    inputs = set(zip(det["split"], det["attack"], det["source_interpreter"].where(det["source_interpreter"].notna())))
    assert {(s, a, None if pd.isna(i) else i) for s, a, i in inputs} == {
        ("calibration", "clean", None), ("evaluation", "clean", None), ("evaluation", "pgd", None),
        ("evaluation", "adv2", "cam"), ("evaluation", "adv2", "rts"), ("evaluation", "adv2", "mask"),
        ("evaluation", "adaptive", None)}
    cal = det[det["split"] == "calibration"]
    for _, g in cal.groupby(["ensemble", "score_kind"]):
        assert g["flagged"].mean() <= ens.FPR + 1e-12         # 5 % false positives on the held-out images
    ada = r.examples[(r.examples["kind"] == "attack") & (r.examples["attack"] == "adaptive")]
    assert len(ada) == 2 * 3 and set(ada["interpreter"]) == {"cam", "rts", "mask"}   # per image and interpreter
    assert set(ada.loc[ada["attacked"].astype(bool), "interpreter"]) == {"cam", "rts"}
    est = defences.detection_estimates(r.examples)
    assert set(est["metric"]) == {"flagged", "auc"} and est.loc[est["attack"] == "clean", "estimate"].notna().any()
    assert len(defences.adaptive_estimates(r.examples))
    for tests in (defences.ensemble_tests(r.examples), defences.adaptive_tests(r.examples)):
        assert len(tests) and tests["bar source"].str.startswith("our bar:").all()
    # the detector's maps are the transfer experiment's: a second call computes nothing
    again = experiments.run_ensemble(victim="resnet", interpreters=("cam", "rts", "mask"), n_images=2, smoke=True,
                                     results_dir=tmp_path, progress=False, adaptive_images=2, calibration_images=8)
    assert again.batches["computed"] == 0


@pytest.mark.slow
def test_aid_experiment_smoke(tmp_path, monkeypatch):
    from adv2lib import experiments
    from adv2lib.data import fashion_mnist
    from adv2lib.interpreters.rts_aid import train_aid
    from adv2lib.report import defences

    weights = tmp_path / "weights"
    shutil.copytree(paths.weights_dir() / "embedded", weights / "embedded")
    monkeypatch.setenv("ADV2_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("ADV2_CACHE_DIR", str(tmp_path / "cache"))
    test = fashion_mnist("test")
    train_aid("resnet", _tiny_aid(), train_set=test, test_set=test, device="cpu", progress=False, eval_images=20)
    assert (weights / "embedded" / "rts_aid_resnet.pt").is_file()
    r = experiments.run_aid(victim="resnet", n_images=2, smoke=True, results_dir=tmp_path / "results",
                            progress=False, factors=(1, 2))
    ex = r.examples
    assert set(ex["rts"]) == {"original", "AID"}
    assert set(ex["attack"]) == {"adv2", "pgd", "deletion"}
    est = defences.aid_estimates(ex)
    ratio = est[est["metric"] == "l1_benign ratio"]
    assert set(zip(ratio["rts"], ratio["budget"])) == {("original", 1.0), ("original", 2.0), ("AID", 1.0), ("AID", 2.0)}
    deletion = defences.deletion_estimates(ex)
    assert len(deletion[["rts", "replacement"]].drop_duplicates()) == 4
    cards = defences.aid_cards()
    assert list(dict.fromkeys(cards.loc[cards["victim"] == "resnet", "rts"])) == ["original", "AID"]
    assert cards.loc[(cards["victim"] == "resnet") & (cards["metric"] == "training_seconds"), "estimate"].notna().all()
    [test] = defences.aid_tests(ex).to_dict("records")
    assert test["claim"] == "aid" and test["victim"] == "resnet" and test["verdict"]     # 2 images: inconclusive
