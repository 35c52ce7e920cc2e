"""Compare two results stores batch by batch: the same runs, rows and tensors.

    python scripts/compare_stores.py STORE_A STORE_B [--ignore-code] [--ignore-version] [--atol 0]

Runs are matched by their key (the run directory); with ``--ignore-code`` by the key with the
library-code hash left out, so that the stores of two versions of the library can be compared
(the code hash is part of every key by design); ``--ignore-version`` also leaves out the
experiment version (bumped when the rows' schema changes: then the numeric columns the two
versions share are compared, and the label columns that changed are listed). Rows are compared column by column, the
timing columns (``seconds``, ``cpu_seconds``) left out; tensors with ``torch.equal`` (or within
``--atol``). Prints one line per differing batch and a summary; exits 1 when anything differs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from adv2lib.store import ResultsStore, params_hash

TIMING = ("seconds", "cpu_seconds")


def runs(root: Path, ignore_code: bool, ignore_version: bool = False) -> dict:
    out = {}
    for manifest in root.glob("*/*/*/*/*/*/manifest.json"):
        info = json.loads(manifest.read_text())
        params = dict(info["params"])
        if ignore_code:
            params.pop("code", None)
        if ignore_version:
            params.pop("version", None)
        ident = (info["experiment"], info["profile"], info["victim"], info["interpreter"], info["attack"],
                 info["seed"], params_hash(params))
        out[ident] = manifest.parent
    return out


def max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.abs(np.where(both_nan, 0, a - b))
    return float(np.nanmax(d)) if d.size else 0.0


def compare_batch(pa: Path, pb: Path, atol: float) -> list[str]:
    ra, ta = ResultsStore._read(pa)
    rb, tb = ResultsStore._read(pb)
    problems = []
    cols_a, cols_b = [c for c in ra.columns if c not in TIMING], [c for c in rb.columns if c not in TIMING]
    if cols_a != cols_b:
        problems.append(f"columns differ: {sorted(set(cols_a) ^ set(cols_b)) or 'order'}")
    for col in [c for c in cols_a if c in cols_b]:
        a, b = ra[col].to_numpy(), rb[col].to_numpy()
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            d = max_diff(a, b)
            if d > atol or (atol == 0 and not np.array_equal(a, b, equal_nan=True)):
                problems.append(f"{col}: max |diff| {d:.3g}")
        elif not np.array_equal(a, b):
            problems.append(f"{col}: {int((a != b).sum())} of {len(a)} differ")
    if set(ta) != set(tb):
        problems.append(f"tensors differ: {sorted(set(ta) ^ set(tb))}")
    for name in sorted(set(ta) & set(tb)):
        a, b = ta[name], tb[name]
        if a.shape != b.shape:
            problems.append(f"{name}: shapes {tuple(a.shape)} vs {tuple(b.shape)}")
        elif not torch.equal(a, b):
            d = (a.double() - b.double()).abs().max().item()
            if d > atol or atol == 0:
                problems.append(f"{name}: max |diff| {d:.3g}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--ignore-code", action="store_true")
    parser.add_argument("--ignore-version", action="store_true")
    parser.add_argument("--atol", type=float, default=0.0)
    args = parser.parse_args(argv)
    ra, rb = runs(args.a, args.ignore_code, args.ignore_version), runs(args.b, args.ignore_code, args.ignore_version)
    only_a, only_b = sorted(set(ra) - set(rb)), sorted(set(rb) - set(ra))
    for ident in only_a:
        print(f"only in {args.a}: {'/'.join(map(str, ident))}")
    for ident in only_b:
        print(f"only in {args.b}: {'/'.join(map(str, ident))}")
    batches = differing = 0
    for ident in sorted(set(ra) & set(rb)):
        files_a = {p.name for p in ra[ident].glob("batch_*.pt")}
        files_b = {p.name for p in rb[ident].glob("batch_*.pt")}
        for name in sorted(files_a ^ files_b):
            print(f"{'/'.join(map(str, ident))} {name}: in one store only")
            differing += 1
        for name in sorted(files_a & files_b):
            batches += 1
            problems = compare_batch(ra[ident] / name, rb[ident] / name, args.atol)
            if problems:
                differing += 1
                print(f"{'/'.join(map(str, ident[:5]))} {name}: " + "; ".join(problems))
    print(f"{len(set(ra) & set(rb))} runs in both stores, {len(only_a)} only in A, {len(only_b)} only in B; "
          f"{batches} batches compared, {differing} differ")
    return 1 if (differing or only_a or only_b) else 0


if __name__ == "__main__":
    sys.exit(main())
