"""Pixel-space visual prompts: HESP's patch and its negative images (SPEC §7.3, §7.5)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

FusionMode = Literal["add", "replace"]


class PixelPatch(nn.Module):
    """A learnable l×l patch δ shared by all frames and videos, placed per video."""

    def __init__(self, size: int, channels: int = 3) -> None:
        super().__init__()
        self.size = size
        self.delta = nn.Parameter(torch.zeros(channels, size, size))

    def canvas(self, locations: Tensor, image_size: int) -> tuple[Tensor, Tensor]:
        """Padded patch and mask, each (B, C|1, S, S), for top-left ``locations`` (B, 2) = (y, x)."""
        b = locations.shape[0]
        c = self.delta.shape[0]
        l = self.size
        pad = self.delta.new_zeros(b, c, image_size, image_size)
        mask = self.delta.new_zeros(b, 1, image_size, image_size)
        for i, (y, x) in enumerate(locations.tolist()):
            pad[i, :, y:y + l, x:x + l] = self.delta
            mask[i, :, y:y + l, x:x + l] = 1.0
        return pad, mask

    def forward(self, video: Tensor, locations: Tensor, mode: FusionMode = "add") -> Tensor:
        """Video (B, T, 3, S, S) in pixel space -> prompted video (before CLIP normalisation).

        ``add`` is V + M⊙pad(δ) (released code); ``replace`` is (1−M)·V + M·δ (paper Eq. 7).
        """
        pad, mask = self.canvas(locations, video.shape[-1])
        pad, mask = pad.unsqueeze(1).to(video.dtype), mask.unsqueeze(1).to(video.dtype)
        if mode == "add":
            return video + pad
        if mode == "replace":
            return video * (1 - mask) + pad
        raise ValueError(f"unknown fusion mode '{mode}'; valid: add, replace")


class NegativeImages(nn.Module):
    """K learnable images (init N(0, 1)) whose CLIP features act as reciprocal points."""

    def __init__(self, num: int, image_size: int, channels: int = 3) -> None:
        super().__init__()
        self.images = nn.Parameter(torch.randn(num, channels, image_size, image_size))


@torch.no_grad()
def normalized_gradient_step(param: Tensor, step: float, reduce: Literal["none", "mean"] = "none",
                             eps: float = 1e-12) -> bool:
    """p ← p − step·g/‖g‖₂ (the released HESP code's update; SPEC §7.5).

    ``reduce="mean"`` averages the gradient over the first dimension first (the negative
    images: one common step for all K). Returns False when there is no usable gradient.
    """
    g = param.grad
    if g is None:
        return False
    if reduce == "mean":
        g = g.mean(dim=0, keepdim=True).expand_as(param)
    norm = g.norm()
    if not torch.isfinite(norm) or norm <= eps:
        return False
    param.sub_(step * g / norm)
    param.grad = None
    return True
