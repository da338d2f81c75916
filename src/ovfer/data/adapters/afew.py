"""AFEW adapter (SPEC §2.2): folders ``<root>/<Train|Val>/<Emotion>/<clip>``, no list files.

The test labels of AFEW are not public, so ``split='test'`` reads Val (as every paper
does). Folder names (Angry, Happy, ...) map to canonical names through ``labels``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from ovfer.data.labels import LabelError, canonical_classes, canonical_name
from ovfer.data.records import VideoRecord

from . import register_dataset
from .common import VIDEO_EXTS, AnnotationError, RecordList, _norm, check_single_split

log = logging.getLogger(__name__)

_SPLIT_DIRS = {"train": ("train",), "test": ("val", "validation"), "val": ("val", "validation")}


def _split_dir(root: Path, split: str) -> Path:
    """``Train``/``Val`` (also ``Train_AFEW``, ``AFEW_Val``), directly under ``root`` or one level down."""
    keys = _SPLIT_DIRS[split]

    def matches(d: Path) -> bool:
        n = _norm(d.name)
        return any(n == k or n.startswith(k + "_") or n.endswith("_" + k) for k in keys)

    levels = [root] + sorted(d for d in root.iterdir() if d.is_dir())
    for base in levels:
        hits = sorted(d for d in base.iterdir() if d.is_dir() and matches(d))
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise FileNotFoundError(f"several AFEW '{split}' folders under {base}: {[h.name for h in hits]}")
    raise FileNotFoundError(f"no AFEW {'/'.join(keys)} folder under {root} (expected e.g. {root}/Train/Angry/...)")


def _is_clip(p: Path) -> bool:
    if p.name.startswith("."):
        return False
    return p.is_dir() or p.suffix.lower() in VIDEO_EXTS


@register_dataset("afew")
def afew_records(
    root: str | Path | None = None,
    *,
    split: Literal["train", "test", "val"] = "train",
    annotation: str | Path | None = None,
    video_root: str | Path | None = None,
    fold: int | None = None,
    strict: bool = False,
) -> RecordList:
    """AFEW clips of ``split`` ('test' and 'val' both read the Val folder).

    The folder tree is AFEW's only annotation, so ``root``, ``annotation`` and
    ``video_root`` are synonyms (give one); ``fold`` (None or 1) and ``strict`` exist for
    a uniform adapter signature. A clip is a video file or a folder of frames. An emotion
    folder with an unknown name raises an AnnotationError naming it; stray files are
    ignored with a debug log.
    """
    del strict  # every listed clip exists by construction
    if split not in _SPLIT_DIRS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_DIRS)}, got {split!r}")
    check_single_split("afew", fold)
    given = [x for x in (root, annotation, video_root) if x is not None]
    if len({str(x) for x in given}) != 1:
        raise ValueError("give the AFEW root folder once (root=, annotation= or video_root=)")
    r = Path(given[0]).expanduser()
    if not r.is_dir():
        raise FileNotFoundError(f"AFEW root not found: {r}")
    base = _split_dir(r, split)
    valid = canonical_classes("afew")
    records: list[VideoRecord] = []
    for emo_dir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
        try:
            label = canonical_name(emo_dir.name, valid)
        except LabelError as e:
            raise AnnotationError(emo_dir, None, f"folder name is not an AFEW emotion: {e}") from None
        for clip in sorted(emo_dir.iterdir()):
            if not _is_clip(clip):
                log.debug("AFEW: ignoring %s (not a video file or frame folder)", clip)
                continue
            stem = clip.stem if clip.is_file() else clip.name
            records.append(VideoRecord(video=str(clip), label=(label,), dataset="afew", split=split,
                                       id=stem, fold=None))
    if not records:
        log.warning("AFEW: no clips found under %s", base)
    return RecordList(records)
