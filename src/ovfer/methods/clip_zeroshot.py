"""Baseline 1: frozen CLIP with fixed text templates (SPEC §7.6)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ovfer.methods.base import ClipMethod, ClipMethodConfig, MethodOutput, register_method
from ovfer.modules.clip_video import video_mean_features
from ovfer.prompts.banks import ENSEMBLE_TEMPLATES, PHOTO_TEMPLATE, class_text_features


@dataclass
class ClipZeroShotConfig(ClipMethodConfig):
    templates: tuple[str, ...] = (PHOTO_TEMPLATE,)
    """Text templates with '{}' for the class name; the paper's Baseline 1 uses one."""
    ensemble: bool = False
    """Use ovfer's 5-template ensemble instead of ``templates``."""


@register_method("clip_zeroshot")
class ClipZeroShot(ClipMethod):
    """Temporal-mean CLIP video feature vs class texts; score = max logit. Trains nothing."""

    config_cls = ClipZeroShotConfig
    zero_shot = True

    def __init__(self, cfg: ClipZeroShotConfig, backbone=None) -> None:
        super().__init__(cfg, backbone)
        self.backbone.freeze("all")
        self.register_buffer("text_features", torch.zeros(0), persistent=False)

    def set_classes(self, names: Sequence[str]) -> None:
        super().set_classes(names)
        templates = ENSEMBLE_TEMPLATES if self.cfg.ensemble else self.cfg.templates
        self.text_features = class_text_features(self.backbone, self.classnames, templates)

    def forward(self, video: Tensor, ids: Sequence[str] | None = None) -> MethodOutput:
        feats = video_mean_features(self.backbone, video)
        logits = self.backbone.logit_scale() * F.normalize(feats, dim=-1) @ self.text_features.t().to(feats.dtype)
        return MethodOutput(logits=logits, open_score=self.open_score(logits), features=feats)
