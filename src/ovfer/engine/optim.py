"""Optimizers and learning-rate schedules (SPEC §4; METHODS.md §4 "Engine").

The optimizer is built from ``method.param_groups()``: each group may set an absolute
``lr``, an ``lr_mult`` on the config LR, and a ``weight_decay``; an optional no-decay rule
moves 1-D tensors, biases and position embeddings to weight decay 0 (DK-CLIP, METHODS §2).

Schedules are multiplicative factors on each group's initial LR, so per-group LRs keep
their ratios:

* ``multistep`` (per epoch): ``gamma ** (number of milestones <= epoch)`` (DFER-CLIP, EmoCLIP);
* ``step`` (per epoch): ``gamma ** (epoch // step_size)`` (HESP: x0.1 every 30 epochs);
* ``warmup_cosine`` (per optimizer step, DK-CLIP recipe): linear warm-up from 0 over
  ``warmup_epochs``, then ``min + (1 - min)(1 + cos(pi t / t_total)) / 2`` with ``t`` the
  absolute step, ``t_total`` the steps of the whole run and ``min = min_ratio`` (lr_min =
  lr * min_ratio), as the timm cosine scheduler the DK-CLIP code uses; ``min`` after t_total;
* ``none``: constant.
"""
from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

log = logging.getLogger(__name__)

OptimizerName = Literal["sgd", "adamw"]
SchedulerName = Literal["multistep", "step", "warmup_cosine", "none"]

_GROUP_KEYS = ("name", "params", "lr", "lr_mult", "weight_decay")


@dataclass
class OptimConfig:
    """Optimizer settings; defaults are HESP's (SPEC §7.5)."""

    optimizer: OptimizerName = "sgd"
    lr: float = 0.01
    """Base LR; a group's ``lr`` replaces it, its ``lr_mult`` multiplies it."""
    momentum: float = 0.9
    """SGD only."""
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW only (DK-CLIP: (0.9, 0.98))."""
    eps: float = 1e-8
    """AdamW only."""
    nesterov: bool = False
    """SGD only; needs momentum > 0."""
    no_decay: bool = False
    """Weight decay 0 for 1-D tensors, biases and position embeddings (DK-CLIP)."""
    no_decay_keys: tuple[str, ...] = ("pos_embed", "positional_embedding", "position_embedding",
                                      "pos_embedding")
    """Name fragments that mark position embeddings for the no-decay rule."""

    def __post_init__(self) -> None:
        if self.lr < 0 or self.weight_decay < 0:
            raise ValueError(f"lr ({self.lr}) and weight_decay ({self.weight_decay}) must be >= 0")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer 'sgd' with momentum > 0")


@dataclass
class SchedulerConfig:
    """LR schedule; ``name`` picks one, the other fields are its parameters."""

    name: SchedulerName = "none"
    milestones: list[int] = field(default_factory=list)
    """multistep: epochs at which the LR is multiplied by ``gamma``."""
    gamma: float = 0.1
    """multistep / step: the decay factor."""
    step_size: int = 30
    """step: decay every ``step_size`` epochs."""
    warmup_epochs: float = 0.0
    """warmup_cosine: linear warm-up length in epochs (DK-CLIP: 5)."""
    min_ratio: float = 0.01
    """warmup_cosine: lr_min = lr * min_ratio (DK-CLIP: 1/100)."""

    def __post_init__(self) -> None:
        if self.step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {self.step_size}")
        if self.warmup_epochs < 0 or not 0 <= self.min_ratio <= 1:
            raise ValueError(f"need warmup_epochs >= 0 and 0 <= min_ratio <= 1, "
                             f"got {self.warmup_epochs}, {self.min_ratio}")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing, got {self.milestones}")

    @property
    def interval(self) -> Literal["epoch", "step"]:
        """When the trainer steps the schedule: once per epoch or once per optimizer step."""
        return "step" if self.name == "warmup_cosine" else "epoch"


# -- optimizer -----------------------------------------------------------------------------

def _is_no_decay(name: str, p: torch.Tensor, keys: tuple[str, ...]) -> bool:
    return p.ndim <= 1 or name.endswith(".bias") or name == "bias" or any(k in name for k in keys)


def build_param_groups(method: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """Turn ``method.param_groups()`` into torch optimizer groups with resolved LR and decay."""
    names = {id(p): n for n, p in method.named_parameters()}
    raw = method.param_groups() if hasattr(method, "param_groups") else [
        {"name": "all", "params": [p for p in method.parameters()]}]
    seen: dict[int, str] = {}
    groups: list[dict[str, Any]] = []
    for i, g in enumerate(raw):
        gname = str(g.get("name", f"group{i}"))
        extra = {k: v for k, v in g.items() if k not in _GROUP_KEYS}
        params = [p for p in g["params"] if p.requires_grad]
        for p in params:
            if id(p) in seen:
                raise ValueError(f"parameter '{names.get(id(p), '?')}' is in groups "
                                 f"'{seen[id(p)]}' and '{gname}'")
            seen[id(p)] = gname
        if not params:
            log.debug("param group '%s' has no trainable parameters; skipped", gname)
            continue
        lr = float(g.get("lr", cfg.lr)) * float(g.get("lr_mult", 1.0))
        wd = float(g.get("weight_decay", cfg.weight_decay))
        if cfg.no_decay:
            decay = [p for p in params if not _is_no_decay(names.get(id(p), ""), p, cfg.no_decay_keys)]
            nodecay = [p for p in params if _is_no_decay(names.get(id(p), ""), p, cfg.no_decay_keys)]
        else:
            decay, nodecay = params, []
        if decay:
            groups.append({**extra, "name": gname, "params": decay, "lr": lr, "weight_decay": wd})
        if nodecay:
            groups.append({**extra, "name": f"{gname}.no_decay", "params": nodecay, "lr": lr,
                           "weight_decay": 0.0})
    left = [n for n, p in method.named_parameters() if p.requires_grad and id(p) not in seen]
    if left:
        log.info("%d trainable parameters are in no optimizer group (updated by method hooks?): %s",
                 len(left), ", ".join(left[:5]) + (" ..." if len(left) > 5 else ""))
    return groups


def build_optimizer(method: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the method's parameter groups (SPEC §4)."""
    groups = build_param_groups(method, cfg)
    if not groups:
        raise ValueError(f"method '{getattr(method, 'name', type(method).__name__)}' has no "
                         "trainable parameters to optimize")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer '{cfg.optimizer}' is not one of ['sgd', 'adamw']")


# -- schedules -----------------------------------------------------------------------------

class LRFactor:
    """LR multiplier as a function of the schedule counter (epochs or optimizer steps).

    A plain object of numbers, so ``LambdaLR.state_dict`` stores it as a dict and the
    checkpoint stays loadable with ``weights_only=True``.
    """

    def __init__(self, cfg: SchedulerConfig, epochs: int, steps_per_epoch: int) -> None:
        self.name = cfg.name
        self.milestones = [int(m) for m in cfg.milestones]
        self.gamma = float(cfg.gamma)
        self.step_size = int(cfg.step_size)
        self.min_ratio = float(cfg.min_ratio)
        self.warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))
        self.total_steps = int(epochs * steps_per_epoch)

    def __call__(self, t: int) -> float:
        if self.name == "multistep":
            return self.gamma ** bisect.bisect_right(self.milestones, t)
        if self.name == "step":
            return self.gamma ** (t // self.step_size)
        if self.name == "warmup_cosine":
            return self._warmup_cosine(t)
        return 1.0

    def _warmup_cosine(self, t: int) -> float:
        if t < self.warmup_steps:
            return t / self.warmup_steps
        if t >= self.total_steps:
            return self.min_ratio
        cos = 0.5 * (1.0 + math.cos(math.pi * t / self.total_steps))
        return self.min_ratio + (1.0 - self.min_ratio) * cos


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int,
                    steps_per_epoch: int) -> LambdaLR:
    """A ``LambdaLR`` driven by :class:`LRFactor`; step it every ``cfg.interval``."""
    if cfg.name not in ("multistep", "step", "warmup_cosine", "none"):
        raise ValueError(f"scheduler '{cfg.name}' is not one of "
                         "['multistep', 'step', 'warmup_cosine', 'none']")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    factor = LRFactor(cfg, epochs, steps_per_epoch)
    return LambdaLR(optimizer, [factor] * len(optimizer.param_groups))
