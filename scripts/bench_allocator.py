"""The victims' pass times under each memory allocator (adv2lib.allocator), side by side.

For every allocator available here -- the C library's defaults, glibc's tunables, tcmalloc --
a fresh process (the allocator is chosen when a process starts) times, per image, at one
thread and ``--batch`` images:

* ``fwd``: a forward pass without gradients (the evaluation passes, MASK's bisection);
* ``fwd+grad``: a forward pass and the gradient of the CE loss w.r.t. the input (one PGD step);

for both victims, in PyTorch's default (NCHW) layout and, for reference, channels-last
(which the library does not use: its results differ from NCHW's in the last bits, and on
DenseNet it made GRAD's double backward slower, 1.28 -> 1.68 s per image, in
``scripts/bench_attacks.py``). Run it with nothing else on the machine:

    python scripts/bench_allocator.py
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from adv2lib import allocator

_CHILD = r"""
import json, sys, time, torch
from adv2lib.models import load_victim
torch.set_num_threads(1)
batch, reps = int(sys.argv[1]), int(sys.argv[2])
maps = open("/proc/self/maps").read() if sys.platform.startswith("linux") else ""
out = {"tcmalloc_loaded": "tcmalloc" in maps}
for name in ("resnet", "densenet"):
    for layout in ("nchw", "channels_last"):
        model = load_victim(name, device="cpu")
        if layout == "channels_last":
            model = model.to(memory_format=torch.channels_last)
        x, y = torch.rand(batch, 1, 28, 28), torch.zeros(batch, dtype=torch.long)

        def fwd():
            with torch.no_grad():
                model(x)

        def fwd_grad():
            xi = x.detach().requires_grad_(True)
            torch.autograd.grad(torch.nn.functional.cross_entropy(model(xi), y), xi)

        for label, fn in (("fwd", fwd), ("fwd+grad", fwd_grad)):
            for _ in range(3):
                fn()
            start = time.process_time()
            for _ in range(reps):
                fn()
            out[f"{name} {layout} {label}"] = (time.process_time() - start) / reps / batch * 1e3
print(json.dumps(out))
"""


def environments() -> dict:
    base = allocator.without()
    envs = {"C library defaults": {**base, allocator.ENV: "system"},
            "glibc tunables": {**base, **allocator.fast_env(base, tcmalloc=None)}}
    if allocator.find_tcmalloc():
        envs["tcmalloc"] = {**base, **allocator.fast_env(base)}
    return envs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=50, help="images per pass (the experiments' batch: 50)")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    results = {}
    for label, env in environments().items():
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _CHILD, str(args.batch), str(args.reps)], env=env,
                             capture_output=True, text=True, check=True).stdout
        results[label] = json.loads(out.strip().splitlines()[-1])
        print(f"measured {label} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    columns = list(results)
    rows = [k for k in next(iter(results.values())) if k != "tcmalloc_loaded"]
    print(f"CPU ms per image, one thread, batch {args.batch} ({', '.join(columns)}; "
          f"tcmalloc loaded: {[results[c]['tcmalloc_loaded'] for c in columns]})")
    print(f"{'pass':<34}" + "".join(f"{c:>20}" for c in columns) + f"{'speed-up':>10}")
    for row in rows:
        values = [results[c][row] for c in columns]
        print(f"{row:<34}" + "".join(f"{v:>20.3f}" for v in values) + f"{values[0] / values[-1]:>9.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
