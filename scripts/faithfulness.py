"""Print the deletion test of every interpreter on the embedded victims (issue 3).

Deleting the top-20% pixels of an interpreter's benign map should lower the class confidence
more than deleting a random 20%. See adv2lib/faithfulness.py for the protocol.

    python scripts/faithfulness.py [--victims resnet densenet] [--n-images 200] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from adv2lib.faithfulness import faithfulness_table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victims", nargs="+", default=["resnet", "densenet"])
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 70)
    for name in args.victims:
        t0 = time.perf_counter()
        table = faithfulness_table(name, n_images=args.n_images, seed=args.seed, fraction=args.fraction)
        print(f"\n=== {name}: deletion of the top {args.fraction:.0%} pixels vs random "
              f"({time.perf_counter() - t0:.0f} s)")
        notes = table["note"].fillna("")
        print(table.drop(columns=["victim", "note"]).to_string(index=False, float_format="%.3f", na_rep="-"))
        for interp, note in sorted(set(zip(table["interpreter"], notes))):
            if note:
                print(f"  {interp}: {note}")


if __name__ == "__main__":
    main()
