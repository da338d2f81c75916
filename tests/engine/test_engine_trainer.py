"""ovfer.engine.trainer: exact resume, NaN policy, accumulation, AMP, logs, best tracking."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from _engine_toys import NaNMethod, ToyConfig, ToyDataset, ToyMethod, weights
from torch.utils.data import DataLoader

from ovfer.config import ConfigError, from_dict, load_yaml, save_yaml
from ovfer.engine import (Callback, CheckpointError, NonFiniteLossError, OptimConfig, SchedulerConfig,
                          TrainConfig, Trainer, autocast, load_checkpoint, make_loader, resolve_precision)


class Killed(Exception):
    """Stands in for SIGKILL: the run stops wherever the callback raises."""


class KillAt(Callback):
    def __init__(self, epoch_end: int | None = None, step: int | None = None) -> None:
        self.epoch_end, self.step = epoch_end, step

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: Any) -> None:
        if epoch == self.epoch_end:
            raise Killed

    def on_step_end(self, trainer: Trainer, losses: Any) -> None:
        if trainer.global_step == self.step:
            raise Killed


def _cfg(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(epochs=3, optim=OptimConfig(lr=0.05, momentum=0.9, weight_decay=1e-3),
                                scheduler=SchedulerConfig(name="multistep", milestones=[2]),
                                accumulation=2, grad_clip=1.0, log_every=2, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _loader(kind: str, workers: int = 0) -> DataLoader:
    ds = ToyDataset(n=22)
    if kind == "make_loader":
        return make_loader(ds, batch_size=4, train=True, seed=7, workers=workers)
    return DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers)  # global-RNG shuffle


def _run(out: Path, kind: str, workers: int = 0, callbacks: tuple[Callback, ...] = (),
         **cfg: Any) -> tuple[ToyMethod, Any]:
    torch.manual_seed(1234)  # model init; a resumed run re-creates the same architecture
    method = ToyMethod()
    trainer = Trainer(method, _loader(kind, workers), _cfg(**cfg), out, callbacks=callbacks)
    return method, trainer.fit()


@pytest.mark.parametrize("kind,workers,kill", [
    ("make_loader", 0, {"epoch_end": 0}),
    ("make_loader", 0, {"step": 5}),  # killed mid-epoch 2: resumes from the end of epoch 1
    ("plain", 0, {"epoch_end": 1}),
    ("make_loader", 2, {"epoch_end": 0}),
])
def test_killed_run_resumes_bitwise(tmp_path: Path, kind: str, workers: int, kill: dict[str, int]) -> None:
    ref, ref_result = _run(tmp_path / "ref", kind, workers)
    with pytest.raises(Killed):
        _run(tmp_path / "run", kind, workers, callbacks=(KillAt(**kill),))
    resumed, result = _run(tmp_path / "run", kind, workers)
    assert result.resumed_from == tmp_path / "run" / "last.pt"
    for k, v in weights(ref).items():
        assert torch.equal(v, weights(resumed)[k]), k
    assert result.history == ref_result.history  # same losses epoch by epoch
    assert result.global_step == ref_result.global_step == 3 * math.ceil(6 / 2)


def test_resume_refuses_other_classes(tmp_path: Path) -> None:
    _run(tmp_path, "make_loader", epochs=1)
    method = ToyMethod(classes=("anger", "fear", "sadness", "surprise"))
    trainer = Trainer(method, _loader("make_loader"), _cfg(epochs=2), tmp_path)
    with pytest.raises(CheckpointError, match=r"has 3 classes.*expected 4 classes"):
        trainer.fit()


def test_resume_refuses_other_method_config(tmp_path: Path) -> None:
    # same shapes, other function (dropout): continuing would train a mix of two models
    _run(tmp_path, "make_loader", epochs=1)
    torch.manual_seed(1234)
    method = ToyMethod(ToyConfig(dropout=0.5))
    trainer = Trainer(method, _loader("make_loader"), _cfg(epochs=2), tmp_path)
    with pytest.raises(CheckpointError, match=r"another method config \(dropout: 0\.3 -> 0\.5\)"):
        trainer.fit()
    resumed, result = _run(tmp_path, "make_loader", epochs=2)  # the same config still resumes
    assert result.resumed_from == tmp_path / "last.pt"


def test_nan_stop_names_step_and_batch_ids(tmp_path: Path) -> None:
    method = NaNMethod(bad_call=7)  # 6 batches per epoch: epoch 2, iteration 1
    loader = DataLoader(ToyDataset(n=24), batch_size=4, shuffle=False)
    trainer = Trainer(method, loader, _cfg(accumulation=1), tmp_path)
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit()
    msg = str(err.value)
    assert "epoch 2" in msg and "iteration 1" in msg and "optimizer step 7" in msg
    assert "clip004" in msg and "clip007" in msg
    assert err.value.batch_ids == ["clip004", "clip005", "clip006", "clip007"]
    last = load_checkpoint(tmp_path / "last.pt")  # the last good checkpoint is intact
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["model"].values())
    assert (tmp_path / "nonfinite.pt").exists()


def test_nan_skip_counts_and_continues(tmp_path: Path) -> None:
    method = NaNMethod(bad_call=2)
    loader = DataLoader(ToyDataset(n=24), batch_size=4, shuffle=False)
    result = Trainer(method, loader, _cfg(nan_policy="skip", accumulation=1), tmp_path).fit()
    assert result.nonfinite_skipped == 1 and result.epochs_completed == 3
    assert all(torch.isfinite(v).all() for v in method.state_dict().values())
    assert math.isfinite(result.final_metrics["train/loss"])
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("train/nonfinite_skipped") == 1 for r in rows)


def _one_epoch(out: Path, batch_size: int, accumulation: int, n: int = 8) -> tuple[ToyMethod, Any]:
    torch.manual_seed(0)
    method = ToyMethod(ToyConfig(dropout=0.0))
    loader = DataLoader(ToyDataset(n=n), batch_size=batch_size, shuffle=False)
    cfg = _cfg(epochs=1, accumulation=accumulation, grad_clip=None, scheduler=SchedulerConfig(),
               optim=OptimConfig(lr=0.5, momentum=0.0, weight_decay=0.0))
    return method, Trainer(method, loader, cfg, out).fit()


def test_accumulation_equals_one_big_batch(tmp_path: Path) -> None:
    small, r_small = _one_epoch(tmp_path / "a", batch_size=2, accumulation=4)
    big, r_big = _one_epoch(tmp_path / "b", batch_size=8, accumulation=1)
    assert r_small.global_step == r_big.global_step == 1
    assert small.after_backward_calls == 1  # once per optimizer step, not per micro-batch
    for k, v in weights(big).items():
        torch.testing.assert_close(weights(small)[k], v, atol=1e-6, rtol=1e-5)
    assert not torch.equal(weights(big)["head.0.weight"], _one_epoch(tmp_path / "c", 8, 1, n=6)[0].head[0].weight)


def test_leftover_micro_batches_still_step(tmp_path: Path) -> None:
    method, result = _one_epoch(tmp_path, batch_size=2, accumulation=4, n=10)  # 5 micro-batches
    assert result.global_step == 2 and method.after_backward_calls == 2


def test_bf16_autocast_on_cpu_trains(tmp_path: Path) -> None:
    with autocast("bf16", "cpu"):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.bfloat16
    torch.manual_seed(0)
    method = ToyMethod()
    loader = DataLoader(ToyDataset(n=8), batch_size=4)
    result = Trainer(method, loader, _cfg(epochs=1, precision="bf16"), tmp_path).fit()
    assert math.isfinite(result.final_metrics["train/loss"])
    assert all(p.dtype == torch.float32 for p in method.parameters())  # fp32 master weights


def test_fp16_on_cpu_falls_back_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ovfer"):
        assert resolve_precision("fp16", "cpu") == "fp32"
    assert "fp16 needs CUDA" in caplog.text


def test_logs_eval_and_best(tmp_path: Path) -> None:
    scores = iter([0.2, 0.9, 0.5])

    def eval_fn(method: torch.nn.Module, epoch: int) -> dict[str, float]:
        assert not method.training
        return {"uar": next(scores)}

    torch.manual_seed(0)
    trainer = Trainer(ToyMethod(), _loader("make_loader"), _cfg(best_key="uar", keep_last=1, log_every=1),
                      tmp_path, eval_fn=eval_fn)
    result = trainer.fit()
    assert result.best == {"epoch": 2, "key": "uar", "value": 0.9, "mode": "max"}
    assert load_checkpoint(result.checkpoints["best"])["epoch"] == 2
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pt")) == ["epoch_0003.pt"]
    assert [h["eval/uar"] for h in result.history] == [0.2, 0.9, 0.5]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "epoch", "train/loss", "train/ce", "train/reg", "lr/head", "eval/uar"} <= set(header)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows and rows[-1]["eval/uar"] == 0.5 and rows[-1]["step"] == result.global_step


def test_train_config_yaml_roundtrip(tmp_path: Path) -> None:
    cfg = _cfg(precision="bf16", grad_clip=None, scheduler=SchedulerConfig(name="warmup_cosine", warmup_epochs=5),
               optim=OptimConfig(optimizer="adamw", betas=(0.9, 0.98), no_decay=True))
    save_yaml(cfg, tmp_path / "train.yaml")
    assert load_yaml(TrainConfig, tmp_path / "train.yaml", overrides=["optim.lr=0.002"]) == \
        dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=0.002))
    with pytest.raises(ConfigError, match="fp64"):
        from_dict(TrainConfig, {"precision": "fp64"})
