"""``ovfer eval``: metrics of a trained checkpoint on a dataset's test clips."""
from __future__ import annotations

import argparse
import json

from ovfer.cli._common import add_config_args, load_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint (closed-set, and open-set when other classes exist)")
    add_config_args(p)
    p.add_argument("--checkpoint", "-c", help="checkpoint from 'ovfer train'")
    p.add_argument("--out", help="write the metrics as JSON here")


def run(args: argparse.Namespace) -> int:
    from ovfer.protocols.deploy import EvalJobConfig, evaluate_checkpoint

    cfg = load_config(EvalJobConfig, args, [f"checkpoint={args.checkpoint}"] if args.checkpoint else [])
    res = evaluate_checkpoint(cfg)
    text = json.dumps(res, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    brief = {"uar": res["closed_set"]["uar"], "war": res["closed_set"]["war"]}
    if "open_set" in res:
        brief |= {"auroc": res["open_set"]["auroc"], "oscr": res["open_set"]["oscr"]}
    print(json.dumps(brief))
    return 0
