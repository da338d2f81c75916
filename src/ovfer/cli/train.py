"""``ovfer train``: train a method on known classes and export a deployable checkpoint."""
from __future__ import annotations

import argparse

from ovfer.cli._common import add_config_args, add_text_bank_arg, load_config, text_bank_override


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method and export a checkpoint with its open-set threshold")
    add_config_args(p)
    p.add_argument("--method", help="method name")
    p.add_argument("--output", "-o", help="checkpoint to write (default model.pt)")
    add_text_bank_arg(p)


def run(args: argparse.Namespace) -> int:
    from ovfer.protocols.deploy import TrainJobConfig, train_and_export

    extra = [f"method={args.method}"] if args.method else []
    extra += [f"output={args.output}"] if args.output else []
    cfg = load_config(TrainJobConfig, args, extra)
    if args.text_bank:
        cfg.method_overrides = list(cfg.method_overrides) + [text_bank_override(cfg.method, args.text_bank)]
    path = train_and_export(cfg)
    print(f"wrote {path}")
    return 0
