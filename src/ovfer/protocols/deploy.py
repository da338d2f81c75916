"""Train a method on known classes and export a deployable checkpoint with its threshold.

This is what ``ovfer train`` runs and what ``ovfer predict`` / ``ovfer.load`` read. The
threshold is the open score that 95 % of the known training clips exceed (SPEC §7.7),
computed with the deterministic test transform after training.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ovfer.backbones.clip import BackboneConfig
from ovfer.config import to_dict
from ovfer.data.splits import apply_split, get_task
from ovfer.engine.seed import seed_everything
from ovfer.engine.trainer import TrainConfig
from ovfer.methods.base import build_config, create_method
from ovfer.protocols.common import LoaderConfig, calibrate_threshold, evaluate, fit
from ovfer.protocols.data_source import DataSource

log = logging.getLogger(__name__)


@dataclass
class TrainJobConfig:
    method: str = "hesp"
    method_overrides: list[str] = field(default_factory=list)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataSource = field(default_factory=DataSource)
    task: str | None = None
    """With ``split``: train on that open-set split's known classes (unknown clips removed)."""
    split: str | None = None
    """Split name such as ``O(8:3)_0``; None with a task = its first split."""
    classes: list[str] | None = None
    """Without a task: the known classes (None = every single-label class in the data)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    threshold_keep: float = 0.95
    work_dir: str = "runs/train"
    output: str = "model.pt"


def train_and_export(cfg: TrainJobConfig, records=None) -> Path:
    """Fit, calibrate the open-set threshold on the training clips, export; returns the path."""
    from ovfer.api import export_model

    records = list(records) if records is not None else cfg.data.load()
    if cfg.task:
        splits = get_task(cfg.task).splits()
        chosen = [s for s in splits if cfg.split in (None, s.name)]
        if not chosen:
            raise ValueError(f"task '{cfg.task}' has no split '{cfg.split}'; valid: {[s.name for s in splits]}")
        data = apply_split(records, chosen[0])
        classes, train = list(chosen[0].known), list(data.train)
    else:
        present = sorted({r.class_name for r in records if not r.is_compound})
        classes = list(cfg.classes) if cfg.classes else present
        missing = [c for c in classes if c not in present]
        if missing:
            raise ValueError(f"classes {missing} have no clips in the data; present: {present}")
        train = [r for r in records if r.split == "train" and r.class_name in classes]
    mcfg = build_config(cfg.method, {"backbone": to_dict(cfg.backbone)}, cfg.method_overrides)
    seed_everything(cfg.train.seed)
    method = create_method(cfg.method, classes, mcfg)
    fit(method, train, cfg.train, cfg.loader, Path(cfg.work_dir))
    scores = evaluate(method, train, cfg.loader, "fp32", cfg.train.device, keep_features=False)
    threshold = calibrate_threshold(scores.open_score, cfg.threshold_keep)
    log.info("threshold %.4f keeps %.0f%% of %d known training clips", threshold, 100 * cfg.threshold_keep,
             len(train))
    return export_model(method, cfg.output, threshold, cfg.threshold_keep,
                        extra={"train_clips": len(train), "task": cfg.task or "", "split": cfg.split or ""})


@dataclass
class EvalJobConfig:
    checkpoint: str = "model.pt"
    data: DataSource = field(default_factory=lambda: DataSource(splits=("test",)))
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    backbone_weights: str | None = None
    """Override the CLIP weight file stored in the checkpoint."""
    precision: str = "fp32"
    device: str = "auto"


def evaluate_checkpoint(cfg: EvalJobConfig, records=None) -> dict:
    """Closed-set metrics on clips of the checkpoint's classes; open-set metrics when the data
    also holds clips of other classes (they are the unknowns)."""
    from ovfer.api import Recognizer
    from ovfer.metrics.classification import closed_set_report
    from ovfer.metrics.open_set import open_set_report

    rec = Recognizer.load("auto", cfg.checkpoint, backbone_weights=cfg.backbone_weights)
    records = list(records) if records is not None else cfg.data.load()
    known = [r for r in records if not r.is_compound and r.class_name in rec.classes]
    unknown = [r for r in records if r.is_compound or r.class_name not in rec.classes]
    if not known:
        raise ValueError(f"no clip of the checkpoint's classes {list(rec.classes)} in the data")
    k = evaluate(rec.method, known, cfg.loader, cfg.precision, cfg.device)
    out = {"classes": list(rec.classes), "num_known": len(known), "num_unknown": len(unknown),
           "threshold": rec.threshold, "closed_set": closed_set_report(k.logits, k.labels, len(rec.classes))}
    if unknown:
        u = evaluate(rec.method, unknown, cfg.loader, cfg.precision, cfg.device)
        out["open_set"] = open_set_report(k.logits, u.logits, k.labels, k.open_score, u.open_score)
        if rec.threshold is not None:
            out["unknown_rejected"] = float((u.open_score < rec.threshold).mean())
            out["known_accepted"] = float((k.open_score >= rec.threshold).mean())
    return out
