"""ovfer.engine.optim: parameter groups, no-decay rule, LR schedules."""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from ovfer.engine.optim import OptimConfig, SchedulerConfig, build_optimizer, build_param_groups, build_scheduler


class TwoPart(nn.Module):
    def __init__(self, groups: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.visual = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self._groups = groups

    def param_groups(self) -> list[dict[str, Any]]:
        if self._groups is not None:
            return self._groups
        return [{"name": "visual", "params": [*self.visual.parameters(), self.pos_embed], "lr": 1e-5},
                {"name": "head", "params": list(self.head.parameters()), "lr_mult": 10.0,
                 "weight_decay": 0.5},
                {"name": "frozen", "params": list(self.frozen.parameters())}]


def _lrs_over(sched: torch.optim.lr_scheduler.LRScheduler, opt: torch.optim.Optimizer, n: int) -> list[float]:
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_group_lr_lr_mult_and_weight_decay() -> None:
    opt = build_optimizer(TwoPart(), OptimConfig(lr=0.01, weight_decay=1e-4))
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"visual", "head"}  # the frozen group has nothing to train
    assert groups["visual"]["lr"] == pytest.approx(1e-5) and groups["visual"]["weight_decay"] == 1e-4
    assert groups["head"]["lr"] == pytest.approx(0.1) and groups["head"]["weight_decay"] == 0.5


def test_no_decay_rule_moves_1d_bias_and_position_embeddings() -> None:
    m = TwoPart()
    groups = {g["name"]: g for g in build_param_groups(m, OptimConfig(no_decay=True, weight_decay=1e-3))}
    nodecay = {id(p) for p in groups["visual.no_decay"]["params"]}
    assert nodecay == {id(m.visual.bias), id(m.pos_embed)}
    assert [id(p) for p in groups["visual"]["params"]] == [id(m.visual.weight)]
    assert groups["visual.no_decay"]["weight_decay"] == 0.0 and groups["visual"]["weight_decay"] == 1e-3
    assert groups["visual.no_decay"]["lr"] == groups["visual"]["lr"]


def test_adamw_and_duplicate_parameter_error() -> None:
    opt = build_optimizer(TwoPart(), OptimConfig(optimizer="adamw", lr=2e-5, betas=(0.9, 0.98)))
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["betas"] == (0.9, 0.98)
    m = TwoPart()
    m._groups = [{"name": "a", "params": [m.head.weight]}, {"name": "b", "params": [m.head.weight]}]
    with pytest.raises(ValueError, match="groups 'a' and 'b'"):
        build_optimizer(m, OptimConfig())
    with pytest.raises(ValueError, match="nesterov"):
        OptimConfig(optimizer="adamw", nesterov=True)


def test_warmup_cosine_hand_computed() -> None:
    """lr 1, warm-up 1 epoch of 10 steps, 5 epochs, lr_min = 0.01 (METHODS §2 recipe)."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "name": "all"}], lr=1.0)
    cfg = SchedulerConfig(name="warmup_cosine", warmup_epochs=1, min_ratio=0.01)
    assert cfg.interval == "step"
    lrs = _lrs_over(build_scheduler(opt, cfg, epochs=5, steps_per_epoch=10), opt, 61)
    assert lrs[0] == 0.0  # warm-up starts from 0
    assert lrs[5] == pytest.approx(0.5)
    assert lrs[10] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 10 / 50)))  # 0.905463
    assert lrs[10] == pytest.approx(0.9054634, abs=1e-6)
    assert lrs[30] == pytest.approx(0.3520366, abs=1e-6)
    assert lrs[50] == pytest.approx(0.01) and lrs[60] == pytest.approx(0.01)


def test_warmup_cosine_keeps_group_ratios() -> None:
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a], "lr": 2e-6}, {"params": [b], "lr": 2e-5}])
    sched = build_scheduler(opt, SchedulerConfig(name="warmup_cosine", warmup_epochs=5), 50, 4)
    for _ in range(37):
        opt.step()
        sched.step()
    ga, gb = opt.param_groups
    assert gb["lr"] == pytest.approx(10 * ga["lr"]) and 0 < ga["lr"] < 2e-6


def test_multistep_and_step() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    cfg = SchedulerConfig(name="multistep", milestones=[2, 4], gamma=0.1)
    assert cfg.interval == "epoch"
    lrs = _lrs_over(build_scheduler(opt, cfg, epochs=6, steps_per_epoch=7), opt, 6)
    assert lrs == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    opt = torch.optim.SGD([p], lr=0.01)
    lrs = _lrs_over(build_scheduler(opt, SchedulerConfig(name="step", step_size=3, gamma=0.5), 9, 1), opt, 7)
    assert lrs == pytest.approx([0.01] * 3 + [0.005] * 3 + [0.0025])
    with pytest.raises(ValueError, match="increasing"):
        SchedulerConfig(name="multistep", milestones=[4, 2])
