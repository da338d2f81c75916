"""Evaluation metrics (SPEC §6): pure functions, numpy in, floats out, percentages ×100."""
from .classification import (
    accuracy,
    closed_set_report,
    confusion,
    macro_f1,
    ovr_auc,
    per_class_recall,
    uar,
    war,
)
from .open_set import (
    auroc,
    fpr_at_tpr,
    open_scores_from_logits,
    open_set_report,
    oscr,
    oscr_curve,
    oscr_textbook,
)

__all__ = [
    "accuracy",
    "auroc",
    "closed_set_report",
    "confusion",
    "fpr_at_tpr",
    "macro_f1",
    "open_scores_from_logits",
    "open_set_report",
    "oscr",
    "oscr_curve",
    "oscr_textbook",
    "ovr_auc",
    "per_class_recall",
    "uar",
    "war",
]
