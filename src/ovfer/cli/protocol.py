"""``ovfer protocol``: a method over all splits × opennesses of a task, resumable."""
from __future__ import annotations

import argparse

from ovfer.cli._common import add_config_args, load_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protocol", help="run a method over a task's splits (OV-FER), resumable")
    add_config_args(p)
    p.add_argument("--method", help="method name (overrides the config)")
    p.add_argument("--task", help="task name, e.g. synth11, mafw11, afew7")
    p.add_argument("--openness", action="append", help="openness tag such as 'O(8:3)' (repeatable)")
    p.add_argument("--results", help="results directory")


def run(args: argparse.Namespace) -> int:
    from ovfer.protocols.open_set import OpenSetConfig, run_open_set

    extra = []
    if args.method:
        extra.append(f"method={args.method}")
    if args.task:
        extra.append(f"task={args.task}")
    if args.results:
        extra.append(f"results_dir={args.results}")
    cfg = load_config(OpenSetConfig, args, extra)
    if args.openness:
        cfg.openness = list(args.openness)
    results = run_open_set(cfg)
    for r in results:
        print(f"{r.method_label:24s} {r.task}/{r.openness_tag}_{r.split_index}: "
              f"AUROC {r.metrics['auroc']:6.2f}  OSCR {r.metrics['oscr']:6.2f}  closed acc {r.metrics['closed_acc']:6.2f}")
    print(f"results in {cfg.results_dir}")
    return 0
