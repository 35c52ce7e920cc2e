"""The paper's reported numbers and qualitative claims, stored once, with their source.

Source of the numbers: Zhang, Wang, Shen, Ji, Luo, Wang, "Interpretable Deep Learning under
Fire", USENIX Security 2020, evaluation section, Tables 7-9, as recovered from a text
extraction of the PDF (``paper-results.md`` of this project). All are ImageNet numbers on
ResNet-50. Table 9's CAM and MASK columns were ambiguous in the extraction; the order kept
is the one that puts the smallest value of each row on the diagonal (approximate).

Source of the claims: ``paper-spec.md`` section (g) (the evaluation's tables and figures
with the qualitative claim of each; [P] = stated in the paper's abstract or recovered text,
[P?] = recalled, unverified).

These are facts carried over from the paper; nothing here is computed. The book compares
them with this reproduction in :mod:`adv2lib.report`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .names import INTERPRETERS

SOURCE = ("Zhang et al., Interpretable Deep Learning under Fire, USENIX Security 2020, "
          "evaluation section (ImageNet, ResNet-50); recovered text, see paper-results.md")

#: The paper's interpreters in its tables' order (:data:`adv2lib.names.INTERPRETERS`).
INTERPRETER_ORDER = INTERPRETERS

#: Table 7 (random patch target): L1 distance of the ADV2 map to the benign map (delta_b)
#: and to the target patch map (delta_t), per interpreter. The CAM and MASK cells of each row
#: came out of the text extraction as an unordered pair, so the table has two readings
#: (paper-results.md): A, left to right (``delta_b``/``delta_t`` below), and B, MASK's cell
#: first, the order Table 9's extraction follows. Both are kept; the book shows both.
TABLE7 = {
    "caption": "Table 7: L1 distance of ADV2 maps to the benign map (Δb) and to the random patch target (Δt)",
    "source": SOURCE + ", Table 7",
    "delta_b": {"grad": 0.16, "cam": 0.42, "mask": 0.50, "rts": 0.49},
    "delta_t": {"grad": 0.10, "cam": 0.04, "mask": 0.15, "rts": 0.07},
    "readings": {
        "A": {"delta_b": {"grad": 0.16, "cam": 0.42, "mask": 0.50, "rts": 0.49},
              "delta_t": {"grad": 0.10, "cam": 0.04, "mask": 0.15, "rts": 0.07}},
        "B": {"delta_b": {"grad": 0.16, "cam": 0.50, "mask": 0.42, "rts": 0.49},
              "delta_t": {"grad": 0.10, "cam": 0.15, "mask": 0.04, "rts": 0.07}},
    },
    "reading_notes": {"A": "left to right as extracted", "B": "MASK cell first, as Table 9's extraction"},
}

#: Table 8 (random class target): ASR and MC of ADV2 per interpreter.
TABLE8 = {
    "caption": "Table 8: ASR and MC of ADV2 when the target map is another class's benign map",
    "source": SOURCE + ", Table 8",
    "asr": {"grad": 1.00, "cam": 1.00, "mask": 1.00, "rts": 1.00},
    "mc": {"grad": 0.99, "cam": 0.99, "mask": 0.99, "rts": 1.00},
}

#: Table 9 (transferability, ResNet): rows = source interpreter the ADV2 inputs were built
#: against (plus PGD), columns = interpreter that explains them; entries = L1 distance of
#: the adversarial map to the benign map under the column's interpreter.
TABLE9 = {
    "caption": "Table 9: L1 distance to the benign map when ADV2 inputs built against one interpreter "
               "(row) are explained by another (column); ResNet",
    "source": SOURCE + ", Table 9 (CAM and MASK columns: approximate order)",
    "rows": ("grad", "cam", "mask", "rts", "pgd"),
    "columns": ("grad", "cam", "mask", "rts"),
    "values": {
        "grad": {"grad": 0.04, "cam": 0.24, "mask": 0.22, "rts": 0.24},
        "cam": {"grad": 0.09, "cam": 0.05, "mask": 0.18, "rts": 0.13},
        "mask": {"grad": 0.12, "cam": 0.34, "mask": 0.09, "rts": 0.74},
        "rts": {"grad": 0.10, "cam": 0.17, "mask": 0.20, "rts": 0.01},
        "pgd": {"grad": 0.10, "cam": 0.28, "mask": 0.22, "rts": 0.22},
    },
}


@dataclass(frozen=True)
class Claim:
    """One qualitative claim of the paper's evaluation (paper-spec section (g))."""

    id: str
    item: str          # the evaluation item of paper-spec (g) it belongs to
    text: str          # the claim, in our words
    provenance: str    # [P] / [P?] as in paper-spec
    tested: bool       # whether this book runs an experiment that can test it


CLAIMS = (
    Claim("effective", "(g)2 main prediction table, PGD vs ADV2",
          "ADV2 is about as effective as PGD at the prediction goal: ASR close to 100 % and MC "
          "close to 1 for every interpreter and victim (perhaps slightly lower for MASK).", "[P?]", True),
    Claim("l1", "(g)3 interpretation similarity, L1 measure",
          "ADV2 maps are much closer to the benign maps than PGD maps are (smaller L1).", "[P?]", True),
    Claim("iou", "(g)4 IoU test",
          "ADV2 maps overlap the benign maps strongly across k, PGD maps weakly.", "[P?]", True),
    Claim("qualitative", "(g)5 qualitative figures",
          "Visually, ADV2 maps look like the benign maps while PGD maps do not.", "[P?]", True),
    Claim("isic", "(g)6 skin-cancer (ISIC) application",
          "The attack also works on a security-critical medical classifier.", "[P]", False),
    Claim("patch", "(g)7 Table 7, random patch target",
          "For every interpreter the ADV2 map is much closer to the target patch than to the "
          "benign map (Δt < Δb); IoU with the target is high and with the benign map low.", "[P]", True),
    Claim("random_class", "(g)8 Table 8, random class target",
          "Targeting another class's interpretation costs the attack nothing on the prediction "
          "side (ASR 100 %, MC about 0.99).", "[P]", True),
    Claim("transfer_diagonal", "(g)9 Table 9, transferability",
          "ADV2 works against the interpreter it targets: the diagonal of the transfer table "
          "is small.", "[P]", True),
    Claim("transfer_off_diagonal", "(g)9 Table 9, transferability",
          "ADV2 inputs crafted for one interpreter rarely fool another: off the diagonal the "
          "distances are about as large as PGD's.", "[P]", True),
    Claim("ensemble", "(g)10 ensemble interpretation",
          "Using several interpreters together is a countermeasure: an input crafted against one "
          "interpreter is exposed by the others.", "[P]", True),
    Claim("ensemble_adaptive", "(g)10 ensemble interpretation, adaptive attack",
          "An attacker who targets the whole ensemble pays for it (in distance or detection).", "[P?]", True),
    Claim("aid", "(g)11 adversarial interpretation distillation",
          "Retraining the interpreter on ADV2 examples makes the attack harder.", "[P]", True),
    Claim("disparate", "(g)12 prediction-interpretation gap, disparate attack robustness",
          "Interpreters differ widely in how hard they are to attack.", "[P]", True),
    Claim("gap", "(g)12 prediction-interpretation gap",
          "The classifier and its interpreter are misaligned, which the attack exploits.", "[P]", True),
)
