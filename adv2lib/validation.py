"""Declared types and ranges for configuration dataclasses.

A field states what it accepts next to its default, e.g.
``field(default=10, metadata={"check": Int(">= 1")})``, and :func:`validate_fields`, called
from ``__post_init__``, checks every field at once: a refused value raises one
:class:`~adv2lib.errors.ConfigError` line naming the class, the field, what is allowed and
the value given (``ADV2Config.check_every must be an integer >= 1, got 0``).

>>> Int(">= 1").text, Real("(0, 1]").text
('an integer >= 1', 'a number in (0, 1]')
"""
from __future__ import annotations

import math
import numbers
from dataclasses import fields

from .errors import ConfigError

__all__ = ["Int", "Real", "Bool", "Choice", "Optional", "Pair", "Pairs", "validate_fields"]


class _Refused(Exception):
    """Raised inside a spec when a value is not allowed (turned into a ConfigError by the loop)."""


class _Interval:
    """A range written as in the docs: ``">= 1"``, ``"> 0"``, ``"(0, 1]"``, ``"[0, 1)"``."""

    def __init__(self, text: str):
        t = text.strip()
        self.lo = self.hi = None
        self.lo_open = self.hi_open = False
        if t.startswith(">"):
            self.lo_open = not t.startswith(">=")
            self.lo = float(t.lstrip(">=").strip())
            self.text = t
        elif t[:1] in "([" and t[-1:] in ")]":
            lo, hi = (part.strip() for part in t[1:-1].split(","))
            self.lo, self.hi = float(lo), float(hi)
            self.lo_open, self.hi_open = t[0] == "(", t[-1] == ")"
            self.text = f"in {t}"
        else:
            raise ValueError(f"cannot read the range {text!r}")

    def __contains__(self, v) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            return False
        return True


class Int:
    """A real integer (``bool`` and floats such as ``2.5`` or ``3.0`` are refused), optionally
    in a range and odd; normalised to a Python ``int``."""

    def __init__(self, interval: str | None = None, odd: bool = False):
        self.interval = _Interval(interval) if interval else None
        self.odd = odd
        self.text = ("an odd integer" if odd else "an integer") + (f" {self.interval.text}" if interval else "")

    def __call__(self, v):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise _Refused
        v = int(v)
        if (self.interval is not None and v not in self.interval) or (self.odd and v % 2 == 0):
            raise _Refused
        return v


class Real:
    """A finite number (int or float, not ``bool`` or ``str``) in a range; normalised to ``float``."""

    def __init__(self, interval: str | None = None):
        self.interval = _Interval(interval) if interval else None
        self.text = "a number" + (f" {self.interval.text}" if interval else "")

    def __call__(self, v):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise _Refused
        v = float(v)
        if not math.isfinite(v) or (self.interval is not None and v not in self.interval):
            raise _Refused
        return v


class Bool:
    """``True`` or ``False`` (not 0/1, not a string)."""

    text = "True or False"

    def __call__(self, v):
        if not isinstance(v, bool):
            raise _Refused
        return v


class Choice:
    """One of a few strings."""

    def __init__(self, *options: str):
        self.options = options
        self.text = "one of " + ", ".join(repr(o) for o in options)

    def __call__(self, v):
        if not isinstance(v, str) or v not in self.options:
            raise _Refused
        return v


class Optional:
    """``None`` or what ``inner`` accepts."""

    def __init__(self, inner):
        self.inner = inner
        self.text = f"None or {inner.text}"

    def __call__(self, v):
        return None if v is None else self.inner(v)


class Pair:
    """A tuple (or list) of two values, each checked by its own spec; normalised to a tuple."""

    def __init__(self, first, second):
        self.items = (first, second)
        self.text = f"a pair ({first.text}, {second.text})"

    def __call__(self, v):
        if isinstance(v, (str, bytes)) or not isinstance(v, (tuple, list)) or len(v) != 2:
            raise _Refused
        return tuple(spec(item) for spec, item in zip(self.items, v))


class Pairs:
    """A (possibly empty) tuple or list of pairs, each checked by ``pair``; normalised to a tuple."""

    def __init__(self, pair: Pair):
        self.pair = pair
        self.text = f"a sequence (possibly empty) of pairs ({pair.items[0].text}, {pair.items[1].text})"

    def __call__(self, v):
        if isinstance(v, (str, bytes)) or not isinstance(v, (tuple, list)):
            raise _Refused
        return tuple(self.pair(item) for item in v)


def validate_fields(cfg) -> None:
    """Check every field of the dataclass ``cfg`` against the spec in its ``metadata["check"]``.

    A refused value raises one :class:`~adv2lib.errors.ConfigError` line naming the class,
    the field, what is allowed and the value given; an accepted one is stored normalised
    (``int``/``float``/``tuple``), also on frozen dataclasses.
    """
    for f in fields(cfg):
        spec = f.metadata.get("check")
        if spec is None:
            continue
        value = getattr(cfg, f.name)
        try:
            normalised = spec(value)
        except _Refused:
            raise ConfigError(f"{type(cfg).__name__}.{f.name} must be {spec.text}, got {value!r}") from None
        if normalised is not value:
            object.__setattr__(cfg, f.name, normalised)
