"""Studies: experiments added beside the core, each keyed by its own code.

Every stored result of the core experiments (:mod:`adv2lib.experiments`) is keyed by
:func:`adv2lib.fingerprint.code`, the hash of :data:`adv2lib.fingerprint.ROOTS` and every module
they import; so any edit of that code recomputes every experiment, which on the 2-core machine
takes longer than a working session. A **study** is an experiment whose module is not imported by
the core: adding or editing it leaves the core's keys, and the record's tables of the core
experiments, as they are. Its own results carry one more key part, ``study_code`` (:func:`code`):
the same hash over the study's module and everything it imports within the package, the core
included. So a change to a study recomputes that study alone, and a change to the core
recomputes the core and every study.

A study module defines ``run_<name>`` with the core experiments' arguments
(:class:`~adv2lib.experiments.ExperimentSpec`) plus ``engine``, and returns an
:class:`~adv2lib.experiments.ExperimentResult`; :data:`STUDIES` names it.
"""
from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

from .. import fingerprint

__all__ = ["STUDIES", "closure_code", "closure_files", "code", "code_files", "is_study", "runner", "run_function"]

#: The studies: experiment name -> module (within ``adv2lib.studies``).
STUDIES = {"cross_model": "cross_model", "official_budget": "official_budget",
           "ensemble_designs": "ensemble_designs", "aid_premise": "aid_premise", "aid_variants": "aid_variants"}

_PACKAGE = Path(fingerprint.__file__).resolve().parent


def is_study(experiment: str) -> bool:
    return experiment in STUDIES


def closure_files(module: str, package: Path | None = None) -> list[Path]:
    """The package's module ``module`` (a path relative to the package) and the closure of its imports
    within the package: the walk of :func:`adv2lib.fingerprint.code_files`, started from ``module``
    instead of :data:`~adv2lib.fingerprint.ROOTS` (set for the call: ``fingerprint.py`` is part of the
    core's key, so it is reused as it is rather than edited). This module, the studies' registry and
    key helper, is left out, although every study imports :func:`code` from it: registering a study
    must not recompute the others (it did, until 2026-12-03)."""
    roots = fingerprint.ROOTS
    fingerprint.ROOTS = (module,)
    try:
        found = fingerprint.code_files(package)
    finally:
        fingerprint.ROOTS = roots
    return [p for p in found if not (p.name == "__init__.py" and p.parent.name == "studies")]


def closure_code(module: str, package: Path | None = None) -> str:
    """Hash of :func:`closure_files`, as :func:`adv2lib.fingerprint.code` hashes the core's (relative
    names and syntax trees without docstrings: comments and docstrings keep the results). Besides the
    studies, :func:`adv2lib.precision.code` keys a reduced precision's results by it."""
    pkg = Path(package) if package is not None else _PACKAGE
    h = hashlib.sha256()
    for p in closure_files(module, pkg):
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0" + fingerprint._code_text(p.read_text()).encode()
                 + b"\0")
    return h.hexdigest()[:fingerprint.DIGITS]


def code_files(experiment: str, package: Path | None = None) -> list[Path]:
    """The study's module and the closure of its imports within the package (:func:`closure_files`)."""
    return closure_files(f"studies/{STUDIES[experiment]}.py", package)


def code(experiment: str, package: Path | None = None) -> str:
    """The study's code hash (:func:`closure_code` of its module): its results' ``study_code``."""
    return closure_code(f"studies/{STUDIES[experiment]}.py", package)


def runner(experiment: str):
    """``run_<experiment>`` of a study."""
    module = importlib.import_module(f"{__name__}.{STUDIES[experiment]}")
    return getattr(module, f"run_{experiment}")


def run_function(experiment: str):
    """``run_<experiment>``: of :mod:`adv2lib.experiments`, or of a study."""
    if is_study(experiment):
        return runner(experiment)
    from .. import experiments

    return getattr(experiments, f"run_{experiment}")
