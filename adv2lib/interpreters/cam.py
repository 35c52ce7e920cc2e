"""CAM: class activation mapping (Zhou, Khosla, Lapedriza, Oliva & Torralba, CVPR 2016).

For the last convolutional feature map ``a`` (``K x h x w``, after its ReLU) and the weights
``w`` of the linear layer that follows global average pooling, the map for class ``c`` is
(paper-spec C.2, official ``expr_attacks/cam_model.py``)::

    m_c(i, j) = minmax( sum_k w[c, k] * a_k(i, j) )

with no bias and no ReLU, min-max normalised per image, at the feature grid (7x7 for every
victim of this library: ResNet-50 ``layer4`` / DenseNet-169 ``ReLU(features)`` on 224x224
ImageNet, and the last stage of the embedded victims on 28x28). The map and the logits come
from one forward pass (:meth:`CAM.map_and_logits`), and the map is an ordinary differentiable
function of ``x``, so the attack needs no surrogate.

On a GAP -> linear head, Grad-CAM's channel weights are ``w[c, k] / (h w)``, so
``Grad-CAM = ReLU(CAM_raw) / (h w)``: the tests check exactly this against captum.
"""
from __future__ import annotations

import torch

from ._common import as_targets
from .base import AttackTerms, Interpreter, minmax_normalize


class CAM(Interpreter):
    """Class activation maps, ``(N, 1, h, w)`` in [0, 1] at the victim's feature grid.

    ``victim`` must expose ``forward_with_features(x) -> (logits, features)`` and the final
    ``classifier`` (``nn.Linear``) applied after global average pooling, as every
    :class:`~adv2lib.models.victim.Victim` does.

    >>> from adv2lib.models import build_victim
    >>> cam = CAM(build_victim("densenet").eval())
    >>> m, logits = cam.map_and_logits(torch.rand(2, 1, 28, 28), torch.tensor([1, 2]))
    >>> m.shape, logits.shape
    (torch.Size([2, 1, 7, 7]), torch.Size([2, 10]))
    """

    name = "cam"

    @property
    def native_size(self) -> tuple[int, int]:
        # Probe once: the feature grid is a property of the architecture and input size.
        if not hasattr(self, "_native_size"):
            shape = getattr(self.victim, "input_shape", (1, 28, 28))
            param = next(self.victim.parameters())
            with torch.no_grad():
                feats = self.victim.features(torch.zeros(1, *shape, dtype=param.dtype, device=param.device))
            self._native_size = tuple(feats.shape[-2:])
        return self._native_size

    def raw_map_and_logits(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised ``sum_k w[c, k] a_k`` ``(N, 1, h, w)`` and the logits, one forward pass."""
        logits, features = self.victim.forward_with_features(x)
        weights = self.victim.classifier.weight[target]            # (N, K)
        raw = torch.einsum("nk,nkhw->nhw", weights, features).unsqueeze(1)
        return raw, logits

    def map_and_logits(self, x: torch.Tensor, target) -> tuple[torch.Tensor, torch.Tensor]:
        """``(map, logits)``: the normalised CAM for ``target`` and the victim's logits,
        from a single forward pass (what the ADV2 attack on CAM needs)."""
        target = as_targets(x, target)
        raw, logits = self.raw_map_and_logits(x, target)
        return minmax_normalize(raw), logits

    def explain(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.map_and_logits(x, target)[0]

    def attack_terms(self, x: torch.Tensor, target) -> AttackTerms:
        """ADV2's step terms: the exact map and the logits, from one forward pass."""
        return AttackTerms(*self.map_and_logits(x, target))
