"""Mixed precision (SPEC §3 "Precision", §4 "AMP"): fp32 master weights, autocast for the
forward pass, and a gradient scaler only where it is needed (fp16 on CUDA).

* ``fp32``: no autocast.
* ``bf16``: ``torch.autocast(device, dtype=torch.bfloat16)``; works on CUDA and on CPU
  (fast on CPUs with AMX-bf16); no scaler needed, bf16 has fp32's exponent range.
* ``fp16``: ``torch.autocast("cuda", dtype=torch.float16)`` with ``torch.amp.GradScaler``.
  On CPU it falls back to fp32 with a warning (CPU fp16 kernels are slow and the official
  recipes that ask for fp16 assume a GPU).
"""
from __future__ import annotations

import contextlib
import logging
from typing import ContextManager, Literal

import torch

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

def resolve_precision(precision: Precision, device_type: str) -> Precision:
    """The precision actually used on ``device_type`` ("cpu" or "cuda"); fp16 on CPU -> fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is not one of {list(PRECISIONS)}")
    if precision == "fp16" and device_type != "cuda":
        log.warning("precision fp16 needs CUDA; running in fp32 on %s (use bf16 for CPU autocast)",
                    device_type)
        return "fp32"
    return precision


def autocast(precision: Precision, device_type: str = "cpu") -> ContextManager[object]:
    """Context for the forward pass and loss at ``precision`` (after :func:`resolve_precision`)."""
    effective = resolve_precision(precision, device_type)
    if effective == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if effective == "bf16" else torch.float16
    return torch.autocast(device_type=device_type, dtype=dtype)


def make_grad_scaler(precision: Precision, device_type: str = "cpu") -> torch.amp.GradScaler:
    """A ``GradScaler``, enabled only for fp16 on CUDA.

    A disabled scaler passes everything through (``scale(loss) is loss``, ``step`` calls
    ``optimizer.step``), so the training loop has a single code path.
    """
    effective = resolve_precision(precision, device_type)
    enabled = effective == "fp16" and device_type == "cuda"
    return torch.amp.GradScaler("cuda" if device_type == "cuda" else "cpu", enabled=enabled)
