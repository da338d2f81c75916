"""Leave-one-class-out (SPEC §5.2; EmoCLIP, METHODS §3 "LOCO").

For each class k of a fold: the method is trained, supervised on the remaining classes'
texts, on the training clips whose label set excludes k; then it scores the class-k test
clips against *all* classes. Aggregation **[recon]**: UAR = mean over k of recall_k,
WAR = Σ correct / Σ samples; the table then averages folds.

Each class is one resumable unit: its test logits are stored under the fold's work folder
(``class_<k>/loco.npz``) once done, and the fold's result file is written only when every
class is in. The assembled confusion matrix has row k from model k, so it shows where each
held-out class went; a precision (or F1) read off it would mix models and is not reported.
"""
from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ovfer.backbones.clip import ClipBackbone
from ovfer.data.records import VideoRecord
from ovfer.engine.distributed import is_main
from ovfer.fsutil import atomic_write
from ovfer.protocols.common import evaluate, fit
from ovfer.protocols.results import jsonable
from ovfer.protocols.runs import build_method, check_same_config, run_config, selection_plan, using_classes

if TYPE_CHECKING:
    from ovfer.protocols.zero_shot import ZeroShotConfig

log = logging.getLogger(__name__)


def loco_report(rows: Mapping[str, tuple[np.ndarray, np.ndarray]], classes: Sequence[str]) -> dict[str, Any]:
    """Metrics (×100) from each held-out class's ``(logits (n_k, K), labels (n_k,))`` over ``classes``."""
    if not rows:
        raise ValueError("LOCO needs at least one held-out class with test clips")
    k_all = len(classes)
    cm = np.zeros((k_all, k_all), dtype=np.int64)
    per: dict[str, dict[str, float]] = {}
    for name, (logits, labels) in rows.items():
        logits, labels = np.asarray(logits), np.asarray(labels, dtype=np.int64)
        if logits.ndim != 2 or logits.shape[1] != k_all or logits.shape[0] != labels.shape[0]:
            raise ValueError(f"LOCO class '{name}': logits {logits.shape} and labels {labels.shape} do not fit "
                             f"{k_all} classes")
        pred = logits.argmax(axis=1)
        np.add.at(cm, (labels, pred), 1)
        n, correct = int(labels.size), int((pred == labels).sum())
        per[name] = {"n": n, "correct": correct, "recall": 100.0 * correct / n}
    n_all = sum(int(v["n"]) for v in per.values())
    return {
        "uar": float(np.mean([v["recall"] for v in per.values()])),
        "war": 100.0 * sum(int(v["correct"]) for v in per.values()) / n_all,
        "per_class_recall": [per[c]["recall"] if c in per else None for c in classes],
        "confusion": cm.tolist(),
        "num_samples": n_all,
        "loco": per,
    }


def _save_row(path: Path, logits: np.ndarray, labels: np.ndarray, ids: Sequence[str], config: str) -> None:
    def write(fh: Any) -> None:
        buf = io.BytesIO()
        np.savez(buf, logits=logits, labels=labels, ids=np.asarray(list(ids), dtype=str), config=np.asarray(config))
        fh.write(buf.getvalue())

    atomic_write(path, write)


def _load_row(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """(logits, labels, the config that made them; None in parts written before it was stored)."""
    with np.load(path) as z:
        config = json.loads(str(z["config"])) if "config" in z.files else None
        return z["logits"], z["labels"], config


def run_loco_fold(cfg: ZeroShotConfig, classes: Sequence[str], train: Sequence[VideoRecord],
                  test: Sequence[VideoRecord], work: Path, seed: int, backbone: ClipBackbone | None
                  ) -> tuple[dict[str, Any], dict[str, float]]:
    """All held-out classes of one (fold, seed): (metrics, timing)."""
    t0 = time.perf_counter()
    held_out = list(cfg.loco_classes) if cfg.loco_classes else list(classes)
    unknown = [c for c in held_out if c not in classes]
    if unknown:
        raise ValueError(f"loco_classes {unknown} are not in the class list {list(classes)}")
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    timing = {"train_s": 0.0, "eval_s": 0.0, "epochs": 0.0}
    for k in held_out:
        test_k = [r for r in test if r.class_name == k]
        if not test_k:
            log.warning("LOCO: class '%s' has no test clip in this fold; left out of UAR and WAR", k)
            continue
        part = work / f"class_{k}" / "loco.npz"
        if part.is_file():
            logits, labels, made_by = _load_row(part)
            if made_by is not None:  # a part from another recipe would be mixed into this fold's numbers
                check_same_config(made_by, cfg, f"LOCO part {part}")
            log.info("LOCO: class '%s' already done (%s)", k, part)
            rows[k] = (logits, labels)
            continue
        remaining = [c for c in classes if c != k]
        train_k = [r for r in train if k not in r.label]
        method, _ = build_method(cfg.method, remaining, cfg.backbone, cfg.method_overrides, backbone, seed)
        train_records, eval_fn, best_key = selection_plan(
            cfg.selection, method, train_k, test_k, test_classes=classes, val_fraction=cfg.val_fraction,
            seed=seed, loader=cfg.loader, precision=cfg.eval_precision, device=cfg.train.device)
        fitted = fit(method, train_records, replace(cfg.train, seed=seed), cfg.loader, part.parent, eval_fn, best_key)
        with using_classes(method, classes):
            out = evaluate(method, test_k, cfg.loader, cfg.eval_precision, cfg.train.device, keep_features=False)
        if is_main():
            _save_row(part, out.logits, out.labels, out.ids, json.dumps(jsonable(run_config(cfg))))
        rows[k] = (out.logits, out.labels)
        timing["train_s"] += fitted.seconds
        timing["eval_s"] += out.seconds
        timing["epochs"] += fitted.epochs
        log.info("LOCO: held-out '%s' recall %.2f (%d clips)", k, 100.0 * float((out.predictions == out.labels).mean()),
                 len(test_k))
    timing["total_s"] = time.perf_counter() - t0
    return loco_report(rows, classes), timing
