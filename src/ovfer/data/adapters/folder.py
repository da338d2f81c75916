"""Generic adapter for users' own data (SPEC §2.2 "any folder or CSV").

Two layouts:
- a CSV ``path,label[,caption]`` (header optional; a header may also name a ``split`` column);
- class-named subfolders ``<root>/[<split>/]<class>/<clip>``.

Labels that are known emotion spellings become canonical names (``Happy`` -> happiness);
other labels are kept (lower-cased), so non-emotion tasks work too. ``classes`` restricts
the accepted labels.
"""
from __future__ import annotations

import csv
import io
import logging
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from ovfer.data.labels import ALIASES
from ovfer.data.records import VideoRecord

from . import register_dataset
from .common import VIDEO_EXTS, AnnotationError, RecordList, check_videos, iter_lines, require_file, resolve_list_path

log = logging.getLogger(__name__)

_HEADER_KEYS = {"path", "video", "file", "label", "class", "caption", "split"}


def _label(raw: str, classes: Sequence[str] | None) -> str:
    """Canonical name for emotion spellings, else the stripped lower-case text."""
    key = raw.strip().lower()
    name = ALIASES.get(key, key)
    if classes is not None:
        allowed = {c.lower(): c for c in classes}
        if name in allowed:
            return allowed[name]
        if key in allowed:
            return allowed[key]
        raise ValueError(f"unknown label '{raw.strip()}'; valid: {list(classes)}")
    if not name:
        raise ValueError("empty label")
    return name


def _from_csv(path: Path, split: str, classes: Sequence[str] | None, video_root: str | Path | None,
              dataset: str, strict: bool) -> RecordList:
    cols = {"path": 0, "label": 1, "caption": 2, "split": None}
    width: int | None = None
    pairs: list[tuple[VideoRecord, Path | None]] = []
    for line_no, line in iter_lines(path):
        row = [c.strip() for c in next(csv.reader(io.StringIO(line)))]
        if width is None:
            low = [c.lower() for c in row]
            if {"path", "label"} <= set(low) or ({"video", "label"} <= set(low)):
                if not set(low) <= _HEADER_KEYS:
                    raise AnnotationError(path, line_no, f"unknown header column(s) {sorted(set(low) - _HEADER_KEYS)}")
                cols = {k: (low.index(k) if k in low else None) for k in ("path", "label", "caption", "split")}
                if cols["path"] is None:
                    cols["path"] = low.index("video") if "video" in low else low.index("file")
                width = len(row)
                continue
            if len(row) not in (2, 3):
                raise AnnotationError(path, line_no, f"expected 'path,label[,caption]', got {len(row)} columns")
            width = len(row)
        if len(row) != width:
            raise AnnotationError(path, line_no, f"expected {width} comma-separated columns, got {len(row)}")
        if cols["split"] is not None and split != "all" and row[cols["split"]].lower() != split:
            continue
        try:
            label = _label(row[cols["label"]], classes)  # type: ignore[index]
        except ValueError as e:
            raise AnnotationError(path, line_no, str(e)) from None
        raw = row[cols["path"]]  # type: ignore[index]
        if not raw:
            raise AnnotationError(path, line_no, "empty path")
        cap = row[cols["caption"]] if cols["caption"] is not None and cols["caption"] < len(row) else ""
        rec_split = row[cols["split"]].lower() if cols["split"] is not None else split
        stem = Path(raw).stem if Path(raw).suffix.lower() in VIDEO_EXTS else Path(raw.rstrip("/")).name
        rec = VideoRecord(video=raw, label=(label,), dataset=dataset, split=rec_split,  # type: ignore[arg-type]
                          id=str(Path(raw).parent / stem) if Path(raw).parent != Path(".") else stem,
                          caption=cap or None, meta=(("source", f"{path}:{line_no}"),))
        pairs.append((rec, resolve_list_path(raw, video_root, base=path.parent)))
    return check_videos(pairs, str(path), strict)


def _from_folders(root: Path, split: str, classes: Sequence[str] | None, dataset: str) -> RecordList:
    base = root / split if split != "all" and (root / split).is_dir() else root
    records: list[VideoRecord] = []
    for cls_dir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
        try:
            label = _label(cls_dir.name, classes)
        except ValueError as e:
            raise AnnotationError(cls_dir, None, f"class folder: {e}") from None
        for clip in sorted(cls_dir.iterdir()):
            if clip.name.startswith(".") or not (clip.is_dir() or clip.suffix.lower() in VIDEO_EXTS):
                continue
            stem = clip.name if clip.is_dir() else clip.stem
            records.append(VideoRecord(video=str(clip), label=(label,), dataset=dataset, split=split,  # type: ignore[arg-type]
                                       id=f"{cls_dir.name}/{stem}"))
    if not records:
        log.warning("folder dataset: no clips under %s", base)
    return RecordList(records)


@register_dataset("folder")
def folder_records(
    root: str | Path | None = None,
    *,
    csv_file: str | Path | None = None,
    annotation: str | Path | None = None,
    split: str = "all",
    fold: int | None = None,
    classes: Sequence[str] | None = None,
    video_root: str | Path | None = None,
    dataset_name: str = "folder",
    strict: bool = False,
) -> RecordList:
    """Records from a CSV (``csv_file``) or from class subfolders of ``root``.

    CSV paths resolve against ``video_root``, then the CSV's folder. With a ``split``
    column, only rows of ``split`` are kept (unless ``split='all'``); with subfolders,
    ``<root>/<split>/`` is used when it exists. ``annotation`` is a synonym of ``root`` (a
    folder) or ``csv_file`` (a file), for a uniform adapter signature; ``fold`` is copied
    into the records.
    """
    given = [x for x in (root, csv_file, annotation) if x is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of root (class subfolders), csv_file or annotation")
    r = Path(given[0]).expanduser()
    if csv_file is not None or r.is_file():
        recs = _from_csv(require_file(r, "CSV file"), split, classes, video_root, dataset_name, strict)
    elif r.is_dir():
        recs = _from_folders(r, split, classes, dataset_name)
    else:
        raise FileNotFoundError(f"dataset folder or CSV not found: {r}")
    if fold is not None:
        recs = RecordList([replace(x, fold=fold) for x in recs], recs.missing)
    return recs
