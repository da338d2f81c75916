"""Dataset adapters: official annotation files -> ``list[VideoRecord]`` (SPEC §2.1–2.2).

Each adapter is a function registered by name; nothing downstream knows the source
format. ``create_dataset_records("mafw", annotation=..., video_root=..., fold=1,
split="train")`` is the one entry point; ``list_datasets()`` names what is available.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from ovfer.registry import Registry

from .common import AnnotationError, RecordList

log = logging.getLogger(__name__)

#: name -> adapter function returning a :class:`RecordList` of :class:`VideoRecord`.
DATASETS: Registry[Callable[..., RecordList]] = Registry("dataset")


def register_dataset(name: str) -> Callable[[Callable[..., RecordList]], Callable[..., RecordList]]:
    """Decorator: register an adapter under ``name`` (lower-cased)."""
    return DATASETS.register(name)


def create_dataset_records(name: str, **kwargs: Any) -> RecordList:
    """Build the records of dataset ``name``; unknown names list the valid ones.

    The result is a ``list[VideoRecord]`` whose ``missing`` attribute lists annotated
    clips without a video (skipped and logged, or an error with ``strict=True``).
    """
    records = DATASETS.get(name)(**kwargs)
    log.info("dataset %s: %d records (%d missing videos skipped)", name, len(records),
             getattr(records, "num_missing", 0))
    return records


def list_datasets() -> list[str]:
    """Names of the registered dataset adapters."""
    return DATASETS.names()


# Register the built-in adapters (imported for their side effect).
from . import afew, dfew, ferv39k, folder, mafw  # noqa: E402,F401

__all__ = [
    "DATASETS", "AnnotationError", "RecordList", "create_dataset_records", "list_datasets", "register_dataset",
]
