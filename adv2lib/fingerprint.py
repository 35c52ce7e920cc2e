"""Fingerprints of everything that determines a stored number.

A result may be reused only when every input that produced it is the same. The results
store (experiment keys) and the book runner (notebook stamps) build their keys from these:

==========================  ===========================================================
:func:`tensors`             the images, labels and target classes actually attacked
                            (dtype, shape and bytes of each tensor)
:func:`state_dict`          a model's parameters and buffers (victim, RTS network, RTS
                            encoder), whatever file or enum they came from
:func:`code`                the library code that computes numbers: every ``adv2lib``
                            module except the presentation ones (:data:`PRESENTATION`),
                            as syntax trees (a docstring or comment edit keeps results)
:func:`dataset_files`       the dataset a profile reads, for the runner's stamps (the
                            Fashion-MNIST IDX files by content; an ImageNet folder by its
                            listing of names, sizes and modification times)
==========================  ===========================================================

Hashes are SHA-256, shortened to 16 hex digits where they go into keys.

>>> import torch
>>> tensors(torch.zeros(2, 3)) == tensors(torch.zeros(2, 3)), tensors(torch.zeros(2, 3)) == tensors(torch.ones(2, 3))
(True, False)
"""
from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path

import torch

from . import paths
from .fileio import sha256_file

__all__ = ["tensors", "state_dict", "code", "code_files", "dataset_files", "imagenet_weights", "PRESENTATION"]

#: Modules (file names in the package's top folder) and subpackages (``"<name>/"``) that present
#: numbers but never compute a stored one; a change to them does not invalidate results (it
#: re-executes the book's notebooks, whose stamps hash the whole library).
PRESENTATION = frozenset({"cli.py", "__main__.py", "runner.py", "report/", "plotting.py", "paper_numbers.py",
                          "faithfulness.py", "fingerprint.py", "errors.py", "names.py", "engines.py",
                          "allocator.py"})

DIGITS = 16


def _tensor_update(h, t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous()
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def tensors(*items: torch.Tensor) -> str:
    """Hash of the given tensors, in order (dtype, shape and bytes)."""
    h = hashlib.sha256()
    for t in items:
        _tensor_update(h, torch.as_tensor(t))
    return h.hexdigest()[:DIGITS]


def state_dict(module: torch.nn.Module) -> str:
    """Hash of a module's state dict (names, dtypes, shapes and values of parameters and buffers)."""
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        h.update(name.encode() + b"\0")
        if torch.is_tensor(value):
            _tensor_update(h, value)
        else:
            h.update(repr(value).encode())
    return h.hexdigest()[:DIGITS]


def code_files(package: Path | None = None) -> list[Path]:
    """The library source files whose code computes stored numbers (``package``: the
    ``adv2lib`` directory, this one by default)."""
    pkg = Path(package) if package is not None else Path(__file__).resolve().parent
    files = [p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(p for p in files if not _is_presentation(p.relative_to(pkg).parts))


def _is_presentation(parts: tuple[str, ...]) -> bool:
    """Whether the package file at relative path ``parts`` is listed in :data:`PRESENTATION`."""
    return (len(parts) == 1 and parts[0] in PRESENTATION) or (len(parts) > 1 and f"{parts[0]}/" in PRESENTATION)


_CODE_CACHE: dict[tuple, str] = {}


def _code_text(source: str) -> str:
    """The syntax tree of ``source`` without docstrings: comments, docstrings and layout do not
    compute numbers, so editing them keeps the stored results."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code(package: Path | None = None) -> str:
    """Hash of :func:`code_files` (relative names and syntax trees without docstrings), cached
    per modification times."""
    pkg = Path(package) if package is not None else Path(__file__).resolve().parent
    files = code_files(pkg)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if stamp not in _CODE_CACHE:
        h = hashlib.sha256()
        for p in files:
            h.update(p.relative_to(pkg).as_posix().encode() + b"\0" + _code_text(p.read_text()).encode() + b"\0")
        _CODE_CACHE[stamp] = h.hexdigest()[:DIGITS]
    return _CODE_CACHE[stamp]


def _folder_listing(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            st = p.stat()
            h.update(f"{p.relative_to(root).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:DIGITS]


def dataset_files(profile: str) -> dict:
    """What the runner's stamps record of the dataset ``profile`` reads (see the module docstring).

    Embedded: the located Fashion-MNIST test files and their content hashes (an explicit but wrong
    ``FASHION_MNIST_DIR`` raises, as loading would). ImageNet: ``IMAGENET_VAL_DIR`` and its
    listing (hashing 6 GB of images per build would cost minutes; the experiments' own keys
    hash the images they attack, so a changed image is never reused even if the listing misses it).
    """
    if profile == "embedded":
        from .data import locate_fashion_mnist

        found = locate_fashion_mnist("test")      # the book attacks test images; training shows in the weights
        return {"test": None if found is None else {str(p): sha256_file(p)[:DIGITS] for p in found}}
    root = paths.imagenet_val_dir()
    if root is None or not root.is_dir():
        return {"imagenet_val_dir": None if root is None else str(root), "listing": None}
    return {"imagenet_val_dir": str(root.resolve()), "listing": _folder_listing(root)}


def imagenet_weights() -> dict:
    """Per ImageNet architecture, the weights :func:`adv2lib.models.load_victim` would use without
    loading them: a local file by content hash, else torchvision's ``IMAGENET1K_V1`` enum by its
    URL, which carries torchvision's published hash of the file."""
    from .models.imagenet import ARCH_OF, torchvision_weights

    out = {}
    for arch in ARCH_OF.values():
        local, entry = paths.imagenet_weights_file(arch), torchvision_weights(arch)
        out[arch] = f"file:{sha256_file(local)[:DIGITS]}" if local.is_file() else f"torchvision:{entry}:{entry.url}"
    return out
