"""Our targeted PGD beside a well-kept peer, torchattacks' PGD, in one run.

Both attacks get the same victim, the same correctly classified test images (the
experiments' selection), the same random target classes and the profile's PGD preset: eps,
sign step alpha and number of steps, no random start, no early stopping. Both minimise the
cross-entropy towards the target class with sign steps and clip to the eps-ball and [0, 1]
after every step, so the adversarial images should agree; where they differ, the cause is
floating point (torchattacks projects ``x0 + clamp(x - x0)``, we project
``clamp(x, x0 - eps, x0 + eps)``, and a gradient component that is exactly zero in one and
a denormal in the other flips a sign).

Printed per victim: the share of images that are bit-identical, the largest pixel
difference, the share of images on which both attacks reach the target class (and agree on
the prediction), and the time of each attack (wall and process CPU seconds, the better of
``--repeat`` runs; the two attacks alternate so that a change in the machine's load hits both).

torchattacks (Kim, "Torchattacks: A PyTorch Repository for Adversarial Attacks", 2020,
https://github.com/Harry24k/adversarial-attacks-pytorch) is not a dependency of the library;
its own requirements pin an old ``requests``, so install it without them:

    pip install --no-deps torchattacks==3.5.1
    python scripts/bench_peers.py --n-images 50
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from adv2lib.attacks import PGD, preset_for
from adv2lib.data import load_test_set
from adv2lib.experiments import random_target_classes, select_correct
from adv2lib.models import load_victim


def timed(fn):
    """``(result, wall seconds, process CPU seconds)`` of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def compare(victim_name, profile, n_images, seed, repeat, torchattacks):
    victim = load_victim(victim_name, profile, device="cpu")
    _, x, y = select_correct(victim, load_test_set(profile), n_images, seed)
    ct = random_target_classes(y, victim.num_classes, seed)
    cfg = preset_for(profile, "pgd")
    if cfg.random_start or cfg.early_stop or cfg.loss != "ce":
        raise SystemExit(f"the {profile} PGD preset is not plain targeted CE PGD from the clean image; "
                         f"the comparison would not be like for like")
    ours = PGD(victim, config=cfg)
    peer = torchattacks.PGD(victim, eps=cfg.eps, alpha=cfg.alpha, steps=cfg.steps, random_start=False)
    peer.set_mode_targeted_by_label(quiet=True)
    runs = {"ours": [], "torchattacks": []}
    for _ in range(repeat):
        res, wall, cpu = timed(lambda: ours.attack(x, ct, true_class=y))
        runs["ours"].append((wall, cpu))
        x_ours = res.x_adv.detach().cpu()
        x_peer, wall, cpu = timed(lambda: peer(x, ct))
        runs["torchattacks"].append((wall, cpu))
        x_peer = x_peer.detach().cpu()
    diff = (x_ours - x_peer).abs().flatten(1).amax(1)
    with torch.no_grad():
        p_ours, p_peer = victim(x_ours).argmax(1), victim(x_peer).argmax(1)
    best = {k: min(v) for k, v in runs.items()}
    return {"victim": victim_name, "n": len(x), "steps": cfg.steps, "eps": cfg.eps, "alpha": cfg.alpha,
            "identical": (diff == 0).float().mean().item(), "max_diff": diff.max().item(),
            "asr_ours": (p_ours == ct).float().mean().item(), "asr_peer": (p_peer == ct).float().mean().item(),
            "same_prediction": (p_ours == p_peer).float().mean().item(),
            "wall_ours": best["ours"][0], "cpu_ours": best["ours"][1],
            "wall_peer": best["torchattacks"][0], "cpu_peer": best["torchattacks"][1]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--victims", nargs="+", default=["resnet", "densenet"])
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--n-images", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each attack (the best is printed)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    try:
        import torchattacks
    except ImportError:
        sys.exit("torchattacks is not installed: pip install --no-deps torchattacks==3.5.1")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torchattacks {torchattacks.__version__}, {torch.get_num_threads()} threads, "
          f"profile {args.profile}, seed {args.seed}, best of {args.repeat}")
    print("| victim | images | eps, alpha, steps | bit-identical | max pixel diff | ASR ours / torchattacks "
          "| same prediction | ours wall / CPU s | torchattacks wall / CPU s | time ratio ours / theirs (wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.victims:
        r = compare(name, args.profile, args.n_images, args.seed, args.repeat, torchattacks)
        print(f"| {r['victim']} | {r['n']} | {r['eps'] * 255:g}/255, {r['alpha'] * 255:g}/255, {r['steps']} "
              f"| {r['identical']:.0%} | {r['max_diff']:.3g} | {r['asr_ours']:.0%} / {r['asr_peer']:.0%} "
              f"| {r['same_prediction']:.0%} | {r['wall_ours']:.2f} / {r['cpu_ours']:.2f} "
              f"| {r['wall_peer']:.2f} / {r['cpu_peer']:.2f} | {r['wall_ours'] / r['wall_peer']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
