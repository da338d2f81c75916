"""One temporal transformer and one text-query cross-attention block (METHODS §4).

``TemporalTransformer`` is DFER-CLIP's g (1 block, 8×64 heads, MLP 1024, tanh-GELU, class
token), EmoCLIP's temporal head (2 blocks, 8×2048 heads, MLP 512 as released) and DK-CLIP's
MSIM (no class token, trunc-normal positions, QuickGELU, mean output, optional outer
residual) — the three differ only in ``TemporalConfig`` values. ``CrossAttention`` is the
CMAM layer stack of DK-CLIP (class text queries attend to visual context tokens).

Parameter names are ovfer's own; ``convert_vitpytorch_keys`` maps the layout of the
released DFER-CLIP / EmoCLIP checkpoints (``layers.i.0.fn.fn.to_qkv`` ...) onto them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Activation = Literal["gelu_tanh", "gelu", "quick_gelu"]


class QuickGELU(nn.Module):
    """x·σ(1.702x), the activation of OpenAI CLIP (DK-CLIP's MSIM and CMAM MLPs)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def activation(name: Activation) -> nn.Module:
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    if name == "gelu":
        return nn.GELU()
    if name == "quick_gelu":
        return QuickGELU()
    raise ValueError(f"unknown activation {name!r}; valid: gelu_tanh, gelu, quick_gelu")


class MLP(nn.Module):
    """Linear → activation → Linear (dropout 0 everywhere, as all three papers' code)."""

    def __init__(self, dim: int, hidden: int, act: Activation) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head attention with one fused q/k/v Linear (heads × dim_head may differ from dim).

    ``kv`` given: queries from ``x``, keys/values from ``kv`` (cross-attention; then the q and
    k/v projections are separate Linears, ``to_q`` and ``to_kv``).
    """

    def __init__(self, dim: int, heads: int, dim_head: int, qkv_bias: bool = False, cross: bool = False) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        if cross:
            self.to_q = nn.Linear(dim, inner, bias=qkv_bias)
            self.to_kv = nn.Linear(dim, 2 * inner, bias=qkv_bias)
        else:
            self.to_qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.to_out = nn.Linear(inner, dim)

    def _split(self, t: Tensor) -> Tensor:  # (B, L, H·d) -> (B, H, L, d)
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def forward(self, x: Tensor, kv: Tensor | None = None) -> Tensor:
        if kv is None:
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        else:
            q = self.to_q(x)
            k, v = self.to_kv(kv).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(self._split(q), self._split(k), self._split(v))  # scale d^-1/2
        b, _, n, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


class Block(nn.Module):
    """Pre-LN block: x ← x + Attn(LN(x)); x ← x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, act: Activation,
                 qkv_bias: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, act)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@dataclass
class TemporalConfig:
    """Shape and init of a temporal transformer; defaults are DFER-CLIP's g (METHODS §1)."""

    dim: int = 512
    depth: int = 1
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 1024
    act: Activation = "gelu_tanh"
    qkv_bias: bool = False
    cls_token: bool = True
    """Prepend a learnable class token (DFER-CLIP, EmoCLIP); False for DK-CLIP's MSIM."""
    pos_len: int | None = None
    """Rows of the position table; None = exactly T (+1 with a class token)."""
    init: Literal["normal", "trunc_normal"] = "normal"
    """normal: class token and positions N(0, 1), PyTorch default Linears (DFER-CLIP, EmoCLIP);
    trunc_normal: positions and Linear weights trunc-normal(0.02), biases 0, xavier q/k/v (MSIM)."""
    output: Literal["cls", "mean"] = "cls"
    outer_residual: bool = False
    """DK-CLIP code: v = mean_n(Block(s + e) + s) instead of mean_n(Block(s + e))."""
    start: Literal["random", "frame_mean"] = "random"
    """``random``: the papers' net. ``frame_mean`` (ovfer option): the output is the frame mean plus
    the blocks' summed residual updates on the class token (or the tokens' mean), with every
    block's output projection zero-initialised, so an untrained net returns the mean of the frame
    embeddings — CLIP's own zero-shot video feature — and training starts from it instead of
    from a random vector. Same parameters and key layout as ``random``."""

    def __post_init__(self) -> None:
        if self.output == "cls" and not self.cls_token:
            raise ValueError("output='cls' needs cls_token=True")
        if self.start not in ("random", "frame_mean"):
            raise ValueError(f"temporal start must be 'random' or 'frame_mean', got {self.start!r}")
        if self.start == "frame_mean" and self.outer_residual:
            raise ValueError("start='frame_mean' already adds the frames back; it excludes outer_residual")
        if min(self.dim, self.heads, self.dim_head, self.mlp_dim) < 1 or self.depth < 0:
            raise ValueError(f"bad temporal transformer sizes: {self}")


class TemporalTransformer(nn.Module):
    """Frame embeddings (B, T, D) -> video embedding (B, D).

    ``depth = 0`` is "no temporal model": the mean of the frame embeddings (DFER-CLIP's
    ablation, ovfer's reading of "w/o TM").
    """

    def __init__(self, cfg: TemporalConfig, num_frames: int) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        n_pos = cfg.pos_len or (num_frames + int(cfg.cls_token))
        if cfg.depth == 0:
            self.blocks = nn.ModuleList()
            return
        self.cls_token = nn.Parameter(torch.randn(1, 1, d)) if cfg.cls_token else None
        self.pos_embedding = nn.Parameter(torch.randn(1, n_pos, d))
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.act, cfg.qkv_bias)
                                    for _ in range(cfg.depth))
        if cfg.init == "trunc_normal":
            self._trunc_normal_init()
        if cfg.start == "frame_mean":
            for blk in self.blocks:
                for lin in (blk.attn.to_out, blk.mlp.fc2):
                    nn.init.zeros_(lin.weight)
                    nn.init.zeros_(lin.bias)

    def _trunc_normal_init(self) -> None:
        nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for blk in self.blocks:
            nn.init.xavier_uniform_(blk.attn.to_qkv.weight)
            for lin in (blk.attn.to_out, blk.mlp.fc1, blk.mlp.fc2):
                nn.init.trunc_normal_(lin.weight, std=0.02)
            for lin in (blk.attn.to_qkv, blk.attn.to_out, blk.mlp.fc1, blk.mlp.fc2):
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)

    def forward(self, frames: Tensor) -> Tensor:
        if self.cfg.depth == 0:
            return frames.mean(dim=1)
        b, t, _ = frames.shape
        x = frames
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(b, -1, -1).to(x.dtype), x], dim=1)
        if x.shape[1] > self.pos_embedding.shape[1]:
            raise ValueError(f"{t} frames do not fit a position table of {self.pos_embedding.shape[1]} rows")
        h = h0 = x + self.pos_embedding[:, : x.shape[1]].to(x.dtype)
        for blk in self.blocks:
            h = blk(h)
        if self.cfg.start == "frame_mean":  # residual updates only, read on top of the frame mean
            upd = h - h0
            return frames.mean(dim=1) + (upd[:, 0] if self.cfg.output == "cls" else upd.mean(dim=1))
        if self.cfg.outer_residual:
            h = h + x
        return h[:, 0] if self.cfg.output == "cls" else h.mean(dim=1)


class CrossAttention(nn.Module):
    """Text queries attend to visual tokens, ``depth`` layers (DK-CLIP CMAM, METHODS §2f).

    Each layer: x ← x + XAttn(q = LN₁(x), k = v = LN(Z)); x ← x + MLP(LN₃(x)). q/k/v
    Linears are bias-free, weights trunc-normal(0.02), biases 0.
    """

    def __init__(self, dim: int, depth: int = 2, heads: int = 8, mlp_ratio: int = 4,
                 act: Activation = "quick_gelu") -> None:
        super().__init__()
        self.norm_kv = nn.LayerNorm(dim)
        self.layers = nn.ModuleList()
        for _ in range(depth):
            layer = nn.ModuleDict({"norm1": nn.LayerNorm(dim), "attn": Attention(dim, heads, dim // heads, cross=True),
                                   "norm3": nn.LayerNorm(dim), "mlp": MLP(dim, mlp_ratio * dim, act)})
            self.layers.append(layer)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, queries: Tensor, visual: Tensor) -> Tensor:
        """queries (C, D) or (B, C, D), visual (B, P, D) -> (B, C, D)."""
        if queries.dim() == 2:
            queries = queries.unsqueeze(0).expand(visual.shape[0], -1, -1)
        kv = self.norm_kv(visual)
        x = queries
        for layer in self.layers:
            x = x + layer["attn"](layer["norm1"](x), kv)
            x = x + layer["mlp"](layer["norm3"](x))
        return x


_VITPYTORCH = [
    (r"^cls_token$", "cls_token"),
    (r"^pos_embedding$", "pos_embedding"),
    (r"^temporal_transformer\.layers\.(\d+)\.0\.fn\.norm\.(weight|bias)$", r"blocks.\1.norm1.\2"),
    (r"^temporal_transformer\.layers\.(\d+)\.0\.fn\.fn\.to_qkv\.(weight|bias)$", r"blocks.\1.attn.to_qkv.\2"),
    (r"^temporal_transformer\.layers\.(\d+)\.0\.fn\.fn\.to_out\.0\.(weight|bias)$", r"blocks.\1.attn.to_out.\2"),
    (r"^temporal_transformer\.layers\.(\d+)\.1\.fn\.norm\.(weight|bias)$", r"blocks.\1.norm2.\2"),
    (r"^temporal_transformer\.layers\.(\d+)\.1\.fn\.fn\.net\.0\.(weight|bias)$", r"blocks.\1.mlp.fc1.\2"),
    (r"^temporal_transformer\.layers\.(\d+)\.1\.fn\.fn\.net\.3\.(weight|bias)$", r"blocks.\1.mlp.fc2.\2"),
]


def convert_vitpytorch_keys(sd: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Keys under ``prefix`` in the released DFER-CLIP/EmoCLIP temporal-net layout -> ours.

    ``temporal_net.temporal_transformer.layers.0.0.fn.fn.to_qkv.weight`` (prefix
    ``temporal_net.``) becomes ``blocks.0.attn.to_qkv.weight``. An unrecognised key under
    the prefix raises, so a layout change is never loaded half-way.
    """
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        for pattern, repl in _VITPYTORCH:
            if re.match(pattern, rest):
                out[re.sub(pattern, repl, rest)] = value
                break
        else:
            raise KeyError(f"unrecognised temporal-net key '{key}' (expected the vit-pytorch layout "
                           "temporal_transformer.layers.<i>.<0|1>.fn...)")
    return out
