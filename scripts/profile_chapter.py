"""Where a chapter's time goes: per interpreter, per attack stage, per operator.

Runs one experiment (``--experiment``, default ``main``, the ADV2-vs-PGD chapter) on
``--n-images`` images of each victim into a throw-away results directory, one interpreter
at a time, first with no instrumentation (the wall and CPU seconds per interpreter and for the
shared PGD), then again under cProfile and ``torch.profiler`` (CPU activities) for

* the **stages**: cumulative time of the library functions that make up an attack (the PGD
  warm start, ADV2's sign stage, MASK's bilevel stage and its full-MASK snapshots, the
  benign maps, the evaluation passes, the metrics), as shares of the profiled run;
* the **operators**: the top ``--top`` torch operators by self CPU time (convolutions and
  their backward, MASK's blur and upsampling, the surrogate's elementwise graph, ...).

Profiling slows small operators down, so the shares, not the profiled seconds, are what
this reports; the first table's seconds are the uninstrumented ones. Run it with nothing
else on the machine:

    python scripts/profile_chapter.py --n-images 10
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from adv2lib import experiments

#: Library functions whose cumulative time is a stage of an attack (file suffix, function name) -> label.
STAGES = {
    ("tasks.py", "pgd_batch"): "shared PGD (stage-1 reference and warm start)",
    ("adv2.py", "_warm_start"): "ADV2 stage 1 (PGD warm start, when not shared)",
    ("adv2.py", "_sign_stage"): "ADV2 stage 2 (sign steps with the map term)",
    ("adv2_mask.py", "bilevel_stage"): "MASK bilevel stage 2 (inner, unrolled, bisection)",
    ("adv2_mask.py", "snapshot"): "  of which: full-MASK snapshots",
    ("targets.py", "benign_map"): "benign maps",
    ("tasks.py", "pgd_maps_batch"): "maps of the PGD inputs",
    ("pgd.py", "evaluate"): "evaluation passes (prediction, p(ct))",
    ("tasks.py", "map_columns"): "metrics (L1, IoU)",
    ("store.py", "save_batch"): "results store (writes)",
}


def stage_times(stats: pstats.Stats) -> dict:
    out = {}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items():
        for (suffix, func), label in STAGES.items():
            if filename.endswith(suffix) and name == func:
                out[label] = out.get(label, 0.0) + cumulative
    return out


def run_once(experiment, victim, interpreter, n_images, results_dir):
    entry = getattr(experiments, f"run_{experiment}")
    return entry(victim=victim, interpreters=(interpreter,), n_images=n_images, results_dir=results_dir,
                 progress=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="main")
    parser.add_argument("--victims", nargs="+", default=["resnet", "densenet"])
    parser.add_argument("--interpreters", nargs="+", default=["grad", "cam", "mask", "rts"])
    parser.add_argument("--n-images", type=int, default=10)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)     # each table as soon as it is measured
    print(f"{args.experiment}, {args.n_images} images per victim, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for victim in args.victims:
        # 1. uninstrumented: the shared PGD first (its own run), then each interpreter on top of it
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for interpreter in args.interpreters:
                wall, cpu = time.perf_counter(), time.process_time()
                run_once(args.experiment, victim, interpreter, args.n_images, tmp)
                rows.append((interpreter, time.perf_counter() - wall, time.process_time() - cpu))
        total = sum(w for _, w, _ in rows)
        print(f"\n## {victim}: uninstrumented, {total:.1f} s wall for {len(rows)} interpreters "
              f"(the first run also computes the shared PGD and loads the victim)")
        print("| interpreter | wall s | CPU s | share of wall |\n|---|---|---|---|")
        for interpreter, w, c in rows:
            print(f"| {interpreter} | {w:.1f} | {c:.1f} | {w / total:.0%} |")
        # 2. profiled: stages (cProfile) and operators (torch.profiler), per interpreter
        for interpreter in args.interpreters:
            with tempfile.TemporaryDirectory() as tmp:
                prof = cProfile.Profile()
                start = time.perf_counter()
                with profile(activities=[ProfilerActivity.CPU]) as ops:
                    prof.enable()
                    run_once(args.experiment, victim, interpreter, args.n_images, tmp)
                    prof.disable()
                elapsed = time.perf_counter() - start
            stats = pstats.Stats(prof)
            print(f"\n### {victim} / {interpreter}: profiled run {elapsed:.1f} s (shared PGD included)")
            print("| stage | share of the profiled run |\n|---|---|")
            for label, seconds in sorted(stage_times(stats).items(), key=lambda kv: -kv[1]):
                print(f"| {label} | {seconds / elapsed:.0%} |")
            events = sorted(ops.key_averages(), key=lambda e: -e.self_cpu_time_total)
            self_total = sum(e.self_cpu_time_total for e in events) or 1.0
            print("\n| operator | calls | self CPU share |\n|---|---|---|")
            for e in events[:args.top]:
                print(f"| {e.key} | {e.count} | {e.self_cpu_time_total / self_total:.1%} |")


if __name__ == "__main__":
    main()
