"""Helpers shared by the dataset adapters (SPEC §2.2).

Every adapter reads user-supplied annotation files, so every failure must say *which*
file and *which* line: :class:`AnnotationError` carries both. Missing videos are not an
annotation error; they are counted and logged in one summary (:func:`check_videos`) and
only raise in strict mode.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ovfer.data.records import VideoRecord

log = logging.getLogger(__name__)

#: File extensions tried when an annotation names a clip without one.
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


class AnnotationError(ValueError):
    """A malformed annotation: the message names the file and the 1-based line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class RecordList(list):
    """A ``list[VideoRecord]`` that also reports the clips an adapter had to drop.

    ``missing`` holds the annotation entries whose video was not found under the video
    root (SPEC §2.2: a counted, logged skip, never a silent one).
    """

    def __init__(self, records: Iterable[VideoRecord] = (), missing: Sequence[str] = ()) -> None:
        super().__init__(records)
        self.missing: list[str] = list(missing)

    @property
    def num_missing(self) -> int:
        return len(self.missing)


# --------------------------------------------------------------------------- reading files


def require_file(path: str | Path, what: str = "annotation file") -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_annotation(path: str | Path, encodings: Sequence[str] = ("utf-8", "gbk")) -> tuple[str, str]:
    """Decode an annotation file strictly, trying ``encodings`` in turn.

    Returns ``(text, encoding)``. MAFW ships GBK files; users often re-save them as UTF-8.
    UTF-8 is tried first on purpose: GBK-encoded Chinese is practically never valid UTF-8,
    whereas UTF-8 Chinese is often (wrongly) decodable as GBK, so this order can only pick
    the right one. A UTF-8 BOM is honoured. If nothing fits, the error names the file and
    the line of the bad byte, taken from the encoding that decoded furthest (most likely
    the one the file was meant to be in).
    """
    p = require_file(path)
    data = p.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ("utf-8-sig",)
    errors: list[tuple[int, str]] = []
    for enc in encodings:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as e:
            errors.append((e.start, enc))
    start, enc = max(errors)
    raise AnnotationError(
        p, _line_of(data, start), f"cannot decode byte {data[start:start + 1]!r} as any of {list(encodings)} "
        f"(as {enc}: first bad byte here); wrong encoding? MAFW files are GBK or UTF-8"
    )


def iter_lines(path: str | Path, encodings: Sequence[str] = ("utf-8", "gbk")) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line)`` for non-blank lines, newline characters removed."""
    text, _ = decode_annotation(path, encodings)
    # split on "\n" only (not str.splitlines) so line numbers match what editors show even
    # if a caption holds exotic separators such as U+2028.
    for i, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield i, line


def parse_int(value: str, path: Path, line: int, what: str = "label") -> int:
    """``int(value)`` or an AnnotationError naming file, line and the bad value."""
    try:
        return int(value.strip())
    except ValueError:
        raise AnnotationError(path, line, f"{what} {value.strip()!r} is not an integer") from None


def label_from_index(idx: int, order: Sequence[str], path: Path, line: int, base: int = 0) -> str:
    """Class name of a numeric label in a source order (``base`` 0 or 1)."""
    pos = idx - base
    if not 0 <= pos < len(order):
        valid = f"{base}..{base + len(order) - 1}"
        raise AnnotationError(path, line, f"label {idx} out of range {valid} for order {list(order)}")
    return order[pos]


def source_line(rec: VideoRecord) -> int | None:
    """The annotation line a record came from (adapters store ``source`` = ``file:line`` in meta)."""
    src = dict(rec.meta).get("source", "")
    tail = src.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def check_single_split(dataset: str, fold: int | None) -> None:
    """Datasets with one official split accept ``fold`` None or 1, so callers can pass folds uniformly."""
    if fold not in (None, 1):
        raise ValueError(f"{dataset} has one official train/test split; fold must be None or 1, got {fold}")


# --------------------------------------------------------------------------- finding files


def _norm(name: str) -> str:
    """Folder-name normalisation for robust matching: lower case, runs of space/-/& -> '_'."""
    return re.sub(r"[\s\-&_]+", "_", name.strip().lower()).strip("_")


def find_unique(root: str | Path, predicate, what: str) -> Path:
    """The single file under ``root`` (recursive) for which ``predicate(path)`` holds."""
    r = Path(root).expanduser()
    if r.is_file():
        return r
    if not r.is_dir():
        raise FileNotFoundError(f"annotation root not found: {r}")
    hits = sorted(p for p in r.rglob("*") if p.is_file() and predicate(p))
    if not hits:
        raise FileNotFoundError(f"no {what} under {r}")
    if len(hits) > 1:
        shown = ", ".join(str(h) for h in hits[:6])
        raise FileNotFoundError(f"{len(hits)} candidate {what} under {r} ({shown}); pass the file directly")
    return hits[0]


# --------------------------------------------------------------------------- videos


def _name_variants(name: str) -> list[str]:
    """``00001`` / ``1`` spellings of a numeric clip name (DFEW writes both)."""
    out = [name]
    if name.isdigit():
        for v in (str(int(name)), str(int(name)).zfill(5), str(int(name)).zfill(6)):
            if v not in out:
                out.append(v)
    return out


def resolve_video(video_root: str | Path, name: str) -> Path | None:
    """Find the clip an annotation names: a file, a frame folder, or ``name`` + a video extension.

    Tries ``<root>/<name>``, then ``<root>/<stem>/`` (a frame folder of a clip named with an
    extension), then ``<root>/<stem><ext>`` for every extension in :data:`VIDEO_EXTS`, each
    with zero-padded/unpadded variants of numeric names.
    """
    root = Path(video_root).expanduser()
    name = name.strip().replace("\\", "/")
    p = Path(name)
    parent = root / p.parent
    stem = p.stem if p.suffix.lower() in VIDEO_EXTS else p.name
    direct = root / p
    if direct.exists():
        return direct
    for v in _name_variants(stem):
        cand = parent / v
        if cand.exists():
            return cand
        for ext in VIDEO_EXTS:
            for e in (ext, ext.upper()):
                f = parent / f"{v}{e}"
                if f.is_file():
                    return f
    return None


def resolve_list_path(raw: str, video_root: str | Path | None, base: str | Path | None = None) -> Path | None:
    """Resolve a path written in a list file (relative or absolute, maybe from another machine).

    Relative paths are tried under ``video_root``, then under ``base`` (the list's folder),
    then the working directory. Lists made on another machine carry foreign absolute
    paths, so finally the longest tail of the path that exists under ``video_root`` wins
    (``/data/FERV39k/Action/Angry/0001`` -> ``<root>/Action/Angry/0001``; a longer tail is
    preferred so same-named clips of different scenes never get mixed up).
    """
    p = Path(raw.strip().replace("\\", "/")).expanduser()
    if not p.is_absolute():
        for r in (video_root, base):
            if r is not None:
                hit = resolve_video(r, str(p))
                if hit is not None:
                    return hit
    if p.exists():
        return p
    if video_root is not None:
        parts = p.parts[1:] if p.is_absolute() else p.parts
        for k in range(1, len(parts)):
            hit = resolve_video(video_root, str(Path(*parts[k:])))
            if hit is not None:
                return hit
    return None


def check_videos(
    records: list[tuple[VideoRecord, Path | None]], source: str, strict: bool
) -> RecordList:
    """Keep records whose video was found; log one summary of the rest (SPEC §2.2).

    ``records`` pairs each record with its resolved path (None = not found). In strict
    mode the first missing video raises FileNotFoundError naming it.
    """
    kept: list[VideoRecord] = []
    missing: list[str] = []
    for rec, path in records:
        if path is None:
            if strict:
                raise FileNotFoundError(f"{source}: video for clip '{rec.id}' not found ({rec.video})")
            missing.append(rec.video)
        else:
            kept.append(replace(rec, video=str(path)))
    if missing:
        log.warning(
            "%s: %d of %d annotated clips have no video and were skipped (first: %s)",
            source, len(missing), len(records), ", ".join(missing[:3]),
        )
    return RecordList(kept, missing)


# --------------------------------------------------------------------------- list format


def read_list_file(
    path: str | Path,
    order: Sequence[str],
    *,
    dataset: str,
    split: str,
    fold: int | None,
    video_root: str | Path | None,
    id_parts: int = 1,
) -> list[tuple[VideoRecord, Path | None]]:
    """Parse the common list format ``<frame dir or video> <num_frames> <label>`` (SPEC §2.2).

    Columns are whitespace separated; the label is a 0-based index into ``order`` (a
    source order from ``labels.source_order``). A two-column variant ``<path> <label>``
    is accepted too. Paths cannot contain spaces (no source writes such paths). The record
    id is the last ``id_parts`` path components without a video extension.
    """
    p = require_file(path, "list file")
    out: list[tuple[VideoRecord, Path | None]] = []
    for line_no, line in iter_lines(p):
        cols = line.split()
        if len(cols) == 3:
            raw, n_raw, lab_raw = cols
            n: int | None = parse_int(n_raw, p, line_no, "frame count")
        elif len(cols) == 2:
            raw, lab_raw = cols
            n = None
        else:
            raise AnnotationError(p, line_no, f"expected '<path> <num_frames> <label>' (3 columns), got {len(cols)}")
        name = label_from_index(parse_int(lab_raw, p, line_no), order, p, line_no, base=0)
        clean = raw.strip().replace("\\", "/").rstrip("/")
        parts = list(Path(clean).parts[-id_parts:])
        if parts and Path(parts[-1]).suffix.lower() in VIDEO_EXTS:
            parts[-1] = Path(parts[-1]).stem
        resolved = resolve_list_path(clean, video_root, base=p.parent)
        rec = VideoRecord(
            video=clean, label=(name,), dataset=dataset, split=split, id="/".join(parts),  # type: ignore[arg-type]
            fold=fold, num_frames=n, meta=(("source", f"{p}:{line_no}"),),
        )
        out.append((rec, resolved))
    return out
