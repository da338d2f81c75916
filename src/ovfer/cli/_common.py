"""Small helpers shared by the CLI verbs (argparse never leaves ``cli/``)."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ovfer.config import ConfigError, from_dict, load_yaml, override

C = TypeVar("C")


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set train.epochs=5 (repeatable)")


def add_text_bank_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-bank", type=Path, metavar="FILE.json",
                   help='class texts {"descriptions": {"<class>": "<text>" | [...]}, "neutral_captions": [...]} '
                        "for methods that read a text bank (becomes the method override text_bank=FILE.json)")


def load_config(cls: type[C], args: argparse.Namespace, extra: list[str] = ()) -> C:
    cfg = load_yaml(cls, args.config) if args.config else from_dict(cls, {})
    return override(cfg, list(extra) + list(args.overrides))


def config_keys(path: Path | None) -> set[str]:
    """Top-level keys of a YAML config (empty without one)."""
    if path is None:
        return set()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return set(data) if isinstance(data, dict) else set()


def text_bank_override(method: str, path: Path) -> str:
    """``text_bank=<path>`` for ``method_overrides``; methods without that option get an error naming
    the ones that have it."""
    from ovfer.methods.base import METHODS, list_methods

    def takes_bank(name: str) -> bool:
        return "text_bank" in {f.name for f in dataclasses.fields(METHODS.get(name).config_cls)}

    names = list_methods()
    if not takes_bank(method):
        able = [n for n in names if takes_bank(n)]
        raise ValueError(f"method '{method}' has no text_bank option, so --text-bank does not apply; methods that "
                         f"read a text bank: {able or 'none registered'}")
    if not path.is_file():
        raise FileNotFoundError(f"text bank not found: {path}")
    return f"text_bank={json.dumps(str(path))}"  # quoted: the value is parsed as YAML
