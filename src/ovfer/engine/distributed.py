"""``torchrun`` data-parallel training and cross-rank metric gathering (SPEC §4).

Everything here is a no-op in a single process: :func:`init_distributed` only starts a
process group when ``torchrun`` set ``WORLD_SIZE`` > 1, and the helpers then return the
input unchanged. Backend: NCCL on GPU, gloo on CPU.

Evaluation shards the dataset into contiguous, **unpadded** pieces (:class:`ShardSampler`)
so every clip is counted once (DistributedSampler pads by repeating clips, which biases
metrics, METHODS §3), and :func:`gather_numpy` concatenates the per-rank results in rank
order, which is then the dataset order; ranks may hold different numbers of items.
"""
from __future__ import annotations

import datetime
import logging
import math
import os
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from ovfer.engine.seed import epoch_seed, make_generator, worker_init_fn

log = logging.getLogger(__name__)

Backend = Literal["auto", "gloo", "nccl"]


def init_distributed(backend: Backend = "auto", timeout_minutes: float = 30.0) -> bool:
    """Start the process group from torchrun's env vars; returns whether DDP is active."""
    if is_distributed():
        return True
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws <= 1:
        return False
    use_cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, init_method="env://",
                            timeout=datetime.timedelta(minutes=timeout_minutes))
    log.info("distributed: rank %d of %d, backend %s", rank(), world_size(), backend)
    return True


def cleanup_distributed() -> None:
    """Destroy the process group if one is active."""
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on rank 0 (and in a single process): the only rank that logs and saves."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


# -- collectives ---------------------------------------------------------------------------

def _comm_device(t: torch.Tensor) -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks (a copy; ``t`` itself is not modified)."""
    if not is_distributed():
        return t.clone()
    buf = t.detach().to(_comm_device(t), dtype=torch.float64).clone()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return (buf / world_size()).to(device=t.device, dtype=t.dtype)


def all_gather_tensors(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` from every rank along dim 0, in rank order; lengths may differ."""
    if not is_distributed():
        return t
    x = t.detach().reshape(1) if t.ndim == 0 else t.detach()
    is_bool = x.dtype == torch.bool
    dev = _comm_device(x)
    x = x.to(dev, dtype=torch.uint8 if is_bool else x.dtype)
    n = torch.tensor([x.shape[0]], device=dev, dtype=torch.int64)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    lengths = [int(s.item()) for s in sizes]
    padded = x.new_zeros((max(lengths), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in lengths]
    dist.all_gather(parts, padded)
    out = torch.cat([p[:k] for p, k in zip(parts, lengths)], dim=0)
    return out.to(t.device, dtype=torch.bool if is_bool else t.dtype)


def gather_numpy(a: np.ndarray | Sequence[Any]) -> np.ndarray:
    """:func:`all_gather_tensors` for numeric numpy arrays (evaluation scores and labels)."""
    arr = np.ascontiguousarray(np.asarray(a))
    if not is_distributed():
        return arr
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"gather_numpy needs a numeric or bool array, got dtype {arr.dtype}")
    return all_gather_tensors(torch.from_numpy(arr)).numpy()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (pickled by torch.distributed; small objects only)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


# -- loaders -------------------------------------------------------------------------------

class ShardSampler(Sampler[int]):
    """Rank r's contiguous, unpadded slice of ``range(n)`` (evaluation: each item once)."""

    def __init__(self, n: int, num_replicas: int | None = None, rank_: int | None = None) -> None:
        self.n = n
        self.num_replicas = world_size() if num_replicas is None else num_replicas
        self.rank = rank() if rank_ is None else rank_
        per = math.ceil(n / self.num_replicas) if self.num_replicas else n
        self.start = min(n, self.rank * per)
        self.stop = min(n, self.start + per)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


def make_loader(dataset: Dataset, batch_size: int, train: bool, seed: int = 0, workers: int = 0,
                collate_fn: Callable[[list[Any]], Any] | None = None,
                drop_last: bool = False, pin_memory: bool | None = None) -> DataLoader:
    """A seeded DataLoader: shuffled (DistributedSampler under DDP) for training, ordered
    and sharded without padding for evaluation.

    The loader carries a ``torch.Generator`` that the trainer re-seeds from (seed, epoch)
    each epoch, so shuffling and worker seeds do not depend on the run's history.
    """
    gen = make_generator(epoch_seed(seed, 0, rank()))
    sampler: Sampler[int] | None
    if is_distributed():
        sampler = (DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=drop_last) if train
                   else ShardSampler(len(dataset)))  # type: ignore[arg-type]
        shuffle = None
    else:
        sampler, shuffle = None, train
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                      num_workers=workers, collate_fn=collate_fn, drop_last=drop_last and train,
                      pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
                      worker_init_fn=worker_init_fn, generator=gen,
                      persistent_workers=False)


# -- model wrapping ------------------------------------------------------------------------

class TrainingStepModule(nn.Module):
    """``forward(batch) = method.training_step(batch)``, so DDP's forward hooks see the step."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: Any) -> Any:
        return self.method.training_step(batch)


def wrap_for_training(method: nn.Module, device: torch.device,
                      find_unused_parameters: bool = False) -> nn.Module:
    """The module the trainer calls with a batch: DDP-wrapped only when world_size > 1.

    DDP registers only parameters with ``requires_grad``, so methods with frozen backbones
    synchronise just their learned tensors. ``find_unused_parameters`` is needed when a
    step may leave some trainable parameter without a gradient (e.g. a loss term switched
    off for some epochs).
    """
    step = TrainingStepModule(method)
    if world_size() <= 1:
        return step
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return DDP(step, device_ids=ids, find_unused_parameters=find_unused_parameters)
