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
process: the serial engine only.

Not every task takes the reduced precision (:func:`task_precision`): image selection and every
task that runs MASK keep float32. MASK optimises a mask through hundreds of passes, and in bf16 it
moved two verdicts of the main experiment and one aggregate out of the record's interval (the
Reproduce chapter's precision tables); selection decides *which* images are attacked, and one
prediction flipped there would shift every later image. :class:`PrecisionEngine` runs a stage's
tasks in this process, each in its own precision.

Not yet a setting of the experiments: results computed under it are not keyed by it, so it is
used where no result is stored for reuse (``python -m adv2lib verify --precision``, which
recomputes into a scratch store deleted afterwards; ``scripts/bench_attacks.py --precision``).

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

import torch

from .errors import ConfigError

__all__ = ["PRECISIONS", "FP32_INTERPRETERS", "check", "autocast", "victim_passes", "task_precision",
           "PrecisionEngine"]

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


class PrecisionEngine:
    """The serial engine with every task in its precision (:func:`task_precision` of
    ``precision``): the victims' passes are patched per task, in this process only."""

    name = "serial"                     # the driver treats it as the serial engine (its own context)

    def __init__(self, precision: str, device_type: str = "cpu"):
        from .engines import SerialEngine

        self.precision = check(precision, device_type)
        self._serial = SerialEngine()

    def run(self, calls, worker, local, on_result) -> list:
        for call in calls:
            with victim_passes(task_precision(call.fn, call.inputs, self.precision)):
                self._serial.run([call], worker, local, on_result)
        return []

    def __repr__(self) -> str:
        return f"PrecisionEngine({self.precision!r})"
