"""What every protocol shares: loaders built from the method's data preset, one
evaluation loop, threshold calibration, and training with model selection."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ovfer.backbones.clip import BackboneConfig
from ovfer.data.records import VideoRecord
from ovfer.engine.amp import autocast, resolve_precision
from ovfer.engine.distributed import gather_numpy, make_loader
from ovfer.engine.trainer import Trainer, TrainConfig, move_to_device, resolve_device
from ovfer.protocols.data_source import DataSource
from ovfer.protocols.results import Selection, check_variant

log = logging.getLogger(__name__)



@dataclass
class LoaderConfig:
    """Batching and workers (the method's preset decides frames, sampler and transforms)."""

    batch_size: int = 64
    eval_batch_size: int = 64
    workers: int = 0
    drop_last: bool = False


@dataclass
class RunConfig:
    """What every protocol run names: the method, its backbone, data, training, loading,
    model selection and where results go. Each protocol's config adds its own fields."""

    method: str = "hesp"
    method_overrides: list[str] = field(default_factory=list)
    """Dotted overrides of the method config, e.g. ``["n_ctx=8", "fuse=probs"]``."""
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataSource = field(default_factory=DataSource)
    train: TrainConfig = field(default_factory=TrainConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    selection: Selection = "last"
    variant: str = ""
    """Label of an option variant (e.g. ``frame_mean``): its results and checkpoints go to
    ``<method>~<label>`` folders and tables show ``method [label]``, beside the plain run's."""
    val_fraction: float = 0.1
    """Held-out share of (known) training clips for ``best_on_val``."""
    eval_precision: str = "fp32"
    results_dir: str = "results"
    work_dir: str = "runs/protocol"
    save_scores: bool = True

    def __post_init__(self) -> None:
        check_variant(self.variant)


@dataclass
class EvalOutputs:
    """Everything an evaluation pass produces, as numpy arrays in dataset order."""

    logits: np.ndarray  # (N, K)
    open_score: np.ndarray  # (N,)
    labels: np.ndarray  # (N,), -1 for clips outside the class list
    ids: list[str]
    features: np.ndarray | None = None  # (N, D)
    seconds: float = 0.0
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """Logits (N, K) of every head the method declares in ``Method.heads`` (DK-CLIP's global/local)."""

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


def make_dataset(records: Sequence[VideoRecord], method, train: bool, seed: int = 0, cache=None):
    """A ``VideoClipDataset`` configured from ``method.data_preset`` (STYLE pattern 5)."""
    from ovfer.data.dataset import VideoClipDataset
    from ovfer.data.sampling import build_sampler
    from ovfer.data.transforms import build_transform

    p = method.data_preset
    sampler = build_sampler(p.sampler, num_frames=p.num_frames, **({"short": p.short_policy} if p.sampler == "tsn" else {}))
    transform = build_transform(p.train_transform if train else p.test_transform, p.image_size)
    return VideoClipDataset(list(records), method.classnames, p.num_frames, sampler, transform, train=train,
                            seed=seed, cache=cache)


def _collate():
    from ovfer.data.dataset import collate

    return collate


def declared_heads(method) -> tuple[str, ...]:
    """The extra head names a method declares (``Method.heads``); must be a tuple of names."""
    heads = getattr(type(method), "heads", ())
    if not (isinstance(heads, (tuple, list)) and all(isinstance(h, str) for h in heads)):
        raise TypeError(f"{type(method).__name__}.heads must be a tuple of head names, got {heads!r}")
    return tuple(heads)


def evaluate(method, records: Sequence[VideoRecord], loader_cfg: LoaderConfig = LoaderConfig(),
             precision: str = "fp32", device: str = "auto", keep_features: bool = True,
             cache=None) -> EvalOutputs:
    """Score ``records`` with ``method`` (inference mode, batched, optional bf16 autocast).

    Besides ``logits``, the logits of each head named in ``method.heads`` are collected, so
    protocols can score every head of a multi-head method from one pass.
    """
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev.type)
    method.to(dev).eval()
    method.prepare_eval()
    ds = make_dataset(records, method, train=False, cache=cache)
    loader = make_loader(ds, loader_cfg.eval_batch_size, train=False, workers=loader_cfg.workers,
                         collate_fn=_collate())
    logits, scores, labels, feats, ids = [], [], [], [], []
    heads: dict[str, list[torch.Tensor]] = {h: [] for h in declared_heads(method)}
    t0 = time.perf_counter()
    with torch.inference_mode(), autocast(prec, dev.type):
        for batch in loader:
            batch = move_to_device(batch, dev)
            out = method(batch["video"], batch.get("id"))
            logits.append(out.logits.float().cpu())
            scores.append(out.open_score.float().cpu())
            labels.append(batch["label"].cpu())
            if keep_features and out.features is not None:
                feats.append(out.features.float().cpu())
            for h, acc in heads.items():
                if h not in out.extras:
                    raise KeyError(f"method '{method.name}' declares head '{h}' but its forward returned "
                                   f"extras {sorted(out.extras)}")
                acc.append(out.extras[h].float().cpu())
            ids.extend(batch.get("id", []))
    seconds = time.perf_counter() - t0
    k = len(method.classnames)
    cat = lambda xs, shape: torch.cat(xs).numpy() if xs else np.zeros(shape, np.float32)  # noqa: E731
    res = EvalOutputs(cat(logits, (0, k)), cat(scores, (0,)), cat(labels, (0,)).astype(np.int64), ids,
                      cat(feats, (0, 0)) if feats else None, seconds)
    res.logits, res.open_score, res.labels = (gather_numpy(res.logits), gather_numpy(res.open_score),
                                              gather_numpy(res.labels))
    if res.features is not None:
        res.features = gather_numpy(res.features)
    res.extras = {h: gather_numpy(cat(acc, (0, k))) for h, acc in heads.items()}
    skipped = getattr(ds, "skipped", None)
    if skipped:
        log.warning("evaluation skipped unreadable clips: %s", skipped)
    return res


def calibrate_threshold(open_scores: np.ndarray, keep: float = 0.95) -> float:
    """The open score that a fraction ``keep`` of known training clips exceed (SPEC §7.7)."""
    if open_scores.size == 0:
        raise ValueError("cannot calibrate a threshold on zero clips")
    return float(np.quantile(open_scores, 1.0 - keep))


def stratified_holdout(records: Sequence[VideoRecord], fraction: float, seed: int
                       ) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Split training records into (train, validation), per class, seeded; every class with
    two or more clips keeps at least one for validation (an empty part would make selection meaningless)."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[VideoRecord]] = {}
    for r in records:
        by_class.setdefault(r.class_name, []).append(r)
    train, val = [], []
    for name in sorted(by_class):
        rs = by_class[name]
        order = rng.permutation(len(rs))
        n_val = max(1, int(round(fraction * len(rs)))) if len(rs) > 1 and fraction > 0 else 0
        val += [rs[i] for i in order[:n_val]]
        train += [rs[i] for i in order[n_val:]]
    return train, val


@dataclass
class FitOutcome:
    epochs: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    selected_epoch: int | None = None
    checkpoint: Path | None = None


def fit(method, train_records: Sequence[VideoRecord], train_cfg: TrainConfig, loader_cfg: LoaderConfig,
        out_dir: Path, eval_fn: Callable[[Any, int], dict[str, float]] | None = None,
        best_key: str | None = None, extra: dict[str, Any] | None = None) -> FitOutcome:
    """Train ``method`` on records (resumable in ``out_dir``); with ``best_key`` reload best.pt."""
    t0 = time.perf_counter()
    if not method.trainable:
        return FitOutcome(0, 0.0)
    ds = make_dataset(train_records, method, train=True, seed=train_cfg.seed)
    loader = make_loader(ds, loader_cfg.batch_size, train=True, seed=train_cfg.seed, workers=loader_cfg.workers,
                         collate_fn=_collate(), drop_last=loader_cfg.drop_last and len(ds) > loader_cfg.batch_size)
    if best_key is not None:
        from dataclasses import replace

        train_cfg = replace(train_cfg, best_key=best_key, best_mode="max")
    trainer = Trainer(method, loader, train_cfg, out_dir, eval_fn=eval_fn)
    if extra:
        trainer.extra.update(extra)
    result = trainer.fit(resume="auto")
    selected = None
    ckpt = result.checkpoints.get("last")
    if best_key is not None and result.best is not None and result.checkpoints.get("best"):
        from ovfer.engine.checkpoint import load_checkpoint

        st = load_checkpoint(result.checkpoints["best"])
        method.load_state_dict(st["model"], strict=False)
        selected = int(result.best.get("epoch", -1))
        ckpt = result.checkpoints["best"]
    skipped = getattr(ds, "skipped", None)
    if skipped:
        log.warning("training skipped unreadable clips: %s", skipped)
    return FitOutcome(result.epochs_completed, time.perf_counter() - t0, result.history, selected, ckpt)
