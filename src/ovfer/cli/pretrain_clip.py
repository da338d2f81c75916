"""``ovfer pretrain-clip``: train a small CLIP from scratch on SynthFER clips."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ovfer.cli._common import add_config_args, load_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain-clip", help="pretrain a small CLIP on SynthFER clips")
    add_config_args(p)
    p.add_argument("--out", type=Path, default=Path("runs/clip"), help="output folder")
    p.add_argument("--strong", action="store_true", help="the strong recipe (emotion-only captions + SupCon)")


def run(args: argparse.Namespace) -> int:
    from ovfer.backbones.pretrain import PretrainConfig, pretrain_clip, strong_recipe

    cfg = load_config(PretrainConfig, args)
    if args.strong:
        cfg = strong_recipe(cfg)
    report = pretrain_clip(cfg, args.out)
    print(json.dumps({k: report[k] for k in ("checkpoint", "steps", "videos_per_s", "train_s")}, indent=1))
    print(json.dumps(report["eval"], indent=1))
    return 0
