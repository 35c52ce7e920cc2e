"""The cells a claim is judged on, each a statistic with its interval against a bar with a source.

A claim of the paper is checked on *cells* (a victim x interpreter pair, an entry of the
transfer table, a victim); a cell on one or more *tests*, each one statistic's 95% interval
against a :class:`Bar`. Every report module that judges something returns its tests as rows of
one tidy frame (:func:`judge`), which :mod:`.claims` combines:

* a test **holds** when its whole interval is on the claim's side of the bar, **does not hold**
  when its whole interval is on the other side, and is **inconclusive at n = ...** otherwise
  (:func:`adv2lib.stats.decide`);
* a cell holds when every test holds, does not hold when some test does not, and is
  inconclusive otherwise (:func:`combine`);
* a claim holds when every cell holds, does not hold when every cell does not, is inconclusive
  when every cell is, and holds **partly** otherwise, with the counts (:func:`claim_verdict`).

A bar names its source: a number of the paper (table and reading), or "our bar" with a reason;
for our bars the verdict is also given with the bar 20 % stricter and 20 % looser (:data:`SHIFT`):
moved by a fifth of its size against or toward the claim, or, for a bar on a probability that the
claim wants high (``bounded``), by a fifth of its distance to 1, so that a bar of 0.9 becomes 0.92
and 0.88, never 1.08.

>>> from adv2lib.stats import Interval
>>> bar = Bar(0.5, "<=", "our bar: the paper's 'much closer' read as at most half of PGD's distance")
>>> row = judge("l1", {"victim": "resnet", "interpreter": "cam"}, "L1 ADV2 / PGD", Interval(0.4, 0.3, 0.45, 100), bar)
>>> row["verdict"], row[STRICTER], row[LOOSER]
('holds', 'inconclusive at n = 100', 'holds')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pandas as pd

from .. import stats

__all__ = ["Bar", "SHIFT", "STRICTER", "LOOSER", "judge", "combine", "claim_verdict", "cell_verdicts", "CELL_KEYS"]

#: The sensitivity of a verdict to one of our bars: the bar moved by this fraction either way.
SHIFT = 0.2
STRICTER, LOOSER = "verdict, bar 20% stricter", "verdict, bar 20% looser"
#: The columns that name a cell (those a test row has).
CELL_KEYS = ("victim", "interpreter", "source_interpreter", "column")


@dataclass(frozen=True)
class Bar:
    """A threshold: the claim is on ``side`` of ``value`` (``">="`` or ``"<="``); ``source`` says
    where the number comes from. A source starting with "our bar" is ours (sensitivity shown)."""

    value: float
    side: str
    source: str
    bounded: bool = False

    @property
    def ours(self) -> bool:
        return self.source.lower().startswith("our bar")

    def moved(self, stricter: bool) -> "Bar":
        """The bar moved by :data:`SHIFT` against the claim (``stricter``) or toward it."""
        room = (1.0 - self.value) if self.bounded and self.side in (">=", ">") else abs(self.value)
        step = SHIFT * room * (1 if stricter else -1)
        return Bar(self.value + step if self.side in (">=", ">") else self.value - step, self.side, self.source,
                   self.bounded)


def judge(claim: str, where: dict, statistic: str, interval: stats.Interval, bar: Bar) -> dict:
    """One test of a cell: ``claim`` id, the cell (``where``: victim, interpreter, ...), the
    ``statistic`` (its name in words), its interval, the bar and its source, the verdict and,
    for our bars, the verdicts at the moved bars."""
    row = {"claim": claim, **where, "statistic": statistic, "estimate": interval.estimate, "lo": interval.lo,
           "hi": interval.hi, "n": interval.n, "side": bar.side, "bar": bar.value, "bar source": bar.source,
           "ours": bar.ours, "verdict": stats.decide(interval, bar.value, bar.side)}
    for name, stricter in ((STRICTER, True), (LOOSER, False)):
        row[name] = stats.decide(interval, bar.moved(stricter).value, bar.side) if bar.ours else ""
    return row


def _kind(verdict: str) -> str:
    return "inconclusive" if verdict.startswith(stats.INCONCLUSIVE) else verdict


def _inconclusive(verdicts: list[str]) -> str:
    """The verdict of inconclusive ones: "inconclusive at n = N" when they agree on N."""
    found = [v for v in verdicts if _kind(v) == "inconclusive"]
    return found[0] if len(set(found)) == 1 else stats.INCONCLUSIVE


def combine(verdicts: Iterable[str]) -> str:
    """A cell's verdict from its tests' verdicts: holds when all hold, does not hold when one does not."""
    return _aggregate(list(verdicts), any_fails=True)


def claim_verdict(cell_verdicts: Iterable[str]) -> str:
    """A claim's verdict from its cells' verdicts (see the module docstring)."""
    return _aggregate(list(cell_verdicts), any_fails=False)


def _aggregate(verdicts: list[str], any_fails: bool) -> str:
    if not verdicts:
        return "not tested"
    kinds = [_kind(v) for v in verdicts]
    if all(k == stats.HOLDS for k in kinds):
        return stats.HOLDS
    if (any if any_fails else all)(k == stats.FAILS for k in kinds):
        return stats.FAILS
    if any_fails or all(k == "inconclusive" for k in kinds):
        return _inconclusive(verdicts)
    h, f, i = (sum(k == x for k in kinds) for x in (stats.HOLDS, stats.FAILS, "inconclusive"))
    return f"partly ({h} of {len(kinds)} cells hold, {f} do not, {i} inconclusive)"


def cell_verdicts(tests: pd.DataFrame, column: str = "verdict") -> pd.DataFrame:
    """Per claim and cell of a frame of test rows: the cell's verdict (:func:`combine`)."""
    keys = ["claim", *[c for c in CELL_KEYS if c in tests.columns]]
    if tests.empty:
        return pd.DataFrame(columns=[*keys, column])
    return (tests.groupby(keys, sort=False, dropna=False)[column].agg(lambda v: combine(list(v)))
            .reset_index())
