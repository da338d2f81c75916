"""MAFW adapter (SPEC §2.2): official GBK tab-separated split files and DFER-CLIP lists.

Official files: ``<file>.mp4 \\t <label or a_b_...> \\t <Chinese caption> \\t <English caption>``
(2 columns in the no-caption variant), found at
``.../{single|compound}/{with|no}_caption*/set_<k>/{train|test}.txt``. Labels are names,
converted with ``labels.canonical_name``/``parse_compound`` (compound parts in MAFW order).
The DFER-CLIP list format ``<frame dir> <n> <label>`` uses its own 0-based order (happiness,
sadness, neutral, anger, ...), taken from ``classes.json`` and converted by name.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from ovfer.data.labels import MAFW11, LabelError, canonical_name, parse_compound, source_order
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
    read_list_file,
    resolve_video,
)

Task = Literal["single", "compound"]


def _official_match(p: Path, fold: int, split: str, task: str, captions: str) -> bool:
    """``<task>/<captions>_caption*/set_<fold>/<split>.txt``, folder names compared loosely."""
    if p.name.lower() != f"{split}.txt" or len(p.parents) < 3:
        return False
    set_dir, cap_dir, task_dir = p.parents[0], p.parents[1], p.parents[2]
    return (
        _norm(set_dir.name) == f"set_{fold}"
        and _norm(cap_dir.name).startswith(f"{captions}_caption")
        and _norm(task_dir.name) == task
    )


def _list_match(p: Path, fold: int, split: str) -> bool:
    """DFER-CLIP list naming: ``MAFW_set_1_train.txt``."""
    return p.suffix.lower() == ".txt" and re.search(rf"(^|_)set_{fold}_{split}$", _norm(p.stem)) is not None


def _parse_label(raw: str, task: str, path: Path, line: int) -> tuple[str, ...]:
    try:
        if "_" in raw.strip():
            names = parse_compound(raw)
        else:
            names = (canonical_name(raw, MAFW11),)
    except LabelError as e:
        raise AnnotationError(path, line, str(e)) from None
    if task == "single" and len(names) > 1:
        raise AnnotationError(path, line, f"compound label '{raw.strip()}' in a single-label split file")
    return names


def read_mafw_official(path: str | Path, *, fold: int | None, split: str, task: Task = "single") -> list[VideoRecord]:
    """Parse one official MAFW split file (GBK or UTF-8); ``video`` is the file name as written.

    Column counts: 2 (no caption), 3 (one caption: English if ASCII, else Chinese) or 4.
    The English caption becomes ``caption``; the Chinese one is kept in ``meta['caption_zh']``.
    """
    p = Path(path)
    out: list[VideoRecord] = []
    for line_no, line in iter_lines(p):
        cols = [c.strip() for c in line.split("\t")]
        while len(cols) > 4 and cols[-1] == "":  # trailing tabs
            cols.pop()
        if len(cols) not in (2, 3, 4):
            raise AnnotationError(p, line_no, f"expected 2 to 4 tab-separated columns (file, label, captions), got {len(cols)}")
        name, raw_label = cols[0], cols[1]
        if not name:
            raise AnnotationError(p, line_no, "empty file name")
        if not raw_label:
            raise AnnotationError(p, line_no, "empty label")
        en: str | None = None
        zh: str | None = None
        if len(cols) == 4:
            zh, en = cols[2] or None, cols[3] or None
        elif len(cols) == 3:
            if cols[2].isascii():
                en = cols[2] or None
            else:
                zh = cols[2] or None
        meta: tuple[tuple[str, str], ...] = (("source", f"{p}:{line_no}"),)
        if zh:
            meta += (("caption_zh", zh),)
        clip_id = Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTS else name
        out.append(VideoRecord(
            video=name, label=_parse_label(raw_label, task, p, line_no), dataset="mafw",
            split=split, id=clip_id, fold=fold, caption=en, meta=meta,  # type: ignore[arg-type]
        ))
    return out


def _find_official(ann: Path, fold: int, split: str, task: str, captions: str) -> Path | None:
    kinds = ("with", "no") if captions == "auto" else (captions,)
    for kind in kinds:
        hits = sorted(p for p in ann.rglob("*.txt") if _official_match(p, fold, split, task, kind))
        if len(hits) > 1:
            raise FileNotFoundError(f"{len(hits)} candidate MAFW split files under {ann}: {hits[:4]}; pass one file")
        if hits:
            return hits[0]
    return None


def _is_official_file(path: Path) -> bool:
    """Official files are tab separated; lists are space separated."""
    for _, line in iter_lines(path):
        return "\t" in line
    return True


@register_dataset("mafw")
def mafw_records(
    annotation: str | Path,
    *,
    fold: int = 1,
    split: Literal["train", "test"] = "train",
    task: Task = "single",
    captions: Literal["auto", "with", "no"] = "auto",
    format: Literal["auto", "official", "list"] = "auto",
    video_root: str | Path | None = None,
    strict: bool = False,
) -> RecordList:
    """MAFW fold ``fold`` (1..5), ``split`` part, single-label or compound ``task``.

    ``annotation`` is a split file or a folder searched recursively: first the official
    layout (``captions='auto'`` prefers the with-caption files), then a DFER-CLIP list
    ``*set_<fold>_<split>.txt`` (single-label only). Official file names resolve under
    ``video_root`` (``<root>/<file>``, its frame folder, or another extension); without
    ``video_root`` they are kept unchecked. Missing clips are skipped and counted.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if task not in ("single", "compound"):
        raise ValueError(f"task must be 'single' or 'compound', got {task!r}")
    if captions not in ("auto", "with", "no"):
        raise ValueError(f"captions must be one of ['auto', 'with', 'no'], got {captions!r}")
    ann = Path(annotation).expanduser()
    if not ann.exists():
        raise FileNotFoundError(f"MAFW annotation not found: {ann}")
    path: Path | None = ann if ann.is_file() else None
    if path is None and format in ("auto", "official"):
        path = _find_official(ann, fold, split, task, captions)
        if path is not None:
            format = "official"
    if path is None and format in ("auto", "list"):
        try:
            path = find_unique(ann, lambda p: _list_match(p, fold, split), f"MAFW list *set_{fold}_{split}.txt")
            format = "list"
        except FileNotFoundError as e:
            if format == "list" or "candidate" in str(e):
                raise
    if path is None:
        cap = "{with|no}" if captions == "auto" else captions
        raise FileNotFoundError(
            f"no MAFW split file under {ann}: looked for {task}/{cap}_caption*/set_{fold}/{split}.txt"
            + (f" and *set_{fold}_{split}.txt" if format == "auto" else "")
        )
    if format == "auto":
        format = "official" if _is_official_file(path) else "list"
    if format == "official":
        recs = read_mafw_official(path, fold=fold, split=split, task=task)
        if video_root is None:
            return RecordList(recs)
        pairs = [(r, resolve_video(video_root, r.video)) for r in recs]
        return check_videos(pairs, str(path), strict)
    if format == "list":
        if task != "single":
            raise ValueError("the DFER-CLIP MAFW list format only has the 11 single-label classes; use task='single'")
        pairs = read_list_file(path, source_order("mafw", "dfer_clip"), dataset="mafw", split=split, fold=fold,
                               video_root=video_root)
        return check_videos(pairs, str(path), strict)
    raise ValueError(f"format must be one of ['auto', 'official', 'list'], got {format!r}")
