"""FERV39k adapter (SPEC §2.2): the list format over ``<Scene>/<Emotion>/<id>/`` frame folders.

The label comes from the list (0-based, DFEW order, read from ``classes.json``). The
folder name of the emotion duplicates it; ``cross_check`` compares the two, which
catches a list paired with the wrong frame tree.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal

from ovfer.data.labels import BASIC7, LabelError, canonical_name, source_order

from . import register_dataset
from .common import (
    AnnotationError, RecordList, _norm, check_single_split, check_videos, find_unique, read_list_file, source_line,
)

log = logging.getLogger(__name__)


def _is_list_for(p: Path, split: str) -> bool:
    """A ``.txt``/``.csv`` whose name has the split as a token (``FERV39k_train.txt``, ``train_All.csv``)."""
    if p.suffix.lower() not in (".txt", ".csv"):
        return False
    return re.search(rf"(^|_){split}($|_)", _norm(p.stem)) is not None


def _path_emotion(video: str) -> str | None:
    """The canonical emotion named by the clip's parent folder, if it names one."""
    parts = Path(video.rstrip("/")).parts
    if len(parts) < 2:
        return None
    try:
        return canonical_name(parts[-2], BASIC7)
    except LabelError:
        return None


@register_dataset("ferv39k")
def ferv39k_records(
    annotation: str | Path,
    *,
    split: Literal["train", "test"] = "train",
    fold: int | None = None,
    video_root: str | Path | None = None,
    cross_check: Literal["off", "warn", "error"] = "off",
    strict: bool = False,
) -> RecordList:
    """FERV39k official train/test split from a list file (or a folder holding one per split).

    Clip ids are ``<Scene>/<Emotion>/<id>`` because bare ids repeat across scenes.
    ``cross_check`` compares the list label with the emotion folder of the path. ``fold``
    exists for a uniform adapter signature (None or 1: there is one official split).
    """
    check_single_split("ferv39k", fold)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if cross_check not in ("off", "warn", "error"):
        raise ValueError(f"cross_check must be one of ['off', 'warn', 'error'], got {cross_check!r}")
    path = find_unique(annotation, lambda p: _is_list_for(p, split), f"FERV39k list for split '{split}'")
    pairs = read_list_file(path, source_order("ferv39k", "dfer_clip"), dataset="ferv39k", split=split, fold=None,
                           video_root=video_root, id_parts=3)
    if cross_check != "off":
        bad = 0
        for rec, _ in pairs:
            folder = _path_emotion(rec.video)
            if folder is not None and folder != rec.label[0]:
                bad += 1
                msg = f"list label '{rec.label[0]}' disagrees with the path's emotion folder '{folder}' ({rec.video})"
                if cross_check == "error":
                    raise AnnotationError(path, source_line(rec), msg)
                log.warning("%s: %s", path, msg)
        if bad:
            log.warning("%s: %d of %d clips disagree with their emotion folder", path, bad, len(pairs))
    return check_videos(pairs, str(path), strict)

