"""Result tables the book reads, and the paper-vs-this-reproduction comparison."""
from __future__ import annotations

from pathlib import Path

from . import paths


def scale_label(profile: str, smoke: bool) -> str:
    return f"{profile}-{'smoke' if smoke else 'full'}"


def tables_dir(profile: str = "embedded", smoke: bool = False, results_dir: str | Path | None = None) -> Path:
    """``<results>/tables/<profile>-<smoke|full>/``: the summary tables the notebooks write."""
    base = Path(results_dir) if results_dir else paths.results_dir()
    return base / "tables" / scale_label(profile, smoke)
