"""Attack cost per image, and its ratio to the bare cost of the gradient passes it makes.

For one victim and a batch of correctly classified test images (the experiments'
selection), the script measures

* ``t_pass``: the time of one forward+backward pass of the victim (CE loss, gradient w.r.t.
  the input) per image, at the same batch size -- the unit of "bare cost" -- measured
  before and after each attack (the machine may be shared) and averaged;
* for PGD and ADV2 against each interpreter (the profile's presets, or their smoke versions):
  the wall time per image, the number of victim forward+backward passes the attack performs
  per image (counted by the attack itself: a forward alone counts 1/3, GRAD's
  double-backward step counts 3, MASK counts its inner, unrolled, bisection and full-MASK
  passes), and ``ratio = time / (passes x t_pass)``.

A ratio near 1 means the attack costs what its gradient passes cost (the loop adds
nothing); above 1, the extra is work the pass model does not count: the interpreter's own
layers (RTS decoder, CAM's map), the surrogate ReLU's elementwise graph for GRAD, Adam and
blurs for MASK. For GRAD and MASK the script also prints the measured cost of one attack
step in units of ``t_pass`` (their higher-order cost).

Times are process CPU seconds (robust to other jobs on a shared machine; with one thread,
wall time on an idle machine is about the same); with ``--device cuda``, wall seconds after
synchronising the device (the GPU's time, which process CPU time does not see).

``--precision fp32 bf16`` runs every attack in each precision (:func:`adv2lib.precision.victim_passes`:
the victims' passes under bfloat16 autocast; ``tf32`` on CUDA), ``t_pass`` measured in the same
precision, and ends with a table of both side by side: seconds per image, the speed-up, the ratio to
the bare passes in each, and the attack's success in each.

    python scripts/bench_attacks.py --victim resnet --n-images 20
    python scripts/bench_attacks.py --victim resnet --n-images 20 --precision fp32 bf16
    python scripts/bench_attacks.py --victim resnet --n-images 50 --device cuda --precision fp32 tf32 bf16
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from adv2lib.attacks import ADV2, PGD, preset_for
from adv2lib.data import load_test_set
from adv2lib.experiments import random_target_classes, select_correct
from adv2lib.interpreters import build_interpreter
from adv2lib.models import load_victim
from adv2lib.precision import PRECISIONS, check, native, victim_passes


#: The clock: process CPU time (all threads). On a shared machine wall time depends on the
#: neighbours; CPU time does not (with ``--threads 1`` it equals the compute time). On CUDA,
#: :func:`main` puts :func:`cuda_clock` here.
clock = time.process_time


def cuda_clock() -> float:
    """Wall seconds once the GPU has finished the work queued so far (its kernels run asynchronously)."""
    torch.cuda.synchronize()
    return time.perf_counter()


def time_pass(victim, x, y, reps=5):
    def one():
        xa = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(victim(xa), y), xa)

    one()
    start = clock()
    for _ in range(reps):
        one()
    return (clock() - start) / reps / len(x)


def time_step(fn, reps=3):
    fn()
    start = clock()
    for _ in range(reps):
        fn()
    return (clock() - start) / reps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--victim", default="resnet")
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--attacks", nargs="+", default=["pgd", "cam", "rts", "grad", "mask"])
    parser.add_argument("--n-images", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: CPU time = compute time, robust on a shared machine)")
    parser.add_argument("--smoke", action="store_true", help="the smoke presets (few iterations)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=list(PRECISIONS),
                        help="run every attack in each of these precisions (adv2lib.precision)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (timed in synchronised wall seconds)")
    args = parser.parse_args(argv)
    global clock
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for chosen in args.precision:
        check(chosen, device.type)
    if device.type == "cuda":
        clock = cuda_clock
    seconds_of = "CPU" if clock is time.process_time else "wall"
    victim = load_victim(args.victim, args.profile, device=device)
    _, x, y = select_correct(victim, load_test_set(args.profile), args.n_images, args.seed)
    ct = random_target_classes(y, victim.num_classes, args.seed)
    x, y, ct = x.to(device), y.to(device), ct.to(device)
    n = len(x)
    for precision in args.precision:
        with victim_passes(precision):
            t_pass = time_pass(victim, x, ct)
        print(f"victim {args.victim} ({args.profile}), {n} images, {args.threads} threads, {precision}"
              f"{'' if native(precision, x.device.type) else ' (emulated: no such arithmetic in this hardware)'}: "
              f"t_pass = {1000 * t_pass:.2f} {seconds_of}-ms/image (forward+backward)"
              + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    print(f"{'attack':<10} {'precision':<9} {'s/image':>8} {'passes/img':>11} {'bare s/img':>11} {'ratio':>6}")
    print(f"({seconds_of} seconds; t_pass is re-measured before and after each attack and averaged)")
    extra, side, unit = [], [], {}
    first = args.precision[0]         # the higher-order costs below are measured in this one
    for name in args.attacks:
        if name == "pgd":
            attack = PGD(victim, config=preset_for(args.profile, "pgd", smoke=args.smoke))
        else:
            kwargs = {"iterations": 20} if (name == "mask" and args.smoke) else {}
            interp = build_interpreter(name, victim, **kwargs)
            attack = ADV2(victim, interp, config=preset_for(args.profile, name, smoke=args.smoke))
        label = name if name == "pgd" else f"adv2-{name}"
        for precision in args.precision:
            with victim_passes(precision):
                before = time_pass(victim, x, ct)
                start, wall = clock(), time.perf_counter()
                res = attack.attack(x, ct, true_class=y)
                seconds = (clock() - start) / n
                wall = (time.perf_counter() - wall) / n
                # The machine may be shared: the unit is re-measured around every attack.
                t_pass = (before + time_pass(victim, x, ct)) / 2
            passes = res.passes["total"]
            asr = float(res.success.float().mean())
            unit[precision] = t_pass
            side.append({"attack": label, "precision": precision, "seconds": seconds,
                         "ratio": seconds / (passes * t_pass), "asr": asr})
            print(f"{label:<10} {precision:<9} {seconds:8.2f} {passes:11.0f} {passes * t_pass:11.2f} "
                  f"{seconds / (passes * t_pass):6.2f}   (ASR {asr:.2f}, "
                  f"t_pass {1000 * t_pass:.2f} ms, wall {wall:.2f} s/image)", flush=True)
        if name == "grad":
            xa = x.clone().requires_grad_(True)

            def grad_step():
                z = x.detach().requires_grad_(True)
                m = interp.attack_map(z, ct)
                loss = F.cross_entropy(victim(z), ct) + m.sum()
                torch.autograd.grad(loss, z)

            with victim_passes(first):
                extra.append(("GRAD attack step (surrogate map + double backward + CE)",
                              time_step(grad_step) / n / unit[first]))
            del xa
        if name == "mask":
            state = interp.init_state(x, ct)

            def inner():
                interp.inner_steps(x, ct, state, 1)

            def unrolled():
                z = x.detach().requires_grad_(True)
                s = interp.inner_steps(z, ct, state, 1, differentiable=True)
                torch.autograd.grad(interp.state_map(s).sum(), z)

            with victim_passes(first):
                extra.append(("MASK inner Adam step (no graph)", time_step(inner) / n / unit[first]))
                extra.append(("MASK unrolled step + backward to x", time_step(unrolled) / n / unit[first]))
            cfg = attack.config
            per_iter = (1 + cfg.inner_steps + 3 * cfg.unrolled_steps + cfg.bisection_steps / 3)
            extra.append((f"MASK outer iteration, counted passes (pred 1 + inner {cfg.inner_steps} + "
                          f"unrolled 3x{cfg.unrolled_steps} + bisection {cfg.bisection_steps}/3)", per_iter))
            extra.append((f"full MASK snapshot ({interp.config.iterations} Adam steps), counted passes",
                          float(interp.config.iterations)))
    if len(args.precision) > 1:
        print(f"\nside by side ({seconds_of} s/image; speed-up: {first} time over each other's; ratio: time over its bare passes):")
        for label in dict.fromkeys(r["attack"] for r in side):
            mine = {r["precision"]: r for r in side if r["attack"] == label}
            print(f"  {label:<10} " + "   ".join(
                f"{p} {mine[p]['seconds']:.3f} s (ratio {mine[p]['ratio']:.2f}, ASR {mine[p]['asr']:.2f})"
                + ("" if p == first else f" x{mine[first]['seconds'] / mine[p]['seconds']:.2f}")
                for p in args.precision))
    if extra:
        print(f"\nhigher-order costs, in units of t_pass per image ({first}):")
        for label, value in extra:
            print(f"  {label}: {value:.2f}")


if __name__ == "__main__":
    main()
