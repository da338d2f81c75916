"""Tiny methods, datasets and a DDP worker shared by the engine tests.

A plain module (not a conftest) so that processes started by ``torch.multiprocessing.spawn``
can import it by name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from ovfer.methods.base import Method, MethodConfig, MethodOutput

CLASSES = ("anger", "happiness", "sadness")


class ToyDataset(Dataset):
    """Random "videos" (T, D) with labels that a linear model can partly learn."""

    def __init__(self, n: int = 24, frames: int = 2, dim: int = 8, classes: int = 3, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, classes, (n,), generator=g)
        centers = torch.randn(classes, dim, generator=g)
        self.video = centers[self.labels][:, None, :] + 0.8 * torch.randn(n, frames, dim, generator=g)
        self.epochs_seen: list[int] = []

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        # numpy noise in __getitem__ makes worker / numpy seeding matter
        jitter = torch.from_numpy(np.random.normal(0, 0.01, self.video[i].shape).astype(np.float32))
        return {"video": self.video[i] + jitter, "label": int(self.labels[i]), "id": f"clip{i:03d}"}

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)


@dataclass
class ToyConfig(MethodConfig):
    dim: int = 8
    hidden: int = 16
    dropout: float = 0.3


class ToyMethod(Method):
    """Frame-mean -> Linear -> Dropout -> Linear; a frozen 'backbone' layer too."""

    name = "toy"
    config_cls = ToyConfig
    arch_name = "toy-arch"

    def __init__(self, cfg: ToyConfig | None = None, classes: tuple[str, ...] = CLASSES) -> None:
        cfg = cfg or ToyConfig()
        super().__init__(cfg)
        self.backbone = nn.Linear(cfg.dim, cfg.dim)
        self.backbone.requires_grad_(False)
        self.head = nn.Sequential(nn.Linear(cfg.dim, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden, len(classes)))
        self.set_classes(classes)
        self.after_backward_calls = 0

    def forward(self, video: Tensor) -> MethodOutput:  # video: (B, T, D)
        feats = self.backbone(video).mean(dim=1)
        logits = self.head(feats)
        return MethodOutput(logits=logits, open_score=self.open_score(logits), features=feats)

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        out = self(batch["video"])
        ce = F.cross_entropy(out.logits, batch["label"])
        reg = 1e-3 * out.features.pow(2).mean()
        return {"loss": ce + reg, "ce": ce, "reg": reg}

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"name": "head", "params": list(self.head.parameters())}]

    def after_backward(self) -> None:
        self.after_backward_calls += 1


class NaNMethod(ToyMethod):
    """Loss becomes NaN on the ``bad_call``-th training step (0-based)."""

    name = "toy_nan"

    def __init__(self, bad_call: int = 3) -> None:
        super().__init__()
        self.bad_call = bad_call
        self.calls = 0

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        out = super().training_step(batch)
        self.calls += 1
        if self.calls - 1 == self.bad_call:
            out["loss"] = out["loss"] * float("nan")
        return out


def weights(method: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in method.state_dict().items()}


# -- DDP worker (run by torch.multiprocessing.spawn) ------------------------------------------

def ddp_worker(local: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
                       "RANK": str(local), "LOCAL_RANK": str(local)})
    torch.set_num_threads(1)
    from ovfer.engine import (OptimConfig, SchedulerConfig, TrainConfig, Trainer, cleanup_distributed,
                              gather_numpy, init_distributed, make_loader, rank, seed_everything)

    assert init_distributed()
    seed_everything(0)  # same init on both ranks (DDP would broadcast rank 0's anyway)
    method = ToyMethod()
    loader = make_loader(ToyDataset(n=16), batch_size=4, train=True, seed=0)
    cfg = TrainConfig(epochs=2, optim=OptimConfig(lr=0.1), scheduler=SchedulerConfig(name="none"),
                      log_every=1, device="cpu", progress=False)
    result = Trainer(method, loader, cfg, out_dir).fit(resume=False)
    gathered = gather_numpy(np.arange(3 + 2 * rank(), dtype=np.float32) + 100 * rank())
    # NaN on rank 1 only, on the syncing micro-batch of a window: both ranks must skip it
    # together and still end with the same weights
    nan_method = NaNMethod(bad_call=1 if rank() == 1 else 10**6)
    nan_cfg = TrainConfig(epochs=1, optim=OptimConfig(lr=0.1), scheduler=SchedulerConfig(name="none"),
                          accumulation=2, nan_policy="skip", device="cpu", progress=False)
    nan_result = Trainer(nan_method, make_loader(ToyDataset(n=16), batch_size=2, train=True, seed=0),
                         nan_cfg, Path(out_dir) / "nan").fit(resume=False)
    torch.save({"history": result.history, "weights": weights(method), "gathered": gathered.tolist(),
                "n_batches": len(loader), "nan_weights": weights(nan_method),
                "nan_skipped": nan_result.nonfinite_skipped}, Path(out_dir) / f"rank{rank()}.pt")
    cleanup_distributed()
