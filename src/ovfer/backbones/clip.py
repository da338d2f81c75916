"""ClipBackbone: the one CLIP wrapper every method uses (SPEC §3, METHODS §4).

It is the only module that imports open_clip. Methods get what they need through it —
frame embeddings, last-layer patch tokens and their projection (CAMs), extra tokens
inside the visual blocks, text encoding from ids or from assembled prompt embeddings,
the logit scale, freezing and parameter groups — without reaching into open_clip.
Parameter names stay open_clip's (``clip.visual.transformer.resblocks.0...``) so
OpenAI/OpenCLIP state dicts load unchanged.
"""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovfer.backbones.weights import (
    WeightsMismatchError,
    canonical_arch,
    describe_state_dict,
    read_state_dict,
    register_ovfer_configs,
    resolve_pretrained,
)

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Named parameter groups (regexes over parameter names below ``clip.``), METHODS §4.
GROUPS: dict[str, str] = {
    "patch_embed": r"^visual\.(conv1|class_embedding|positional_embedding|ln_pre)",
    "visual_blocks": r"^visual\.transformer\.",
    "visual_head": r"^visual\.(ln_post|proj)",
    "text_embed": r"^(token_embedding|positional_embedding)",
    "text_blocks": r"^transformer\.",
    "text_head": r"^(ln_final|text_projection)",
    "logit_scale": r"^logit_(scale|bias)",
}

#: Extra-token hook: (block index, tokens (N, L, W)) -> tokens to append (N, E, W) or None.
TokenHook = Callable[[int, Tensor], "Tensor | None"]


@dataclass
class BackboneConfig:
    """Which CLIP to build and where its weights come from (SPEC §3)."""

    arch: str = "ViT-B-32"
    """open_clip architecture name (ViT-B-32, ViT-B-16, ViT-L-14) or an ovfer small config."""
    pretrained: str | None = "openai"
    """open_clip tag (local cache only), a weight file path, or None for random init."""
    image_size: int | None = None
    """Force an input size other than the architecture's (position embeddings are resized)."""
    quick_gelu: bool | None = None
    """None: QuickGELU for OpenAI weights and configs that say so, GELU otherwise."""
    cache_dir: str | None = None


class ClipBackbone(nn.Module):
    """A CLIP model plus the few operations the methods share."""

    def __init__(self, cfg: BackboneConfig | None = None, **kwargs) -> None:
        super().__init__()
        import open_clip

        cfg = cfg or BackboneConfig(**kwargs)
        self.cfg = cfg
        register_ovfer_configs()
        arch = canonical_arch(cfg.arch)
        self.arch = arch
        path = resolve_pretrained(arch, cfg.pretrained, cfg.cache_dir) if _wants_weights(cfg.pretrained) else None
        quick = cfg.quick_gelu
        if quick is None:
            quick = bool(open_clip.get_model_config(arch).get("quick_gelu", False)) or (
                cfg.pretrained == "openai" or (path is not None and _looks_openai(path)))
        extra = {"force_image_size": cfg.image_size} if cfg.image_size else {}
        with _quiet_random_init_warning():  # ovfer loads the weights itself, just below
            self.clip = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick, **extra)
        self.tokenizer = open_clip.get_tokenizer(arch)
        if path is not None:
            self.load_weights(path)
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)
        self._lowp: dict[str, object] = {}  # bf16 copy of the visual tower for inference (not a submodule)

    # -- weights ------------------------------------------------------------------------
    def load_weights(self, path) -> None:
        """Load an OpenAI/open_clip/ovfer state dict; shape mismatches raise with both shapes."""
        from open_clip.model import resize_pos_embed

        sd, meta = read_state_dict(path)
        if "visual.positional_embedding" in sd and sd["visual.positional_embedding"].shape != \
                self.clip.visual.positional_embedding.shape:
            resize_pos_embed(sd, self.clip)  # other input size: interpolate the grid
        own = self.clip.state_dict()
        bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in sd.items() if k in own and own[k].shape != v.shape]
        missing = [k for k in own if k not in sd and k != "attn_mask"]
        if bad or missing:
            raise WeightsMismatchError(
                f"{path} does not fit architecture {self.arch}: file looks like {describe_state_dict(sd)}; "
                f"first shape mismatches {bad[:3]}; missing keys {missing[:5]}")
        self.clip.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
        log.info("loaded CLIP weights %s into %s", path, self.arch)

    # -- sizes --------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        s = self.clip.visual.image_size
        return int(s[0] if isinstance(s, (tuple, list)) else s)

    @property
    def patch_size(self) -> int:
        p = self.clip.visual.patch_size
        return int(p[0] if isinstance(p, (tuple, list)) else p)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def width(self) -> int:
        return int(self.clip.visual.conv1.out_channels)

    @property
    def embed_dim(self) -> int:
        return int(self.clip.text_projection.shape[1])

    @property
    def text_width(self) -> int:
        return int(self.clip.ln_final.weight.shape[0])

    @property
    def context_length(self) -> int:
        return int(self.clip.positional_embedding.shape[0])

    @property
    def visual_blocks(self) -> nn.ModuleList:
        return self.clip.visual.transformer.resblocks

    def logit_scale(self) -> Tensor:
        """exp(logit_scale): 100 for OpenAI CLIP."""
        return self.clip.logit_scale.exp()

    # -- images -------------------------------------------------------------------------
    def normalize(self, x: Tensor) -> Tensor:
        """CLIP mean/std normalisation of pixels in [0, 1]; x (..., 3, H, W)."""
        shape = x.shape
        x = x.reshape(-1, *shape[-3:])
        return ((x - self.pixel_mean.to(x.dtype)) / self.pixel_std.to(x.dtype)).reshape(shape)

    def visual_tokens(self, images: Tensor, token_hook: TokenHook | None = None) -> Tensor:
        """Run the visual transformer; images (N, 3, H, W) normalised -> tokens (N, 1+P, W).

        ``token_hook(i, x)`` may return extra tokens that are appended before block ``i`` and
        dropped after it (DFER-CLIP/DK-CLIP-style message tokens).
        """
        v, images = self._visual_for(images)
        x = v._embeds(images)
        for i, blk in enumerate(v.transformer.resblocks):
            extra = token_hook(i, x) if token_hook is not None else None
            if extra is None:
                x = blk(x)
            else:
                n = x.shape[1]
                x = blk(torch.cat([x, extra.to(x.dtype)], dim=1))[:, :n]
        return x

    def visual_head(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens (N, 1+P, W) -> (class embedding (N, D), projected patch embeddings (N, P, D))."""
        v, tokens = self._visual_for(tokens)
        x = v.ln_post(tokens)
        return x[:, 0] @ v.proj, x[:, 1:] @ v.proj

    def encode_image(self, images: Tensor, normalize: bool = False) -> Tensor:
        """Images (N, 3, H, W), CLIP-normalised -> embeddings (N, D)."""
        v, images = self._visual_for(images)
        emb = v(images)
        return F.normalize(emb, dim=-1) if normalize else emb

    def _visual_for(self, x: Tensor) -> tuple[nn.Module, Tensor]:
        """The visual tower to run on ``x``, and ``x`` in its dtype.

        Under ``torch.inference_mode`` with bf16 autocast on, a bf16 copy of the tower runs (autocast
        stays on, so token hooks with fp32 weights still work). Autocast alone re-casts frozen weights
        (no grad, so not in its cast cache) at every call; on a 2-core CPU that cancelled the bf16
        speed-up (benchmarks/RESULTS.md). The copy is made once and rebuilt when the fp32 weights
        change (device, storage or in-place version). Training and fp32 use the fp32 weights.
        """
        v = self.clip.visual
        dev = x.device.type
        if not (torch.is_inference_mode_enabled() and torch.is_autocast_enabled(dev)
                and torch.get_autocast_dtype(dev) == torch.bfloat16):
            return v, x
        params = list(v.parameters())
        key = (str(params[0].device), tuple((p.data_ptr(), p._version) for p in params))
        if self._lowp.get("key") != key:
            self._lowp.clear()
            with torch.inference_mode(False), torch.no_grad():
                shadow = copy.deepcopy(v).to(torch.bfloat16).requires_grad_(False).eval()
            self._lowp.update(key=key, module=shadow)
        return self._lowp["module"], x.to(torch.bfloat16)

    def encode_image_with_patches(self, images: Tensor, token_hook: TokenHook | None = None
                                  ) -> dict[str, Tensor]:
        """Class embedding plus last-layer patch tokens (before ln_post) and their projection.

        Returns ``embeds`` (N, D), ``patch_tokens`` (N, P, W), ``patch_embeds`` (N, P, D).
        """
        tokens = self.visual_tokens(images, token_hook)
        cls, patches = self.visual_head(tokens)
        return {"embeds": cls, "patch_tokens": tokens[:, 1:], "patch_embeds": patches}

    def encode_frames(self, video: Tensor, chunk: int | None = None) -> Tensor:
        """Video (B, T, 3, H, W), CLIP-normalised -> per-frame embeddings (B, T, D).

        ``chunk`` bounds the frames per forward (memory), without changing results.
        """
        b, t = video.shape[:2]
        flat = video.reshape(b * t, *video.shape[2:])
        if chunk is None or chunk >= flat.shape[0]:
            out = self.encode_image(flat)
        else:
            out = torch.cat([self.encode_image(c) for c in flat.split(chunk)], dim=0)
        return out.reshape(b, t, -1)

    # -- text ---------------------------------------------------------------------------
    def tokenize(self, texts: str | Sequence[str]) -> Tensor:
        """CLIP BPE ids (N, context_length), truncated with EOT kept last."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self.tokenizer(texts).to(self.clip.positional_embedding.device)

    def token_embedding(self, ids: Tensor) -> Tensor:
        """Frozen-or-not token embeddings (N, L, text_width)."""
        return self.clip.token_embedding(ids)

    def encode_text(self, ids: Tensor, normalize: bool = False) -> Tensor:
        """Token ids (N, L) -> text embeddings (N, D), pooled at EOT (argmax id)."""
        return self.encode_text_embeddings(self.token_embedding(ids), ids, normalize)

    def encode_text_embeddings(self, embeds: Tensor, ids: Tensor, normalize: bool = False) -> Tensor:
        """Assembled prompt embeddings (N, L, W_text) -> (N, D); pooled where ``ids`` has its max (EOT).

        This is how learnable contexts reach the frozen text transformer (CoOp, HESP §7.2).
        """
        c = self.clip
        x = embeds + c.positional_embedding.to(embeds.dtype)
        x = c.transformer(x, attn_mask=c.attn_mask)
        x = c.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), ids.argmax(dim=-1)]
        x = x @ c.text_projection
        return F.normalize(x, dim=-1) if normalize else x

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        """Convenience: plain text strings -> embeddings (N, D), no gradient."""
        return self.encode_text(self.tokenize(texts), normalize=normalize)

    # -- freezing and groups ------------------------------------------------------------
    def group_of(self, name: str) -> str:
        """Group name of a parameter (name relative to ``self.clip``)."""
        for group, pattern in GROUPS.items():
            if re.match(pattern, name):
                return group
        return "other"

    def named_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        out: dict[str, list[tuple[str, nn.Parameter]]] = {g: [] for g in GROUPS}
        for n, p in self.clip.named_parameters():
            out.setdefault(self.group_of(n), []).append((n, p))
        return out

    def freeze(self, groups: Iterable[str] | Literal["all"] = "all", frozen: bool = True) -> None:
        """Set ``requires_grad = not frozen`` for the named groups (or all of CLIP)."""
        selected = list(GROUPS) if groups == "all" else list(groups)
        unknown = [g for g in selected if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown parameter group(s) {unknown}; valid: {list(GROUPS)}")
        for g, params in self.named_groups().items():
            if g in selected:
                for _, p in params:
                    p.requires_grad_(not frozen)

    def parameters_of(self, groups: Iterable[str]) -> list[nn.Parameter]:
        named = self.named_groups()
        return [p for g in groups for _, p in named.get(g, [])]


class _quiet_random_init_warning(logging.Filter):
    """Drop open_clip's "initialized randomly" warning while ovfer builds the bare architecture."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()

    def __enter__(self) -> None:
        logging.getLogger().addFilter(self)

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeFilter(self)


def _wants_weights(pretrained: str | None) -> bool:
    return pretrained is not None and pretrained.lower() not in {"", "none", "random"}


def _looks_openai(path) -> bool:
    return "openai" in str(path).lower() or str(path).endswith(("ViT-B-32.pt", "ViT-B-16.pt", "ViT-L-14.pt"))


def build_backbone(arch: str = "ViT-B-32", pretrained: str | None = "openai", **kwargs) -> ClipBackbone:
    """``build_backbone("ViT-B/16", "/path/ViT-B-16.pt")``: the three-word way to get a backbone."""
    return ClipBackbone(BackboneConfig(arch=arch, pretrained=pretrained, **kwargs))
