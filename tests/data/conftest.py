"""Fixtures for the data tests: annotation writers and a fake frame source."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest


@pytest.fixture
def write_file() -> Callable[..., Path]:
    """``write_file(path, lines, encoding="utf-8", newline="\\n", final_newline=True)``; makes parents."""

    def _write(path: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\n",
               final_newline: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = newline.join(lines) + (newline if final_newline else "")
        path.write_bytes(text.encode(encoding))
        return path

    return _write


@pytest.fixture
def touch_clips() -> Callable[..., list[Path]]:
    """Create empty video files / frame folders (adapters only check that clips exist)."""

    def _touch(root: Path, names: list[str]) -> list[Path]:
        out = []
        for n in names:
            p = root / n
            p.parent.mkdir(parents=True, exist_ok=True)
            if n.endswith("/"):
                p.mkdir(parents=True, exist_ok=True)
            else:
                p.touch()
            out.append(p)
        return out

    return _touch


class FakeVideos:
    """Stands in for ``ovfer.data.video``: clip path -> frame count; frame i is filled with
    the value i (so tests can read back which indices were sampled); listed paths fail."""

    def __init__(self, counts: dict[str, int], size: tuple[int, int] = (12, 16), broken: tuple[str, ...] = ()):
        self.counts = counts
        self.size = size
        self.broken = set(broken)
        self.reads: list[str] = []

    def count_frames(self, path) -> int:
        from ovfer.data.video import VideoReadError

        if str(path) in self.broken or str(path) not in self.counts:
            raise VideoReadError(path, "fake: unreadable")
        return self.counts[str(path)]

    def read_frames(self, path, indices) -> np.ndarray:
        from ovfer.data.video import VideoReadError

        n = self.count_frames(path)
        idx = [int(i) for i in indices]
        if max(idx) >= n:
            raise VideoReadError(path, f"fake: frame {max(idx)} of {n}")
        self.reads.append(str(path))
        h, w = self.size
        return np.stack([np.full((h, w, 3), i % 256, dtype=np.uint8) for i in idx])

    def read_video(self, path) -> np.ndarray:
        return self.read_frames(path, range(self.count_frames(path)))


@pytest.fixture
def fake_videos(monkeypatch) -> Callable[..., FakeVideos]:
    """Patch ``ovfer.data.video``'s readers with a :class:`FakeVideos`; returns its factory."""
    import ovfer.data.video as video

    def _install(counts: dict[str, int], **kw) -> FakeVideos:
        fake = FakeVideos(counts, **kw)
        monkeypatch.setattr(video, "count_frames", fake.count_frames)
        monkeypatch.setattr(video, "read_frames", fake.read_frames)
        monkeypatch.setattr(video, "read_video", fake.read_video)
        return fake

    return _install


@pytest.fixture
def one_torch_thread():
    """Per-clip ops are tiny; on a busy 2-core box intra-op threading makes them ~100x slower
    (DataLoader workers use one thread too). Restored after the test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
