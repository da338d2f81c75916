"""Canonical class lists, source orders and name aliases (data from ``resources/splits``).

Everything downstream refers to classes by canonical name; ids are positions in a list
chosen per task. Source orders (DFEW numbering, DFER-CLIP's MAFW order, ...) are
converted *by name* here and nowhere else.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

#: Spellings found in official annotations and folder names -> canonical names.
ALIASES: dict[str, str] = {
    "angry": "anger", "anger": "anger", "an": "anger",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "fe": "fear",
    "happy": "happiness", "happiness": "happiness", "ha": "happiness",
    "neutral": "neutral", "ne": "neutral",
    "sad": "sadness", "sadness": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "contempt": "contempt", "co": "contempt",
    "anxiety": "anxiety", "anxious": "anxiety", "ax": "anxiety",
    "helplessness": "helplessness", "helpless": "helplessness", "hl": "helplessness",
    "disappointment": "disappointment", "disappointed": "disappointment", "ds": "disappointment",
}

BASIC7: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
MAFW11: tuple[str, ...] = BASIC7 + ("contempt", "anxiety", "helplessness", "disappointment")


class LabelError(ValueError):
    """An unknown label; the message names it and the valid names."""


@lru_cache(maxsize=None)
def _load(name: str) -> dict[str, Any]:
    with resources.files("ovfer.resources.splits").joinpath(name).open("r", encoding="utf-8") as fh:
        return json.load(fh)


def classes_json() -> dict[str, Any]:
    return _load("classes.json")


def openset_splits_json() -> dict[str, Any]:
    return _load("hesp_openset_splits.json")


def canonical_classes(dataset: str) -> tuple[str, ...]:
    """Canonical class order of an official dataset (afew, mafw, dfew, ferv39k, mafw_compound)."""
    ds = classes_json()["datasets"]
    key = dataset.lower()
    if key not in ds:
        raise LabelError(f"no class list for dataset '{dataset}'; known: {sorted(ds)}")
    return tuple(ds[key]["classes"])


def source_order(dataset: str, order: str) -> tuple[str, ...]:
    """The class names of one source's id order, converted to canonical names."""
    entry = classes_json()["datasets"][dataset.lower()]
    orders = entry.get("orders", {})
    if order not in orders:
        raise LabelError(f"dataset '{dataset}' has no order '{order}'; known: {sorted(orders)}")
    canon = entry["classes"]
    return tuple(canon[i] for i in orders[order]["to_canonical"])


def canonical_name(raw: str, valid: Sequence[str] | None = None, where: str = "") -> str:
    """Map one spelling (``Happy``, ``happiness``, ``HA``) to its canonical class name."""
    key = raw.strip().lower()
    name = ALIASES.get(key, key)
    if valid is not None and name not in valid:
        raise LabelError(f"{where + ': ' if where else ''}unknown label '{raw}'; valid: {list(valid)}")
    if valid is None and name not in ALIASES.values():
        raise LabelError(f"{where + ': ' if where else ''}unknown label '{raw}'; valid: {sorted(set(ALIASES.values()))}")
    return name


def parse_compound(raw: str, where: str = "") -> tuple[str, ...]:
    """Split a MAFW-style compound label ``a_b_c`` into canonical names, in MAFW order."""
    parts = [p for p in raw.strip().split("_") if p]
    if not parts:
        raise LabelError(f"{where + ': ' if where else ''}empty label")
    names = [canonical_name(p, MAFW11, where) for p in parts]
    if len(set(names)) != len(names):
        raise LabelError(f"{where + ': ' if where else ''}label '{raw}' repeats a class")
    return tuple(sorted(names, key=MAFW11.index))


def label_ids(names: Sequence[str], order: Sequence[str]) -> list[int]:
    """Ids of ``names`` in ``order`` (one task's class list); unknown names raise."""
    index = {n: i for i, n in enumerate(order)}
    out = []
    for n in names:
        if n not in index:
            raise LabelError(f"class '{n}' is not in this task's classes {list(order)}")
        out.append(index[n])
    return out
