"""Baseline 2: frozen CLIP video features + an ARPL head with free reciprocal points (SPEC §7.6)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor

from ovfer.methods.base import ClipMethod, ClipMethodConfig, MethodOutput, register_method
from ovfer.modules.clip_video import video_mean_features
from ovfer.modules.reciprocal import ReciprocalHead


@dataclass
class ClipARPLConfig(ClipMethodConfig):
    points_init_std: float = 0.1
    """Reciprocal points init 0.1·N(0, 1) (SPEC §7.6)."""
    margin_weight: float = 0.1
    """Weight of the radius margin term."""


@register_method("clip_arpl")
class ClipARPL(ClipMethod):
    """Loss CE(z_NE) + 0.1·margin; open score = max z_NE."""

    config_cls = ClipARPLConfig

    def __init__(self, cfg: ClipARPLConfig, backbone=None) -> None:
        super().__init__(cfg, backbone)
        self.backbone.freeze("all")
        self.head: ReciprocalHead | None = None

    def set_classes(self, names: Sequence[str]) -> None:
        super().set_classes(names)
        if self.head is None or self.head.points.shape[0] != len(names):
            self.head = ReciprocalHead(len(names), self.backbone.embed_dim, True, self.cfg.points_init_std).to(
                self.backbone.pixel_mean.device)

    def forward(self, video: Tensor, ids: Sequence[str] | None = None) -> MethodOutput:
        feats = video_mean_features(self.backbone, video)
        logits = self.head.logits(feats)
        return MethodOutput(logits=logits, open_score=self.open_score(logits), features=feats)

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        feats = video_mean_features(self.backbone, batch["video"])
        y = batch["label"]
        ce = F.cross_entropy(self.head.logits(feats), y)
        margin = self.head.margin(feats, y)
        return {"loss": ce + self.cfg.margin_weight * margin, "ce_ne": ce.detach(), "margin": margin.detach()}
