"""Adversarial reciprocal points (ARPL) logits and margin (SPEC §7.4, §7.6)."""
from __future__ import annotations

import torch
from torch import Tensor


def arpl_logits(x: Tensor, points: Tensor) -> Tensor:
    """z[k] = ||x − p_k||² / D − x·p_k; x (B, D) unnormalised, points (K, D) -> (B, K)."""
    x = x.float()
    points = points.float()
    d = x.shape[-1]
    sq = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ points.t() + points.pow(2).sum(-1).unsqueeze(0)) / d
    return sq - x @ points.t()


def arpl_margin(x: Tensor, points: Tensor, labels: Tensor, radius: Tensor) -> Tensor:
    """mean_i max(0, ||x_i − p_{y_i}||² / D − R + 1): keeps known features within radius R."""
    x = x.float()
    p = points.float()[labels]
    dist = (x - p).pow(2).mean(dim=-1)
    return torch.relu(dist - radius + 1.0).mean()
