"""Per-block message tokens exchanged inside groups of frames (DK-CLIP CFAM, METHODS §2a).

In block l each frame gets one message token m_t = F_l(X_t[0]) (a Linear on its current
class token); the messages of a group (a snippet of T/N consecutive frames) exchange
information by self-attention, m ← m + MHA_l(LN_l(m)); each message is then appended to its
frame's tokens for that block's attention and dropped after it. The append/drop is
``ClipBackbone.visual_tokens``'s token hook, so CLIP's own parameter names stay intact.

``SnippetMessageTransformer`` is the official code's extra random-init, frozen transformer
over snippet-mean patch maps (option ``dk_clip.visual_context=code_extra_transformer``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ovfer.modules.temporal import Block


class MessageTokens(nn.Module):
    """F_l, LN_l and MHA_l for ``depth`` blocks (PyTorch default inits, no temporal position)."""

    def __init__(self, width: int, depth: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"message attention: width {width} is not divisible by {heads} heads")
        self.fc = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.norm = nn.ModuleList(nn.LayerNorm(width) for _ in range(depth))
        self.attn = nn.ModuleList(nn.MultiheadAttention(width, heads, batch_first=True) for _ in range(depth))

    def forward(self, block: int, tokens: Tensor, group: int) -> Tensor:
        """tokens (G·group, L, W), rows of one group consecutive -> messages (G·group, 1, W)."""
        n, _, w = tokens.shape
        if n % group:
            raise ValueError(f"{n} token rows do not split into groups of {group}")
        m = self.fc[block](tokens[:, 0]).view(n // group, group, w)  # (G, group, W)
        h = self.norm[block](m)
        m = m + self.attn[block](h, h, h, need_weights=False)[0]
        return m.reshape(n, 1, w)

    def hook(self, group: int):
        """A ``ClipBackbone`` token hook exchanging messages within groups of ``group`` frames."""
        return lambda block, tokens: self(block, tokens, group)


class SnippetMessageTransformer(nn.Module):
    """Snippet patch maps (B, N, P, W) -> refined patch tokens (B, N, P, W). **[recon]**

    The official DK-CLIP code feeds the snippet-mean patch maps through a second, random-init
    and frozen transformer: its own class token and position embedding, ``depth`` pre-LN
    blocks, and message tokens attending across the N snippets of a video. Widths follow
    CLIP's visual tower (W, W/64 heads, MLP 4W, QuickGELU); class token and positions are
    trunc-normal(0.02) — the code's exact block type and init are not specified in METHODS,
    so this is ovfer's reconstruction.
    """

    def __init__(self, width: int, num_patches: int, depth: int = 12, heads: int = 12) -> None:
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(width))
        self.pos_embedding = nn.Parameter(torch.zeros(num_patches + 1, width))
        nn.init.trunc_normal_(self.class_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads, width // heads, 4 * width, "quick_gelu", qkv_bias=True)
                                    for _ in range(depth))
        self.messages = MessageTokens(width, depth, heads)

    def forward(self, patches: Tensor) -> Tensor:
        b, n, p, w = patches.shape
        x = patches.reshape(b * n, p, w)
        x = torch.cat([self.class_token.to(x.dtype).expand(b * n, 1, w), x], dim=1)
        x = x + self.pos_embedding.to(x.dtype)  # (B·N, 1+P, W)
        for i, blk in enumerate(self.blocks):
            m = self.messages(i, x, n)
            x = blk(torch.cat([x, m.to(x.dtype)], dim=1))[:, : p + 1]
        return x[:, 1:].reshape(b, n, p, w)
