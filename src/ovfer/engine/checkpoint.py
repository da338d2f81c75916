"""Checkpoints: atomic writes, safe loads, clear errors (SPEC §4).

* :func:`save_checkpoint` writes to a temporary file in the target directory, flushes and
  fsyncs it, then ``os.replace``s it over the final name, so a crash never leaves a partial
  file under that name and never destroys the previous checkpoint.
* :func:`load_checkpoint` uses ``torch.load(weights_only=True)`` only. Checkpoints are
  therefore made of tensors and plain containers (RNG states as int lists / byte tensors,
  the config as a JSON string); :func:`save_checkpoint` refuses anything else up front, so
  an unloadable file is never written.
* A truncated or corrupt file, a file that would unpickle arbitrary objects, or a
  checkpoint for other classes / another method / another backbone raises
  :class:`CheckpointError` naming the file and what was expected vs found.
* :class:`CheckpointManager` keeps ``epoch_XXXX.pt`` for the last N saves plus ``last.pt``
  and ``best.pt`` (hard links when the filesystem allows, so no extra disk).
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ovfer.fsutil import atomic_write

log = logging.getLogger(__name__)

FORMAT = "ovfer-checkpoint"
FORMAT_VERSION = 1
PathLike = str | os.PathLike[str]

_SAFE_LEAVES = (type(None), bool, int, float, str, bytes, torch.dtype, torch.device, torch.Size)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written, read, or does not fit what the caller expects."""


def ovfer_version() -> str:
    """The installed ovfer version (``"unknown"`` when running from an uninstalled tree)."""
    try:
        from importlib.metadata import version

        return version("ovfer")
    except Exception:  # noqa: BLE001 - metadata missing is not an error worth failing for
        return "unknown"


# -- atomic write --------------------------------------------------------------------------

# -- safety check --------------------------------------------------------------------------

def _check_safe(obj: Any, where: str) -> None:
    """Raise if ``obj`` holds anything ``torch.load(weights_only=True)`` would refuse."""
    if isinstance(obj, torch.Tensor) or isinstance(obj, _SAFE_LEAVES):
        return
    if isinstance(obj, (dict, OrderedDict)):
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                raise CheckpointError(f"checkpoint key {where}[{k!r}] has type {type(k).__name__}; "
                                      "use str or int keys")
            _check_safe(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_safe(v, f"{where}[{i}]")
        return
    raise CheckpointError(f"checkpoint value {where} has type {type(obj).__module__}."
                          f"{type(obj).__qualname__}, which weights_only loading refuses; store "
                          "tensors, numbers, strings or lists/dicts of them (configs as JSON)")


# -- save / load ---------------------------------------------------------------------------

def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> Path:
    """Atomically write ``state`` (plus format and version markers) to ``path``.

    Expected keys (all optional except ``model``): ``model`` (trainable state dict),
    ``model_full``, ``optimizer``, ``scheduler``, ``scaler``, ``epoch``, ``global_step``,
    ``rng``, ``config`` (JSON string), ``classnames``, ``method``, ``arch``, ``extra``.
    """
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "ovfer_version": ovfer_version(),
            **dict(state)}
    if isinstance(full.get("config"), Mapping):
        full["config"] = json.dumps(full["config"], sort_keys=True)
    if "classnames" in full and full["classnames"] is not None:
        full["classnames"] = [str(c) for c in full["classnames"]]
    _check_safe(full, "state")
    return atomic_write(path, lambda fh: torch.save(full, fh))


def _unsafe_detail(err: BaseException) -> str:
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return f" (it references {m.group(1)})" if m else ""


def _torch_load(path: Path, map_location: Any) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise CheckpointError(
                f"refusing to load {path}: unsafe file, it contains pickled Python objects"
                f"{_unsafe_detail(e)} that could run arbitrary code; ovfer loads checkpoints with "
                "weights_only=True only. Re-export it from trusted code as tensors and plain "
                "containers.") from None
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file ({e})") from None
    except Exception as e:  # noqa: BLE001 - zip/EOF/OS errors all mean "unreadable file"
        size = path.stat().st_size
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({size} bytes; "
                              f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})"
                              ) from None


def load_checkpoint(path: PathLike, *, expected_method: str | None = None,
                    expected_classes: Sequence[str] | None = None,
                    expected_arch: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """Load an ovfer checkpoint safely and check it fits the caller.

    Returns the state dict with ``config`` parsed back from JSON into a dict.
    """
    path = Path(path)
    state = _torch_load(path, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not an ovfer checkpoint (found {found}); "
                              "use load_safetensors for weight exports")
    if isinstance(state.get("config"), str):
        try:
            state["config"] = json.loads(state["config"])
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}: stored config is not valid JSON ({e})") from None
    check_compatible(state, path, expected_method=expected_method,
                     expected_classes=expected_classes, expected_arch=expected_arch)
    return state


def check_compatible(meta: Mapping[str, Any], path: PathLike, *, expected_method: str | None = None,
                     expected_classes: Sequence[str] | None = None,
                     expected_arch: str | None = None) -> None:
    """Raise :class:`CheckpointError` when method, classes or architecture differ."""
    if expected_method is not None and meta.get("method") != expected_method:
        raise CheckpointError(f"{path}: checkpoint is for method '{meta.get('method')}', "
                              f"expected '{expected_method}'")
    if expected_arch is not None and meta.get("arch") not in (None, expected_arch):
        raise CheckpointError(f"{path}: checkpoint backbone architecture is '{meta.get('arch')}', "
                              f"expected '{expected_arch}'")
    if expected_classes is not None:
        found = list(meta.get("classnames") or [])
        want = [str(c) for c in expected_classes]
        if len(found) != len(want):
            raise CheckpointError(f"{path}: checkpoint has {len(found)} classes {found}, "
                                  f"expected {len(want)} classes {want}")
        if found != want:
            diffs = [f"#{i}: '{f}' vs '{w}'" for i, (f, w) in enumerate(zip(found, want)) if f != w]
            raise CheckpointError(f"{path}: class names differ (found vs expected) at "
                                  f"{', '.join(diffs[:5])}; found {found}, expected {want}")


# -- safetensors exports -------------------------------------------------------------------

def save_safetensors(path: PathLike, tensors: Mapping[str, torch.Tensor],
                     metadata: Mapping[str, Any] | None = None) -> Path:
    """Atomically write a weights-only export; metadata values are stored as JSON strings."""
    from safetensors.torch import save

    data = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {"format": FORMAT, "ovfer_version": ovfer_version()}
    meta.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    blob = save(data, metadata=meta)
    return atomic_write(path, lambda fh: fh.write(blob))


def load_safetensors(path: PathLike, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors export: ``(tensors, metadata)``; a bad file raises CheckpointError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - the safetensors errors vary by version
        raise CheckpointError(f"safetensors file {path} is truncated or corrupt "
                              f"({type(e).__name__}: {e})") from None
    return tensors, meta


# -- keeping the last N --------------------------------------------------------------------

def _link_or_copy(src: Path, dst: Path) -> None:
    """Point ``dst`` at ``src``'s content atomically (hard link, else copy), replacing ``dst``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _epoch_of(path: Path) -> int:
    m = re.match(r"epoch_(\d+)", path.name)
    return int(m.group(1)) if m else -1


class CheckpointManager:
    """Writes ``epoch_XXXX.pt`` files, keeps the newest ``keep_last``, and maintains
    ``last.pt`` (always the newest) and ``best.pt`` (when asked)."""

    def __init__(self, directory: PathLike, keep_last: int = 2) -> None:
        if keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, got {keep_last}")
        self.dir = Path(directory)
        self.keep_last = keep_last

    @property
    def last_path(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def epoch_paths(self) -> list[Path]:
        return sorted(self.dir.glob("epoch_[0-9][0-9][0-9][0-9]*.pt"))

    def save(self, state: Mapping[str, Any], epoch: int, is_best: bool = False) -> Path:
        """Save ``state`` for ``epoch`` (1-based count of finished epochs); returns last.pt."""
        if self.keep_last == 0:
            save_checkpoint(self.last_path, state)
        else:
            path = save_checkpoint(self.dir / f"epoch_{epoch:04d}.pt", state)
            _link_or_copy(path, self.last_path)
            kept = [p for p in self.epoch_paths() if _epoch_of(p) <= epoch]
            stale = [p for p in self.epoch_paths() if _epoch_of(p) > epoch]  # from an abandoned run
            for old in stale + kept[:-self.keep_last]:
                old.unlink(missing_ok=True)
        if is_best:
            _link_or_copy(self.last_path, self.best_path)
        log.info("saved checkpoint %s (epoch %d%s)", self.last_path, epoch, ", best" if is_best else "")
        return self.last_path
