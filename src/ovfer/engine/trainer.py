"""The one training loop every method runs through (SPEC §4; METHODS §4 "Engine").

The loop knows nothing about any method: it calls ``method.training_step(batch)``, backs
up ``out["loss"]`` and logs every scalar in the returned dict. Method-specific update rules
live in the ``after_backward`` hook, called once per optimizer step after gradients are
unscaled and before clipping.

Exact resumption: a checkpoint taken at the end of an epoch holds weights, optimizer,
scheduler, scaler, counters and every RNG state (per rank). The DataLoader's shuffle
generator is re-seeded each epoch from ``(seed, epoch)``, so a run killed at any point and
resumed from ``last.pt`` reaches bitwise the same weights as an uninterrupted run on CPU.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from ovfer.config import config_diff, describe_diff, to_dict
from ovfer.engine.amp import Precision, autocast, make_grad_scaler, resolve_precision
from ovfer.engine.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from ovfer.engine.distributed import (all_gather_object, all_reduce_mean, barrier, is_main, local_rank,
                                      rank, world_size, wrap_for_training)
from ovfer.engine.logging import MetricLogger
from ovfer.engine.optim import OptimConfig, SchedulerConfig, build_optimizer, build_scheduler
from ovfer.engine.seed import (capture_rng_state, epoch_seed, restore_rng_state, seed_everything,
                               set_deterministic)

if TYPE_CHECKING:
    from ovfer.methods.base import Method

log = logging.getLogger(__name__)

EvalFn = Callable[["Method", int], Mapping[str, float]]
"""``eval_fn(method, epoch) -> {metric: value}``, called after every epoch (method in eval mode)."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/Inf and ``nan_policy`` is "stop" (SPEC §4)."""

    def __init__(self, message: str, *, epoch: int, step: int, iteration: int,
                 batch_ids: Sequence[Any]) -> None:
        super().__init__(message)
        self.epoch, self.step, self.iteration, self.batch_ids = epoch, step, iteration, list(batch_ids)


@dataclass
class TrainConfig:
    """Engine settings; defaults follow HESP (SPEC §7.5). Method recipes live in YAML."""

    epochs: int = 200
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(name="step", step_size=30))
    grad_clip: float | None = None
    """Max global gradient norm; None = no clipping."""
    accumulation: int = 1
    """Micro-batches per optimizer step; each loss is divided by the window's size."""
    precision: Precision = "fp32"
    nan_policy: Literal["stop", "skip"] = "stop"
    """NaN/Inf loss: raise NonFiniteLossError, or skip that micro-batch and count it."""
    log_every: int = 10
    """Optimizer steps between step-level log rows."""
    checkpoint_every: int = 1
    """Epochs between checkpoints (the last epoch is always saved)."""
    keep_last: int = 2
    """Numbered checkpoints kept beside last.pt / best.pt."""
    save_full_state: bool = False
    """Also store the full state dict (frozen weights included), not only trainable tensors."""
    best_key: str | None = None
    """Key of eval_fn's dict that picks best.pt; None = no best tracking."""
    best_mode: Literal["max", "min"] = "max"
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    deterministic: bool = False
    progress: bool = True
    """tqdm bar on rank 0 (also off when stderr is not a terminal)."""
    find_unused_parameters: bool = False
    """DDP: allow trainable parameters that get no gradient in some steps."""

    def __post_init__(self) -> None:
        for name in ("epochs", "accumulation", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")


@dataclass
class TrainResult:
    """What ``fit`` returns: last epoch's metrics, per-epoch history, checkpoint paths."""

    final_metrics: dict[str, float]
    history: list[dict[str, float]]
    checkpoints: dict[str, Path | None]
    epochs_completed: int
    global_step: int
    best: dict[str, Any] | None = None
    nonfinite_skipped: int = 0
    resumed_from: Path | None = None


class Callback:
    """Override any hook; ``trainer`` gives access to the method, optimizer and counters."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_step_end(self, trainer: Trainer, losses: Mapping[str, torch.Tensor]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: Mapping[str, float]) -> None: ...
    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None: ...


def resolve_device(device: str) -> torch.device:
    """"auto" -> the local CUDA device if there is one, else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available; use 'cpu' or 'auto'")
        return torch.device("cuda", local_rank() if world_size() > 1 else torch.cuda.current_device())
    if device != "cpu":
        raise ValueError(f"device '{device}' is not one of ['cpu', 'cuda', 'auto']")
    return torch.device("cpu")


def move_to_device(obj: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts, lists, tuples) moved to ``device``; other values unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=device.type == "cuda")
    if isinstance(obj, Mapping):
        return {k: move_to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(move_to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device) for v in obj)
    return obj


def arch_name(method: nn.Module) -> str | None:
    """The backbone architecture a method declares (``arch_name`` on it or its backbone)."""
    for obj in (method, getattr(method, "backbone", None), getattr(method, "cfg", None)):
        for attr in ("arch_name", "arch"):
            value = getattr(obj, attr, None)
            if isinstance(value, str):
                return value
    return None


def _add(acc: dict[str, torch.Tensor], values: Mapping[str, torch.Tensor]) -> None:
    for k, v in values.items():
        acc[k] = acc[k] + v if k in acc else v


def _batch_ids(batch: Any, limit: int = 32) -> list[Any]:
    ids = batch.get("id") if isinstance(batch, Mapping) else None
    if ids is None:
        return []
    if isinstance(ids, torch.Tensor):
        ids = ids.reshape(-1).tolist()
    elif not isinstance(ids, (list, tuple)):
        ids = [ids]
    return list(ids)[:limit]


class Trainer:
    """Runs ``cfg.epochs`` epochs of ``method`` over ``train_loader`` into ``out_dir``."""

    def __init__(self, method: Method, train_loader: DataLoader, cfg: TrainConfig,
                 out_dir: str | Path, eval_fn: EvalFn | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.method, self.loader, self.cfg = method, train_loader, cfg
        self.out_dir = Path(out_dir)
        self.eval_fn, self.callbacks = eval_fn, list(callbacks)
        self.device = resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device.type)
        method.to(self.device)
        self.model = wrap_for_training(method, self.device, cfg.find_unused_parameters)
        self.optimizer = build_optimizer(method, cfg.optim)
        self.steps_per_epoch = self._steps_per_epoch()
        self.scheduler = build_scheduler(self.optimizer, cfg.scheduler, cfg.epochs, self.steps_per_epoch)
        self.scaler = make_grad_scaler(self.precision, self.device.type)
        self.ckpt = CheckpointManager(self.out_dir, cfg.keep_last)
        self.epoch = 0  # completed epochs
        self.global_step = 0  # optimizer steps
        self.history: list[dict[str, float]] = []
        self.best: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}  # stored in every checkpoint (e.g. a calibrated threshold)
        self.nonfinite_skipped = 0
        self.logger: MetricLogger | None = None
        self._log_sums: dict[str, torch.Tensor] = {}
        self._log_count = 0
        self._window_synced = False  # DDP reduced this window's gradients in backward
        self._pbar: Any = None

    def _steps_per_epoch(self) -> int:
        try:
            n = len(self.loader)
        except TypeError:  # iterable dataset without a length: warm-up counted in guessed steps
            log.warning("train loader has no length; per-step schedules assume 1 step per epoch")
            return 1
        return max(1, math.ceil(n / self.cfg.accumulation))

    # -- fit -------------------------------------------------------------------------------
    def fit(self, resume: bool | str | Path = "auto") -> TrainResult:
        """Train to ``cfg.epochs``; ``resume``: "auto" (last.pt if present), True, False or a path."""
        path = self._resume_path(resume)
        if path is None:
            seed_everything(self.cfg.seed + rank(), self.cfg.deterministic)
        else:
            if self.cfg.deterministic:
                set_deterministic()
            self._restore(path)
        self.logger = MetricLogger(self.out_dir, enabled=is_main(),
                                   purge_step=self.global_step if path else -1)
        try:
            for cb in self.callbacks:
                cb.on_fit_start(self)
            while self.epoch < self.cfg.epochs:
                self._run_epoch(self.epoch)
        finally:
            self.logger.close()
        result = self._result(path)
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        return result

    def _resume_path(self, resume: bool | str | Path) -> Path | None:
        if resume is False:
            if self.ckpt.last_path.exists() and is_main():
                log.warning("resume=False: starting fresh; checkpoints in %s will be overwritten", self.out_dir)
            return None
        if resume is True or resume == "auto":
            if self.ckpt.last_path.exists():
                return self.ckpt.last_path
            if resume is True:
                raise CheckpointError(f"resume=True but there is no {self.ckpt.last_path}")
            return None
        path = Path(resume)
        if not path.exists():
            raise CheckpointError(f"resume checkpoint not found: {path}")
        return path

    def _result(self, resumed_from: Path | None) -> TrainResult:
        best = self.ckpt.best_path if self.best is not None and self.ckpt.best_path.exists() else None
        last = self.ckpt.last_path if self.ckpt.last_path.exists() else None
        return TrainResult(final_metrics=dict(self.history[-1]) if self.history else {},
                           history=[dict(h) for h in self.history],
                           checkpoints={"last": last, "best": best}, epochs_completed=self.epoch,
                           global_step=self.global_step, best=self.best,
                           nonfinite_skipped=self.nonfinite_skipped, resumed_from=resumed_from)

    # -- one epoch -------------------------------------------------------------------------
    def _run_epoch(self, epoch: int) -> None:
        self.method.train()
        self.method.on_epoch_start(epoch)
        self._set_epoch(epoch)
        for cb in self.callbacks:
            cb.on_epoch_start(self, epoch)
        train = self._train_epoch(epoch)
        lrs = self._lrs()  # the LRs this epoch ended with
        if self.cfg.scheduler.interval == "epoch":
            self.scheduler.step()
        evaluated = self._evaluate(epoch)
        self.epoch = epoch + 1
        record = {"epoch": float(self.epoch), **train, **evaluated, **lrs}
        self.history.append(record)
        is_best = self._update_best(evaluated)
        if world_size() > 1:  # rank-local eval metrics must not make ranks disagree on saving
            is_best = bool(all_reduce_mean(torch.tensor(float(is_best))).item() > 0)
        if self.logger is not None:
            self.logger.log({k: v for k, v in record.items() if k != "epoch"}, self.global_step, self.epoch)
        due = self.epoch % self.cfg.checkpoint_every == 0 or self.epoch == self.cfg.epochs
        if due or is_best:
            self._save(is_best)
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, record)

    def _set_epoch(self, epoch: int) -> None:
        """Epoch-dependent data randomness from (seed, epoch) alone, never from history."""
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        dataset = getattr(self.loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        for gen in self._generators().values():
            gen.manual_seed(epoch_seed(self.cfg.seed, epoch, rank()))

    def _generators(self) -> dict[str, torch.Generator]:
        gens: dict[str, torch.Generator] = {}
        if isinstance(getattr(self.loader, "generator", None), torch.Generator):
            gens["loader"] = self.loader.generator
        sgen = getattr(getattr(self.loader, "sampler", None), "generator", None)
        if isinstance(sgen, torch.Generator) and sgen is not gens.get("loader"):
            gens["sampler"] = sgen
        return gens

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """Micro-batches in windows of ``accumulation``; the last, shorter window still steps."""
        accum = self.cfg.accumulation
        try:
            n: int | None = len(self.loader)
        except TypeError:
            n = None
        epoch_sums: dict[str, torch.Tensor] = {}
        epoch_count = 0
        win_sums: dict[str, torch.Tensor] = {}
        win_count = pos = 0
        self.method.zero_grad(set_to_none=True)
        self._log_sums.clear()
        self._log_count = 0
        for i, batch in enumerate(self._progress(epoch)):
            window = accum if n is None else min(accum, n - (i // accum) * accum)
            closes = pos == window - 1
            losses = self._micro_step(batch, epoch, i, window, sync=closes)
            if losses is not None:
                win_count += 1
                _add(win_sums, losses)
            pos += 1
            if closes:
                _add(epoch_sums, win_sums)
                epoch_count += win_count
                self._optimizer_step(win_count > 0, {k: v / max(win_count, 1) for k, v in win_sums.items()})
                win_sums, win_count, pos = {}, 0, 0
        if pos:  # loader without a length: the last window closes at the end
            _add(epoch_sums, win_sums)
            epoch_count += win_count
            self._optimizer_step(win_count > 0, {k: v / max(win_count, 1) for k, v in win_sums.items()})
        return self._epoch_means(epoch_sums, epoch_count)

    def _progress(self, epoch: int) -> Any:
        self._pbar = None
        show = self.cfg.progress and is_main() and sys.stderr.isatty()
        if not show:
            return self.loader
        from tqdm.auto import tqdm

        self._pbar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", leave=False,
                          dynamic_ncols=True)
        return self._pbar

    def _micro_step(self, batch: Any, epoch: int, it: int, window: int,
                    sync: bool) -> dict[str, torch.Tensor] | None:
        batch = move_to_device(batch, self.device)
        no_sync = getattr(self.model, "no_sync", None)
        ctx = no_sync() if (no_sync is not None and not sync) else contextlib.nullcontext()
        with ctx:
            with autocast(self.precision, self.device.type):
                out = self.model(batch)
            if not isinstance(out, Mapping) or "loss" not in out:
                raise TypeError(f"{type(self.method).__name__}.training_step must return a dict with "
                                f"'loss', got {type(out).__name__}")
            loss = out["loss"]
            if not self._finite_everywhere(loss):
                self._nonfinite(batch, epoch, it)
                return None
            self.scaler.scale(loss.float() / window).backward()
        self._window_synced = self._window_synced or sync
        return {k: v.detach().double() for k, v in out.items()
                if isinstance(v, torch.Tensor) and v.numel() == 1}

    def _finite_everywhere(self, loss: torch.Tensor) -> bool:
        ok = torch.isfinite(loss.detach()).all().to(torch.float64)
        if world_size() > 1:  # every rank must agree, or DDP's backward would hang
            ok = all_reduce_mean(ok)
        return bool(ok.item() == 1.0)

    def _nonfinite(self, batch: Any, epoch: int, it: int) -> None:
        ids = _batch_ids(batch)
        where = (f"epoch {epoch + 1}, iteration {it} of the epoch, optimizer step {self.global_step}, "
                 f"batch ids {ids if ids else '(batch has no id)'}")
        if self.cfg.nan_policy == "skip":
            self.nonfinite_skipped += 1
            log.warning("non-finite loss skipped (%d so far) at %s", self.nonfinite_skipped, where)
            if self.logger is not None:
                self.logger.log({"train/nonfinite_skipped": self.nonfinite_skipped}, self.global_step, epoch + 1)
            return
        dump = self.out_dir / "nonfinite.pt"
        if is_main():
            try:
                save_checkpoint(dump, self._state(gather_rng=False))
            except Exception as e:  # noqa: BLE001 - the error below matters more than the dump
                log.error("could not write %s: %s", dump, e)
        last = self.ckpt.last_path
        raise NonFiniteLossError(
            f"non-finite loss at {where}. The state that produced it is in {dump}; the last good "
            f"checkpoint {last if last.exists() else '(none yet)'} is untouched. "
            "Set nan_policy='skip' to skip such steps.",
            epoch=epoch, step=self.global_step, iteration=it, batch_ids=ids)

    def _optimizer_step(self, has_grad: bool, losses: Mapping[str, torch.Tensor]) -> None:
        if has_grad:
            if world_size() > 1 and not self._window_synced:
                self._reduce_gradients()  # the window's syncing micro-batch was skipped
            self.scaler.unscale_(self.optimizer)
            self.method.after_backward()
            if self.cfg.grad_clip is not None:
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.method.zero_grad(set_to_none=True)
        self._window_synced = False
        self.global_step += 1
        if self.cfg.scheduler.interval == "step":
            self.scheduler.step()
        if losses:
            _add(self._log_sums, {k: v.cpu() for k, v in losses.items()})
            self._log_count += 1
        if self.global_step % self.cfg.log_every == 0:
            self._log_steps()
        for cb in self.callbacks:
            cb.on_step_end(self, losses)

    def _reduce_gradients(self) -> None:
        """Average gradients over ranks by hand (DDP only reduces in a synced backward)."""
        for p in self.method.parameters():
            if p.requires_grad:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad.copy_(all_reduce_mean(p.grad))

    def _log_steps(self) -> None:
        """Step-level row: mean losses since the last row (averaged over ranks) and the LRs."""
        keys = sorted(self._log_sums)
        if keys and self._log_count:
            means = torch.stack([self._log_sums[k] for k in keys]) / self._log_count
            means = all_reduce_mean(means)
            row = {f"train/{k}": float(v) for k, v in zip(keys, means)}
            if self.logger is not None:
                self.logger.log({**row, **self._lrs()}, self.global_step, self.epoch + 1)
            if self._pbar is not None:
                self._pbar.set_postfix(loss=f"{row.get('train/loss', float('nan')):.4f}")
        self._log_sums.clear()
        self._log_count = 0

    def _epoch_means(self, sums: Mapping[str, torch.Tensor], count: int) -> dict[str, float]:
        keys = sorted(sums)
        if not keys:
            return {}
        means = all_reduce_mean(torch.stack([sums[k].cpu() for k in keys]) / max(count, 1))
        return {f"train/{k}": float(v) for k, v in zip(keys, means)}

    def _lrs(self) -> dict[str, float]:
        return {f"lr/{g.get('name', i)}": float(g["lr"]) for i, g in enumerate(self.optimizer.param_groups)}

    # -- evaluation and best ---------------------------------------------------------------
    def _evaluate(self, epoch: int) -> dict[str, float]:
        if self.eval_fn is None:
            return {}
        self.method.eval()
        metrics = self.eval_fn(self.method, epoch)
        return {f"eval/{k}": float(v) for k, v in (metrics or {}).items()}

    def _update_best(self, evaluated: Mapping[str, float]) -> bool:
        key = self.cfg.best_key
        if key is None or not evaluated:
            return False
        if f"eval/{key}" not in evaluated:
            raise KeyError(f"best_key '{key}' is not among eval_fn's keys "
                           f"{sorted(k.removeprefix('eval/') for k in evaluated)}")
        value = evaluated[f"eval/{key}"]
        old = None if self.best is None else self.best["value"]
        better = old is None or (value > old if self.cfg.best_mode == "max" else value < old)
        if better:
            self.best = {"epoch": self.epoch, "key": key, "value": value, "mode": self.cfg.best_mode}
        return better

    # -- checkpoint state ------------------------------------------------------------------
    def _state(self, gather_rng: bool = True) -> dict[str, Any]:
        rng = capture_rng_state(self._generators())
        per_rank = all_gather_object(rng) if gather_rng else [rng]
        sched = self.scheduler.state_dict()
        sched["lr_lambdas"] = [None] * len(sched.get("lr_lambdas", []))  # the config rebuilds them
        state = {
            "model": self.method.trainable_state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": sched,
            "scaler": self.scaler.state_dict(), "epoch": self.epoch, "global_step": self.global_step,
            "rng": per_rank, "config": json.dumps({"train": to_dict(self.cfg), "method": self.method.config_dict()},
                                                  default=str, sort_keys=True),
            "classnames": list(getattr(self.method, "classnames", ()) or ()),
            "method": getattr(self.method, "name", type(self.method).__name__),
            "arch": arch_name(self.method), "extra": dict(self.extra), "history": self.history,
            "best": self.best, "nonfinite_skipped": self.nonfinite_skipped,
        }
        if self.cfg.save_full_state:
            state["model_full"] = self.method.state_dict()
        return state

    def _save(self, is_best: bool) -> None:
        state = self._state()  # collective when distributed: every rank builds it
        if is_main():
            self.ckpt.save(state, self.epoch, is_best=is_best)
        barrier()

    def _restore(self, path: Path) -> None:
        classes = list(getattr(self.method, "classnames", ()) or ()) or None
        st = load_checkpoint(path, expected_method=getattr(self.method, "name", type(self.method).__name__),
                             expected_classes=classes, expected_arch=arch_name(self.method))
        stored = st["config"].get("method") if isinstance(st.get("config"), dict) else None
        diff = config_diff(stored, self.method.config_dict(), ("backbone.cache_dir",), paths=True) if stored else {}
        if diff:  # same shapes, other model: resuming would train a mix of the two
            raise CheckpointError(f"{path} was written by a run with another method config ({describe_diff(diff)}); "
                                  "resume it with that config, or use another work_dir (or a `variant`) for this one")
        weights = st.get("model_full") or st["model"]
        missing, unexpected = self.method.load_state_dict(weights, strict=False)
        trainable = {n for n, p in self.method.named_parameters() if p.requires_grad}
        if unexpected or trainable & set(missing):
            raise CheckpointError(f"{path}: weights do not fit the method (unexpected "
                                  f"{sorted(unexpected)[:5]}, missing {sorted(trainable & set(missing))[:5]})")
        try:
            self.optimizer.load_state_dict(st["optimizer"])
            self.scheduler.load_state_dict(st["scheduler"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: optimizer/scheduler state does not fit ({e})") from None
        if st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        self.epoch, self.global_step = int(st["epoch"]), int(st["global_step"])
        self.history = list(st.get("history") or [])
        self.best, self.extra = st.get("best"), dict(st.get("extra") or {})
        self.nonfinite_skipped = int(st.get("nonfinite_skipped", 0))
        self._restore_rng(st.get("rng") or [], path)
        log.info("resumed from %s at epoch %d (step %d)", path, self.epoch, self.global_step)

    def _restore_rng(self, per_rank: list[Any], path: Path) -> None:
        if len(per_rank) == world_size():
            restore_rng_state(per_rank[rank()], self._generators())
            return
        log.warning("%s holds RNG states for %d ranks, this run has %d; reseeding from (seed, epoch)",
                    path, len(per_rank), world_size())
        seed_everything(epoch_seed(self.cfg.seed, self.epoch, rank()))
