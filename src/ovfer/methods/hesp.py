"""HESP: Human Expression-Sensitive Prompting for open-set video FER (SPEC §7).

A frozen CLIP adapted by (a) class-specific learnable text context, (b) fixed negative
text prompts, (c) a pixel patch placed by a CLIP class-activation map, (d) K learnable
negative images whose CLIP features are reciprocal points; trained with five loss terms.
Options cover the paper's ablations (Baseline 1 + HESP, Baseline 2 + TP, Table 6 loss
rows, Fig. 3 patch sizes) and the released code's behaviours where they differ.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovfer.losses.supcon import supcon_loss
from ovfer.methods.base import ClipMethod, ClipMethodConfig, MethodOutput, register_method
from ovfer.modules.cam import cam_windows, center_window, window_from_map
from ovfer.modules.clip_video import video_mean_features
from ovfer.modules.reciprocal import ReciprocalHead
from ovfer.prompts.banks import NEGATIVE_TEMPLATE, class_text_features, display_name
from ovfer.prompts.text import PromptLearner
from ovfer.prompts.visual import NegativeImages, PixelPatch, normalized_gradient_step

log = logging.getLogger(__name__)

LOSS_TERMS = ("ce", "supcon", "arpl", "neg_clip", "fused")


@dataclass
class HESPConfig(ClipMethodConfig):
    num_frames: int = 8
    """T = 8 frames, TSN sampling (SPEC §7.5)."""
    n_ctx: int = 16
    """M learnable context vectors per class (§7.2)."""
    ctx_init_std: float = 0.02
    """Context init N(0, 0.02²)."""
    ctx_init: str | None = None
    """ovfer option (not in the paper): start the last context vectors from these words'
    embeddings (e.g. "a photo of a face showing"), so prompts begin at zero-shot quality."""
    train_text_context: bool = True
    """False reproduces the released code, whose context stays at its random init."""
    negative_template: str = NEGATIVE_TEMPLATE
    """Fixed negative prompt F̄_T (§7.2)."""
    learn_negative_context: bool = False
    """Paper Fig. 3(a) alternative: learnable context in the negative prompts."""
    visual_prompt: bool = True
    """Use the pixel patch δ (False: Baseline 2 + TP)."""
    patch_size: int | None = None
    """l; None = 56 at 224 px scaled with the input size (28 at 112). Fig. 3: 14/28/56/112."""
    patch_location: Literal["cam", "fixed_center", "official"] = "cam"
    """CAM of the first frame (§7.3), image centre, or one per run from a random head (released code)."""
    cam_threshold: float = 0.79
    fusion: Literal["add", "replace"] = "add"
    """add: V + M⊙pad(δ) (released code); replace: paper Eq. 7."""
    negative_branch: bool = True
    """P_NE branch (ARPL); False gives Baseline 1 + HESP (CE + SupCon, score max z_KN)."""
    reciprocal_points: Literal["negative_images", "free"] = "negative_images"
    """Points from negative-image features (HESP) or free K×D points (Baseline 2 + TP)."""
    fuse: Literal["logits", "probs"] = "logits"
    """z_H = (z_KN + z_NE)/2, or the mean of the two softmaxes (paper Eq. 13)."""
    losses: tuple[str, ...] = LOSS_TERMS
    """Enabled loss terms (Table 6): ce, supcon, arpl, neg_clip, fused."""
    supcon_temperature: float = 0.5
    supcon_scale: float = 0.5
    arpl_margin_weight: float = 0.1
    neg_clip_symmetric: bool = False
    """Negative CLIP term image→text only (default) or symmetric."""
    prompt_update: Literal["normalized", "optimizer"] = "normalized"
    """δ and negative images: released code's normalised step, or the optimizer."""
    prompt_step: float = 50.0
    """Step size of the normalised update (§7.5)."""
    cam_cache: bool = True
    """Cache CAM locations per video id in evaluation (they depend only on video + frozen CLIP)."""

    def __post_init__(self) -> None:
        bad = [t for t in self.losses if t not in LOSS_TERMS]
        if bad:
            raise ValueError(f"unknown HESP loss term(s) {bad}; valid: {list(LOSS_TERMS)}")
        if self.n_ctx < 1:
            raise ValueError("n_ctx must be >= 1")
        if not self.negative_branch and any(t in self.losses for t in ("arpl", "neg_clip", "fused")):
            self.losses = tuple(t for t in self.losses if t in ("ce", "supcon"))


@register_method("hesp")
class HESP(ClipMethod):
    config_cls = HESPConfig
    extra_state_keys = ("official_location",)

    def __init__(self, cfg: HESPConfig, backbone=None) -> None:
        super().__init__(cfg, backbone)
        self.backbone.freeze("all")
        size = self.image_size
        self.patch_len = cfg.patch_size or max(1, round(56 * size / 224))
        if not 1 <= self.patch_len <= size:
            raise ValueError(f"patch_size {self.patch_len} does not fit a {size}px input")
        self.patch = PixelPatch(self.patch_len) if cfg.visual_prompt else None
        self.register_buffer("official_location", torch.full((2,), -1, dtype=torch.long))
        self.register_buffer("name_features", torch.zeros(0), persistent=False)
        self.register_buffer("neg_text_features", torch.zeros(0), persistent=False)
        self.prompts: PromptLearner | None = None
        self.neg_prompts: PromptLearner | None = None
        self.neg_images: NegativeImages | None = None
        self.head: ReciprocalHead | None = None
        self._loc_cache: dict[str, tuple[int, int]] = {}
        self._eval_cache: dict[str, Tensor] | None = None

    # -- classes ------------------------------------------------------------------------
    def set_classes(self, names: Sequence[str]) -> None:
        super().set_classes(names)
        cfg, bb, k = self.cfg, self.backbone, len(names)
        dev = bb.pixel_mean.device
        texts = [display_name(n) + "." for n in names]
        if self.prompts is None or self.prompts.ctx.shape[0] != k:
            self.prompts = PromptLearner(bb, texts, cfg.n_ctx, True, cfg.ctx_init_std, "end",
                                         trainable=cfg.train_text_context, init_words=cfg.ctx_init).to(dev)
        else:
            self.prompts.rebuild(bb, texts)
        neg_texts = [cfg.negative_template.format(display_name(n)) for n in names]
        self.neg_text_features = class_text_features(bb, names, [cfg.negative_template])
        if cfg.learn_negative_context:
            self.neg_prompts = PromptLearner(bb, neg_texts, cfg.n_ctx, True, cfg.ctx_init_std, "end").to(dev)
        self.name_features = class_text_features(bb, names, ["{}"])  # bare names for the CAM (§7.3)
        if cfg.negative_branch:
            free = cfg.reciprocal_points == "free"
            if self.head is None or (free and self.head.points.shape[0] != k):
                self.head = ReciprocalHead(k, bb.embed_dim, free_points=free).to(dev)
            if not free and (self.neg_images is None or self.neg_images.images.shape[0] != k):
                self.neg_images = NegativeImages(k, self.image_size).to(dev)
        self._loc_cache.clear()
        self._eval_cache = None

    # -- visual prompt placement ----------------------------------------------------------
    @torch.no_grad()
    def locations(self, video: Tensor, ids: Sequence[str] | None = None) -> Tensor:
        """Top-left (y, x) of the patch window per video (B, 2), SPEC §7.3."""
        b, size, l = video.shape[0], self.image_size, self.patch_len
        mode = self.cfg.patch_location
        if mode == "fixed_center":
            return torch.tensor([center_window(size, l)] * b, dtype=torch.long)
        if mode == "official":
            if int(self.official_location[0]) < 0:
                self.official_location.copy_(self._official_location(video[0, 0]))
            return self.official_location.cpu().view(1, 2).expand(b, 2).clone()
        use_cache = self.cfg.cam_cache and not self.training and ids is not None
        todo = [i for i in range(b) if not (use_cache and ids[i] in self._loc_cache)]
        if todo:
            first = self.backbone.normalize(video[todo, 0])
            out = self.backbone.encode_image_with_patches(first)
            top1 = (F.normalize(out["embeds"], dim=-1) @ self.name_features.t().to(out["embeds"].dtype)).argmax(-1)
            wins = cam_windows(out["patch_embeds"], self.name_features[top1], size, l, self.cfg.cam_threshold)
            if use_cache:
                for j, i in enumerate(todo):
                    self._loc_cache[ids[i]] = tuple(wins[j].tolist())
        if use_cache:
            return torch.tensor([self._loc_cache[i] for i in ids], dtype=torch.long)
        return wins

    def _official_location(self, frame: Tensor) -> Tensor:
        """Released code: one window per run, from an untrained random linear head over conv1 features."""
        gen = torch.Generator().manual_seed(0)
        feat = self.backbone.clip.visual.conv1(self.backbone.normalize(frame[None]))[0]  # (W, g, g)
        w = torch.randn(len(self.classnames), feat.shape[0], generator=gen).to(feat)
        maps = torch.einsum("kw,wij->kij", w, feat)
        k = int(maps.flatten(1).mean(1).argmax())
        cam = F.interpolate(maps[k][None, None], size=(self.image_size,) * 2, mode="bilinear")[0, 0]
        cam = (cam - cam.min()) / (cam.max() - cam.min()).clamp_min(1e-12)
        return torch.tensor(window_from_map(cam.cpu().numpy(), self.patch_len, self.cfg.cam_threshold))

    # -- features -------------------------------------------------------------------------
    def video_features(self, video: Tensor, ids: Sequence[str] | None = None) -> Tensor:
        """F'_V (B, D): patch added in pixel space, then CLIP normalisation, encoder, temporal mean."""
        if self.patch is not None:
            video = self.patch(video, self.locations(video, ids).to(video.device), self.cfg.fusion)
        return video_mean_features(self.backbone, video)

    def class_features(self) -> dict[str, Tensor]:
        """Video-independent features: F'_T, F̄_T and F̄_V (once per evaluation, every step in training)."""
        if self._eval_cache is not None and not self.training:
            return self._eval_cache
        bb = self.backbone
        out = {"text": self.prompts.encode(bb)}
        out["neg_text"] = self.neg_prompts.encode(bb) if self.neg_prompts is not None else self.neg_text_features
        if self.neg_images is not None:
            out["neg_image"] = bb.encode_image(self.neg_images.images)  # no normalisation, no patch (§7.3)
        return out

    def head_logits(self, fv: Tensor, cf: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """z_KN, and with the negative branch z_NE and the fused z_H (§7.4)."""
        s = self.backbone.logit_scale()
        z = {"kn": s * F.normalize(fv, dim=-1) @ cf["text"].t().to(fv.dtype)}
        if self.head is not None:
            z["ne"] = self.head.logits(fv, cf.get("neg_image"))
            if self.cfg.fuse == "logits":
                z["h"] = (z["kn"].float() + z["ne"]) / 2
            else:
                z["h"] = torch.log((z["kn"].float().softmax(-1) + z["ne"].softmax(-1)) / 2 + 1e-12)
        return z

    def forward(self, video: Tensor, ids: Sequence[str] | None = None) -> MethodOutput:
        fv = self.video_features(video, ids)
        z = self.head_logits(fv, self.class_features())
        logits = z.get("h", z["kn"])
        return MethodOutput(logits=logits, open_score=self.open_score(logits), features=fv,
                            extras={k: v for k, v in z.items()})

    # -- training -------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        y = batch["label"]
        fv = self.video_features(batch["video"], batch.get("id"))
        cf = self.class_features()
        z = self.head_logits(fv, cf)
        terms: dict[str, Tensor] = {}
        on = set(self.cfg.losses)
        if "ce" in on:
            terms["ce"] = F.cross_entropy(z["kn"].float(), y)
        if "supcon" in on:
            terms["supcon"] = supcon_loss(fv, y, self.cfg.supcon_temperature, self.cfg.supcon_scale)
        if self.head is not None:
            points = cf.get("neg_image")
            if "arpl" in on:
                terms["arpl"] = F.cross_entropy(z["ne"], y) + self.cfg.arpl_margin_weight * self.head.margin(fv, y, points)
            if "neg_clip" in on and "neg_image" in cf:
                terms["neg_clip"] = self._neg_clip(cf["neg_image"], cf["neg_text"])
            if "fused" in on:
                terms["fused"] = F.cross_entropy(z["h"], y) if self.cfg.fuse == "logits" else F.nll_loss(z["h"], y)
        total = sum(terms.values()) if terms else fv.sum() * 0.0
        return {"loss": total, **{k: v.detach() for k, v in terms.items()}}

    def _neg_clip(self, neg_image: Tensor, neg_text: Tensor) -> Tensor:
        """CE(s·cos(F̄_V, F̄_T), diag): negative image k should match negative prompt k."""
        s = self.backbone.logit_scale()
        logits = s * F.normalize(neg_image.float(), dim=-1) @ F.normalize(neg_text.float(), dim=-1).t()
        target = torch.arange(logits.shape[0], device=logits.device)
        loss = F.cross_entropy(logits, target)
        if self.cfg.neg_clip_symmetric:
            loss = (loss + F.cross_entropy(logits.t(), target)) / 2
        return loss

    def _pixel_prompts(self) -> list[nn.Parameter]:
        out = [self.patch.delta] if self.patch is not None else []
        return out + ([self.neg_images.images] if self.neg_images is not None else [])

    def param_groups(self) -> list[dict[str, Any]]:
        groups = []
        if self.prompts is not None and self.cfg.train_text_context:
            groups.append({"name": "text_context", "params": [self.prompts.ctx]})
        if self.neg_prompts is not None:
            groups.append({"name": "negative_context", "params": [self.neg_prompts.ctx]})
        if self.head is not None:
            groups.append({"name": "reciprocal", "params": [p for p in self.head.parameters()]})
        if self.cfg.prompt_update == "optimizer" and self._pixel_prompts():
            groups.append({"name": "pixel_prompts", "params": self._pixel_prompts()})
        return groups

    def after_backward(self) -> None:
        """Released code's rule: δ ← δ − 50·g/‖g‖, negative images with g averaged over the K images."""
        if self.cfg.prompt_update != "normalized":
            return
        if self.patch is not None:
            normalized_gradient_step(self.patch.delta, self.cfg.prompt_step)
        if self.neg_images is not None:
            normalized_gradient_step(self.neg_images.images, self.cfg.prompt_step, reduce="mean")

    def prepare_eval(self) -> None:
        """Text and negative-image features once per evaluation, not per batch."""
        was = self.training
        self.eval()
        with torch.no_grad():
            self._eval_cache = None
            self._eval_cache = {k: v.detach() for k, v in self.class_features().items()}
        self.train(was)

    def train(self, mode: bool = True):
        if mode:
            self._eval_cache = None  # parameters will change: drop cached class features
        return super().train(mode)

    def trainable_state_dict(self) -> dict[str, Tensor]:
        sd = super().trainable_state_dict()
        for name, p in self.named_parameters():  # the pixel prompts are learned even when not optimizer-driven
            if name.startswith(("patch.", "neg_images.", "prompts.", "neg_prompts.", "head.")):
                sd[name] = p.detach()
        return sd
