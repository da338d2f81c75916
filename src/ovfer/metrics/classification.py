"""Closed-set metrics (SPEC §5.1, §6): WAR, UAR, macro-F1, one-vs-rest AUC, confusion matrix.

Pure functions, numpy in, floats out, percentages ×100 (SPEC notation). ``pred`` may be
either predicted class ids (N,) or class scores (N, K), in which case the row argmax is
the prediction. Labels are integer ids in ``[0, num_classes)``.

Conventions worth knowing when comparing with papers:

* **UAR** is the mean per-class recall read off one confusion matrix pooled over all test
  samples (not the mean of per-batch or per-video-group recalls). A class with no test
  sample has no recall and is **excluded** from the mean (it would otherwise count as 0
  or NaN); the excluded classes are logged at DEBUG level.
* **WAR** is the plain accuracy (recall weighted by class support).
* **macro-F1** averages F1 over the classes present in the labels or the predictions
  (scikit-learn's default label set), a class without predictions scoring 0.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix as _sk_confusion
from sklearn.metrics import f1_score, roc_auc_score

log = logging.getLogger(__name__)

ArrayLike = np.ndarray | Sequence[int] | Sequence[float] | Sequence[Sequence[float]]


def _pred_ids(pred: ArrayLike) -> np.ndarray:
    p = np.asarray(pred)
    if p.ndim == 2:
        return p.argmax(axis=1)
    if p.ndim != 1:
        raise ValueError(f"pred must be (N,) class ids or (N, K) scores, got shape {p.shape}")
    return p.astype(np.int64)


def _check(pred: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = _pred_ids(pred)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"pred has {p.shape[0]} samples but labels has {y.shape[0]}")
    if y.size == 0:
        raise ValueError("no samples: closed-set metrics need at least one labelled sample")
    return p, y


def _num_classes(pred: ArrayLike, p: np.ndarray, y: np.ndarray, num_classes: int | None) -> int:
    if num_classes is not None:
        if y.max() >= num_classes or y.min() < 0:
            raise ValueError(f"labels must lie in [0, {num_classes - 1}], got [{y.min()}, {y.max()}]")
        return int(num_classes)
    arr = np.asarray(pred)
    k = arr.shape[1] if arr.ndim == 2 else 0
    return int(max(k, p.max() + 1, y.max() + 1))


def confusion(pred: ArrayLike, labels: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """(C, C) confusion matrix, rows = true class, columns = predicted class (scikit-learn)."""
    p, y = _check(pred, labels)
    c = _num_classes(pred, p, y, num_classes)
    return _sk_confusion(y, p, labels=np.arange(c))


def accuracy(pred: ArrayLike, labels: ArrayLike) -> float:
    """100 · share of samples whose predicted class equals the label."""
    p, y = _check(pred, labels)
    return float(100.0 * np.mean(p == y))


def war(pred: ArrayLike, labels: ArrayLike) -> float:
    """Weighted average recall = accuracy (SPEC §5.1)."""
    return accuracy(pred, labels)


def per_class_recall(pred: ArrayLike, labels: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Recall ×100 per class from the pooled confusion matrix; NaN for classes without samples."""
    cm = confusion(pred, labels, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = 100.0 * np.diag(cm) / support
    return np.where(support > 0, rec, np.nan)


def uar(pred: ArrayLike, labels: ArrayLike, num_classes: int | None = None) -> float:
    """Unweighted average recall: mean per-class recall, classes without samples excluded."""
    rec = per_class_recall(pred, labels, num_classes)
    missing = np.flatnonzero(np.isnan(rec))
    if missing.size:
        log.debug("UAR excludes classes without test samples: %s", missing.tolist())
    return float(np.nanmean(rec))


def macro_f1(pred: ArrayLike, labels: ArrayLike) -> float:
    """100 · macro-averaged F1 over the classes present in labels or predictions (scikit-learn)."""
    p, y = _check(pred, labels)
    return float(100.0 * f1_score(y, p, average="macro", zero_division=0))


def ovr_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """One-vs-rest macro AUC ×100 of (N, K) class scores (scikit-learn ``roc_auc_score`` per class).

    Each class k is scored with column k against all other samples, so the scores need not
    be probabilities; classes with no positive or no negative sample are skipped (their
    AUC is undefined). Ties count ½ here, as in any ROC area.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be (N, K), got shape {s.shape}")
    _, y = _check(s, labels)
    aucs = []
    for k in range(s.shape[1]):
        pos = y == k
        if pos.all() or not pos.any():
            continue
        aucs.append(roc_auc_score(pos.astype(np.int64), s[:, k]))
    if not aucs:
        raise ValueError("one-vs-rest AUC is undefined: no class has both positive and negative samples")
    return float(100.0 * np.mean(aucs))


def closed_set_report(pred: ArrayLike, labels: ArrayLike, num_classes: int) -> dict[str, Any]:
    """All closed-set numbers of SPEC §5.1 as JSON-ready values (lists, None for empty classes)."""
    rec = per_class_recall(pred, labels, num_classes)
    out: dict[str, Any] = {
        "war": war(pred, labels),
        "uar": uar(pred, labels, num_classes),
        "macro_f1": macro_f1(pred, labels),
        "per_class_recall": [None if np.isnan(r) else float(r) for r in rec],
        "confusion": confusion(pred, labels, num_classes).tolist(),
        "num_samples": int(np.asarray(labels).size),
    }
    if np.asarray(pred).ndim == 2:
        try:
            out["ovr_auc"] = ovr_auc(pred, labels)
        except ValueError:
            out["ovr_auc"] = None
    return out
