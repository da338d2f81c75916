"""The sample record every dataset adapter yields (SPEC §2.1).

Labels are canonical class *names* (lower-case nouns; several for compound/multi-label
clips); integer ids are derived per task, never stored here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class VideoRecord:
    """One clip: where its frames are, what it shows, and where it belongs."""

    video: str  # path to a video file or to a folder of frame images
    label: tuple[str, ...]  # canonical class names; one for single-label clips
    dataset: str
    split: Literal["train", "test", "val", "all"]
    id: str
    fold: int | None = None
    caption: str | None = None
    num_frames: int | None = None  # as written in the annotation, when it gives one
    meta: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def class_name(self) -> str:
        """The label as one class name; compound labels join their parts with '_' (MAFW style)."""
        return "_".join(self.label)

    @property
    def is_compound(self) -> bool:
        return len(self.label) > 1
