"""SynthFER: synthetic facial-expression videos driven by FACS Action Units (SPEC §2.6).

``generate`` writes a dataset (MP4 + official-format annotations); ``sample_clips``
yields clips in memory (used by CLIP pretraining); ``render_clip`` renders one clip.
"""
from __future__ import annotations

from .aus import AU_NAMES, DEFAULT_COMPOUNDS, PROTOTYPES, classify_aus, prototype_vectors
from .config import SynthConfig
from .identity import Identity, sample_identity
from .generator import (
    GENERATOR_VERSION,
    SynthClip,
    generate,
    load_synth_config,
    make_clip,
    plan_clips,
    render_clip,
    render_face,
    sample_clips,
)
from .video import read_mp4, write_mp4

__all__ = [
    "AU_NAMES", "DEFAULT_COMPOUNDS", "GENERATOR_VERSION", "Identity", "sample_identity", "PROTOTYPES",
    "SynthClip", "SynthConfig",
    "classify_aus", "generate", "load_synth_config", "make_clip", "plan_clips", "prototype_vectors",
    "read_mp4", "render_clip", "render_face", "sample_clips", "write_mp4",
]
