"""Supervised contrastive loss as HESP uses it (SPEC §7.4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def supcon_loss(features: Tensor, labels: Tensor, temperature: float = 0.5, scale: float = 0.5) -> Tensor:
    """SupCon over a batch: features (B, D) are L2-normalised here.

    Positives of anchor i are the other clips with its label; the denominator runs over all
    other clips. Anchors without a positive are excluded; a batch with none gives 0 (with a
    graph, so backward works) — never NaN. The mean over anchors is multiplied by ``scale``.
    """
    z = F.normalize(features.float(), dim=-1)
    b = z.shape[0]
    sim = z @ z.t() / temperature
    self_mask = torch.eye(b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels.view(-1, 1) == labels.view(1, -1)) & ~self_mask
    n_pos = pos.sum(dim=1)
    valid = n_pos > 0
    if not bool(valid.any()):
        return features.sum() * 0.0
    pos_log = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -pos_log[valid] / n_pos[valid]
    return scale * per_anchor.mean()
