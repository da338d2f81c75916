"""Symmetric InfoNCE (CLIP loss), optionally with multi-positive soft targets."""
from __future__ import annotations

import torch
from torch import Tensor

from ovfer.losses.ce import soft_cross_entropy


def symmetric_infonce(logits: Tensor, groups: Tensor | None = None) -> Tensor:
    """½[CE(S, I) + CE(Sᵀ, I)] for a (B, B) similarity matrix.

    With ``groups`` (B,) ids (class ids, or ids of identical captions), every pair in the
    same group is a positive and the target mass is shared evenly among them.
    """
    b = logits.shape[0]
    if groups is None:
        target = torch.eye(b, device=logits.device)
    else:
        same = (groups.view(-1, 1) == groups.view(1, -1)).float()
        target = same / same.sum(dim=1, keepdim=True)
    return 0.5 * (soft_cross_entropy(logits, target) + soft_cross_entropy(logits.t(), target.t() / target.t().sum(1, keepdim=True)))
