"""Reduced-precision passes of the victims: bfloat16 autocast on the CPU, TF32 on CUDA (issue 25).

The book's cost is the victims' forward and backward passes (convolutions are 76% of a profiled
MASK attack). PyTorch's autocast runs the convolutions and linear layers of a region in bfloat16
(on the CPU through oneDNN, fast where the CPU has AVX-512 BF16) and leaves every other operation
in the precision of its inputs (https://pytorch.org/docs/stable/amp.html, "CPU Ops that can
autocast to bfloat16"). TF32 is CUDA's tensor-core format for float32 matrix products
(``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``).

:func:`victim_passes` puts every victim's passes in a precision for the duration of a ``with``
block: :meth:`Victim.pyramid <adv2lib.models.victim.Victim.pyramid>` (its feature maps at every
scale) and :meth:`Victim.head <adv2lib.models.victim.Victim.head>` (pooling and the classifier)
run under autocast and return float32, so the maps, losses, metrics and the projection that use
them stay in float32; gradients flow back through the casts to float32 inputs. It patches the
class, so it reaches every victim of the process (the RTS encoder included) but not another
process: :class:`InPrecision` applies it where a task runs.

Not every task takes the reduced precision (:func:`task_precision`): image selection and every
task that runs MASK keep float32. MASK optimises a mask through hundreds of passes, and in bf16 it
moved two verdicts of the main experiment and one aggregate out of the record's interval (the
Reproduce chapter's precision tables); selection decides *which* images are attacked, and one
prediction flipped there would shift every later image. :class:`PrecisionEngine` runs a stage's
tasks in this process, each in its own precision.

The setting (:func:`current`, ``ADV2_PRECISION``; ``python -m adv2lib book|experiment|verify
--precision``) keeps each precision's results apart without touching the core's run keys
(:mod:`adv2lib.fingerprint`: naming the precision there edits the core, which recomputes the whole
fp32 record, hours on 2 cores). The same pattern as :mod:`adv2lib.studies`:

* the **results store** of a precision other than fp32 is a store of its own beside the fp32 one
  (:func:`store_dir`: ``results-bf16/`` beside ``results/``), marked with its precision
  (:func:`claim_store`: a run in one precision refuses a store marked with another, and a bf16 run
  an unmarked store that already holds runs);
* the **record** of a precision other than fp32 is a folder of its own (``record/embedded-full-bf16/``,
  :func:`adv2lib.record.scale_label`), and its key names the precision and this module's code
  (:func:`code`: a change here recomputes the bf16 record, never the fp32 one), in the chapters'
  requests and in :func:`adv2lib.record.inputs`;
* the **passes** are put in the precision task by task (:class:`PrecisionEngine`, which wraps the
  serial or the Ray engine: the wrapped task, :class:`InPrecision`, patches the victims in the
  process that runs it).

In fp32 none of this runs: the fp32 record, its keys and its numbers are those of the core alone.

>>> import torch
>>> from adv2lib.models.embedded import SmallResNet
>>> victim = SmallResNet().eval()
>>> with victim_passes("bf16"):
...     logits = victim(torch.rand(2, 1, 28, 28))
>>> logits.dtype
torch.float32
"""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from .errors import ConfigError

__all__ = ["PRECISIONS", "FP32_INTERPRETERS", "ENV", "MARKER", "check", "current", "suffix", "code", "store_dir",
           "claim_store", "setup", "native", "autocast", "victim_passes", "task_precision", "InPrecision", "PrecisionEngine"]

#: The environment variable of the setting (``python -m adv2lib book --precision`` sets it for its kernels).
ENV = "ADV2_PRECISION"
#: The file at a results store's root that names the precision of its results (:func:`claim_store`).
MARKER = "PRECISION"

#: The precisions: ``fp32`` (float32 throughout, the record's), ``bf16`` (bfloat16 autocast, CPU or
#: CUDA), ``tf32`` (CUDA only: float32 tensors, TF32 tensor-core products).
PRECISIONS = ("fp32", "bf16", "tf32")

#: The interpreters whose tasks keep float32 whatever the precision (see the module's docstring).
FP32_INTERPRETERS = frozenset({"mask"})

#: The inputs of a batch task that name the interpreters it runs: one (``interpreter``: a name or a
#: variant ``(name, options)``) or several (the ensemble's ``interpreters``, ``members``, ``evaluate``).
_INTERPRETER_INPUTS = ("interpreter", "interpreters", "members", "evaluate")


def check(precision: str, device_type: str = "cpu") -> str:
    """``precision``, or a :class:`~adv2lib.errors.ConfigError` saying why it cannot run on ``device_type``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "tf32" and device_type != "cuda":
        raise ConfigError("precision 'tf32' is a CUDA tensor-core format: use 'bf16' or 'fp32' on the CPU")
    return precision


def current() -> str:
    """The precision of this process's chapters, record and runs: ``ADV2_PRECISION``, default ``fp32``."""
    return check(os.environ.get(ENV) or "fp32", "cuda")         # the device is checked where the passes run


def suffix(precision: str | None = None) -> str:
    """What a precision adds to the name of a store or a record folder: ``""`` for fp32, else ``"-bf16"`` etc.

    >>> suffix("fp32"), suffix("bf16")
    ('', '-bf16')
    """
    precision = current() if precision is None else check(precision, "cuda")
    return "" if precision == "fp32" else f"-{precision}"


def code(package: Path | None = None) -> str:
    """Hash of this module and what it imports within the package (:func:`adv2lib.studies.closure_code`;
    ``package``: another copy of it): part of the key of every result in a precision other than fp32."""
    from .studies import closure_code

    return closure_code("precision.py", package)


def store_dir(results_dir, precision: str) -> Path:
    """The results store of ``precision`` for the store ``results_dir`` (None: ``ADV2_RESULTS_DIR`` or
    ``results/``): the same folder for fp32, else a sibling named with :func:`suffix` (kept when the
    name already ends with it).

    >>> store_dir("/data/results", "fp32").as_posix(), store_dir("/data/results", "bf16").as_posix()
    ('/data/results', '/data/results-bf16')
    >>> store_dir("/data/results-bf16", "bf16").as_posix()
    '/data/results-bf16'
    """
    from . import paths

    base = Path(results_dir) if results_dir else paths.results_dir()
    end = suffix(precision)
    return base if not end or base.name.endswith(end) else base.with_name(base.name + end)


def claim_store(root, precision: str) -> Path:
    """``root``, after checking that it holds results of ``precision`` only: a
    :class:`~adv2lib.errors.ConfigError` when its :data:`MARKER` names another precision, or (for a
    precision other than fp32) when it has no marker but already holds runs; a store of a reduced
    precision is marked on first use. An unmarked store is an fp32 one (every store before the setting)."""
    root = Path(root)
    marker = root / MARKER
    named = marker.read_text().strip() if marker.is_file() else None
    if named is None and precision != "fp32":
        if root.is_dir() and any(root.rglob("manifest.json")):
            named = "fp32"
        else:
            root.mkdir(parents=True, exist_ok=True)
            marker.write_text(precision + "\n")
            named = precision
    if (named or "fp32") != precision:
        raise ConfigError(f"the results store {root} holds {named} results, not {precision}: a store serves one "
                          "precision only (choose another --results-dir)")
    return root


def native(precision: str, device_type: str = "cpu") -> bool:
    """Whether ``device_type`` computes in ``precision`` in hardware. fp32 always; tf32 and bf16 on CUDA
    where the GPU has them; bf16 on the CPU only with the AVX-512 BF16 or the AMX extension. Without
    them oneDNN still runs bfloat16 autocast, without the hardware's bfloat16 instructions, and it
    can be *slower* than float32: on an Ice Lake Xeon without AVX-512 BF16 the attack benchmark
    (``scripts/bench_attacks.py --precision fp32 bf16``) measured every attack slower in bf16
    (issue 25's closing note). Checked with PyTorch's CPU capability probes
    (``torch.cpu._is_avx512_bf16_supported``, ``torch.cpu._is_amx_tile_supported``)."""
    precision = check(precision, device_type)
    if precision == "fp32":
        return True
    if device_type == "cuda":
        return torch.cuda.is_available() and (precision == "tf32" or torch.cuda.is_bf16_supported())
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(probe() for probe in probes if probe is not None)


@contextlib.contextmanager
def autocast(precision: str, device_type: str = "cpu"):
    """The ``with`` block's matrix products and convolutions in ``precision`` (``fp32``: unchanged)."""
    check(precision, device_type)
    if precision == "bf16":
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
    elif precision == "tf32":
        flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
    else:
        yield


def _float(value):
    return [v.float() for v in value] if isinstance(value, (list, tuple)) else value.float()


@contextlib.contextmanager
def victim_passes(precision: str):
    """Every victim's passes in ``precision`` while the block runs (see the module's docstring)."""
    from .models.victim import Victim

    if precision == "fp32":
        yield
        return
    check(precision, "cuda" if precision == "tf32" else "cpu")
    originals = {name: getattr(Victim, name) for name in ("pyramid", "head")}

    def wrap(method):
        def run(self, x):
            with autocast(precision, x.device.type):
                return _float(method(self, x))
        run.__doc__ = method.__doc__
        return run

    try:
        for name, method in originals.items():
            setattr(Victim, name, wrap(method))
        yield
    finally:
        for name, method in originals.items():
            setattr(Victim, name, method)


def _interpreter_names(inputs: dict) -> set[str]:
    names = set()
    for field in _INTERPRETER_INPUTS:
        value = inputs.get(field)
        if value is None:
            continue
        if isinstance(value, str) or (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict)):
            value = [value]                             # one name, or one variant (name, options)
        names.update(v if isinstance(v, str) else v[0] for v in value)
    return names


def task_precision(fn, inputs: dict, precision: str) -> str:
    """The precision the batch task ``fn(ctx, **inputs)`` runs in when the setting is ``precision``:
    float32 for image selection (:func:`adv2lib.tasks.select_chunk`) and for any task that runs an
    interpreter of :data:`FP32_INTERPRETERS`; ``precision`` otherwise.

    >>> from adv2lib import tasks
    >>> [task_precision(tasks.attack_batch, {"interpreter": name}, "bf16") for name in ("cam", "mask")]
    ['bf16', 'fp32']
    >>> task_precision(tasks.select_chunk, {}, "bf16"), task_precision(tasks.pgd_batch, {}, "bf16")
    ('fp32', 'bf16')
    """
    from .tasks import select_chunk

    if precision == "fp32" or fn is select_chunk or _interpreter_names(inputs) & FP32_INTERPRETERS:
        return "fp32"
    return precision


class InPrecision:
    """The batch task ``fn(ctx, **inputs)`` with every victim's passes in ``precision``
    (:func:`victim_passes`, in the process that runs it: picklable, so a Ray worker applies it too)."""

    def __init__(self, fn, precision: str):
        self.fn, self.precision = fn, precision
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)      # the Ray engine's test hook reads it

    def __call__(self, ctx, **inputs):
        with victim_passes(self.precision):
            return self.fn(ctx, **inputs)

    def __repr__(self) -> str:
        return f"InPrecision({self.__name__}, {self.precision!r})"


class PrecisionEngine:
    """An engine (serial or Ray: :func:`adv2lib.engines.resolve_engine` of ``engine``) with every task
    in its precision (:func:`task_precision` of ``precision``): the tasks that keep fp32 run as they
    are, the others wrapped in :class:`InPrecision`. The driver sees the wrapped engine's ``name``.
    A ``RuntimeWarning`` when the device has no such arithmetic in hardware (:func:`native`)."""

    def __init__(self, precision: str, engine=None, device_type: str = "cpu"):
        from .engines import resolve_engine

        self.precision = check(precision, device_type)
        self.inner = resolve_engine(engine)
        if not native(precision, device_type):
            warnings.warn(f"this {device_type.upper()} has no {precision} arithmetic in hardware: the run is emulated, "
                          "and can be slower than fp32 (adv2lib.precision.native)", RuntimeWarning, stacklevel=2)

    @property
    def name(self) -> str:
        return getattr(self.inner, "name", "")

    def run(self, calls, worker, local, on_result) -> list:
        wrapped, original = [], {}
        for call in calls:
            chosen = task_precision(call.fn, call.inputs, self.precision)
            task = call if chosen == "fp32" else replace(call, fn=InPrecision(call.fn, chosen))
            wrapped.append(task)
            original[id(task)] = call
        return self.inner.run(wrapped, worker, local, lambda task, value: on_result(original[id(task)], value))

    def __repr__(self) -> str:
        return f"PrecisionEngine({self.precision!r}, {self.inner!r})"


def setup(precision: str, engine=None, results_dir=None, device: str = "cpu"):
    """``(engine, store)`` of a run in ``precision``: for fp32 ``engine`` as given and the store
    ``results_dir`` (checked: not a store of another precision); else a :class:`PrecisionEngine`
    around ``engine`` and the precision's own store (:func:`store_dir`, :func:`claim_store`)."""
    precision = check(precision, "cuda")
    store = claim_store(store_dir(results_dir, precision), precision)
    if precision == "fp32":
        return engine, (results_dir if results_dir else None)
    device_type = "cpu" if str(device) == "cpu" else ("cuda" if torch.cuda.is_available() else "cpu")
    return PrecisionEngine(precision, engine, device_type), str(store)
