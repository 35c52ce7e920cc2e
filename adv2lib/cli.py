"""The ``adv2lib`` command line (``python -m adv2lib``).

Errors caused by the user's input (the library's :class:`~adv2lib.errors.Adv2Error`) are
printed as one line that says what to do, with exit status 2; ``--debug`` shows the
traceback instead. Ctrl-C exits with status 130 and says how to resume: every finished
batch is already in the results store, so rerunning the same command computes only the rest.
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import Adv2Error, ConfigError

INTERRUPTED = ("interrupted. Every finished batch is stored: rerun the same command to resume from the last "
               "stored batch.")


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
    overrides = {"seed": args.seed, **({} if args.steps is None else {"steps": args.steps})}
    config = RTSTrainConfig.for_profile(args.profile, **overrides)
    data = {}
    if args.profile == "imagenet":
        from .data import ImageNetFolder

        if args.train_dir is None:
            raise ConfigError("train-rts --profile imagenet needs --train-dir (ImageNet-train or Imagenette "
                              "train in ImageFolder layout, one folder per wnid)")
        # ImageNetFolder raises DatasetNotFoundError naming IMAGENET_VAL_DIR when the test set is missing.
        data = {"train_set": ImageNetFolder(args.train_dir), "test_set": ImageNetFolder(args.test_dir)}
    for name in names:
        card = train_rts(name, config, profile=args.profile, device=args.device, resume=not args.restart,
                         eval_images=args.eval_images, **data)
        ev = card["evaluation"]
        print(json.dumps({"name": card["name"], "training_seconds": card["training_seconds"],
                          **{k: round(ev[k], 4) for k in ("preserved_accuracy", "destroyed_accuracy", "mean_area")}}))
    return 0


def _train_aid(args) -> int:
    from .interpreters.rts_aid import AIDConfig, train_aid

    names = ["resnet", "densenet"] if args.name == "all" else [args.name]
    config = AIDConfig(seed=args.seed, **({} if args.steps is None else {"steps": args.steps}))
    for name in names:
        card = train_aid(name, config, device=args.device, resume=not args.restart, eval_images=args.eval_images)
        before, after = card["evaluation_before"], card["evaluation"]
        print(json.dumps({"name": card["name"], "training_seconds": card["training_seconds"],
                          **{f"{k}_before": round(before[k], 4) for k in ("preserved_accuracy", "destroyed_accuracy")},
                          **{k: round(after[k], 4) for k in ("preserved_accuracy", "destroyed_accuracy", "mean_area")}}))
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


def _verify(args) -> int:
    from .verify import main as run_verify

    return run_verify(args)


def _engine(args):
    """The engine the ``experiment`` command's flags ask for (``--engine``, else ``ADV2_ENGINE``)."""
    import os

    from .engines import RayEngine, resolve_engine

    name = args.engine or os.environ.get("ADV2_ENGINE") or "serial"
    ray_flags = {"--ray-address": args.ray_address, "--gpus-per-task": args.gpus_per_task,
                 "--cpus-per-task": args.cpus_per_task, "--max-retries": args.max_retries}
    if name != "ray":
        given = [flag for flag, value in ray_flags.items() if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to the Ray engine: add --engine ray")
        return resolve_engine(name)
    return RayEngine(address=args.ray_address, num_gpus=args.gpus_per_task,
                     num_cpus=1 if args.cpus_per_task is None else args.cpus_per_task,
                     max_retries=3 if args.max_retries is None else args.max_retries)


def _experiment(args) -> int:
    import torch

    from . import experiments, precision, studies
    from .names import expand_victims

    if args.threads:
        torch.set_num_threads(args.threads)
    # a precision other than fp32: its own store (results-bf16/) and the passes put in it task by task
    engine, results_dir = precision.setup(args.precision or precision.current(), _engine(args), args.results_dir,
                                          args.device)
    names = list(experiments.PAPER_EXPERIMENTS) if args.name == "all" else [args.name]
    victims = expand_victims(args.victim)
    chosen = tuple(args.interpreters) if args.interpreters else None
    experiments.preflight(args.profile, victims, chosen or ("grad", "cam", "mask", "rts"),
                          100 if args.n_images is None else args.n_images, args.seed,
                          args.batch_size, args.device if engine.name == "serial" else "cpu")
    from . import chapters

    for victim in victims:
        for name in names:
            # the book's size of this experiment (the chapter plan), unless given
            planned = chapters.sizes(name, args.smoke)
            if args.n_images is not None:
                planned["n_images"] = args.n_images
            plan_interps = chapters.by_experiment(name).interpreters
            interps = chosen if chosen is not None else plan_interps
            run = studies.runner(name) if studies.is_study(name) else experiments.EXPERIMENTS[name]
            result = run(
                profile=args.profile, victim=victim, **({} if interps is None else {"interpreters": interps}),
                **planned, seed=args.seed, smoke=args.smoke, device=args.device,
                results_dir=results_dir, batch_size=args.batch_size, progress=not args.quiet, engine=engine)
            print(f"== {name} / {victim}: {result.seconds:.0f} s ({result.batches['computed']} result batches "
                  f"computed, {result.batches['loaded']} loaded from {result.results_dir})")
            print(result.summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            if result.matrix is not None:
                print(result.matrix.to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


def _info(args) -> int:
    import torch

    from .runner import hardware

    print(json.dumps({**hardware(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adv2lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    # ``--debug`` is accepted after the sub-command too (SUPPRESS keeps the top-level value).
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[debug])

    p = command("train-victim", help="train an embedded victim and write its weights + model card")
    p.add_argument("name", choices=["resnet", "densenet", "all"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint")
    p.set_defaults(func=_train_victim)

    p = command("train-rts", help="train the RTS masking network of a victim (weights + card)")
    p.add_argument("name", choices=["resnet", "densenet", "all"])
    p.add_argument("--profile", choices=["embedded", "imagenet"], default="embedded",
                   help="imagenet: Dabkowski & Gal's schedule (RTSTrainConfig.for_profile); needs --train-dir")
    p.add_argument("--train-dir", default=None, help="imagenet: training images, ImageFolder layout (wnid folders)")
    p.add_argument("--test-dir", default=None, help="imagenet: evaluation images (default: IMAGENET_VAL_DIR)")
    p.add_argument("--eval-images", type=int, default=2000, help="test images for the card's evaluation")
    p.add_argument("--steps", type=int, default=None, help="decoder training steps (default: RTSTrainConfig.steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint")
    p.set_defaults(func=_train_rts)

    p = command("train-aid", help="harden a victim's RTS by adversarial interpretation distillation (weights + card)")
    p.add_argument("name", choices=["resnet", "densenet", "all"])
    p.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: AIDConfig.steps)")
    p.add_argument("--eval-images", type=int, default=2000, help="test images for the card's evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint")
    p.set_defaults(func=_train_aid)

    p = command("data", help="dataset utilities")
    p.add_argument("action", choices=["fetch"])
    p.set_defaults(func=_data_fetch)

    from .runner import add_arguments as _book_arguments

    p = command("experiment", help="run (or resume) an attack experiment and print its summary")
    p.add_argument("name", choices=["main", "patch", "random_class", "transfer", "cross_model", "budget",
                                    "official_budget", "confidence", "ablation", "robustness", "ensemble",
                                    "ensemble_designs", "aid", "aid_premise", "aid_variants", "all"],
                   help="all: the four attack experiments of the paper (main, patch, random_class, transfer); "
                        "--n-images and the other sizes default to the book's (adv2lib/chapters.py)")
    p.add_argument("--victim", default="resnet", choices=["resnet", "densenet", "all"])
    p.add_argument("--profile", default="embedded", choices=["embedded", "imagenet"])
    p.add_argument("--interpreters", nargs="+", default=None,
                   help="default: the experiment's own (all four; budget and ablation: grad mask; aid: rts)")
    p.add_argument("--n-images", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="a few images, very few iterations")
    p.add_argument("--device", default="auto")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--engine", choices=["serial", "ray"], default=None,
                   help="where the batch tasks run: serial (this process; the default, or ADV2_ENGINE) or ray")
    p.add_argument("--ray-address", default=None,
                   help="the Ray cluster to join (default: RAY_ADDRESS, else a local cluster on this machine)")
    p.add_argument("--gpus-per-task", type=float, default=None,
                   help="GPUs per batch task (default: 1 when the cluster has GPUs, else 0; 0.5: two per GPU)")
    p.add_argument("--cpus-per-task", type=float, default=None, help="CPUs (and torch threads) per task (default 1)")
    p.add_argument("--max-retries", type=int, default=None, help="reruns of a task whose worker died (default 3)")
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "tf32"],
                   help="the victims' passes (adv2lib.precision; default ADV2_PRECISION, else fp32): bf16 runs into "
                        "its own store (results-bf16/ beside results/), with image selection and MASK in fp32")
    p.set_defaults(func=_experiment)

    p = command("info", help="print what this machine runs the attacks with (CPU, threads, CUDA, allocator) as JSON")
    p.set_defaults(func=_info)

    p = command("book", help="execute the notebooks (papermill, up-to-date ones skipped) and build the book")
    _book_arguments(p)
    p.set_defaults(func=_book)

    from .verify import add_arguments as _verify_arguments

    p = command("verify", help="recompute a sample of the record (or all of it: --all) and compare it with the "
                               "record; exit status 1 when an aggregate leaves its 95%% interval")
    _verify_arguments(p)
    p.set_defaults(func=_verify)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Adv2Error as err:
        if args.debug:
            raise
        print(f"adv2lib: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\nadv2lib: {INTERRUPTED}", file=sys.stderr)
        return 130
