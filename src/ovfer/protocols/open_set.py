"""The OV-FER protocol (SPEC §5.3): any method over the splits of a task, resumable.

For each split: unknown-class clips are removed from training, the method is built with
the known classes in label order (text prompts from the same order), trained (if it
trains), model-selected (last epoch by default; ``best_on_val`` on a held-out part of
the known training clips; ``best_on_test`` only as a labelled option), evaluated on known
+ unknown test clips, and one result file is written. A finished split is never redone.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ovfer.backbones.clip import ClipBackbone
from ovfer.config import to_dict
from ovfer.data.records import VideoRecord
from ovfer.data.splits import OpenSetSplit, apply_split, get_task
from ovfer.engine.distributed import is_main
from ovfer.engine.seed import seed_everything
from ovfer.methods.base import build_config, create_method
from ovfer.metrics.open_set import open_set_report
from ovfer.protocols.common import RunConfig, evaluate, fit, stratified_holdout
from ovfer.protocols.results import SplitResult, load_results, method_dir, save_result
from ovfer.protocols.runs import copy_backbone, reuse_finished, run_config

log = logging.getLogger(__name__)


@dataclass
class OpenSetConfig(RunConfig):
    """One method on one task (all or some of its splits)."""

    task: str = "synth11"
    openness: list[str] | None = None
    """Openness tags to run (e.g. ``["O(8:3)"]``); None = all."""
    indices: list[int] | None = None
    """Split indices within each openness (0-4); None = all."""
    seed: int = 0


def run_split(cfg: OpenSetConfig, split: OpenSetSplit, records: Sequence[VideoRecord],
              backbone: ClipBackbone | None = None) -> SplitResult:
    """Train and evaluate one split; returns (and writes) its result."""
    t0 = time.perf_counter()
    data = apply_split(records, split)
    if not data.train or not data.test_known or not data.test_unknown:
        raise ValueError(f"split {split.task}/{split.name} has an empty part: {data.counts()}")
    mcfg = build_config(cfg.method, {"backbone": to_dict(cfg.backbone)}, cfg.method_overrides)
    bb = copy_backbone(backbone)
    seed_everything(cfg.seed)  # parameters drawn at construction must not depend on earlier splits
    method = create_method(cfg.method, split.known, mcfg, backbone=bb)
    train_records = list(data.train)
    work = (Path(cfg.work_dir) / split.task / method_dir(cfg.method, cfg.selection, cfg.variant)
            / (split.name + (f"_seed{cfg.seed}" if cfg.seed else "")))
    eval_fn, best_key = None, None
    if cfg.selection == "best_on_val" and method.trainable:
        train_records, val_records = stratified_holdout(train_records, cfg.val_fraction, cfg.seed)
        best_key = "val_acc"

        def eval_fn(m, epoch):  # closed-set accuracy on held-out known clips
            out = evaluate(m, val_records, cfg.loader, cfg.eval_precision, cfg.train.device, keep_features=False)
            m.train()
            return {"val_acc": float((out.predictions == out.labels).mean())}
    elif cfg.selection == "best_on_test" and method.trainable:
        best_key = "test_auroc"

        def eval_fn(m, epoch):  # the official code's rule; results are labelled as such
            k = evaluate(m, data.test_known, cfg.loader, cfg.eval_precision, cfg.train.device, keep_features=False)
            u = evaluate(m, data.test_unknown, cfg.loader, cfg.eval_precision, cfg.train.device, keep_features=False)
            m.train()
            return {"test_auroc": open_set_report(k.logits, u.logits, k.labels, k.open_score, u.open_score)["auroc"]}
    fitted = fit(method, train_records, cfg.train, cfg.loader, work, eval_fn, best_key)
    known = evaluate(method, data.test_known, cfg.loader, cfg.eval_precision, cfg.train.device)
    unknown = evaluate(method, data.test_unknown, cfg.loader, cfg.eval_precision, cfg.train.device)
    metrics = open_set_report(known.logits, unknown.logits, known.labels, known.open_score, unknown.open_score)
    n_videos = len(known.ids) + len(unknown.ids)
    result = SplitResult(
        method=cfg.method, dataset=split.dataset, metrics=metrics, kind="open_set", task=split.task,
        openness_tag=split.openness_tag, K=split.K, U=split.U, openness=split.openness, split_index=split.index,
        run_index=split.run_index, known=list(split.known), unknown=list(split.unknown), selection=cfg.selection,
        variant=cfg.variant, seed=cfg.seed, config=run_config(cfg),
        timing={"train_s": fitted.seconds, "eval_s": known.seconds + unknown.seconds,
                "eval_s_per_video": (known.seconds + unknown.seconds) / max(1, n_videos),
                "total_s": time.perf_counter() - t0, "epochs": fitted.epochs,
                "selected_epoch": -1 if fitted.selected_epoch is None else fitted.selected_epoch,
                "train_clips": len(train_records)},
    )
    scores = {"pred_known": known.logits, "pred_unknown": unknown.logits, "labels": known.labels,
              "score_known": known.open_score, "score_unknown": unknown.open_score}
    if known.features is not None and unknown.features is not None:
        scores["features_known"], scores["features_unknown"] = known.features, unknown.features
    if is_main():
        save_result(result, cfg.results_dir, scores if cfg.save_scores else None)
    log.info("%s %s/%s: AUROC %.2f OSCR %.2f (%.0fs)", result.method, split.task, split.name,
             metrics["auroc"], metrics["oscr"], result.timing["total_s"])
    return result


def run_open_set(cfg: OpenSetConfig, records: Sequence[VideoRecord] | None = None,
                 backbone: ClipBackbone | None = None) -> list[SplitResult]:
    """Run ``cfg.method`` over the selected splits of ``cfg.task``; finished splits are skipped."""
    task = get_task(cfg.task)
    splits = task.splits(cfg.openness, cfg.indices)
    if not splits:
        raise ValueError(f"task '{cfg.task}' has no split for openness={cfg.openness} indices={cfg.indices}")
    records = list(records) if records is not None else cfg.data.load()
    backbone = backbone if backbone is not None else ClipBackbone(cfg.backbone)
    done = {(r.task, r.method, r.variant, r.selection, r.openness_tag, r.split_index, r.seed or 0): r
            for r in load_results(cfg.results_dir) if r.kind == "open_set"} if Path(cfg.results_dir).exists() else {}
    out = []
    for split in splits:
        key = (split.task, cfg.method, cfg.variant, cfg.selection, split.openness_tag, split.index, cfg.seed)
        prev = reuse_finished(done, key, cfg)
        out.append(prev if prev is not None else run_split(cfg, split, records, backbone))
    return out
