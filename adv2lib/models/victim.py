"""The victim-model contract shared by both profiles.

A :class:`Victim` takes images in [0, 1] (normalisation lives inside it) and ends in
``last conv features -> global average pooling -> one linear layer``, so that CAM
(Zhou et al., CVPR 2016) applies exactly. It exposes

* ``pyramid(x)``: the feature maps at every scale, fine to coarse; the last one is the
  CAM feature map (after its ReLU);
* ``classifier``: the final ``nn.Linear``;
* ``forward_with_features(x)``: ``(logits, features)`` in one pass.

Every ReLU is an ``nn.ReLU`` module (never ``F.relu``), so that the GRAD attack's
surrogate-gradient context can find and swap all of them.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``, as the first layer of the model."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Victim(nn.Module):
    """Base class: subclasses set ``normalize``, ``classifier`` and implement ``_pyramid``."""

    name: str = "victim"
    profile: str = "embedded"
    input_shape: tuple[int, int, int] = (1, 28, 28)
    classes: tuple[str, ...] = ()

    normalize: Normalize
    classifier: nn.Linear

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _pyramid(self, xn: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at every scale for images ``x`` in [0, 1], finest first."""
        return self._pyramid(self.normalize(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map (the CAM features), ``(N, K, h, w)``."""
        return self.pyramid(x)[-1]

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling then the linear classifier."""
        return self.classifier(features.mean(dim=(2, 3)))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        return self.head(features), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
