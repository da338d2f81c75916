"""ovfer: open-set video facial expression recognition with vision-language models.

Attributes are imported lazily so that worker processes (preprocess, DataLoader) do not
pay for torch and open_clip unless they use them.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("ovfer.api", "load"),
    "Recognizer": ("ovfer.api", "Recognizer"),
    "Prediction": ("ovfer.api", "Prediction"),
    "create_method": ("ovfer.methods.base", "create_method"),
    "list_methods": ("ovfer.methods.base", "list_methods"),
    "list_datasets": ("ovfer.data.adapters", "list_datasets"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ovfer' has no attribute '{name}'")


__all__ = ["__version__", *_LAZY]
