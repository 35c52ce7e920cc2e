"""Fingerprints of everything that determines a stored number.

A result may be reused only when every input that produced it is the same. The results
store (experiment keys) and the book runner (notebook stamps) build their keys from these:

==========================  ===========================================================
:func:`tensors`             the images, labels and target classes actually attacked
                            (dtype, shape and bytes of each tensor)
:func:`state_dict`          a model's parameters and buffers (victim, RTS network, RTS
                            encoder), whatever file or enum they came from
:func:`code`                the library code that computes numbers: the batch tasks and
                            experiment plans (:data:`ROOTS`) and every ``adv2lib`` module
                            they import, found by following their imports (:func:`code_files`),
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

__all__ = ["tensors", "state_dict", "code", "code_files", "imports", "dataset_files", "imagenet_weights", "ROOTS"]

#: The modules whose code computes stored numbers: the batch tasks (:mod:`adv2lib.tasks`) and the
#: experiment plans that choose their inputs (:mod:`adv2lib.experiments`: images, targets, pairings,
#: seeds). Their import closure is what a result's key covers; every other module (the report, the
#: plots, the runner, the CLI) can change without recomputing anything, and the book's notebook
#: stamps, which hash the whole library, re-render the chapters instead.
ROOTS = ("tasks.py", "experiments.py")

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


def _module_file(pkg: Path, parts: list[str]) -> Path | None:
    """The file of the package module ``parts`` (relative to ``pkg``): ``a/b.py`` or ``a/b/__init__.py``."""
    base = pkg.joinpath(*parts) if parts else pkg
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def imports(path: Path, package: Path | None = None) -> set[Path]:
    """The package's files that the module at ``path`` imports, anywhere in its code (module level
    or inside a function), with the ``__init__.py`` of every package on the way: ``import adv2lib.x``,
    ``from adv2lib.x import y``, ``from .x import y``, ``from . import x`` (``x`` a module or a name
    of the package's ``__init__``)."""
    pkg = Path(package) if package is not None else Path(__file__).resolve().parent
    here = list(path.resolve().relative_to(pkg.resolve()).parent.parts)
    top = pkg.name
    found: set[Path] = set()

    def add(parts: list[str], names=()) -> None:
        for i in range(len(parts) + 1):                     # the packages on the way, then the module
            f = _module_file(pkg, parts[:i])
            if f is not None:
                found.add(f)
        for name in names:                                  # ``from pkg import module``
            f = _module_file(pkg, [*parts, name])
            if f is not None:
                found.add(f)

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                dotted = alias.name.split(".")
                if dotted[0] == top:
                    add(dotted[1:])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else list(here)
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == top:
                parts = node.module.split(".")[1:]
            else:
                continue
            add(parts, [a.name for a in node.names])
    return found


def code_files(package: Path | None = None) -> list[Path]:
    """The library source files whose code computes stored numbers: :data:`ROOTS` and the closure of
    their imports within the package (``package``: the ``adv2lib`` directory, this one by default)."""
    pkg = Path(package) if package is not None else Path(__file__).resolve().parent
    todo = [pkg / r for r in ROOTS]
    seen: set[Path] = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(imports(f, pkg) - seen)
    return sorted(seen)


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
    listing = sorted(p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in listing)
    if stamp not in _CODE_CACHE:
        h = hashlib.sha256()
        for p in code_files(pkg):
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
