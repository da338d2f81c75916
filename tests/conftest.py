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

from tests_support import TINY_SYNTH  # noqa: E402


@pytest.fixture(scope="session")
def tiny_synthfer(tmp_path_factory):
    """A tiny SynthFER set in the official formats: 11 classes x 5 clips, 6 frames of 64 px."""
    from ovfer.synth import generate, load_synth_config

    return generate(load_synth_config(None, TINY_SYNTH), tmp_path_factory.mktemp("synthfer") / "set", seed=11,
                    workers=1)


@pytest.fixture(scope="session")
def tiny_clip_file(tmp_path_factory, tiny_backbone_112):
    """The tiny 112 px CLIP saved like a pretrained checkpoint (safetensors + arch metadata)."""
    from ovfer.backbones.pretrain import save_backbone

    return save_backbone(tiny_backbone_112, tmp_path_factory.mktemp("clip") / "clip.safetensors")


@pytest.fixture()
def synth_source(tiny_synthfer):
    from ovfer.protocols.data_source import DataSource

    return DataSource("mafw", {"annotation": str(tiny_synthfer / "mafw"), "video_root": str(tiny_synthfer / "videos"),
                               "fold": 1, "task": "single"})


@pytest.fixture()
def quick_train():
    """``quick_train(epochs)``: a short CPU training config."""
    from ovfer.engine.optim import OptimConfig, SchedulerConfig
    from ovfer.engine.trainer import TrainConfig

    def make(epochs: int = 1) -> TrainConfig:
        return TrainConfig(epochs=epochs, optim=OptimConfig(lr=0.01), scheduler=SchedulerConfig(name="none"),
                           device="cpu", progress=False)

    return make
