"""Learnable text context written once (CoOp-style), shared by HESP and DFER-CLIP.

The prompt for class k is [SOS] + M context vectors + the tokens of its text + [EOT],
assembled in embedding space and encoded by the frozen text transformer (SPEC §7.2,
METHODS §1). Only the context is a parameter; the token embeddings are rebuilt from the
backbone and the texts, so checkpoints hold nothing but the learned tensors.
"""
from __future__ import annotations

import logging
from typing import Literal, Sequence

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

ContextPosition = Literal["end", "middle", "front"]


class PromptLearner(nn.Module):
    """Context vectors for K texts; ``forward()`` returns prompt embeddings (K, L, W)."""

    def __init__(self, backbone, texts: Sequence[str], n_ctx: int = 16, class_specific: bool = True,
                 init_std: float = 0.02, position: ContextPosition = "end", trainable: bool = True,
                 init_words: str | None = None) -> None:
        super().__init__()
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be >= 1, got {n_ctx}")
        self.n_ctx, self.position, self.class_specific = n_ctx, position, class_specific
        texts = list(texts)
        width = backbone.text_width
        shape = (len(texts) if class_specific else 1, n_ctx, width)
        ctx = torch.randn(shape) * init_std
        if init_words:
            ctx[:, -self._word_count(backbone, init_words):] = self._word_embeddings(backbone, init_words, n_ctx)
        self.ctx = nn.Parameter(ctx, requires_grad=trainable)
        self.rebuild(backbone, texts)

    @staticmethod
    def _word_count(backbone, words: str) -> int:
        return len(backbone.tokenizer.encode(words))

    @classmethod
    def _word_embeddings(cls, backbone, words: str, n_ctx: int) -> Tensor:
        """Token embeddings of ``words`` (CoOp's context init), placed last: "<random…> a photo of a <class>"."""
        n = cls._word_count(backbone, words)
        if n > n_ctx:
            raise ValueError(f"context init '{words}' has {n} tokens, more than n_ctx={n_ctx}")
        ids = backbone.tokenize([words])
        with torch.no_grad():
            return backbone.token_embedding(ids)[0, 1:1 + n].detach().cpu()

    def rebuild(self, backbone, texts: Sequence[str]) -> None:
        """Recompute the frozen token embeddings for ``texts`` (same count as the context)."""
        texts = list(texts)
        if self.class_specific and len(texts) != self.ctx.shape[0]:
            raise ValueError(f"{len(texts)} texts for a class-specific context of {self.ctx.shape[0]} classes")
        placeholder = ["X"] * self.n_ctx
        prompts, positions = [], []
        for text in texts:
            n_text = len(backbone.tokenizer.encode(text)) if hasattr(backbone.tokenizer, "encode") else 0
            if self.position == "end":
                words, pos = placeholder + [text], list(range(1, 1 + self.n_ctx))
            elif self.position == "front":
                words, pos = [text] + placeholder, list(range(1 + n_text, 1 + n_text + self.n_ctx))
            else:
                half = self.n_ctx // 2
                words = placeholder[:half] + [text] + placeholder[half:]
                pos = list(range(1, 1 + half)) + list(range(1 + half + n_text, 1 + n_text + self.n_ctx))
            prompts.append(" ".join(words))
            positions.append(pos)
        ids = backbone.tokenize(prompts)
        eot = ids.argmax(dim=-1)
        # Per prompt: with "middle"/"front" a long text's last context row may lie beyond a
        # short text's EOT, which is fine; only a prompt's own EOT bounds its own context.
        too_long = [t for t, p, e in zip(texts, positions, eot.tolist()) if max(p) >= e]
        if too_long:
            raise ValueError(f"context positions reach the end-of-text token: texts too long for "
                             f"context length {ids.shape[1]} with {self.n_ctx} context vectors: {too_long[:3]}")
        if bool((eot == ids.shape[1] - 1).any()):
            log.warning("some prompts were truncated to the context length %d", ids.shape[1])
        with torch.no_grad():
            embeds = backbone.token_embedding(ids).detach()
        self.register_buffer("ids", ids, persistent=False)
        self.register_buffer("token_embeds", embeds, persistent=False)
        self.register_buffer("ctx_index", torch.tensor(positions, dtype=torch.long, device=ids.device),
                             persistent=False)

    def forward(self) -> Tensor:
        k, _, w = self.token_embeds.shape
        ctx = self.ctx.expand(k, -1, -1).to(self.token_embeds.dtype)
        index = self.ctx_index.unsqueeze(-1).expand(-1, -1, w)
        return self.token_embeds.scatter(1, index, ctx)

    def encode(self, backbone, normalize: bool = True) -> Tensor:
        """Text features (K, D) of the assembled prompts."""
        return backbone.encode_text_embeddings(self(), self.ids, normalize=normalize)
