"""Typed configs: dataclasses with YAML load/save and dotted command-line overrides.

Every config in ovfer is a dataclass. ``from_dict`` builds nested dataclasses from plain
dicts and rejects unknown keys (naming the valid ones), ``override`` applies
``a.b.c=value`` strings whose values are parsed as YAML scalars/lists.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, TypeVar, Union, get_args, get_origin

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A config value or key is invalid; the message names it and the valid choices."""


def _resolve_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any or tp is None:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:  # try the next member of the union
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} fits none of {tp}: {'; '.join(errors)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        return Path(value)
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], where: str = "") -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys raise naming the valid ones."""
    hints = _resolve_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {unknown}; valid keys: {sorted(fields)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from e


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-YAML-serialisable dict of a (nested) dataclass."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return conv(cfg)


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Sequence[str] = (),
                paths: bool = False) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two config dicts, as ``{key: (old, new)}``.

    Keys present on one side only are not compared, so a file written before an option
    existed still matches a config that leaves the option at its default. ``ignore`` holds
    dotted keys (or prefixes) that do not change what a run computes (paths, progress bars).
    ``paths``: strings naming existing files or folders compare by their resolved path, so
    ``runs/x`` and ``/repo/runs/x`` are one file.
    """
    out: dict[str, tuple[Any, Any]] = {}

    def norm(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        if paths and isinstance(v, str) and v and "\n" not in v:
            try:
                p = Path(v)
                return str(p.resolve()) if p.exists() else v
            except (OSError, ValueError):
                return v
        return v

    def walk(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str) -> None:
        for k in a.keys() & b.keys():
            key = f"{prefix}{k}"
            if any(key == i or key.startswith(i + ".") for i in ignore):
                continue
            x, y = a[k], b[k]
            if isinstance(x, Mapping) and isinstance(y, Mapping):
                walk(x, y, key + ".")
            elif norm(x) != norm(y):
                out[key] = (x, y)

    walk(old, new, "")
    return dict(sorted(out.items()))


def describe_diff(diff: Mapping[str, tuple[Any, Any]], limit: int = 4) -> str:
    """``"train.epochs: 12 -> 30; ..."`` for error messages (the first ``limit`` keys)."""
    text = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:limit])
    return text + (f" and {len(diff) - limit} more" if len(diff) > limit else "")


def override(cfg: C, assignments: Sequence[str]) -> C:
    """Return a copy of ``cfg`` with ``a.b=value`` assignments applied (values parsed as YAML)."""
    data = to_dict(cfg)
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node:
                raise ConfigError(f"override '{key}': no section '{p}'; valid: {sorted(node) if isinstance(node, dict) else []}")
            node = node[p]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ConfigError(f"override '{key}': unknown key '{parts[-1]}'; valid: {sorted(node) if isinstance(node, dict) else []}")
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def load_yaml(cls: type[C], path: str | Path, overrides: Sequence[str] = ()) -> C:
    """Load ``cls`` from a YAML file, then apply dotted overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with path.open("r", encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    cfg = from_dict(cls, data, where=path.name)
    return override(cfg, overrides) if overrides else cfg


def save_yaml(cfg: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
