"""What an experiment chapter does first: run the experiment for every victim, save its tables
and say what ran.

>>> run = run_chapter("main", victims=["resnet"], n_images=2, smoke=True)   # doctest: +SKIP
>>> run.summary                      # one frame over the victims   # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import chapters
from ..errors import ConfigError
from ..names import VICTIMS
from .files import save_experiment, tables_dir
from .text import scale_text

__all__ = ["CHAPTER_EXPERIMENTS", "ChapterRun", "chapter_request", "run_chapter"]

#: The experiments a chapter can run (``adv2lib.experiments.run_<name>``, or a study's: :mod:`adv2lib.studies`),
#: in book order: those of the chapter plan (:mod:`adv2lib.chapters`).
CHAPTER_EXPERIMENTS = tuple(c.experiment for c in chapters.PLAN if c.experiment)


@dataclass(frozen=True)
class ChapterRun:
    """The results of one chapter's experiment, one per victim, and what the chapter shows of them.

    ``results`` are the :class:`~adv2lib.experiments.ExperimentResult` objects in victim order,
    ``scale`` the caption sentence of :func:`~adv2lib.report.scale_text` and ``tables`` the CSV
    the comparison chapter reads. ``summary``, ``examples`` and ``iou`` join the victims' frames.
    """

    experiment: str
    results: list
    scale: str
    tables: Path

    @cached_property
    def summary(self) -> pd.DataFrame:
        return self._combine("summary")

    @cached_property
    def examples(self) -> pd.DataFrame:
        return self._combine("examples")

    @cached_property
    def iou(self) -> pd.DataFrame:
        return self._combine("iou")

    def _combine(self, attribute: str) -> pd.DataFrame:
        from ..plotting import combine

        return combine(self.results, attribute)

    @property
    def line(self) -> str:
        """``"This run: <scale>; wall time resnet 12 s (3 result batches computed, 15 loaded from the
        store; attacks 1,234 s when computed), densenet ..."``: what this call took and what it
        computed, beside the attacks' own time stored with the rows (:mod:`adv2lib.rows`)."""
        def one(r) -> str:
            batches = getattr(r, "batches", None) or {}
            parts = []
            if batches:
                parts.append(f"{batches.get('computed', 0)} result batches computed, {batches.get('loaded', 0)} "
                             f"loaded from the store")
            if "seconds" in r.examples:
                parts.append(f"attacks {r.examples['seconds'].sum():,.0f} s when computed")
            return f"{r.victim} {r.seconds:.0f} s" + (f" ({'; '.join(parts)})" if parts else "")

        return f"This run: {self.scale}; wall time " + ", ".join(one(r) for r in self.results) + "."


def chapter_request(experiment: str, profile: str = "embedded", victims: Sequence[str] = VICTIMS,
                    interpreters: Sequence[str] | None = None, n_images: int | None = None, seed: int = 0,
                    smoke: bool = False, **options) -> dict:
    """What :func:`run_chapter` asks of the experiment (:func:`adv2lib.record.request`): the
    arguments left out (or None) filled in from the chapter plan (:mod:`adv2lib.chapters`)."""
    from .. import chapters, record

    if isinstance(victims, str):
        victims = [victims]
    planned = chapters.sizes(experiment, smoke)
    planned_n = planned.pop("n_images", None)
    n_images = planned_n if n_images is None else n_images
    options = {**planned, **{k: v for k, v in options.items() if v is not None}}     # None: the plan's
    if interpreters is None:
        interpreters = chapters.by_experiment(experiment).interpreters
    return record.request(experiment, profile, smoke, victims, interpreters, n_images, seed, options)


def run_chapter(experiment: str, profile: str = "embedded", victims: Sequence[str] = VICTIMS,
                interpreters: Sequence[str] | None = None, n_images: int | None = None, seed: int = 0,
                device: str = "auto", smoke: bool = False, results_dir: str | Path | None = None,
                engine: str | None = None, show: bool = True, recompute: bool | None = None,
                **options) -> ChapterRun:
    """Run ``adv2lib.experiments.run_<experiment>`` once per victim (no progress bars), save the
    rows, figures and request as the record's table (:func:`~adv2lib.report.save_experiment`),
    display the "This run: ..." line (with ``show``) and return a :class:`ChapterRun`.

    When the record (:mod:`adv2lib.record`) already holds this request under the current code,
    data and weights (its key matches), nothing runs: the chapter is rendered from the record and
    the line says so. ``recompute`` (default: ``ADV2_RECOMPUTE``, set by ``python -m adv2lib book
    --recompute``) runs the experiment anyway; the results store serves what it already has.

    The precision is the setting's (:func:`adv2lib.precision.current`, ``ADV2_PRECISION``, set by
    ``python -m adv2lib book --precision``): in a precision other than fp32 the request names it, the
    record is that precision's folder and the results store its own (:func:`adv2lib.precision.setup`).

    ``interpreters``, ``n_images`` and the experiment's own options left out (or None) take the
    chapter plan's values at this scale (:mod:`adv2lib.chapters`), so a notebook run by hand runs at the
    book's size; ``engine``
    (``"serial"`` or ``"ray"``) is passed on only when given; ``options`` are the experiment's
    own keywords (``targets`` for ``patch``, ``factors`` for ``budget``).
    """
    from .. import record, studies

    if experiment not in CHAPTER_EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}: choose one of {', '.join(CHAPTER_EXPERIMENTS)}")
    if isinstance(victims, str):
        victims = [victims]
    run = studies.run_function(experiment)
    req = chapter_request(experiment, profile, victims, interpreters, n_images, seed, smoke, **options)
    interpreters, n_images, options = req["interpreters"], req["n_images"], req["options"]
    recompute = record.recompute_requested() if recompute is None else recompute
    recorded = None if recompute else record.lookup(experiment, req, tables_dir(profile, smoke, results_dir))
    if recorded is not None:
        chapter = ChapterRun(experiment, recorded.results(), scale_text(recorded.meta),
                             record.table_path(tables_dir(profile, smoke, results_dir), experiment))
        line = recorded.line
    else:
        from .. import precision

        # a precision other than fp32: its own store, and the engine that puts the passes in it
        engine, store = precision.setup(record.request_precision(req), engine, results_dir, device)
        given = {"interpreters": interpreters, "n_images": n_images, "engine": engine}
        kwargs = dict(profile=profile, seed=seed, smoke=smoke, device=device, results_dir=store,
                      progress=False, **{k: v for k, v in given.items() if v is not None}, **options)
        results = [run(victim=v, **kwargs) for v in victims]
        table = save_experiment(results, profile, smoke, results_dir, n_images=n_images, request=req)
        chapter = ChapterRun(experiment, results, scale_text(results, smoke=smoke), table)
        line = chapter.line
    if record.request_precision(req) != "fp32":
        from ..precision import FP32_INTERPRETERS

        line = (f"**Precision {record.request_precision(req)}**: the victims' passes in reduced precision, image "
                f"selection and the tasks of {', '.join(sorted(i.upper() for i in FP32_INTERPRETERS))} in fp32 "
                f"(`adv2lib.precision`); not the committed fp32 record. " + line)
    if show:
        from IPython.display import Markdown, display

        display(Markdown(line))
    return chapter
