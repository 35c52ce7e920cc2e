"""No result typed into prose (issue 22): every number in the chapters' Markdown that looks like a
result (a decimal, a percentage, "k of n") is either a myst-nb glue reference, a number of the
paper (adv2lib/paper_numbers.py), or a setting of the protocol listed below with its source.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adv2lib import paper_numbers, paths
from adv2lib.attacks.config import EMBEDDED_CONFIDENCE
from adv2lib.report import claims

NOTEBOOKS = sorted(paths.notebooks_dir().glob("*.ipynb"))

#: What is not prose: glue and other roles, inline code, maths, links' targets.
_NOT_PROSE = [r"Python \d+\.\d+\+?", r"\{[a-z:]+\}`[^`]*`", r"`[^`]*`", r"\$\$.*?\$\$", r"\$[^$]*\$", r"\]\([^)]*\)"]
#: Result-like numbers: decimals, percentages, "k of n".
_RESULT = re.compile(r"(?<![\w.])(\d+\.\d+|\d+(?:\.\d+)?\s?%|\d+ of \d+)(?![\w])")


def _forms(x: float) -> set[str]:
    """The ways the prose may write ``x``."""
    out = {f"{x:g}", f"{x:.2f}", f"{x:.1f}"}
    if 0 <= x <= 1:
        out |= {f"{x:.0%}", f"{x * 100:.0f} %", f"{x * 100:g} %"}
    return out


def _paper_values() -> set[str]:
    found = set()

    def walk(v):
        if isinstance(v, dict):
            for w in v.values():
                walk(w)
        elif isinstance(v, float):
            found.update(_forms(v))
    for table in (paper_numbers.TABLE7, paper_numbers.TABLE8, paper_numbers.TABLE9):
        walk(table)
    return found


#: Settings of the protocol that the prose may state, each with where it is set.
SETTINGS = {
    *_forms(EMBEDDED_CONFIDENCE),                  # the embedded preset's required p(ct) (attacks/config.py)
    "5 %", "5%",                                   # the ensemble detector's false-positive rate (ensemble.FPR)
    *(f for bar in claims.BARS.values() for f in _forms(abs(bar.value))),   # the claims' bars (report/claims.py)
    "0.95", "0.99",                                # confidence levels of the chapters' parameters and the paper's MC
    "20 %",                                        # the deletion test's fraction (faithfulness.py)
    "90 %", "90%",                                 # the robustness chapter's ASR bar (report/defences.py)
}
ALLOWED = _paper_values() | SETTINGS


def typed_results(source: str) -> list[str]:
    """The result-like numbers of a Markdown cell that are not glue, paper numbers or settings."""
    text = source
    for pattern in _NOT_PROSE:
        text = re.sub(pattern, " ", text, flags=re.S)
    return [m.group(1) for m in _RESULT.finditer(text) if m.group(1) not in ALLOWED]


def test_the_scanner_finds_a_typed_result_and_passes_glue_and_paper_numbers():
    assert typed_results("ADV2 halves the distance (0.43 against 0.91).") == ["0.43", "0.91"]
    assert typed_results("The ratio is {glue:text}`ratio_resnet_cam` and 8 of 8 images flip.") == ["8 of 8"]
    assert typed_results("The paper's Table 9 diagonal is 0.04 for GRAD; $p(c_t) \\ge 0.97$.") == []
    assert typed_results("At 5 % false positives, `x = 0.123` in code.") == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_result_is_typed_into_a_chapter(notebook: Path):
    nb = json.loads(notebook.read_text())
    found = {i: typed_results("".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"}
    found = {i: v for i, v in found.items() if v}
    assert not found, f"{notebook.name}: numbers typed into prose (glue them from a table): {found}"
