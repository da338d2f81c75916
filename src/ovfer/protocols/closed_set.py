"""The closed-set protocol (SPEC §5.1): train on train, test on test, all classes.

Per fold and seed: the method is built with the class list (the dataset's canonical order
unless given), trained (if it trains), model-selected (``last`` by default; ``best_on_val``
on held-out training clips; ``best_on_test``, the official codes' rule, only as a labelled
option that also records the last epoch), evaluated on the whole test split, and one result
file is written. WAR and UAR come from one pooled confusion matrix per test split
(METHODS §0); the table is the mean over folds, and over seeds of the fold means. A
finished (fold, seed) is never redone.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from ovfer.backbones.clip import ClipBackbone
from ovfer.data.records import VideoRecord
from ovfer.engine.distributed import is_main
from ovfer.protocols.common import RunConfig, evaluate, fit
from ovfer.protocols.results import SplitResult, fold_stem, method_dir, save_result
from ovfer.protocols.runs import (build_method, class_metrics, dataset_label, default_classes, finished,
                                  fold_records, keep_classes, last_epoch_metrics, plan_folds, score_arrays,
                                  reuse_finished, run_config, selection_plan, split_of)

log = logging.getLogger(__name__)

PROTOCOL = "closed_set"


@dataclass
class ClosedSetConfig(RunConfig):
    """One method on one dataset, over its folds and seeds."""

    folds: list[int] | None = None
    """Folds to run; None = the dataset's official folds (DFEW/MAFW 1-5), one run for a source without folds."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """A multi-seed result is the mean over seeds of the fold means (METHODS §0)."""
    classes: list[str] | None = None
    """Class list in label order; None = the dataset's canonical order (``ovfer.data.labels``)."""
    work_dir: str = "runs/closed_set"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed, e.g. [0]")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")


def run_fold(cfg: ClosedSetConfig, fold: int | None, seed: int, records: Sequence[VideoRecord],
             backbone: ClipBackbone | None = None) -> SplitResult:
    """Train and test one (fold, seed) on that fold's records; returns (and writes) its result."""
    t0 = time.perf_counter()
    dataset = dataset_label(cfg.data, records)
    classes = list(cfg.classes) if cfg.classes else default_classes(cfg.data, records)
    where = f"{dataset} {fold_stem(fold, seed)}"
    train = keep_classes(split_of(records, "train"), classes, f"{where} train")
    test = keep_classes(split_of(records, "test"), classes, f"{where} test")
    if not train or not test:
        raise ValueError(f"{where}: {len(train)} training and {len(test)} test clips of classes {classes}")
    method, _ = build_method(cfg.method, classes, cfg.backbone, cfg.method_overrides, backbone, seed)
    train_cfg = replace(cfg.train, seed=seed)
    train_records, eval_fn, best_key = selection_plan(
        cfg.selection, method, train, test, test_classes=classes, val_fraction=cfg.val_fraction, seed=seed,
        loader=cfg.loader, precision=cfg.eval_precision, device=cfg.train.device)
    work = (Path(cfg.work_dir) / PROTOCOL / dataset / method_dir(cfg.method, cfg.selection, cfg.variant)
            / fold_stem(fold, seed))
    fitted = fit(method, train_records, train_cfg, cfg.loader, work, eval_fn, best_key)
    out = evaluate(method, test, cfg.loader, cfg.eval_precision, cfg.train.device, keep_features=False)
    metrics = class_metrics(out, len(classes))
    last = last_epoch_metrics(fitted.history) if cfg.selection == "best_on_test" else None
    if last is not None:
        metrics["last_epoch"] = last
    result = SplitResult(
        method=cfg.method, dataset=dataset, metrics=metrics, kind="closed_set", protocol=PROTOCOL, fold=fold,
        classes=classes, selection=cfg.selection, variant=cfg.variant, seed=seed,
        config=run_config(cfg),
        timing={"train_s": fitted.seconds, "eval_s": out.seconds, "total_s": time.perf_counter() - t0,
                "epochs": fitted.epochs, "train_clips": len(train_records), "test_clips": len(test),
                "selected_epoch": -1 if fitted.selected_epoch is None else fitted.selected_epoch},
    )
    if is_main():
        save_result(result, cfg.results_dir, score_arrays(out) if cfg.save_scores else None)
    log.info("%s closed-set %s: WAR %.2f UAR %.2f (%.0fs)", result.method_label, where, metrics["war"],
             metrics["uar"], result.timing["total_s"])
    return result


def run_closed_set(cfg: ClosedSetConfig, records: Sequence[VideoRecord] | None = None,
                   backbone: ClipBackbone | None = None) -> list[SplitResult]:
    """Run ``cfg.method`` over the selected folds × seeds; finished runs are read back, not redone.

    ``records`` (optional) hold every fold to run, each record tagged with its ``fold``;
    without them each fold is loaded from ``cfg.data`` with ``options.fold`` set.
    """
    folds = plan_folds(cfg.data, cfg.folds)
    backbone = backbone if backbone is not None else ClipBackbone(cfg.backbone)
    done = finished(cfg.results_dir, "closed_set", PROTOCOL)
    out = []
    for fold in folds:
        fold_recs: list[VideoRecord] | None = None
        for seed in cfg.seeds:
            if fold_recs is None:
                fold_recs = fold_records(cfg.data, fold, records)
            key = (dataset_label(cfg.data, fold_recs), cfg.method, cfg.variant, cfg.selection, fold, seed)
            prev = reuse_finished(done, key, cfg)
            out.append(prev if prev is not None else run_fold(cfg, fold, seed, fold_recs, backbone))
    return out
