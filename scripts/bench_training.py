"""Time victim training steps and extrapolate to the full training run.

Prints, per embedded victim, the seconds per training step (batch 128, the recipe of
``adv2lib.models.train``), the implied seconds per epoch (469 steps) and per training run
(the epochs recorded in the model card), for the given torch thread count. Run it on an
otherwise idle machine: the wall times in the model cards were measured on a shared CPU.

    python scripts/bench_training.py --threads 2 --steps 30
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from adv2lib.data import fashion_mnist
from adv2lib.models import VICTIMS, build_victim, victim_card
from adv2lib.models.train import TrainConfig, augment_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = fashion_mnist("train")
    cfg = TrainConfig()
    steps_per_epoch = (len(train) + cfg.batch_size - 1) // cfg.batch_size
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} timed steps after 3 warm-up steps")
    print(f"{'victim':10s} {'s/step':>8s} {'s/epoch':>8s} {'epochs':>6s} {'s/run':>7s}")
    for name in VICTIMS:
        torch.manual_seed(0)
        model = build_victim(name).train().to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        gen = torch.Generator().manual_seed(0)
        times = []
        for step in range(3 + args.steps):
            x, y = train.tensors(torch.randint(0, len(train), (cfg.batch_size,), generator=gen))
            t0 = time.perf_counter()
            x = augment_batch(x, gen).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step >= 3:
                times.append(time.perf_counter() - t0)
        per_step = sorted(times)[len(times) // 2]
        epochs = victim_card(name)["config"]["epochs"]
        print(f"{name:10s} {per_step:8.3f} {per_step * steps_per_epoch:8.0f} {epochs:6d} "
              f"{per_step * steps_per_epoch * epochs:7.0f}")


if __name__ == "__main__":
    main()
