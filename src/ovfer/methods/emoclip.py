"""EmoCLIP (Foteinopoulou & Patras, FG 2024): zero-shot video FER from captions (METHODS §3).

A video encoder E_V (CLIP image encoder per frame -> a 2-block temporal transformer with a
class token) and CLIP's text encoder E_T are trained contrastively (symmetric InfoNCE) on
per-video captions, or on class descriptions (supervised / LOCO). Any class list is then
scored through its descriptions: S = e^s·cos(z^V, z^T_k); a compound class ("anger_disgust")
averages its parts' text embeddings *before* normalisation (Eq. 2). A linear-probe head
(``head="lp"``) replaces the text side with an MLP over the frozen E_V.

Defaults follow METHODS §3's "ovfer default" column; each named option there is a field of
:class:`EmoCLIPConfig`. Released "downstream" weights load with :meth:`EmoCLIP.load_released`.
"""
from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovfer.losses.infonce import symmetric_infonce
from ovfer.methods.base import ClipMethod, ClipMethodConfig, DataPreset, MethodOutput, register_method
from ovfer.engine.checkpoint import load_checkpoint
from ovfer.methods.released import (ReleasedCheckpointError, load_mapped, read_released, remap_keys,
                                    require_paper_temporal)
from ovfer.modules.clip_video import frame_features
from ovfer.modules.temporal import TemporalConfig, TemporalTransformer, convert_vitpytorch_keys
from ovfer.prompts.banks import TextBank, TextBankError, class_embeddings, load_text_bank

log = logging.getLogger(__name__)

_CHOICES = {
    "temporal": ("code", "intended"),
    "temporal_start": ("random", "frame_mean"),
    "text_source": ("caption", "class_description"),
    "compound": ("average", "concat"),
    "text_finetune": ("blocks", "all"),
    "head": ("text", "lp"),
    "test_window": ("seeded", "start", "center"),
}
#: test_window -> registered sampler (ovfer.data.sampling); all three draw the training start at random.
_SAMPLERS = {"seeded": "window", "start": "window_start", "center": "window_center"}
_VISUAL = ("patch_embed", "visual_blocks", "visual_head")


@dataclass
class EmoCLIPConfig(ClipMethodConfig):
    num_frames: int = 32
    """T = 32 frames per clip from the downsample-window sampler (METHODS §3 "Frames")."""
    temporal: Literal["code", "intended"] = "code"
    """Temporal transformer sizes: ``code`` = the release, 8 heads × 2048, MLP 512 (needed for the
    released weights); ``intended`` = 8 heads × 64, MLP 2048 (METHODS §3 table, "temporal sizes")."""
    temporal_start: Literal["random", "frame_mean"] = "random"
    """``random``: the paper's randomly initialised temporal transformer. ``frame_mean`` (ovfer
    option, ``emoclip.temporal_start``): it starts as the mean of the frame embeddings and learns
    residual updates on it, so caption training begins from CLIP's zero-shot video feature
    (``TemporalConfig.start``). Same weights layout, but released weights (trained as the paper's
    net) are refused under it."""
    text_source: Literal["caption", "class_description"] = "caption"
    """Training text: the clip's caption (headline, zero-shot) or its class description
    (supervised and LOCO protocols), METHODS §3 "Loss" / "Protocols"."""
    multi_positive: bool = False
    """Identical texts in a batch share the target mass (``emoclip.multi_positive``); default
    False = they stay negatives, as the official code."""
    compound: Literal["average", "concat"] = "average"
    """Compound class text: mean of the parts' pre-normalised embeddings (Eq. 2), or one prompt of
    the concatenated descriptions (Tab. III baseline)."""
    finetune_backbone: bool | None = None
    """Train the CLIP visual tower and text blocks at the CLIP LR. None = by ``text_source``: yes
    for captions, no for class descriptions (Tab. II labels the supervised model frozen).
    False with captions is the "frozen backbone" variant of Tab. I."""
    text_finetune: Literal["blocks", "all"] = "blocks"
    """Fine-tuned text parts: the transformer blocks only (official code), or also token and
    positional embeddings, ln_final and the projection (``emoclip.text_finetune=all``)."""
    fp16_backbone: bool = False
    """Store and run CLIP in fp16 as the official code (``emoclip.fp16_backbone``); default fp32
    master weights with the engine's AMP (METHODS §0). Train it with ``precision: fp32`` (the
    official SGD without loss scaling): a GradScaler refuses fp16 gradients."""
    logit_scale_init: float = math.log(100.0)
    """s in S = e^s·cos, learnable, initialised to ln 100, never clamped (METHODS §3 "Logits")."""
    backbone_lr_mult: float = 1e-3
    """CLIP weights' LR relative to the base LR: 1e-6 = 1e-3 × the new parameters' 1e-3 (Recipe)."""
    head: Literal["text", "lp"] = "text"
    """``text``: classify by class descriptions (zero-shot capable). ``lp``: the linear probe,
    an MLP D→``lp_hidden``→ReLU→C trained with CE on the frozen E_V (Table IV "LP")."""
    lp_hidden: int = 256
    """Hidden width of the LP head (official code: 512→256→ReLU→C)."""
    encoder_checkpoint: str | None = None
    """``head=lp``: the caption-trained encoder to probe, an ovfer checkpoint (``last.pt`` of a
    caption run, or an exported model) or the released EmoCLIP file; loaded at construction."""
    test_window: Literal["seeded", "start", "center"] = "seeded"
    """Test window start: random but seeded per (seed, sample) (ovfer default; the code's is
    unseeded), or the first kept frame, or centred (``emoclip.test_window``)."""
    random_crop: bool = False
    """Training crop: deterministic resize + centre crop (code), or a random S×S crop after the
    shorter-side resize (``emoclip.random_crop``, one reading of "random centre crop")."""
    text_bank: str | None = None
    """A user JSON replacing ovfer's descriptions and neutral pool (``--text-bank``, METHODS §4)."""
    neutral_seed: int | None = None
    """Seed of the neutral-caption draws; None = torch's seed when the method is built (the
    protocols seed construction with the run seed), so each seed draws its own sentences."""

    def __post_init__(self) -> None:
        for name, valid in _CHOICES.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"emoclip.{name} = {getattr(self, name)!r}; valid: {list(valid)}")
        if self.num_frames < 1:
            raise ValueError(f"emoclip.num_frames must be >= 1, got {self.num_frames}")
        if self.lp_hidden < 1:
            raise ValueError(f"emoclip.lp_hidden must be >= 1, got {self.lp_hidden}")
        if not self.backbone_lr_mult > 0:
            raise ValueError(f"emoclip.backbone_lr_mult must be > 0, got {self.backbone_lr_mult}")
        if not math.isfinite(self.logit_scale_init):
            raise ValueError(f"emoclip.logit_scale_init must be finite, got {self.logit_scale_init}")
        if self.encoder_checkpoint and self.head != "lp":
            raise ValueError("emoclip.encoder_checkpoint is read by head='lp' only; to test a trained "
                             "EmoCLIP give the protocol's checkpoint, or call load_released")

    @property
    def trains_backbone(self) -> bool:
        """Whether CLIP is fine-tuned: the explicit option, else by text source; never for LP."""
        if self.head == "lp":
            return False
        return self.finetune_backbone if self.finetune_backbone is not None else self.text_source == "caption"


def temporal_config(kind: str, dim: int, start: str = "random") -> TemporalConfig:
    """E_V's temporal head (METHODS §3 step 2-3): 2 pre-LN blocks, class token, 1024 positions
    N(0, 1), tanh-GELU; ``code`` sizes 8×2048 / MLP 512, ``intended`` 8×64 / MLP 2048."""
    heads, dim_head, mlp = (8, 2048, 512) if kind == "code" else (8, 64, 2048)
    return TemporalConfig(dim=dim, depth=2, heads=heads, dim_head=dim_head, mlp_dim=mlp, act="gelu_tanh",
                          qkv_bias=False, cls_token=True, pos_len=1024, init="normal", output="cls",
                          start=start)


@register_method("emoclip")
class EmoCLIP(ClipMethod):
    """Contrastive video–text EmoCLIP; logits e^s·cos against class descriptions (or the LP head).

    Checkpoints (``trainable_state_dict``) hold the learned tensors: the temporal net, s and
    the fine-tuned CLIP parts; with ``head="lp"`` only the head (its encoder is
    ``encoder_checkpoint``, reloaded when the method is rebuilt).
    """

    config_cls = EmoCLIPConfig
    zero_shot = True

    def __init__(self, cfg: EmoCLIPConfig, backbone=None) -> None:
        super().__init__(cfg, backbone)
        bb = self.backbone
        self.zero_shot = cfg.head == "text"  # the LP head learns one output per class
        self.bank: TextBank = load_text_bank("description", cfg.text_bank)
        if cfg.head == "text" and cfg.text_source == "caption" and len(set(self.bank.neutral_captions)) < 2:
            raise TextBankError(f"caption training needs at least 2 distinct neutral_captions in the text bank "
                                f"({cfg.text_bank or 'ovfer description bank'}) for caption-less neutral clips")
        self.temporal = TemporalTransformer(temporal_config(cfg.temporal, bb.embed_dim, cfg.temporal_start),
                                            cfg.num_frames)
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg.logit_scale_init)))
        self.lp_head: nn.Sequential | None = None
        self._lp_classes: tuple[str, ...] = ()
        self._freeze()
        if cfg.fp16_backbone:
            bb.half()
        self.neutral_seed = int(cfg.neutral_seed if cfg.neutral_seed is not None else torch.initial_seed() % 2**32)
        self._epoch = 0
        self._class_cache: Tensor | None = None
        if cfg.encoder_checkpoint:
            self.load_encoder(cfg.encoder_checkpoint)
        elif cfg.head == "lp":
            log.warning("emoclip head=lp without encoder_checkpoint: probing an untrained temporal transformer "
                        "over plain CLIP, not the paper's LP (which probes the caption-trained E_V)")

    def _freeze(self) -> None:
        """METHODS §3 "Trained / frozen": which tensors learn in this configuration."""
        cfg, bb = self.cfg, self.backbone
        bb.freeze("all")
        if cfg.trains_backbone:
            bb.freeze([*_VISUAL, "text_blocks"], frozen=False)
            if cfg.text_finetune == "all":
                bb.freeze(["text_embed", "text_head"], frozen=False)
        encoder_learns = cfg.head == "text"
        self.temporal.requires_grad_(encoder_learns)
        self.logit_scale.requires_grad_(encoder_learns)

    # -- contract ------------------------------------------------------------------------
    @property
    def data_preset(self) -> DataPreset:
        """T = 32 downsample-window frames, emoclip transforms, CLIP normalisation (METHODS §3)."""
        cfg = self.cfg
        return DataPreset(num_frames=cfg.num_frames, sampler=_SAMPLERS[cfg.test_window],
                          train_transform="emoclip_train_random_crop" if cfg.random_crop else "emoclip_train",
                          test_transform="emoclip_test", normalization="clip", image_size=self.image_size)

    def set_classes(self, names: Sequence[str]) -> None:
        """Any class list (label id = position); texts come from the description bank by name."""
        super().set_classes(names)
        self._class_cache = None
        if self.cfg.head == "text":
            self.bank.check(self.classnames, allow_compound=True)
            return
        k, d = len(self.classnames), self.backbone.embed_dim
        if self.lp_head is not None and self._lp_classes != self.classnames:
            log.warning("emoclip head=lp: classes changed from %s to %s; the LP head has one output per trained "
                        "class and is %s", list(self._lp_classes), list(self.classnames),
                        "re-initialised" if self.lp_head[-1].out_features != k else "kept, in the new order")
        self._lp_classes = self.classnames
        if self.lp_head is None or self.lp_head[-1].out_features != k:
            self.lp_head = nn.Sequential(nn.Linear(d, self.cfg.lp_hidden), nn.ReLU(),
                                         nn.Linear(self.cfg.lp_hidden, k)).to(self.logit_scale.device)

    # -- encoders ------------------------------------------------------------------------
    @property
    def _clip_dtype(self) -> torch.dtype:
        return self.backbone.clip.visual.conv1.weight.dtype

    def frame_embed(self, video: Tensor) -> Tensor:
        """Pixels (B, T, 3, S, S) in [0, 1] -> CLIP-normalised -> frame embeddings (B, T, D), fp32.

        A frozen visual tower runs without autograd (memory); an fp16 CLIP gets fp16 pixels.
        """
        visual_learns = any(p.requires_grad for p in self.backbone.clip.visual.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and visual_learns):
            return frame_features(self.backbone, video.to(self._clip_dtype)).float()

    def video_embed(self, video: Tensor) -> Tensor:
        """z^V (B, D), not normalised: the temporal transformer's class-token output."""
        return self.temporal(self.frame_embed(video))

    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """E_T: raw text embeddings (N, D) (77 tokens, truncated; EOT pooling; projection)."""
        bb = self.backbone
        return bb.encode_text(bb.tokenize(list(texts))).float()

    def class_embed(self, names: Sequence[str]) -> Tensor:
        """(K, D) L2-normalised class embeddings from the description bank (compounds per ``compound``)."""
        return class_embeddings(self.encode_texts, names, self.bank, self.cfg.compound)

    def class_features(self) -> Tensor:
        """The current classes' embeddings; cached in evaluation (video-independent)."""
        if self.training:
            return self.class_embed(self.classnames)
        if self._class_cache is None:
            with torch.no_grad():
                self._class_cache = self.class_embed(self.classnames).detach()
        return self._class_cache

    def scores(self, zv: Tensor, zt: Tensor) -> Tensor:
        """S = e^s · cos(z^V, z^T): (B, D) × (N, D) -> (B, N); s unclamped (METHODS §3)."""
        return self.logit_scale.exp() * F.normalize(zv.float(), dim=-1) @ F.normalize(zt.float(), dim=-1).t()

    def forward(self, video: Tensor, ids: Sequence[str] | None = None) -> MethodOutput:
        zv = self.video_embed(video)  # (B, D)
        if self.cfg.head == "lp":
            logits = self.lp_head(zv.float())
        else:
            logits = self.scores(zv, self.class_features())
        return MethodOutput(logits=logits, open_score=self.open_score(logits), features=zv)

    # -- training ------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Neutral captions are redrawn each epoch (METHODS §3 [ovfer])."""
        self._epoch = int(epoch)

    def neutral_caption(self, clip_id: str, epoch: int | None = None) -> str:
        """Two distinct pool sentences, concatenated; a function of (neutral_seed, epoch, clip id)
        only, so draws do not depend on batch order, workers or resumption."""
        pool = tuple(dict.fromkeys(self.bank.neutral_captions))  # distinct sentences
        key = zlib.crc32(str(clip_id).encode("utf-8"))
        rng = np.random.default_rng([self.neutral_seed, self._epoch if epoch is None else int(epoch), key])
        i, j = rng.choice(len(pool), size=2, replace=False)
        return f"{pool[int(i)]} {pool[int(j)]}"

    def batch_texts(self, batch: Mapping[str, Any]) -> list[str]:
        """The training text of each clip: its caption (neutral clips without one get pool
        sentences), or its class description."""
        labels = [int(y) for y in batch["label"]]
        ids = list(batch.get("id") or [str(i) for i in range(len(labels))])
        names = [self.classnames[y] if 0 <= y < len(self.classnames) else None for y in labels]
        if self.cfg.text_source == "class_description":
            if None in names:
                bad = ids[names.index(None)]
                raise ValueError(f"clip '{bad}' has a label outside the class list {list(self.classnames)}")
            return [self.bank.text(n) for n in names]
        captions = list(batch.get("caption") or [""] * len(labels))
        out = []
        for cap, name, clip_id in zip(captions, names, ids):
            if cap and cap.strip():
                out.append(cap)
            elif name is not None and name.lower() == "neutral":
                out.append(self.neutral_caption(clip_id))
            else:
                raise ValueError(f"clip '{clip_id}' (class {name or 'outside the class list'}) has no caption; "
                                 "caption training needs one for every clip except neutral ones (METHODS §3)")
        return out

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        if self.cfg.head == "lp":
            with torch.no_grad():
                zv = self.video_embed(batch["video"])  # frozen E_V
            ce = F.cross_entropy(self.lp_head(zv.float()), batch["label"])
            return {"loss": ce, "ce": ce.detach()}
        texts = self.batch_texts(batch)
        uniq = list(dict.fromkeys(texts))
        inverse = torch.tensor([uniq.index(t) for t in texts], device=batch["label"].device)
        zv = self.video_embed(batch["video"])  # (B, D)
        zt = self.encode_texts(uniq)[inverse]  # (B, D); identical texts encoded once
        loss = symmetric_infonce(self.scores(zv, zt), inverse if self.cfg.multi_positive else None)
        return {"loss": loss, "infonce": loss.detach(), "scale": self.logit_scale.detach().exp()}

    def param_groups(self) -> list[dict[str, Any]]:
        """Recipe (METHODS §3): base LR (1e-3) for the temporal net and s (or the LP head);
        CLIP weights at ``backbone_lr_mult`` × base (1e-6). SGD momentum 0.9, wd 5e-4 in YAML."""
        if self.cfg.head == "lp":
            return [{"name": "lp_head", "params": list(self.lp_head.parameters()) if self.lp_head else []}]
        groups: list[dict[str, Any]] = [{"name": "temporal", "params": [*self.temporal.parameters(), self.logit_scale]}]
        bb, mult = self.backbone, self.cfg.backbone_lr_mult
        for name, parts in (("clip_visual", _VISUAL), ("clip_text", ("text_embed", "text_blocks", "text_head"))):
            params = [p for p in bb.parameters_of(parts) if p.requires_grad]
            if params:
                groups.append({"name": name, "params": params, "lr_mult": mult})
        return groups

    def prepare_eval(self) -> None:
        """Class embeddings once per evaluation (the text side does not depend on the video)."""
        self._class_cache = None
        if self.cfg.head == "text" and self.classnames:
            was = self.training
            self.eval()
            self.class_features()
            self.train(was)

    def train(self, mode: bool = True):
        if mode:
            self._class_cache = None  # weights will change
        return super().train(mode)

    # -- released weights ---------------------------------------------------------------
    def load_released(self, path: str | Path) -> None:
        """Load the official "downstream" weights (METHODS §5): ``module.backbone.*`` (whole
        OpenAI CLIP, fp16, cast to this model's dtype), ``module.temporal.*`` (vit-pytorch
        layout) and ``module.logit_scale``. The file must match this model's shapes (the
        release needs ``temporal="code"``, ViT-B/32)."""
        require_paper_temporal(self.cfg.temporal_start, "emoclip")
        load_mapped(self, released_to_ovfer(read_released(path)), required=("backbone.clip.", "temporal.",
                                                                             "logit_scale"))
        self._class_cache = None

    @classmethod
    def from_released(cls, path: str | Path, classnames: Sequence[str], cfg: EmoCLIPConfig | None = None,
                      backbone=None) -> "EmoCLIP":
        """A method with the released weights (its CLIP is replaced by the file's, so no
        pretrained CLIP is needed: ``cfg.backbone.pretrained=None``)."""
        method = cls(cfg or EmoCLIPConfig(), backbone)
        method.load_released(path)
        method.set_classes(classnames)
        return method

    def load_encoder(self, path: str | Path) -> None:
        """E_V (and s) for the LP head: from an ovfer checkpoint of a caption run, or the
        released file. The CLIP weights a caption run left frozen are the configured backbone's."""
        sd = read_released(path)  # also unwraps an ovfer checkpoint's "model"
        if any(k.startswith("temporal.temporal_transformer.") for k in sd):
            self.load_released(path)
        else:
            state = load_checkpoint(path)  # an ovfer checkpoint: its config says how E_V was built
            start = ((state.get("config") or {}).get("method") or {}).get("temporal_start", "random")
            if start != self.cfg.temporal_start:
                raise ReleasedCheckpointError(f"{path}: its temporal transformer was trained with temporal_start="
                                              f"{start!r}; set emoclip.temporal_start={start} to probe it")
            enc = {k: v for k, v in state["model"].items() if k.startswith(("backbone.", "temporal.", "logit_scale"))}
            load_mapped(self, enc, required=("temporal.",))
        log.info("EmoCLIP encoder loaded from %s", path)


_RELEASED_METADATA = ("backbone.input_resolution", "backbone.context_length", "backbone.vocab_size")


def released_to_ovfer(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys of the released EmoCLIP state dict (``module.`` already stripped) -> this module's."""
    temporal = {f"temporal.{k}": v for k, v in convert_vitpytorch_keys(sd, "temporal.").items()}
    rest = {k: v for k, v in sd.items() if not k.startswith("temporal.")}
    mapped = remap_keys(rest, [("backbone.", "backbone.clip."), ("logit_scale", "logit_scale")],
                        drop=_RELEASED_METADATA)
    return {**mapped, **temporal}
