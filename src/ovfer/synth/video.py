"""MP4/H.264 writing and reading with PyAV.

Deterministic output needs one encoder thread and no macroblock-tree rate control: x264's
mbtree float arithmetic gave different bitstreams for the same frames depending on the
process's floating-point state (e.g. after ``import torch``), measured on PyAV 18 / FFmpeg 8.1.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = 10.0, crf: int = 18, preset: str = "veryfast") -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames as yuv420p H.264; written to a temp file, then renamed."""
    import av  # lazy: only writers and readers need FFmpeg

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    T, H, W, _ = frames.shape
    if H % 2 or W % 2:
        raise ValueError(f"yuv420p needs even sizes, got {W}x{H}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    with av.open(str(tmp), "w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset, "x264-params": "mbtree=0"}
        stream.codec_context.thread_count = 1
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    os.replace(tmp, path)
    return path


def read_mp4(path: str | Path) -> np.ndarray:
    """Decode every frame of a video as (T, H, W, 3) uint8 RGB."""
    import av

    with av.open(str(path)) as box:
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    if not frames:
        raise ValueError(f"{path}: no decodable video frames")
    return np.stack(frames)
