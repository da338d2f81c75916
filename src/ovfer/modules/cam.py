"""Where to put HESP's visual prompt: a CLIP class-activation map (SPEC §7.3)."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def activation_maps(patch_embeds: Tensor, text_features: Tensor, image_size: int) -> Tensor:
    """Cosine of projected patch embeddings (B, P, D) with one text feature per video (B, D).

    Returns maps (B, S, S), bilinearly upsampled and min-max normalised to [0, 1].
    """
    with torch.autocast(patch_embeds.device.type, enabled=False):  # a location, not a feature: fp32
        return _activation_maps(patch_embeds.float(), text_features.float(), image_size)


def _activation_maps(patch_embeds: Tensor, text_features: Tensor, image_size: int) -> Tensor:
    b, p, _ = patch_embeds.shape
    grid = int(round(p ** 0.5))
    cos = torch.einsum("bpd,bd->bp", F.normalize(patch_embeds.float(), dim=-1), F.normalize(text_features.float(), dim=-1))
    maps = F.interpolate(cos.view(b, 1, grid, grid), size=(image_size, image_size), mode="bilinear",
                         align_corners=False)[:, 0]
    lo = maps.flatten(1).min(dim=1).values.view(b, 1, 1)
    hi = maps.flatten(1).max(dim=1).values.view(b, 1, 1)
    return (maps - lo) / (hi - lo).clamp_min(1e-12)


def window_from_map(cam: np.ndarray, window: int, threshold: float = 0.79) -> tuple[int, int]:
    """Top-left (y, x) of an l×l window centred on the largest region with cam ≥ threshold.

    Centroid of the largest connected component; the map's argmax when no region passes;
    clamped so the window fits inside the image.
    """
    h, w = cam.shape
    region = (cam >= threshold).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(region, connectivity=8)
    if n > 1:
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        cx, cy = centroids[best]
    else:
        cy, cx = np.unravel_index(int(np.argmax(cam)), cam.shape)
    y0 = int(round(cy - window / 2))
    x0 = int(round(cx - window / 2))
    return min(max(y0, 0), h - window), min(max(x0, 0), w - window)


def cam_windows(patch_embeds: Tensor, text_features: Tensor, image_size: int, window: int,
                threshold: float = 0.79) -> Tensor:
    """(B, 2) long tensor of window top-left corners from per-video CAMs."""
    maps = activation_maps(patch_embeds, text_features, image_size).float().cpu().numpy()
    return torch.tensor([window_from_map(m, window, threshold) for m in maps], dtype=torch.long)


def center_window(image_size: int, window: int) -> tuple[int, int]:
    c = (image_size - window) // 2
    return c, c
