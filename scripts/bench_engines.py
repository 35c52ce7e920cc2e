"""Serial against Ray on this machine: per-task overhead and the smoke main experiment's wall time.

    python scripts/bench_engines.py [--cpus 2] [--victims resnet densenet] [--repeat 1]

Prints, from one run (run nothing else on the machine meanwhile):

1. **Ray start**: ``ray.init`` of a local cluster with ``--cpus`` CPUs.
2. **Per-task overhead**: the round trip of an empty task on a warm worker; the first task of
   a fresh worker process (Python start, ``import torch``/``adv2lib``, building the victim and
   its interpreters: what every task pays when workers are not reused, as on GPUs); the time
   the context build itself takes inside the worker.
3. **The smoke main experiment** (all four interpreters; the book's ``--smoke`` parameters:
   2 images per victim, i.e. one batch each, so this is the smallest experiment there is)
   and the same experiment at 8 images and batch size 2 (4 batches per interpreter: something
   for two workers to share), each into a fresh store, with:
   serial, torch's default threads (what ``make book`` does);
   serial, 1 thread; Ray, ``--cpus`` workers of 1 thread each, workers reused;
   Ray, a fresh process per batch (``reuse_workers=False``, the GPU default).
   Wall time, the driver's CPU time, and the speed-up against serial.

The stores of every variant are compared batch by batch: the numbers must be identical
(timing columns aside) for the 1-thread variants; the default-thread serial run may differ in
the last bits (intra-op threads change the order of floating-point sums).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def empty_task():
    return 0


def fresh_worker_task(profile, victim, interpreters):
    """What a fresh worker does before its first batch: import, build the context."""
    start = time.perf_counter()
    from adv2lib.tasks import WorkerSpec, build_context

    imported = time.perf_counter()
    ctx = build_context(WorkerSpec(profile, victim, True, "cpu"))
    for name in interpreters:
        ctx.interpreter(name)
    return imported - start, time.perf_counter() - imported


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--victims", nargs="+", default=["resnet", "densenet"])
    parser.add_argument("--keep", type=Path, default=None, help="keep the stores here")
    args = parser.parse_args(argv)

    import ray
    import torch

    from adv2lib import experiments
    from adv2lib.engines import RayEngine
    from scripts.compare_stores import main as compare

    interpreters = ("grad", "cam", "mask", "rts")
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-engines-"))
    _, t_init, _ = timed(lambda: ray.init(num_cpus=args.cpus, num_gpus=0, include_dashboard=False,
                                          log_to_driver=False))
    print(f"Ray start (local cluster, {args.cpus} CPUs): {t_init:.2f} s")

    remote_empty = ray.remote(num_cpus=1)(empty_task)
    ray.get([remote_empty.remote() for _ in range(args.cpus)])          # warm the workers
    n = 50
    _, t, _ = timed(lambda: [ray.get(remote_empty.remote()) for _ in range(n)])
    print(f"empty task round trip, warm worker: {1000 * t / n:.1f} ms")
    fresh = ray.remote(num_cpus=1, max_calls=1)(fresh_worker_task)
    for victim in args.victims:
        (t_import, t_build), t_first, _ = timed(lambda: ray.get(fresh.remote("embedded", victim, interpreters)))
        print(f"first task of a fresh worker ({victim}): {t_first:.2f} s wall, of which import {t_import:.2f} s, "
              f"victim + 4 interpreters {t_build:.2f} s")

    default_threads = torch.get_num_threads()
    variants = [
        (f"serial, {default_threads} threads", "serial", default_threads),
        ("serial, 1 thread", "serial", 1),
        (f"ray, {args.cpus} workers x 1 thread, reused", RayEngine(num_cpus=1, reuse_workers=True), 1),
        (f"ray, {args.cpus} workers x 1 thread, fresh process per batch", RayEngine(num_cpus=1, reuse_workers=False), 1),
    ]
    for n_images, batch in ((2, None), (8, 2)):
        print(f"\nsmoke main experiment, {n_images} images per victim, batch size "
              f"{batch or experiments.DEFAULT_BATCH['embedded']}, victims {', '.join(args.victims)}, "
              f"interpreters {', '.join(interpreters)}")
        print(f"{'variant':58s} {'wall s':>8s} {'driver CPU s':>13s} {'speed-up':>9s}")
        base = None
        for i, (label, engine, threads) in enumerate(variants):
            torch.set_num_threads(threads)
            store = root / f"{n_images}-{i}"

            def go():
                for victim in args.victims:
                    experiments.run_main(victim=victim, interpreters=interpreters, n_images=n_images, smoke=True,
                                         device="cpu", batch_size=batch, progress=False, results_dir=store,
                                         engine=engine)

            _, wall, cpu = timed(go)
            base = base or wall
            print(f"{label:58s} {wall:8.1f} {cpu:13.1f} {base / wall:8.2f}x")
        torch.set_num_threads(default_threads)
        for i in (2, 3):
            same = compare([str(root / f"{n_images}-1"), str(root / f"{n_images}-{i}")]) == 0
            print(f"  stores of '{variants[1][0]}' and '{variants[i][0]}': {'identical' if same else 'DIFFER'}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
