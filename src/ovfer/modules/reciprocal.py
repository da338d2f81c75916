"""Reciprocal-point head (ARPL): free or externally supplied points plus a learnable radius."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ovfer.losses.arpl import arpl_logits, arpl_margin


class ReciprocalHead(nn.Module):
    """z_NE = ARPL logits against K points; ``margin`` keeps known features within radius R."""

    def __init__(self, num_classes: int, dim: int, free_points: bool = True, init_std: float = 0.1) -> None:
        super().__init__()
        self.points = nn.Parameter(torch.randn(num_classes, dim) * init_std) if free_points else None
        self.radius = nn.Parameter(torch.zeros(()))

    def logits(self, x: Tensor, points: Tensor | None = None) -> Tensor:
        return arpl_logits(x, self._points(points))

    def margin(self, x: Tensor, labels: Tensor, points: Tensor | None = None) -> Tensor:
        return arpl_margin(x, self._points(points), labels, self.radius)

    def _points(self, points: Tensor | None) -> Tensor:
        if points is not None:
            return points
        if self.points is None:
            raise ValueError("this head has no free points; pass the points (e.g. negative-image features)")
        return self.points
