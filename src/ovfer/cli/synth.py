"""``ovfer synth``: generate SynthFER videos and official-format annotations."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate SynthFER synthetic expression videos + annotations")
    p.add_argument("--out", type=Path, default=Path("data/synthfer"), help="output folder")
    p.add_argument("--config", help="YAML file or preset name (default, hard, scene)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set clips_per_class=40 (repeatable)")
    p.add_argument("--seed", type=int, help="seed (default: the config's)")
    p.add_argument("--workers", type=int, help="processes (default: the config's)")


def run(args: argparse.Namespace) -> int:
    from ovfer.synth import generate, load_synth_config

    cfg = load_synth_config(args.config, args.overrides)
    out = generate(cfg, args.out, seed=args.seed, workers=args.workers)
    print(f"SynthFER written to {out} (videos/, mafw/, dfew/, synthfer.json)")
    return 0
