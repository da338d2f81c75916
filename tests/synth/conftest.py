"""Tiny SynthFER configs and sets shared by the synth tests (64 px, 8 frames, 50 clips)."""
from __future__ import annotations

import pytest

from ovfer.synth import generate, load_synth_config

TINY = [
    "classes=[anger,disgust,fear,happiness,neutral,sadness,surprise,contempt]",
    "compound_classes=[fear_surprise,happiness_surprise]",
    "clips_per_class=5",
    "clips_per_compound=5",
    "video.width=64",
    "video.height=64",
    "video.frames=8",
    "video.supersample=2",
]


@pytest.fixture(scope="session")
def tiny_cfg():
    return load_synth_config(None, TINY)


@pytest.fixture(scope="session")
def tiny_sets(tiny_cfg, tmp_path_factory):
    """Three sets: seed 3 in a 2-process pool, seed 3 in-process, seed 4 in-process."""
    root = tmp_path_factory.mktemp("synthfer")
    a = generate(tiny_cfg, root / "a", seed=3, workers=2)
    b = generate(tiny_cfg, root / "b", seed=3, workers=1)
    c = generate(tiny_cfg, root / "c", seed=4, workers=1)
    return a, b, c
