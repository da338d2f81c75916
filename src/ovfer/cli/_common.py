"""Small helpers shared by the CLI verbs (argparse never leaves ``cli/``)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeVar

from ovfer.config import from_dict, load_yaml, override

C = TypeVar("C")


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set train.epochs=5 (repeatable)")


def load_config(cls: type[C], args: argparse.Namespace, extra: list[str] = ()) -> C:
    cfg = load_yaml(cls, args.config) if args.config else from_dict(cls, {})
    return override(cfg, list(extra) + list(args.overrides))
