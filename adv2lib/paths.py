"""Every location the project reads or writes, in one place.

Defaults are relative to the repository root; each can be overridden by an
environment variable so that a user can point the library at their own data,
weights or scratch space without editing code.

========================  ==================================  =====================================
variable                  default                             holds
========================  ==================================  =====================================
``ADV2_ROOT``             the repository root                 base of every default below
``ADV2_DATA_DIR``         ``<root>/data``                     downloaded datasets
``FASHION_MNIST_DIR``     (unset)                             Fashion-MNIST IDX files, checked first
``ADV2_WEIGHTS_DIR``      ``<root>/weights``                  committed victim / RTS weights + cards
``ADV2_RESULTS_DIR``      ``<root>/results``                  attack results (the results store)
``ADV2_CACHE_DIR``        ``<root>/cache``                    papermill run stamps, scratch
``IMAGENET_VAL_DIR``      (unset)                             ImageNet-val ``ImageFolder`` root
``TORCH_HOME``            torch's default                     torchvision ImageNet weights
========================  ==================================  =====================================
"""
from __future__ import annotations

import os
from pathlib import Path

#: Debian's ``dataset-fashion-mnist`` package installs the IDX files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def root() -> Path:
    """Repository root (the directory holding ``adv2lib/``)."""
    return _env_path("ADV2_ROOT", Path(__file__).resolve().parent.parent)


def data_dir() -> Path:
    return _env_path("ADV2_DATA_DIR", root() / "data")


def weights_dir() -> Path:
    return _env_path("ADV2_WEIGHTS_DIR", root() / "weights")


def results_dir() -> Path:
    return _env_path("ADV2_RESULTS_DIR", root() / "results")


def imagenet_weights_file(arch: str) -> Path:
    """The local ImageNet state dict ``<weights_dir>/imagenet/<arch>.pth`` (used before any download)."""
    return weights_dir() / "imagenet" / f"{arch}.pth"


def cache_dir() -> Path:
    return _env_path("ADV2_CACHE_DIR", root() / "cache")


def fashion_mnist_env_dir() -> Path | None:
    value = os.environ.get("FASHION_MNIST_DIR")
    return Path(value).expanduser() if value else None


def imagenet_val_dir() -> Path | None:
    value = os.environ.get("IMAGENET_VAL_DIR")
    return Path(value).expanduser() if value else None


def book_dir() -> Path:
    return root() / "book"


def notebooks_dir() -> Path:
    return root() / "notebooks"
