"""Video features from a CLIP image tower: frames -> embeddings -> temporal mean."""
from __future__ import annotations

from torch import Tensor


def frame_features(backbone, video: Tensor, chunk: int | None = None) -> Tensor:
    """Pixels (B, T, 3, S, S) in [0, 1] -> CLIP-normalised -> frame embeddings (B, T, D)."""
    return backbone.encode_frames(backbone.normalize(video), chunk=chunk)


def video_mean_features(backbone, video: Tensor, chunk: int | None = None) -> Tensor:
    """Temporal mean of frame embeddings (B, D), not normalised (HESP's F'_V, SPEC §7.3)."""
    return frame_features(backbone, video, chunk).mean(dim=1)
