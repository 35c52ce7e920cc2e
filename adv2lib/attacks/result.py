"""What every attack returns: the adversarial batch plus a per-example record."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class AttackResult:
    """Adversarial images and, per example, how the attack ended.

    Attributes (``N`` examples):

    * ``x_adv`` -- ``(N, C, H, W)`` adversarial images in [0, 1], inside the eps-ball;
    * ``success`` -- bool ``(N,)``: ``argmax f(x_adv) == target_class`` on the real model
      (for MASK: on the 8-bit-quantised image, which is what ``x_adv`` holds);
    * ``target_class`` -- long ``(N,)``: the prediction target ``ct``;
    * ``true_class`` -- long ``(N,)`` or None;
    * ``prediction`` -- long ``(N,)``: ``argmax f(x_adv)``;
    * ``confidence`` -- float ``(N,)``: ``p(ct | x_adv)`` (softmax of the real model);
    * ``adv_map`` -- ``(N, 1, h, w)``: the real interpreter's map of ``x_adv`` for ``ct``
      (None for PGD without an interpreter);
    * ``target_map`` -- the interpretation target ``mt`` (None for PGD);
    * ``iteration`` -- long ``(N,)``: the (1-based, warm start included) iteration count at
      which the returned iterate was taken; 0 means the clean image;
    * ``selected`` -- bool ``(N,)``: the returned iterate met the attack's selection rule
      (ADV2 "best": ``p(ct)`` above the threshold; MASK: quantised image classified as
      ``ct``); for ``select="last"`` it equals ``success``;
    * ``attack`` ("pgd" or "adv2"), ``interpreter`` (name or None), ``config`` (the frozen
      preset used), ``seconds`` (wall time of the call), ``cpu_seconds`` (process CPU time of
      the call, all threads: robust on a shared machine), ``passes`` (forward+backward passes
      the attack performed, per example, for the benchmark), ``history`` (per-iteration
      batch means -- losses, step sizes -- when the attack was built with ``history=True``).
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    target_class: torch.Tensor
    prediction: torch.Tensor
    confidence: torch.Tensor
    iteration: torch.Tensor
    selected: torch.Tensor
    true_class: torch.Tensor | None = None
    adv_map: torch.Tensor | None = None
    target_map: torch.Tensor | None = None
    attack: str = "pgd"
    interpreter: str | None = None
    config: object = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    passes: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    levels: dict = field(default_factory=dict)
    probes: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.x_adv.shape[0]

    @property
    def attack_success_rate(self) -> float:
        from ..metrics import attack_success_rate

        return attack_success_rate(self.success)

    def to_frame(self, x: torch.Tensor | None = None):
        """One pandas row per example: attack, interpreter, classes, success, confidence,
        iteration, selected, and -- when maps are present -- ``l1_target`` (L1 between
        ``adv_map`` and ``target_map``); with the clean batch ``x``, also ``linf``."""
        import pandas as pd

        from ..metrics import l1_distance

        rows = {
            "attack": self.attack,
            "interpreter": self.interpreter or "",
            "true_class": (self.true_class.cpu().numpy() if self.true_class is not None else -1),
            "target_class": self.target_class.cpu().numpy(),
            "prediction": self.prediction.cpu().numpy(),
            "success": self.success.cpu().numpy(),
            "confidence": self.confidence.cpu().numpy(),
            "iteration": self.iteration.cpu().numpy(),
            "selected": self.selected.cpu().numpy(),
        }
        if self.adv_map is not None and self.target_map is not None:
            rows["l1_target"] = l1_distance(self.adv_map, self.target_map).cpu().numpy()
        if x is not None:
            rows["linf"] = (self.x_adv - x.to(self.x_adv.device)).flatten(1).abs().amax(1).cpu().numpy()
        frame = pd.DataFrame(rows)
        frame.index.name = "example"
        return frame

    def __repr__(self) -> str:
        who = self.attack + (f"[{self.interpreter}]" if self.interpreter else "")
        return (f"AttackResult({who}, n={len(self)}, asr={self.success.float().mean().item():.3f}, "
                f"{self.seconds:.1f}s)")
