"""The ``adv2lib`` command line (``python -m adv2lib``)."""
from __future__ import annotations

import argparse
import json


def _train_victim(args) -> int:
    from .models.train import TrainConfig, train_victim

    names = ["resnet", "densenet"] if args.name == "all" else [args.name]
    for name in names:
        card = train_victim(name, TrainConfig(epochs=args.epochs, seed=args.seed), device=args.device,
                            resume=not args.restart)
        print(json.dumps({k: card[k] for k in ("name", "parameters", "test_accuracy", "training_seconds")}))
    return 0


def _train_rts(args) -> int:
    from .interpreters.rts_train import RTSTrainConfig, train_rts

    names = ["resnet", "densenet"] if args.name == "all" else [args.name]
    config = RTSTrainConfig(seed=args.seed, **({} if args.steps is None else {"steps": args.steps}))
    for name in names:
        card = train_rts(name, config, device=args.device, resume=not args.restart)
        ev = card["evaluation"]
        print(json.dumps({"name": card["name"], "training_seconds": card["training_seconds"],
                          **{k: round(ev[k], 4) for k in ("preserved_accuracy", "destroyed_accuracy", "mean_area")}}))
    return 0


def _data_fetch(args) -> int:
    from .data import fashion_mnist

    ds = fashion_mnist("test", download=True)
    fashion_mnist("train", download=True)
    print(f"Fashion-MNIST ready ({len(ds)} test images)")
    return 0


def _book(args) -> int:
    from .runner import main as run_book

    return run_book(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adv2lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-victim", help="train an embedded victim and write its weights + model card")
    p.add_argument("name", choices=["resnet", "densenet", "all"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint")
    p.set_defaults(func=_train_victim)

    p = sub.add_parser("train-rts", help="train the RTS masking network of an embedded victim (weights + card)")
    p.add_argument("name", choices=["resnet", "densenet", "all"])
    p.add_argument("--steps", type=int, default=None, help="decoder training steps (default: RTSTrainConfig.steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint")
    p.set_defaults(func=_train_rts)

    p = sub.add_parser("data", help="dataset utilities")
    p.add_argument("action", choices=["fetch"])
    p.set_defaults(func=_data_fetch)

    from .runner import add_arguments as _book_arguments

    p = sub.add_parser("book", help="execute the notebooks (papermill, up-to-date ones skipped) and build the book")
    _book_arguments(p)
    p.set_defaults(func=_book)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
