"""Training engine (SPEC §4): one loop for every method, with AMP, accumulation, NaN guard,
atomic resumable checkpoints, torchrun DDP and TensorBoard/CSV/JSON logs."""
from ovfer.engine.amp import Precision, autocast, make_grad_scaler, resolve_precision
from ovfer.engine.checkpoint import (CheckpointError, CheckpointManager, load_checkpoint, load_safetensors,
                                     save_checkpoint, save_safetensors)
from ovfer.engine.distributed import (all_gather_tensors, barrier, cleanup_distributed, gather_numpy,
                                      init_distributed, is_main, make_loader, rank, world_size)
from ovfer.engine.logging import MetricLogger, setup_logging
from ovfer.engine.optim import OptimConfig, SchedulerConfig, build_optimizer, build_scheduler
from ovfer.engine.seed import (capture_rng_state, make_generator, restore_rng_state, seed_everything,
                               worker_init_fn)
from ovfer.engine.trainer import (Callback, NonFiniteLossError, Trainer, TrainConfig, TrainResult,
                                  move_to_device)

__all__ = [
    "Callback", "CheckpointError", "CheckpointManager", "MetricLogger", "NonFiniteLossError",
    "OptimConfig", "Precision", "SchedulerConfig", "TrainConfig", "TrainResult", "Trainer",
    "all_gather_tensors", "autocast", "barrier", "build_optimizer", "build_scheduler",
    "capture_rng_state", "cleanup_distributed", "gather_numpy", "init_distributed", "is_main",
    "load_checkpoint", "load_safetensors", "make_generator", "make_grad_scaler", "make_loader",
    "move_to_device", "rank", "resolve_precision", "restore_rng_state", "save_checkpoint",
    "save_safetensors", "seed_everything", "setup_logging", "worker_init_fn", "world_size",
]
