"""Loading the official releases' checkpoint files into ovfer methods (METHODS §5).

The released DFER-CLIP and EmoCLIP files are DDP state dicts (``module.`` prefixes, a
``state_dict`` wrapper, duplicate CLIP copies, fp16 tensors). These helpers read them
safely (``weights_only=True``), rename keys by prefix rules, and load them with every
missing, unexpected or mis-shaped key reported — never a silent partial load.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


class ReleasedCheckpointError(ValueError):
    """The file is not in the expected released layout; the message says what differs."""


def read_released(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a released checkpoint: unwraps ``state_dict``/``model``, strips ``module.``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle refusing non-tensor objects, truncated zip, ...
        raise ReleasedCheckpointError(f"{p}: cannot be read safely with weights_only=True ({type(e).__name__}: {e})") from e
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ReleasedCheckpointError(f"{p}: expected a state dict of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def remap_keys(sd: Mapping[str, Tensor], rules: Sequence[tuple[str, str]], drop: Sequence[str] = ()
               ) -> dict[str, Tensor]:
    """Rename keys by the first matching ``(source_prefix, target_prefix)``; keys under a ``drop``
    prefix are skipped; any other key raises (a layout we do not know must not load half-way)."""
    out: dict[str, Tensor] = {}
    unknown = []
    for k, v in sd.items():
        if any(k.startswith(d) for d in drop):
            continue
        for src, dst in rules:
            if k.startswith(src):
                out[dst + k[len(src):]] = v
                break
        else:
            unknown.append(k)
    if unknown:
        raise ReleasedCheckpointError(f"unexpected keys in the released checkpoint: {unknown[:8]}"
                                      + (" ..." if len(unknown) > 8 else ""))
    return out


def require_paper_temporal(start: str, method: str) -> None:
    """Released temporal weights were trained as the papers' net; read as ``frame_mean`` updates
    they would give other outputs without any shape error, so refuse."""
    if start != "random":
        raise ReleasedCheckpointError(f"released {method} weights need {method}.temporal_start=random "
                                      f"(got {start!r}): their temporal transformer is the paper's")


def load_mapped(module: nn.Module, sd: Mapping[str, Tensor], required: Sequence[str] = ()) -> None:
    """Load renamed tensors; every key of ``sd`` must exist with its shape, and every
    parameter/buffer whose name starts with a ``required`` prefix must be provided."""
    own = module.state_dict()
    unexpected = [k for k in sd if k not in own]
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in sd.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k.startswith(tuple(required)) and k not in sd] if required else []
    if unexpected or bad or missing:
        raise ReleasedCheckpointError(
            "released checkpoint does not fit this method: "
            + "; ".join(s for s in (f"unexpected {unexpected[:5]}" if unexpected else "",
                                    f"shape (file vs method) {bad[:3]}" if bad else "",
                                    f"missing {missing[:5]}" if missing else "") if s))
    module.load_state_dict(dict(sd), strict=False)  # copy_ casts fp16 release tensors to our dtype
    log.info("loaded %d released tensors into %s", len(sd), type(module).__name__)
