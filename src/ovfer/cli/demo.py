"""``ovfer demo``: the main job on embedded SynthFER data, end to end, resumable."""
from __future__ import annotations

import argparse
import json

from ovfer.cli._common import add_config_args, load_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="SynthFER -> small CLIP -> Baseline 1, Baseline 2, HESP -> report -> model")
    add_config_args(p)
    p.add_argument("--out", help="output folder (default runs/demo)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ovfer.protocols.demo import DemoConfig, run_demo

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = load_config(DemoConfig, args, [f"out={args.out}"] if args.out else [])
    summary = run_demo(cfg)
    print(json.dumps(summary["results"], indent=1))
    print("timing (s):", {k: round(v, 1) for k, v in summary["timing"].items()})
    for p in summary["tables"]:
        print("table:", p)
    print("figures and tables:", summary["report"])
    if "model" in summary:
        print("model for 'ovfer predict':", summary["model"])
    return 0
