"""Seeds and random-number-generator state (SPEC §4: seeds for python/numpy/torch and
DataLoader workers; a killed run resumes to the same result).

Two ideas make resumption exact:

* every RNG the training loop draws from (python ``random``, numpy's global generator,
  torch's CPU and CUDA generators, and named ``torch.Generator`` objects such as a
  DataLoader's) can be captured as plain ints/lists/tensors, so it fits a checkpoint that
  loads with ``torch.load(weights_only=True)``, and restored at an epoch boundary;
* a DataLoader's shuffle generator is re-seeded at every epoch from ``(seed, epoch)``
  (:func:`epoch_seed`), so the order of epoch *e* does not depend on how the run got there.
"""
from __future__ import annotations

import logging
import os
import random
from typing import Any, Mapping

import numpy as np
import torch

log = logging.getLogger(__name__)

_MAX_SEED = 2**32


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally ask torch for deterministic kernels.

    ``deterministic`` turns on ``torch.use_deterministic_algorithms`` (warn-only, so an op
    without a deterministic kernel warns instead of failing) and disables cuDNN autotuning.
    """
    seed = int(seed) % _MAX_SEED
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        set_deterministic()
    log.debug("seeded python/numpy/torch with %d (deterministic=%s)", seed, deterministic)


def set_deterministic() -> None:
    """Deterministic kernels where torch has them (warn-only elsewhere), no cuDNN autotuning."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed that depends only on ``(seed, epoch, rank)``, never on RNG history."""
    state = np.random.SeedSequence([int(seed) % _MAX_SEED, int(epoch), int(rank)]).generate_state(1)
    return int(state[0])


def make_generator(seed: int, epoch: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``(seed, epoch)`` (for DataLoader shuffling)."""
    gen = torch.Generator()
    gen.manual_seed(epoch_seed(seed, epoch))
    return gen


def worker_init_fn(worker_id: int) -> None:
    """Seed numpy and python ``random`` inside a DataLoader worker.

    Torch gives each worker ``base_seed + worker_id`` (``base_seed`` drawn from the
    loader's generator), so deriving the other libraries' seeds from it keeps workers
    distinct from each other and reproducible across runs.
    """
    base = torch.initial_seed() % _MAX_SEED
    np.random.seed(epoch_seed(base, worker_id))
    random.seed(base)


# -- capture / restore --------------------------------------------------------------------

def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [int(version), [int(x) for x in internal], gauss]


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": str(name), "keys": [int(k) for k in keys], "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """All RNG states as checkpoint-safe containers (ints, lists, byte tensors).

    ``generators`` names extra ``torch.Generator`` objects (e.g. ``{"loader": g}``).
    """
    state: dict[str, Any] = {
        "python": _python_state(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    return state


def restore_rng_state(state: Mapping[str, Any],
                      generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Inverse of :func:`capture_rng_state`; generators absent from ``state`` are left alone."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    npst = state["numpy"]
    np.random.set_state((npst["name"], np.asarray(npst["keys"], dtype=np.uint32), int(npst["pos"]),
                         int(npst["has_gauss"]), float(npst["cached_gaussian"])))
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    cuda = list(state.get("cuda", []))
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([t.cpu() for t in cuda])
        else:
            log.warning("checkpoint has CUDA RNG states for %d devices, this machine has %d; "
                        "CUDA RNG not restored", len(cuda), torch.cuda.device_count())
    saved = state.get("generators", {})
    for name, gen in (generators or {}).items():
        if name in saved:
            gen.set_state(saved[name].to(torch.uint8).cpu())
        else:
            log.warning("no saved state for generator '%s'; it keeps its current state", name)
