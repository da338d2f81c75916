"""``ovfer predict VIDEO...``: a known emotion or "unknown" per video, with score and threshold."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify videos: a known emotion or 'unknown'")
    p.add_argument("videos", nargs="+", type=Path)
    p.add_argument("--checkpoint", "-c", required=True, type=Path, help="checkpoint from 'ovfer train' / 'ovfer demo'")
    p.add_argument("--method", default="auto", help="expected method name (default: whatever the checkpoint holds)")
    p.add_argument("--backbone-weights", help="override the CLIP weight file stored in the checkpoint")
    p.add_argument("--aligned", action="store_true", help="inputs are already aligned face clips: skip detection")
    p.add_argument("--json", action="store_true", help="print one JSON object per video")
    p.add_argument("--annotate", type=Path, help="folder for annotated output videos (face box, label, prompt window)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: bf16 image tower (fast on AVX512-bf16/AMX CPUs and GPUs); the threshold was "
                        "calibrated in the training precision, so scores within ~0.1%% of it may flip")


def run(args: argparse.Namespace) -> int:
    from ovfer.api import NoFaceError, load

    rec = load(args.method, args.checkpoint, backbone_weights=args.backbone_weights, precision=args.precision)
    failures = 0
    for video in args.videos:
        try:
            if not video.is_file():
                raise FileNotFoundError(f"video not found: {video}")
            pred = rec.predict(video, aligned=args.aligned)
        except (NoFaceError, FileNotFoundError, ValueError) as e:
            failures += 1
            if args.json:
                print(json.dumps({"video": str(video), "error": str(e)}))
            else:
                print(f"{video}: {e}", file=sys.stderr)
            continue
        if args.annotate:
            from ovfer.cli.annotate import annotate_video

            annotate_video(rec, video, pred, args.annotate / f"{video.stem}_ovfer.mp4")
        if args.json:
            print(json.dumps(pred.to_dict()))
        else:
            print(f"{video}: {pred.label}  (score {pred.score:.3f}, threshold {pred.threshold:.3f}, "
                  f"top class {pred.top_class})")
    return 1 if failures else 0
