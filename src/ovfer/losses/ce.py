"""Cross-entropy variants: soft targets (Mixup/label smoothing), KL between heads."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """-Σ_k y_k log softmax(z)_k, averaged over the batch; targets (B, K) sum to 1."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def smooth_one_hot(labels: Tensor, num_classes: int, eps: float = 0.0) -> Tensor:
    """One-hot with label smoothing: off value eps/K, on value 1 - eps + eps/K (METHODS §2h)."""
    off = eps / num_classes
    out = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    out.scatter_(1, labels.view(-1, 1), 1.0 - eps + off)
    return out


def kl_divergence(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p || q) = Σ p (log p − log q) with p, q softmaxes at temperature 1, batch mean."""
    log_p = F.log_softmax(logits_p, dim=-1)
    log_q = F.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
