"""Evidence for MASK's embedded calibration (adv2lib/interpreters/mask.py, MaskConfig.embedded).

Prints, for each trained embedded victim:

1. how much class evidence a Gaussian blur of the whole image removes (accuracy and mean
   true-class probability on fully blurred test images), for the ImageNet blur scaled by
   28/224 (sigma 0.44) and for stronger ones -- the image blur must *delete* evidence;
2. how the MASK map converges: the mean absolute difference between the map after k Adam
   steps and after 300 steps, for two jitter seeds, next to the seed-to-seed difference at
   300 steps (the noise floor set by the random jitter).

    python scripts/calibrate_mask.py [--victims resnet densenet] [--n-images 32]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from adv2lib.data import fashion_mnist
from adv2lib.interpreters import MASK
from adv2lib.interpreters.mask import gaussian_blur
from adv2lib.models import load_victim

BLURS = [(3, 0.44), (9, 2.0), (11, 3.0), (21, 3.5), (21, 4.0), (21, 5.0)]
CHECKPOINTS = (25, 50, 75, 100, 125, 150, 200, 300)


@torch.no_grad()
def blur_table(victim, x, y) -> pd.DataFrame:
    rows = []
    for k, sigma in [(1, 0.0)] + BLURS:
        probs = victim(gaussian_blur(x, k, sigma) if k > 1 else x).softmax(1)
        rows.append({"kernel": k, "sigma": sigma, "accuracy": (probs.argmax(1) == y).float().mean().item(),
                     "p_true": probs[torch.arange(len(y)), y].mean().item()})
    return pd.DataFrame(rows)


def convergence_table(victim, x, y, seeds=(0, 1), total=300) -> tuple[pd.DataFrame, float]:
    maps = {}
    for seed in seeds:
        mask = MASK(victim, iterations=total, seed=seed)
        state, t0 = mask.init_state(x, y), time.perf_counter()
        for k in range(1, total + 1):
            state = mask.inner_steps(x, y, state, 1)
            if k in CHECKPOINTS:
                maps[seed, k] = mask.state_map(state)
        print(f"  seed {seed}: {1e3 * (time.perf_counter() - t0) / total / len(x):.2f} ms per image per step")
    rows = [{"steps": k, **{f"L1_to_300_seed{s}": (maps[s, k] - maps[s, total]).abs().mean().item() for s in seeds},
             "area_1-m": maps[seeds[0], k].mean().item()} for k in CHECKPOINTS]
    floor = (maps[seeds[0], total] - maps[seeds[1], total]).abs().mean().item()
    return pd.DataFrame(rows), floor


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victims", nargs="+", default=["resnet", "densenet"])
    parser.add_argument("--n-images", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    test = fashion_mnist("test")
    pd.set_option("display.width", 120)
    for name in args.victims:
        victim = load_victim(name, device="cpu")
        print(f"\n=== {name}: blur of the whole image (first 1000 test images)")
        print(blur_table(victim, *test.tensors(range(1000))).to_string(index=False, float_format="%.3f"))
        print(f"\n=== {name}: MASK convergence (embedded settings, first {args.n_images} test images)")
        table, floor = convergence_table(victim, *test.tensors(range(args.n_images)))
        print(table.to_string(index=False, float_format="%.4f"))
        print(f"seed-to-seed L1 after 300 steps (jitter noise floor): {floor:.4f}")


if __name__ == "__main__":
    main()
