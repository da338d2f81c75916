"""Zero-shot protocols (SPEC §5.2, METHODS §3): classes scored by their text only.

Only methods with ``zero_shot = True`` run here: the others learn one parameter set per
class, so a class they never trained on has nothing to score it with. Modes (result
``protocol`` in brackets; the file layout is in :mod:`ovfer.protocols.results`):

* ``direct`` [``zero_shot``]: no training; the evaluated dataset's class list is set and
  its test split scored (CLIP zero-shot; EmoCLIP from a ``checkpoint`` trained elsewhere,
  e.g. the MAFW caption model on DFEW).
* ``captions`` [``zero_shot_captions``]: trained on the fold's training clips and their
  captions (``training_step`` reads ``batch["caption"]``), tested on the same fold's test
  split by class name (EmoCLIP "MAFW zero-shot"). With ``target`` [``zero_shot_cross``]
  the model is tested on another dataset by class name instead (its test folds averaged).
* ``loco`` [``loco``]: leave-one-class-out, see :mod:`ovfer.protocols.loco`.
* ``compound`` [``compound``]: basic + compound classes (names joined with '_'; the method
  builds their text side), scored with UAR, WAR, macro-F1 and one-vs-rest ROC-AUC on
  softmax scores (METHODS §3 [recon]); from a ``checkpoint`` or after caption training.

Runs are (fold, seed) units, resumable like the other protocols.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from ovfer.backbones.clip import ClipBackbone
from ovfer.data.labels import canonical_classes
from ovfer.data.records import VideoRecord
from ovfer.engine.checkpoint import CheckpointError, load_checkpoint
from ovfer.engine.distributed import is_main
from ovfer.methods.base import METHODS, Method, list_methods
from ovfer.metrics.classification import ovr_auc
from ovfer.protocols.common import EvalOutputs, RunConfig, evaluate, fit
from ovfer.protocols.data_source import DataSource
from ovfer.protocols.loco import run_loco_fold
from ovfer.protocols.results import Selection, SplitResult, fold_stem, method_dir, save_result
from ovfer.protocols.runs import (build_method, class_metrics, dataset_label, default_classes, finished,
                                  fold_records, keep_classes, last_epoch_metrics, plan_folds, score_arrays,
                                  reuse_finished, run_config, selection_plan, split_of, using_classes)

log = logging.getLogger(__name__)

Mode = Literal["direct", "captions", "loco", "compound"]
PROTOCOLS: dict[str, str] = {"direct": "zero_shot", "captions": "zero_shot_captions", "loco": "loco",
                             "compound": "compound"}
CROSS = "zero_shot_cross"
SUMMARY_METRICS = ("war", "uar", "macro_f1")


@dataclass
class ZeroShotConfig(RunConfig):
    """One zero-shot-capable method under one zero-shot mode, over folds and seeds.

    ``data`` is the training data (captions, loco) and the evaluated data (unless ``target``).
    """

    method: str = "clip_zeroshot"
    mode: Mode = "direct"
    folds: list[int] | None = None
    """Folds of ``data``; None = its official folds (DFEW/MAFW 1-5), one run for a source without folds."""
    seeds: list[int] = field(default_factory=lambda: [0])
    classes: list[str] | None = None
    """Evaluated class list; None = the evaluated dataset's canonical order (compound: the basic part)."""
    target: DataSource | None = None
    """``captions`` only: test on this dataset (cross-dataset transfer by class name)."""
    target_folds: list[int] | None = None
    """Test folds of ``target`` (metrics averaged over them); None = all of its folds."""
    checkpoint: str | None = None
    """``direct``/``compound``: weights to load before testing; ``{fold}`` is replaced by the fold."""
    compound_classes: list[str] | None = None
    """``compound``: compound class names; None = every compound label in the data."""
    compound_train: Literal["none", "captions"] = "none"
    """``compound``: test as loaded (``none``) or train on the fold's captions first."""
    loco_classes: list[str] | None = None
    """``loco``: held-out classes to run; None = all."""
    missing_caption: Literal["error", "skip"] = "error"
    """Caption training: a non-neutral training clip without caption raises, or is skipped and counted."""
    work_dir: str = "runs/zero_shot"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in PROTOCOLS:
            raise ValueError(f"mode must be one of {list(PROTOCOLS)}, got {self.mode!r}")
        if self.target is not None and self.mode != "captions":
            raise ValueError(f"target is for mode 'captions' (train on one dataset, test on another); mode "
                             f"'{self.mode}' evaluates `data` itself, so put the dataset to test in `data`")
        if self.checkpoint and not (self.mode == "direct" or (self.mode == "compound" and self.compound_train == "none")):
            raise ValueError(f"checkpoint is loaded only by mode 'direct' and by 'compound' without training; "
                             f"mode '{self.mode}' trains its own model")
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed, e.g. [0]")

    @property
    def protocol(self) -> str:
        return CROSS if self.target is not None else PROTOCOLS[self.mode]

    @property
    def trains(self) -> bool:
        return self.mode in ("captions", "loco") or (self.mode == "compound" and self.compound_train == "captions")


def zero_shot_methods() -> list[str]:
    """Registered methods that can score classes they never trained on."""
    return [n for n in list_methods() if METHODS.get(n).zero_shot]


def check_zero_shot(method: str) -> None:
    """Refuse methods that learn per-class parameters, naming the ones that qualify."""
    list_methods()  # registers every method module
    if not METHODS.get(method).zero_shot:
        raise ValueError(f"method '{method}' cannot score classes it was not trained on (zero_shot=False), so it "
                         f"cannot run a zero-shot protocol; methods that can: {zero_shot_methods()}")


def captioned(records: Sequence[VideoRecord], policy: str, where: str) -> tuple[list[VideoRecord], int]:
    """Training clips with a caption; only neutral clips may lack one (the method gives them
    neutral-face sentences, METHODS §3). Returns (clips, number skipped)."""
    missing = [r for r in records if not (r.caption and r.caption.strip()) and r.label != ("neutral",)]
    if not missing:
        return list(records), 0
    msg = (f"{where}: {len(missing)} of {len(records)} training clips have no caption (e.g. "
           f"{[r.id for r in missing[:3]]}); only neutral clips may lack one")
    if policy == "error":
        raise ValueError(msg + ". Use the with-caption annotation (data.options.captions: with) or "
                               "missing_caption: skip")
    log.warning("%s; skipped", msg)
    drop = {id(r) for r in missing}
    return [r for r in records if id(r) not in drop], len(missing)


def compound_source(data: DataSource) -> DataSource:
    """MAFW's compound split holds basic and compound clips (``task: compound``)."""
    if data.adapter.lower() == "mafw" and data.options.get("task", "single") != "compound":
        log.info("compound mode: reading MAFW with task=compound")
        return replace(data, options={**data.options, "task": "compound"})
    return data


def compound_names(records: Sequence[VideoRecord]) -> list[str]:
    """Compound labels present, in MAFW's canonical compound order, then any others by name."""
    present = {r.class_name for r in records if r.is_compound}
    order = [c for c in canonical_classes("mafw_compound") if c in present]
    return order + sorted(present - set(order))


def load_weights(method: Method, template: str, fold: int | None) -> str:
    """Load a trained checkpoint (``fit``'s last/best.pt or an exported model) into ``method``.
    Its class list may differ: that is the point of zero-shot testing."""
    path = template.format(fold=fold if fold is not None else "all")
    state = load_checkpoint(path, expected_method=method.name)
    missing, unexpected = method.load_state_dict(state["model"], strict=False)
    trainable = {n for n, p in method.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing):
        raise CheckpointError(f"{path}: weights do not fit method '{method.name}' (unexpected "
                              f"{sorted(unexpected)[:5]}, missing {sorted(trainable & set(missing))[:5]})")
    log.info("loaded %s", path)
    return path


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class _Runner:
    """One (fold, seed) of a zero-shot mode; ``run`` returns and writes its result."""

    def __init__(self, cfg: ZeroShotConfig, backbone: ClipBackbone | None,
                 targets: list[tuple[int | None, list[VideoRecord]]]) -> None:
        self.cfg, self.backbone, self.targets = cfg, backbone, targets

    def run(self, fold: int | None, seed: int, records: list[VideoRecord], dataset: str) -> SplitResult:
        t0 = time.perf_counter()
        cfg = self.cfg
        where = f"{cfg.protocol} {dataset} {fold_stem(fold, seed)}"
        work = (Path(cfg.work_dir) / cfg.protocol / dataset / method_dir(cfg.method, self.selection, cfg.variant)
                / fold_stem(fold, seed))
        extra: dict[str, Any] = {}
        scores: dict[str, Any] | None = None
        if cfg.mode == "loco":
            classes = list(cfg.classes) if cfg.classes else default_classes(cfg.data, records)
            train = keep_classes(split_of(records, "train"), classes, f"{where} train")
            test = keep_classes(split_of(records, "test"), classes, f"{where} test")
            metrics, timing = run_loco_fold(cfg, classes, train, test, work, seed, self.backbone)
        else:
            classes, metrics, timing, scores, extra = self._train_and_test(fold, seed, records, where, work)
        timing["total_s"] = time.perf_counter() - t0
        result = SplitResult(
            method=cfg.method, dataset=self.dataset_of(dataset), metrics=metrics, kind="zero_shot",
            protocol=cfg.protocol, fold=fold, classes=classes, selection=self.selection, variant=cfg.variant, seed=seed,
            config=run_config(cfg), timing=timing, extra=extra)
        if is_main():
            save_result(result, cfg.results_dir, scores if cfg.save_scores else None)
        log.info("%s %s: WAR %.2f UAR %.2f (%.0fs)", result.method_label, where, metrics["war"], metrics["uar"],
                 timing["total_s"])
        return result

    @property
    def selection(self) -> Selection:
        """Nothing is selected when nothing is trained: such results are filed as ``last``."""
        return self.cfg.selection if self.cfg.trains else "last"

    def dataset_of(self, source_dataset: str) -> str:
        if self.cfg.target is None:
            return source_dataset
        return dataset_label(self.cfg.target, [r for _, recs in self.targets for r in recs])

    def _train_and_test(self, fold: int | None, seed: int, records: list[VideoRecord], where: str, work: Path
                        ) -> tuple[list[str], dict[str, Any], dict[str, float], dict[str, Any], dict[str, Any]]:
        """(classes, metrics, timing, scores, extra keys) of a direct/captions/cross/compound run."""
        cfg = self.cfg
        classes = list(cfg.classes) if cfg.classes and cfg.target is None else default_classes(cfg.data, records)
        if cfg.mode == "compound":
            classes += list(cfg.compound_classes) if cfg.compound_classes else compound_names(records)
        test = keep_classes(split_of(records, "test"), classes, f"{where} test")
        method, _ = build_method(cfg.method, classes, cfg.backbone, cfg.method_overrides, self.backbone, seed)
        extra: dict[str, Any] = {}
        timing: dict[str, float] = {"train_s": 0.0, "epochs": 0.0}
        last = None
        if cfg.trains:
            train, extra["skipped_no_caption"] = captioned(split_of(records, "train"), cfg.missing_caption,
                                                           f"{where} train")
            if not method.trainable:
                log.warning("method '%s' has nothing to train: caption training leaves it as it is", cfg.method)
            train, eval_fn, best_key = selection_plan(
                cfg.selection, method, train, test, test_classes=classes, val_fraction=cfg.val_fraction, seed=seed,
                loader=cfg.loader, precision=cfg.eval_precision, device=cfg.train.device)
            fitted = fit(method, train, replace(cfg.train, seed=seed), cfg.loader, work, eval_fn, best_key)
            timing.update(train_s=fitted.seconds, epochs=fitted.epochs, train_clips=len(train),
                          selected_epoch=-1 if fitted.selected_epoch is None else fitted.selected_epoch)
            last = last_epoch_metrics(fitted.history) if cfg.selection == "best_on_test" else None
        elif cfg.checkpoint:
            extra["checkpoint"] = load_weights(method, cfg.checkpoint, fold)
        if cfg.target is not None:
            extra["source"] = {"dataset": dataset_label(cfg.data, records), "fold": fold}
            classes, metrics, out = self._test_target(method)
            extra["target_folds"] = [f for f, _ in self.targets]
        else:
            if not test:
                raise ValueError(f"{where}: no test clip of classes {classes}")
            out = evaluate(method, test, cfg.loader, cfg.eval_precision, cfg.train.device, keep_features=False)
            metrics = class_metrics(out, len(classes))
        if cfg.mode == "compound":
            try:
                metrics["ovr_auc"] = ovr_auc(_softmax(out.logits), out.labels)
            except ValueError:
                metrics["ovr_auc"] = None
            metrics["ovr_auc_scores"] = "softmax"
        if last is not None:
            metrics["last_epoch"] = last
        timing["eval_s"] = out.seconds
        return classes, metrics, timing, score_arrays(out), extra

    def _test_target(self, method: Method) -> tuple[list[str], dict[str, Any], EvalOutputs]:
        """Cross-dataset: the target's class list, each target test fold scored, metrics averaged."""
        cfg = self.cfg
        all_target = [r for _, recs in self.targets for r in recs]
        classes = list(cfg.classes) if cfg.classes else default_classes(cfg.target, all_target)
        per_fold: dict[str, dict[str, Any]] = {}
        outs: list[EvalOutputs] = []
        with using_classes(method, classes):
            for tfold, recs in self.targets:
                test = keep_classes(split_of(recs, "test"), classes, f"target {fold_stem(tfold)} test")
                if not test:
                    raise ValueError(f"target {fold_stem(tfold)}: no test clip of classes {classes}")
                out = evaluate(method, test, cfg.loader, cfg.eval_precision, cfg.train.device, keep_features=False)
                per_fold[fold_stem(tfold)] = class_metrics(out, len(classes))
                outs.append(out)
        metrics: dict[str, Any] = {m: float(np.mean([v[m] for v in per_fold.values()])) for m in SUMMARY_METRICS}
        metrics["target_folds"] = per_fold
        pooled = EvalOutputs(np.concatenate([o.logits for o in outs]), np.concatenate([o.open_score for o in outs]),
                             np.concatenate([o.labels for o in outs]), [i for o in outs for i in o.ids],
                             seconds=sum(o.seconds for o in outs))
        return classes, metrics, pooled


def run_zero_shot(cfg: ZeroShotConfig, records: Sequence[VideoRecord] | None = None,
                  backbone: ClipBackbone | None = None,
                  target_records: Sequence[VideoRecord] | None = None) -> list[SplitResult]:
    """Run ``cfg.mode`` for ``cfg.method`` over folds × seeds; finished runs are read back, not redone.

    ``records`` / ``target_records`` (optional) hold every fold needed, tagged with ``fold``;
    without them folds are loaded from ``cfg.data`` / ``cfg.target``.
    """
    check_zero_shot(cfg.method)
    if cfg.mode == "compound" and records is None:
        cfg = replace(cfg, data=compound_source(cfg.data))
    data = cfg.data
    folds = plan_folds(data, cfg.folds)
    targets = []
    if cfg.target is not None:
        targets = [(f, fold_records(cfg.target, f, target_records)) for f in plan_folds(cfg.target, cfg.target_folds)]
    backbone = backbone if backbone is not None else ClipBackbone(cfg.backbone)
    runner = _Runner(cfg, backbone, targets)
    done = finished(cfg.results_dir, "zero_shot", cfg.protocol)
    out = []
    for fold in folds:
        fold_recs = fold_records(data, fold, records)
        dataset = dataset_label(cfg.data, fold_recs)
        for seed in cfg.seeds:
            key = (runner.dataset_of(dataset), cfg.method, cfg.variant, runner.selection, fold, seed)
            prev = reuse_finished(done, key, cfg)
            out.append(prev if prev is not None else runner.run(fold, seed, fold_recs, dataset))
    return out
