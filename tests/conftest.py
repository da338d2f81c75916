"""Shared fixtures: tiny CLIP backbones (random init, real key layout), offline hub."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_backbone():
    """A 2-layer CLIP with ViT-B/32's key layout at 224 px (random init, seeded)."""
    from ovfer.backbones import build_backbone

    torch.manual_seed(0)
    return build_backbone("ovfer-tiny-b32", None).eval()


@pytest.fixture(scope="session")
def tiny_backbone_112():
    """A 2-layer CLIP at 112 px, patch 16 (the SynthFER input size)."""
    from ovfer.backbones import build_backbone

    torch.manual_seed(0)
    return build_backbone("ovfer-tiny-112", None).eval()
