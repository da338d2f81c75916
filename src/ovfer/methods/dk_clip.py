"""DK-CLIP (Li et al., ACM MM 2024): hierarchical video CLIP with AU-enriched, video-conditioned
class prompts and snippet-consistency regularisation (METHODS §2).

Pipeline for a video of T frames in N snippets of T/N consecutive frames:

* (a) CFAM — CLIP's visual tower with per-block message tokens exchanged within each snippet
  (``MessageTokens`` through ``ClipBackbone``'s token hook) -> frame embeddings u_t and the
  last block's patch tokens z_t;
* (b) snippet embeddings s_n = mean of u_t; (c) MSIM (shared ``TemporalTransformer``) -> v;
* (d) NRM: min-max normalised, softmaxed cos(v, s_n) weights a*, noisy snippets erased;
* (e) visual context Z from the patch tokens of kept snippets; (f) CMAM (shared
  ``CrossAttention``) conditions the frozen AU-prompt text features c on Z -> ĉ per video;
* (g) global, fused-local and fused logits; (h) SCE + λ(SCE + KL) on smoothed, Mixup/FMix
  mixed targets.

Where the paper and the official code differ, the default follows METHODS §2's "ovfer
default" column and the other behaviour is a config option.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovfer.backbones.clip import BackboneConfig
from ovfer.data.mixing import mix_batch
from ovfer.data.transforms import normalize
from ovfer.losses.ce import kl_divergence, smooth_one_hot, soft_cross_entropy
from ovfer.methods.base import ClipMethod, ClipMethodConfig, DataPreset, MethodOutput, register_method
from ovfer.modules.message_tokens import MessageTokens, SnippetMessageTransformer
from ovfer.modules.temporal import CrossAttention, TemporalConfig, TemporalTransformer
from ovfer.prompts.banks import TextBank, load_text_bank
from ovfer.prompts.text import PromptLearner

log = logging.getLogger(__name__)

VISUAL_CONTEXTS = ("paper", "code_extra_transformer")
UPDATES = ("paper", "code")
KL_FORMS = ("paper", "code")
PIXEL_NORMS = ("imagenet", "clip", "none")
AU_PROMPTS = ("or", "and")


@dataclass
class DKCLIPConfig(ClipMethodConfig):
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(arch="ViT-B-16"))
    """Headline backbone ViT-B/16, OpenAI weights (METHODS §2 "Shapes"; ViT-B/32 also reported)."""
    num_frames: int = 16
    """T = 16 frames, DK-CLIP sampler (§2 "Frames")."""
    num_snippets: int = 4
    """N snippets of T/N consecutive frames, for CFAM, snippet means and NRM alike (§2 table: ovfer)."""
    message_heads: int | None = None
    """Heads of the snippet message attention MHA_l (Eq. 3); None = CLIP visual heads (12 at ViT-B)."""
    train_patch_embed: bool = False
    """Train conv1 at the base LR as the official code does; paper: frozen (§2 table)."""
    msim_heads: int = 8
    """MSIM attention heads, dim_head = D/heads (Eq. 6)."""
    msim_outer_residual: bool = False
    """Official code: v = mean_n(Block(s + e) + s); paper Eq. 6 has no outer residual."""
    freeze_msim: bool = False
    """Official code: MSIM stays at its random init (an optimizer name filter); paper: trained."""
    erase_threshold: float = 0.15
    """θ of NRM (Eq. 9): erase snippet n iff a*_n < θ."""
    max_erased: int = 2
    """At most this many snippets erased per video (the best one never is, so at most N − 1 in effect)."""
    visual_context: Literal["paper", "code_extra_transformer"] = "paper"
    """paper: Eq. 7, mean of CFAM patch tokens over kept frames; code_extra_transformer: the
    official extra frozen random-init message transformer over snippet-mean patch maps."""
    extra_depth: int = 12
    """Blocks of the code_extra_transformer visual context (official: 12)."""
    cmam_depth: int = 2
    """CMAM cross-attention layers (Eq. 8)."""
    cmam_heads: int = 8
    """CMAM heads (Eq. 8)."""
    cmam_update: Literal["paper", "code"] = "paper"
    """paper: ĉ = c + γ⊙(x² − c); code: ĉ = c + γ⊙x² (x² still contains c)."""
    gamma_init: float = 0.1
    """Initial value of the learnable γ ∈ ℝ^D (Eq. 8)."""
    au_prompts: Literal["or", "and"] = "or"
    """AU prompts with "or" alternatives (bank au_prompt) or all-"and" (au_prompt_and, Tab. 6)."""
    text_bank: str | None = None
    """User JSON replacing ovfer's AU prompts (``--text-bank``), keyed by class name (§4)."""
    n_ctx: int = 0
    """Class-specific learnable contexts before the AU prompt; 0 = none, as the official code."""
    ctx_init_std: float = 0.02
    """Context init N(0, 0.02²) when n_ctx > 0."""
    label_smoothing: float = 0.1
    """ε of the smoothed one-hot targets (§2h; official code)."""
    mixing: bool = True
    """Batch Mixup/FMix on training clips (§2 "Mixing")."""
    fmix_prob: float = 0.5
    """Probability of FMix, otherwise Mixup."""
    mixup_alpha: float = 0.8
    """Mixup λ ~ Beta(0.8, 0.8)."""
    fmix_alpha: float = 1.0
    """FMix λ ~ Beta(1, 1)."""
    fmix_decay_power: float = 3.0
    """FMix spectrum amplitude ∝ 1/max(f, 1/size)^3."""
    consistency_weight: float = 1.0
    """λ of Eq. 11 (official code 1.0; not given in the paper)."""
    kl: Literal["paper", "code"] = "paper"
    """paper: KL(p_g‖p_l); code: −Σ p_g·log softmax(softmax ℓˡ), a double softmax."""
    consistency_epochs: int | None = None
    """None: L_l + L_k in every epoch (paper); E: only in epochs < E, then L_g alone (official code: 14)."""
    pixel_norm: Literal["imagenet", "clip", "none"] = "imagenet"
    """Pixel normalisation: ImageNet mean/std as the official code (paper silent)."""
    new_lr_mult: float = 10.0
    """LR multiplier of the new modules (messages, MSIM, LN_v, W_v, CMAM, γ): 2e-5 vs 2e-6 (§2 Recipe)."""

    def __post_init__(self) -> None:
        if self.num_snippets < 1 or self.num_frames % self.num_snippets:
            raise ValueError(f"num_frames ({self.num_frames}) must be a multiple of num_snippets "
                             f"({self.num_snippets} >= 1)")
        if self.max_erased < 0:
            raise ValueError(f"max_erased must be >= 0, got {self.max_erased}")
        checks = {"visual_context": VISUAL_CONTEXTS, "cmam_update": UPDATES, "kl": KL_FORMS,
                  "pixel_norm": PIXEL_NORMS, "au_prompts": AU_PROMPTS}
        for name, valid in checks.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"dk_clip.{name}={getattr(self, name)!r} is not one of {list(valid)}")
        if self.n_ctx < 0:
            raise ValueError(f"n_ctx must be >= 0, got {self.n_ctx}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.consistency_epochs is not None and self.consistency_epochs < 0:
            raise ValueError(f"consistency_epochs must be None or >= 0, got {self.consistency_epochs}")
        if min(self.msim_heads, self.cmam_heads, self.cmam_depth, self.extra_depth) < 1:
            raise ValueError("msim_heads, cmam_heads, cmam_depth and extra_depth must be >= 1")
        if self.message_heads is not None and self.message_heads < 1:
            raise ValueError(f"message_heads must be None or >= 1, got {self.message_heads}")


# -- pure pieces (tested by hand) ------------------------------------------------------------

def erase_noisy_snippets(scores: Tensor, threshold: float = 0.15, max_erased: int = 2) -> tuple[Tensor, Tensor]:
    """NRM (Eq. 9): scores a (B, N) -> weights a* (B, N) and keep mask (B, N) bool.

    ã = (a − min a)/(max a − min a) per video, a* = softmax(ã). Snippet n is erased iff
    a*_n < θ, at most ``max_erased`` of them (the lowest a* first) and never the best one.
    When max a = min a (the official code divides by zero here) a* = 1/N and nothing is
    erased. The mask carries no gradient; a* is not detached.
    """
    lo = scores.min(dim=1, keepdim=True).values
    span = scores.max(dim=1, keepdim=True).values - lo
    tie = span <= 0  # (B, 1)
    norm = (scores - lo) / torch.where(tie, torch.ones_like(span), span)  # 0 everywhere on ties
    weights = norm.softmax(dim=1)
    with torch.no_grad():
        w = weights.detach()
        rank = w.argsort(dim=1, stable=True).argsort(dim=1)  # 0 = lowest weight
        best = F.one_hot(w.argmax(dim=1), w.shape[1]).bool()
        erase = (w < threshold) & (rank < max_erased) & ~best & ~tie
    return weights, ~erase


def update_class_embeddings(c: Tensor, x: Tensor, gamma: Tensor, mode: str = "paper") -> Tensor:
    """CMAM output (Eq. 8): c (C, D), x = cross-attention output (B, C, D), γ (D,) -> ĉ (B, C, D), L2-normalised.

    paper: ĉ = c + γ⊙(x − c); code: ĉ = c + γ⊙x (the official code, where x still contains c).
    """
    delta = x - c if mode == "paper" else x
    return F.normalize(c + gamma * delta, dim=-1)


def consistency_kl(global_logits: Tensor, local_logits: Tensor, form: str = "paper") -> Tensor:
    """L_k (Eq. 11), batch mean. paper: KL(p_g‖p_l), no detach; code: −Σ p_g·log softmax(softmax ℓˡ)."""
    if form == "paper":
        return kl_divergence(global_logits, local_logits)
    p_g = global_logits.softmax(dim=-1)
    return -(p_g * F.log_softmax(local_logits.softmax(dim=-1), dim=-1)).sum(dim=-1).mean()


def fuse_heads(global_logits: Tensor, local_logits: Tensor) -> Tensor:
    """Fused head: log((softmax ℓᵍ + softmax ℓˡ)/2), a log-probability whose argmax is that of
    softmax ℓᵍ + softmax ℓˡ (§2 "Inference")."""
    probs = (global_logits.float().softmax(dim=-1) + local_logits.float().softmax(dim=-1)) / 2
    return probs.clamp_min(1e-12).log()


# -- the method -----------------------------------------------------------------------------

@register_method("dk_clip")
class DKCLIP(ClipMethod):
    """Closed-set DFER; predicts argmax of the global head, also exposes local and fused heads."""

    config_cls = DKCLIPConfig
    heads = ("global", "local", "fused")

    def __init__(self, cfg: DKCLIPConfig, backbone=None) -> None:
        super().__init__(cfg, backbone)
        bb = self.backbone
        w, d = bb.width, bb.embed_dim
        blocks = bb.visual_blocks
        heads = cfg.message_heads or int(blocks[0].attn.num_heads)
        self._set_trainable()
        self.messages = MessageTokens(w, len(blocks), heads)
        msim = TemporalConfig(dim=d, depth=1, heads=cfg.msim_heads, dim_head=d // cfg.msim_heads, mlp_dim=4 * d,
                              act="quick_gelu", qkv_bias=True, cls_token=False, pos_len=cfg.num_snippets,
                              init="trunc_normal", output="mean", outer_residual=cfg.msim_outer_residual)
        self.msim = TemporalTransformer(msim, cfg.num_snippets)
        self.msim.requires_grad_(not cfg.freeze_msim)
        self.extra = None
        if cfg.visual_context == "code_extra_transformer":
            self.extra = SnippetMessageTransformer(w, bb.grid_size ** 2, cfg.extra_depth, heads)
            self.extra.requires_grad_(False)  # random init, frozen, as the official code
        self.ln_v = nn.LayerNorm(w)
        self.w_v = nn.Parameter(torch.randn(w, d))  # N(0, 1), Eq. 7
        self.cmam = CrossAttention(d, depth=cfg.cmam_depth, heads=cfg.cmam_heads, act="quick_gelu")
        self.gamma = nn.Parameter(torch.full((d,), cfg.gamma_init))
        self.register_buffer("text_features", torch.zeros(0), persistent=False)
        self.prompts: PromptLearner | None = None
        self._eval_text: Tensor | None = None
        self._epoch = 0

    def _set_trainable(self) -> None:
        """CFAM trained except conv1 (unless ``train_patch_embed``); text tower and logit scale frozen."""
        self.backbone.freeze("all")
        for name, p in self.backbone.clip.visual.named_parameters():
            p.requires_grad_(self.cfg.train_patch_embed or not name.startswith("conv1."))

    @property
    def data_preset(self) -> DataPreset:
        """T = 16, the DK-CLIP sampler (clips under 3 frames dropped), its transforms, ImageNet norm."""
        return DataPreset(num_frames=self.cfg.num_frames, sampler="dk_clip", short_policy="spread_round",
                          train_transform="dk_clip_train", test_transform="dk_clip_test",
                          normalization=self.cfg.pixel_norm, image_size=self.image_size)

    # -- classes and text ---------------------------------------------------------------------
    def text_bank(self) -> TextBank:
        kind = "au_prompt" if self.cfg.au_prompts == "or" else "au_prompt_and"
        return load_text_bank(kind, self.cfg.text_bank)

    def set_classes(self, names: Sequence[str]) -> None:
        """AU prompts by class name; c is encoded once without gradient (or contexts are (re)built)."""
        super().set_classes(names)
        bank = self.text_bank()
        bank.check(names)
        bb, dev = self.backbone, self.backbone.pixel_mean.device
        if self.cfg.n_ctx > 0:
            texts = [bank.text(n) for n in names]  # one prompt per class: its first text
            if self.prompts is None or self.prompts.ctx.shape[0] != len(names):
                self.prompts = PromptLearner(bb, texts, self.cfg.n_ctx, True, self.cfg.ctx_init_std, "end").to(dev)
            else:
                self.prompts.rebuild(bb, texts)
        else:
            texts = [list(bank.texts(n)) for n in names]
            with torch.no_grad():  # one batch; several texts for a class (user JSON): mean of raw embeddings
                flat = bb.encode_text(bb.tokenize([t for ts in texts for t in ts])).split([len(ts) for ts in texts])
            self.text_features = torch.stack([f.mean(dim=0) for f in flat]).detach()  # (C, D), raw: Eq. 8 x⁰ = c
        self._eval_text = None
        log.debug("dk_clip classes %s with %s prompts (n_ctx=%d)", list(names), bank.name, self.cfg.n_ctx)

    def class_text(self) -> Tensor:
        """c (C, D): cached frozen AU-prompt features, or the context prompts encoded this step."""
        if self.prompts is None:
            return self.text_features
        if self._eval_text is not None and not self.training:
            return self._eval_text
        return self.prompts.encode(self.backbone, normalize=False)

    # -- video side --------------------------------------------------------------------------
    def encode_video(self, video: Tensor) -> dict[str, Tensor]:
        """CFAM, snippets and MSIM: pixels (B, T, 3, S, S) in [0, 1] -> u, z, s, v."""
        b, t = video.shape[:2]
        n = self.cfg.num_snippets
        if t % n:
            raise ValueError(f"dk_clip: {t} frames do not split into {n} snippets")
        x = normalize(video, self.cfg.pixel_norm).reshape(b * t, *video.shape[2:])
        out = self.backbone.encode_image_with_patches(x, self.messages.hook(t // n))
        u = out["embeds"].view(b, t, -1)  # (B, T, D)
        z = out["patch_tokens"].view(b, t, *out["patch_tokens"].shape[1:])  # (B, T, P, W)
        s = u.view(b, n, t // n, -1).mean(dim=2)  # (B, N, D), Eq. 5
        v = self.msim(s)  # (B, D), Eq. 6
        return {"u": u, "z": z, "s": s, "v": v}

    def visual_context(self, z: Tensor, keep: Tensor) -> Tensor:
        """Z (B, P, D) from patch tokens z (B, T, P, W) of the kept snippets keep (B, N), Eq. 7."""
        b, t = z.shape[:2]
        n = keep.shape[1]
        k = keep.to(z.dtype)
        if self.extra is None:
            frames = k.repeat_interleave(t // n, dim=1)  # (B, T)
            zbar = (z * frames[:, :, None, None]).sum(dim=1) / frames.sum(dim=1)[:, None, None]  # (B, P, W)
            return self.ln_v(zbar) @ self.w_v.to(zbar.dtype)
        snippets = z.view(b, n, t // n, *z.shape[2:]).mean(dim=2)  # (B, N, P, W)
        ctx = self.ln_v(self.extra(snippets)) @ self.w_v.to(z.dtype)  # (B, N, P, D)
        return (ctx * k[:, :, None, None]).sum(dim=1) / k.sum(dim=1)[:, None, None]

    def heads_logits(self, enc: Mapping[str, Tensor], c: Tensor) -> dict[str, Tensor]:
        """NRM, visual context, CMAM and the three heads (Eqs. 7–10)."""
        v, s = enc["v"], enc["s"]
        scores = F.cosine_similarity(v.unsqueeze(1), s, dim=-1)  # (B, N)
        weights, keep = erase_noisy_snippets(scores.float(), self.cfg.erase_threshold, self.cfg.max_erased)
        ctx = self.visual_context(enc["z"], keep)  # (B, P, D)
        c = c.to(ctx.dtype)
        c_hat = update_class_embeddings(c, self.cmam(c, ctx), self.gamma.to(ctx.dtype), self.cfg.cmam_update)
        scale = self.backbone.logit_scale()
        g = scale * torch.einsum("bd,bcd->bc", F.normalize(v, dim=-1), c_hat)  # (B, C)
        per = scale * torch.einsum("bnd,bcd->bnc", F.normalize(s, dim=-1), c_hat)  # (B, N, C)
        local = ((weights * keep).unsqueeze(-1) * per.float()).sum(dim=1)  # (B, C), Eq. 10, not renormalised
        return {"global": g.float(), "local": local, "snippet": per, "weights": weights, "keep": keep}

    def forward(self, video: Tensor, ids: Sequence[str] | None = None) -> MethodOutput:
        enc = self.encode_video(video)
        z = self.heads_logits(enc, self.class_text())
        fused = fuse_heads(z["global"], z["local"])
        return MethodOutput(logits=z["global"], open_score=self.open_score(z["global"]), features=enc["v"],
                            extras={"global": z["global"], "local": z["local"], "fused": fused,
                                    "snippet_weights": z["weights"], "kept": z["keep"].float()})

    # -- training ----------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    @property
    def consistency_on(self) -> bool:
        e = self.cfg.consistency_epochs
        return e is None or self._epoch < e

    def soft_targets(self, labels: Tensor) -> Tensor:
        """ỹ before mixing: one-hot smoothed with ε (off ε/C, on 1 − ε + ε/C)."""
        return smooth_one_hot(labels, len(self.classnames), self.cfg.label_smoothing)

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Eq. 11 on smoothed, then mixed targets. Mixing acts on [0, 1] pixels before the
        normalisation (equal to mixing normalised tensors: both mixes are affine per pixel)."""
        cfg = self.cfg
        video, targets = batch["video"], self.soft_targets(batch["label"])
        if cfg.mixing:
            video, targets, _ = mix_batch(video, targets, fmix_prob=cfg.fmix_prob, mixup_alpha=cfg.mixup_alpha,
                                          fmix_alpha=cfg.fmix_alpha, decay_power=cfg.fmix_decay_power)
        z = self.heads_logits(self.encode_video(video), self.class_text())
        l_g = soft_cross_entropy(z["global"], targets)
        out = {"global": l_g.detach(), "erased": (~z["keep"]).float().sum(dim=1).mean()}
        total = l_g
        if self.consistency_on and cfg.consistency_weight > 0:
            l_l = soft_cross_entropy(z["local"], targets)
            l_k = consistency_kl(z["global"], z["local"], cfg.kl)
            total = total + cfg.consistency_weight * (l_l + l_k)
            out.update(local=l_l.detach(), kl=l_k.detach())
        return {"loss": total, **out}

    def new_modules(self) -> dict[str, list[nn.Parameter]]:
        """The modules DK-CLIP adds to CLIP, trained at ``new_lr_mult`` × the base LR."""
        groups = {"messages": list(self.messages.parameters()), "msim": list(self.msim.parameters()),
                  "visual_context": [*self.ln_v.parameters(), self.w_v],
                  "cmam": [*self.cmam.parameters(), self.gamma]}
        if self.prompts is not None:
            groups["text_context"] = [self.prompts.ctx]  # [ovfer] contexts are new: 10× as well
        return groups

    def param_groups(self) -> list[dict[str, Any]]:
        """clip_visual at the base LR (2e-6), new modules at ``new_lr_mult`` × it (2e-5)."""
        visual = [p for p in self.backbone.clip.visual.parameters() if p.requires_grad]
        groups = [{"name": "clip_visual", "params": visual}]
        for name, params in self.new_modules().items():
            trainable = [p for p in params if p.requires_grad]
            if trainable:
                groups.append({"name": name, "params": trainable, "lr_mult": self.cfg.new_lr_mult})
        return groups

    def prepare_eval(self) -> None:
        """Encode context prompts once per evaluation (the frozen AU features are cached already)."""
        if self.prompts is None:
            return
        with torch.no_grad():
            self._eval_text = self.prompts.encode(self.backbone, normalize=False).detach()

    def train(self, mode: bool = True):
        if mode:
            self._eval_text = None  # contexts will change
        return super().train(mode)

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Learned tensors plus the frozen random-init modules (MSIM when frozen, the extra
        transformer), which no CLIP file can restore."""
        sd = super().trainable_state_dict()
        for prefix, module in (("msim.", self.msim), ("extra.", self.extra)):
            if module is not None:
                sd.update({prefix + k: v for k, v in module.state_dict().items()})
        return sd
