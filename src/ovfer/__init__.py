"""ovfer: open-set video facial expression recognition with vision-language models."""
from __future__ import annotations

__version__ = "0.1.0"

from ovfer.api import Prediction, Recognizer, load  # noqa: E402
from ovfer.methods.base import create_method, list_methods  # noqa: E402


def list_datasets() -> list[str]:
    from ovfer.data.adapters import list_datasets as _ld

    return _ld()


__all__ = ["__version__", "load", "Recognizer", "Prediction", "create_method", "list_methods", "list_datasets"]
