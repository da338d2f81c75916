"""``ovfer preprocess``: raw videos -> aligned face clips in a clip cache (parallel, resumable)."""
from __future__ import annotations

import argparse
from pathlib import Path

VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preprocess", help="raw videos -> aligned face clips (MTCNN, tracking, cache)")
    p.add_argument("inputs", nargs="+", type=Path, help="video files, frame folders, or folders to search")
    p.add_argument("--cache", type=Path, required=True, help="clip cache folder")
    p.add_argument("--workers", type=int, default=0, help="processes (0 = in this process)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="face-pipeline setting, e.g. --set detect_every=5 --set output_size=112")
    p.add_argument("--no-progress", action="store_true")


def _expand(inputs: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in inputs:
        if p.is_dir() and not any(f.suffix.lower() in {".jpg", ".jpeg", ".png"} for f in p.iterdir()):
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXT)
        else:
            out.append(p)
    return out


def run(args: argparse.Namespace) -> int:
    from ovfer.config import from_dict, override
    from ovfer.data.preprocess import PreprocessConfig, preprocess

    cfg = override(from_dict(PreprocessConfig, {}), args.overrides)
    videos = _expand(args.inputs)
    if not videos:
        raise FileNotFoundError(f"no videos found in {[str(p) for p in args.inputs]}")
    summary = preprocess(videos, args.cache, cfg, workers=args.workers, progress=not args.no_progress)
    print(summary)
    return 0 if not summary.failed else 1
