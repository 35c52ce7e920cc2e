"""The book's chapter plan: which notebook runs which experiment, at what size, in what order.

One declarative table, read by the book runner (:func:`adv2lib.runner.declared_runs`), by
:func:`adv2lib.report.run_chapter` (the sizes a chapter runs at when its notebook is run by
hand) and by the tests. A chapter's ``sizes`` give, per scale (``"smoke"``, ``"full"``), the
experiment's parameters beyond profile, victims, seed and device; ``"n_images": None`` means the
book's image count (100 full, 2 smoke, ``--n-images``).

>>> chapter("06_robustness").sizes["full"]["n_images"]
40
>>> [c.notebook for c in PLAN][:3]
['intro', 'models', '01_adv2_vs_pgd']
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Chapter", "PLAN", "N_IMAGES", "chapter", "by_experiment", "sizes", "NOTEBOOKS"]

#: Images per victim and experiment of the book, per scale.
N_IMAGES = {"smoke": 2, "full": 100}


@dataclass(frozen=True)
class Chapter:
    """One notebook of the book: ``notebook`` (under ``notebooks/``), the ``experiment`` it runs
    (None: it reads what others wrote), its parameters per scale (``sizes``), whether it runs on
    one victim only, the interpreters it attacks when not all (``interpreters``) and why it is
    that size (``why``)."""

    notebook: str
    experiment: str | None = None
    sizes: dict = field(default_factory=dict)
    interpreters: tuple | None = None
    one_victim: bool = False
    why: str = ""


PLAN: tuple[Chapter, ...] = (
    Chapter("intro"),
    Chapter("models"),
    Chapter("01_adv2_vs_pgd", "main", {s: {"n_images": None} for s in N_IMAGES}),
    Chapter("02_targeted_patch", "patch", {s: {"n_images": None} for s in N_IMAGES}),
    Chapter("03_random_class", "random_class", {s: {"n_images": None} for s in N_IMAGES}),
    Chapter("04_transferability", "transfer", {s: {"n_images": None} for s in N_IMAGES}),
    Chapter("04b_cross_model", "cross_model", {s: {"n_images": None} for s in N_IMAGES},
            why="the main experiment's inputs of one victim fed to the other: its images, no attack"),
    Chapter("05_attack_budget", "budget",
            {"smoke": {"n_images": 2, "factors": [1, 2, 4]}, "full": {"n_images": 20, "factors": [1, 2, 4]}},
            interpreters=("grad", "mask"), one_victim=True,
            why="ADV2 at 1x, 2x and 4x its iterations: one victim, the two interpreters whose presets are furthest "
                "below the official iteration counts, 20 images"),
    Chapter("05d_official_budget", "official_budget",
            {"smoke": {"n_images": 2, "batch_size": 1, "mask_images": 1, "fractions": [0.005, 0.01]},
             "full": {"n_images": 20, "batch_size": 10, "mask_images": 10, "fractions": [0.5, 1.0]}},
            why="ADV2 at half and all of the official iteration counts (issue 24): 20 images per victim, MASK 10 "
                "(its official run costs about a minute per image on one thread)"),
    Chapter("05b_confidence", "confidence",
            {"smoke": {"n_images": 2, "levels": [0.97]}, "full": {"n_images": 20, "levels": [0.9, 0.97, 0.99]}},
            why="each held level is one more full attack per image; the selection rule's levels come free"),
    Chapter("05c_ablations", "ablation", {"smoke": {"n_images": 2}, "full": {"n_images": 50}},
            interpreters=("grad", "mask"), why="issue 11: at least 50 images per victim"),
    Chapter("06_robustness", "robustness", {"smoke": {"n_images": 2}, "full": {"n_images": 40}},
            why="three L-inf and four iteration budgets per interpreter; 40 images so that a 90% success bar "
                "can be decided (Wilson interval of 40 of 40: [0.91, 1]; of 8 of 8 it was [0.68, 1])"),
    Chapter("07_ensemble", "ensemble",
            {"smoke": {"n_images": None, "adaptive_images": 2, "calibration_images": 8},
             "full": {"n_images": None, "adaptive_images": 50, "calibration_images": 500}},
            why="the detector reads the main and transfer experiments' maps; the adaptive attack runs on the "
                "first 50 images (20 before: a rate near 50% carried about +-0.22); the threshold at 5% false "
                "positives is set on 500 held-out clean images (100 before: 5 images above it)"),
    Chapter("07b_ensemble_designs", "ensemble_designs",
            {"smoke": {"n_images": None, "adaptive_images": 2, "calibration_images": 8},
             "full": {"n_images": None, "adaptive_images": 50, "calibration_images": 500}},
            why="the ensemble experiment's maps scored by the other detector designs (issue 24): its sizes, no attack"),
    Chapter("08_aid", "aid", {s: {"n_images": None} for s in N_IMAGES}, interpreters=("rts",)),
    Chapter("08b_aid_premise", "aid_premise", {s: {"n_images": None} for s in N_IMAGES}, interpreters=("rts",),
            why="RTS's objective on the AID experiment's inputs (issue 24): its images, no attack"),
    Chapter("08c_aid_variants", "aid_variants",
            {"smoke": {"n_images": 2, "eval_images": 16}, "full": {"n_images": 50, "eval_images": 500}},
            interpreters=("rts",), one_victim=True,
            why="each variant and seed trains a hardened RTS before ADV2 attacks it (on one Ray worker of the 2-core "
                "machine, 10 to 25 minutes each): one victim, 50 images, the masking test on 500 clean images"),
    Chapter("paper_vs_ours"),
    Chapter("reproduce"),
    Chapter("artifact_appendix"),
)

#: The notebooks in book order.
NOTEBOOKS = tuple(c.notebook for c in PLAN)


def chapter(notebook: str) -> Chapter:
    """The plan's entry of ``notebook``."""
    for c in PLAN:
        if c.notebook == notebook:
            return c
    raise KeyError(f"no chapter {notebook!r} in the plan: {', '.join(NOTEBOOKS)}")


def by_experiment(experiment: str) -> Chapter:
    """The chapter that runs ``experiment``."""
    for c in PLAN:
        if c.experiment == experiment:
            return c
    raise KeyError(f"no chapter runs experiment {experiment!r}")


def sizes(experiment: str, smoke: bool, n_images: int | None = None) -> dict:
    """The parameters the chapter of ``experiment`` runs with at a scale: its plan entry, with
    ``n_images`` None replaced by the book's count (``n_images``, default :data:`N_IMAGES`) and a
    chapter's own count capped by it."""
    scale = "smoke" if smoke else "full"
    book_n = n_images if n_images is not None else N_IMAGES[scale]
    out = dict(by_experiment(experiment).sizes.get(scale, {}))
    for key in ("n_images", "adaptive_images"):
        if key in out:
            out[key] = book_n if out[key] is None else min(book_n, out[key])
    return out
