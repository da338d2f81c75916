"""DFEW adapter (SPEC §2.2): official ``set_k.csv`` folds and the common list format.

Official CSVs live in ``train(single-labeled)/set_k.csv`` and ``test(single-labeled)/set_k.csv``
with ``video_name,label`` rows; labels are 1..7 in DFEW's own order (Happy, Sad, Neutral,
Angry, Surprise, Disgust, Fear). The list format (DFER-CLIP, DK-CLIP) uses the same order
0-based. Both orders are read from ``classes.json``, never retyped here.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Literal

from ovfer.data.labels import source_order
from ovfer.data.records import VideoRecord

from . import register_dataset
from .common import (
    VIDEO_EXTS,
    AnnotationError,
    RecordList,
    _norm,
    check_videos,
    find_unique,
    iter_lines,
    label_from_index,
    parse_int,
    read_list_file,
    resolve_video,
)

_NAME_COLS = ("video_name", "name", "video", "clip", "file", "filename", "path")
_LABEL_COLS = ("label", "labels", "emotion", "class")


def _is_csv_for(p: Path, fold: int, split: str) -> bool:
    """``set_<fold>.csv`` inside a folder whose name starts with the split (``train(single-labeled)``)."""
    if p.name.lower() != f"set_{fold}.csv":
        return False
    return _norm(p.parent.name).startswith(split)


def _is_list_for(p: Path, fold: int, split: str) -> bool:
    """``DFEW_set_1_train.txt`` (DFER-CLIP) or ``set_1_train.txt`` (SynthFER)."""
    return p.suffix.lower() == ".txt" and re.search(rf"(^|_)set_{fold}_{split}$", _norm(p.stem)) is not None


def read_dfew_csv(path: str | Path, *, fold: int, split: str) -> list[VideoRecord]:
    """Parse one official DFEW ``set_k.csv`` (header optional) into records (video = name as written)."""
    order = source_order("dfew", "dfew_official_1_based")
    p = Path(path)
    name_col, label_col = 0, 1
    out: list[VideoRecord] = []
    first = True
    for line_no, line in iter_lines(p):
        row = [c.strip() for c in next(csv.reader(io.StringIO(line)))]
        if first:
            first = False
            low = [c.lower() for c in row]
            if any(c in _NAME_COLS for c in low) or any(c in _LABEL_COLS for c in low):
                name_col = next((i for i, c in enumerate(low) if c in _NAME_COLS), 0)
                label_col = next((i for i, c in enumerate(low) if c in _LABEL_COLS), 1)
                width = len(row)
                continue
            width = 2
        if len(row) != width:
            raise AnnotationError(p, line_no, f"expected {width} comma-separated columns, got {len(row)}")
        name = row[name_col]
        if not name:
            raise AnnotationError(p, line_no, "empty video name")
        label = label_from_index(parse_int(row[label_col], p, line_no), order, p, line_no, base=1)
        clip_id = Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTS else name
        out.append(VideoRecord(video=name, label=(label,), dataset="dfew", split=split,  # type: ignore[arg-type]
                               id=clip_id, fold=fold, meta=(("source", f"{p}:{line_no}"),)))
    return out


@register_dataset("dfew")
def dfew_records(
    annotation: str | Path,
    *,
    fold: int = 1,
    split: Literal["train", "test"] = "train",
    video_root: str | Path | None = None,
    format: Literal["auto", "csv", "list"] = "auto",
    strict: bool = False,
) -> RecordList:
    """DFEW fold ``fold`` (1..5), ``split`` part.

    ``annotation`` is a CSV/list file or a folder searched recursively (the official CSV
    first, then a ``*set_<fold>_<split>.txt`` list). CSV names resolve under ``video_root``
    to a frame folder ``<root>/<name>/`` or a file ``<root>/<name>.mp4``/``.avi`` (zero-padded
    or not); without ``video_root`` names are kept unchecked. List paths resolve against
    ``video_root``, the list's folder, or as written. Missing clips are skipped and counted
    (``strict=True`` raises).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 1 <= fold <= 5:
        raise ValueError(f"DFEW fold must be 1..5, got {fold}")
    ann = Path(annotation).expanduser()
    if format == "auto":
        if ann.is_file():
            format = "csv" if ann.suffix.lower() == ".csv" else "list"
        elif ann.is_dir():
            has_csv = any(_is_csv_for(p, fold, split) for p in ann.rglob("*.csv"))
            format = "csv" if has_csv else "list"
        else:
            raise FileNotFoundError(f"DFEW annotation not found: {ann}")
    if format == "csv":
        path = find_unique(ann, lambda p: _is_csv_for(p, fold, split), f"DFEW set_{fold}.csv for split '{split}'")
        recs = read_dfew_csv(path, fold=fold, split=split)
        if video_root is None:
            return RecordList(recs)
        pairs = [(r, resolve_video(video_root, r.video)) for r in recs]
        return check_videos(pairs, str(path), strict)
    if format == "list":
        path = find_unique(ann, lambda p: _is_list_for(p, fold, split), f"DFEW list set_{fold}_{split}.txt")
        pairs = read_list_file(path, source_order("dfew", "dfer_clip"), dataset="dfew", split=split, fold=fold,
                               video_root=video_root)
        return check_videos(pairs, str(path), strict)
    raise ValueError(f"format must be one of ['auto', 'csv', 'list'], got {format!r}")
