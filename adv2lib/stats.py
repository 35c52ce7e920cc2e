"""Uncertainty of every number the book shows, computed one way, and the verdict rule on it.

The unit of sampling is the attacked image: a reported mean, difference or ratio of means is
an estimate from the images of one run, and its 95% interval says how far it could move on
another draw of images of the same kind.

====================  =================================================================
:func:`mean`           mean of per-image values; percentile bootstrap over images
:func:`paired`         ``"ratio"`` (mean a / mean b) or ``"difference"`` (mean a - mean b)
                       of two measurements of the *same* images (ADV2 vs PGD), paired
                       percentile bootstrap over the images where both are defined
:func:`rate`           a share of images (ASR, flagged, images closer): Wilson score interval
:func:`decide`         ``holds`` / ``does not hold`` / ``inconclusive at n = ...`` of an
                       interval against a bar
====================  =================================================================

Bootstrap: :func:`scipy.stats.bootstrap` (Efron & Tibshirani 1993, ch. 13), percentile
method, :data:`RESAMPLES` resamples, a generator seeded with :data:`SEED` at every call, so
the same values always give the same interval (a rebuild prints the same digits). Wilson:
:meth:`scipy.stats.binomtest(...).proportion_ci <scipy.stats._result_classes.BinomTestResult.proportion_ci>`
(Wilson 1927), which, unlike the normal approximation, stays inside [0, 1] and is not empty
at 0 or n successes. Values that are not finite (NaN: the map metrics of a failed attack)
are left out, so ``n`` counts the images an estimate rests on.

>>> iv = rate([True] * 9 + [False])
>>> round(iv.estimate, 2), round(iv.lo, 3), round(iv.hi, 3), iv.n
(0.9, 0.596, 0.982, 10)
>>> decide(iv, 0.5, ">="), decide(iv, 0.95, ">=")
('holds', 'inconclusive at n = 10')
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Interval", "mean", "paired", "rate", "decide", "RESAMPLES", "LEVEL", "SEED", "HOLDS", "FAILS",
           "INCONCLUSIVE", "METHOD", "MIN_BOOTSTRAP_N", "bootstrap", "bootstrap_weights"]

#: Bootstrap resamples per interval.
RESAMPLES = 2000
#: Confidence level of every interval in the book.
LEVEL = 0.95
#: Seed of the bootstrap's generator, fresh at every call.
SEED = 0
#: Fewest images on which a bootstrap interval may decide a verdict: with fewer, the percentile
#: bootstrap's intervals are too narrow (two images have three distinct resamples), so
#: :func:`decide` says "inconclusive". Wilson intervals are valid at any n.
MIN_BOOTSTRAP_N = 10
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
#: One sentence for captions and the Method chapter.
METHOD = (f"95% intervals: percentile bootstrap over images ({RESAMPLES:,} resamples, seeded) for means, "
          f"differences and ratios of means (paired: the same images under both attacks); Wilson score "
          f"intervals for rates")


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval ``[lo, hi]`` and the number of images ``n`` behind it."""

    estimate: float
    lo: float
    hi: float
    n: int
    method: str = "bootstrap"

    @property
    def defined(self) -> bool:
        return self.n > 0 and math.isfinite(self.estimate)

    def format(self, spec: str = "{:.3f}") -> str:
        """``"0.412 [0.371, 0.455]"`` (``"n/a"`` without images); ``spec`` formats each number."""
        if not self.defined:
            return "n/a"
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return spec.format(self.estimate)
        return f"{spec.format(self.estimate)} [{spec.format(self.lo)}, {spec.format(self.hi)}]"

    def __str__(self) -> str:
        return self.format()


NAN = float("nan")


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def bootstrap(data: tuple, statistic, paired_: bool) -> tuple[float, float]:
    """The 95% percentile bootstrap interval ``(lo, hi)`` of ``statistic`` over the arrays ``data``
    (:func:`scipy.stats.bootstrap`, vectorised, seeded; ``paired_``: resample their entries together)."""
    from scipy.stats import bootstrap

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")      # degenerate data (all values equal) give a zero-width interval
        res = bootstrap(data, statistic, paired=paired_, vectorized=True, n_resamples=RESAMPLES,
                        confidence_level=LEVEL, method="percentile", rng=np.random.default_rng(SEED))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean(values) -> Interval:
    """Mean of the finite ``values`` with its bootstrap interval over them.

    >>> mean([1.0, 1.0, float("nan")])
    Interval(estimate=1.0, lo=1.0, hi=1.0, n=2, method='bootstrap')
    """
    v = _finite(values)
    if len(v) == 0:
        return Interval(NAN, NAN, NAN, 0)
    est = float(v.mean())
    if len(v) == 1 or np.all(v == v[0]):
        return Interval(est, est, est, len(v)) if len(v) > 1 else Interval(est, NAN, NAN, 1)
    lo, hi = bootstrap((v,), lambda x, axis=-1: np.mean(x, axis=axis), False)
    return Interval(est, lo, hi, len(v))


def paired(a, b, kind: str = "ratio") -> Interval:
    """``mean(a) / mean(b)`` (``kind="ratio"``) or ``mean(a) - mean(b)`` (``"difference"``) over the
    images where both ``a[i]`` and ``b[i]`` are finite, with a paired bootstrap interval (each
    resample draws images, keeping an image's two values together).

    >>> paired([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]).estimate
    0.5
    """
    if kind not in ("ratio", "difference"):
        raise ValueError(f"kind must be 'ratio' or 'difference', got {kind!r}")
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same images: {a.shape} != {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return Interval(NAN, NAN, NAN, 0)

    def statistic(x, y, axis=-1):
        if kind == "ratio":
            return np.mean(x, axis=axis) / np.mean(y, axis=axis)
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    with np.errstate(all="ignore"):
        est = float(statistic(a, b))
    if len(a) == 1:
        return Interval(est, NAN, NAN, 1)
    lo, hi = bootstrap((a, b), statistic, True)
    return Interval(est, lo, hi, len(a))


def rate(successes: Sequence[bool] | None = None, *, k: int | None = None, n: int | None = None) -> Interval:
    """The share of ``successes`` (or ``k`` of ``n``) with its Wilson score interval.

    >>> rate(k=0, n=8).format("{:.2f}")
    '0.00 [0.00, 0.32]'
    """
    if successes is not None:
        s = np.asarray(successes)
        s = s[~np.isnan(s.astype(float))] if s.dtype.kind == "f" else s
        k, n = int(np.sum(s.astype(bool))), int(s.size)
    if n is None or k is None:
        raise ValueError("give successes, or k and n")
    if n == 0:
        return Interval(NAN, NAN, NAN, 0)
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=LEVEL, method="wilson")
    return Interval(k / n, float(ci.low), float(ci.high), int(n), "wilson")


def bootstrap_weights(statistic: Callable[[np.ndarray], np.ndarray], n: int, n_used: int | None = None) -> Interval:
    """A statistic of ``n`` images with its percentile bootstrap interval over the images, the
    way :mod:`adv2lib.stats` computes its own (:data:`~adv2lib.RESAMPLES` resamples, a
    generator seeded with :data:`~adv2lib.SEED` at every call, level
    :data:`~adv2lib.LEVEL`).

    ``statistic(weights)`` takes a ``(resamples, n)`` array of how often each image is drawn
    (a row of ones: the sample itself) and returns one value per row, so a statistic of several
    measurements of the same images (ADV2 and PGD, two RTS networks) keeps them together.
    ``n_used`` is the count reported (default ``n``).

    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> iv = bootstrap_weights(lambda w: (w @ x) / w.sum(1), 4)
    >>> iv.estimate, iv.lo <= 2.5 <= iv.hi, iv.n
    (2.5, True, 4)
    """
    n_used = n if n_used is None else n_used
    if n == 0 or n_used == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    with np.errstate(all="ignore"):
        est = float(np.asarray(statistic(np.ones((1, n))))[0])
        if n_used < 2:
            return Interval(est, float("nan"), float("nan"), n_used)
        rng = np.random.default_rng(SEED)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=RESAMPLES).astype(float)
        values = np.asarray(statistic(weights), dtype=float)
    values = values[np.isfinite(values)]
    if not np.isfinite(est) or values.size == 0:
        return Interval(est, float("nan"), float("nan"), n_used)
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return Interval(est, float(lo), float(hi), n_used)


def decide(interval: Interval, bar: float, side: str) -> str:
    """The verdict of ``interval`` against ``bar``: the claim is on the ``side`` of the bar
    (``">="``: at least it; ``"<="``: at most it; ``">"``/``"<"`` alike).

    **holds** when the whole interval lies on the claim's side, **does not hold** when the
    whole interval lies on the other side, **inconclusive at n = ...** otherwise (and when
    there is no interval, or a bootstrap interval on fewer than :data:`MIN_BOOTSTRAP_N` images).

    >>> decide(Interval(0.4, 0.3, 0.45, 100), 0.5, "<=")
    'holds'
    >>> decide(Interval(0.4, 0.3, 0.55, 100), 0.5, "<=")
    'inconclusive at n = 100'
    """
    if side not in (">=", "<=", ">", "<"):
        raise ValueError(f"side must be one of >=, <=, >, <; got {side!r}")
    if (not interval.defined or not (math.isfinite(interval.lo) and math.isfinite(interval.hi))
            or (interval.method == "bootstrap" and interval.n < MIN_BOOTSTRAP_N)):
        return f"{INCONCLUSIVE} at n = {interval.n}"
    if side in (">=", ">"):
        if interval.lo >= bar if side == ">=" else interval.lo > bar:
            return HOLDS
        if interval.hi < bar if side == ">=" else interval.hi <= bar:
            return FAILS
    else:
        if interval.hi <= bar if side == "<=" else interval.hi < bar:
            return HOLDS
        if interval.lo > bar if side == "<=" else interval.lo >= bar:
            return FAILS
    return f"{INCONCLUSIVE} at n = {interval.n}"
