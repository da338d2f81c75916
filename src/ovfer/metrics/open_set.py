"""Open-set metrics (SPEC §6): AUROC, OSCR (reference and textbook), the CCR–FPR curve, FPR@TPR.

All functions are pure: numpy arrays (or sequences) in, Python floats out, percentages ×100.
Convention everywhere: a **higher open score means "more known"**; the default open score
of a (N, K) class-score matrix is its row maximum (SPEC §6, last bullet).

Ties are part of the definition, not an accident of sorting:

* :func:`auroc` counts a tie between a known and an unknown score as 0 (the reference
  open-set code does; scikit-learn's ``roc_auc_score`` would count 1/2).
* :func:`oscr` reproduces the reference OSCR step by step (stable sort, knowns placed
  before unknowns on equal scores, CCR read one position later than FPR). For a tie-free
  input it equals ``100/(N_k N_u) · Σ_j (C_j − ½·[next-higher sample is a correct known])``
  with ``C_j`` the number of correctly classified knowns scored above unknown ``j`` — i.e.
  the "half-step quirk" costs half a pair whenever a correct known sits directly above an
  unknown in the ranking.
* :func:`oscr_textbook` is the trapezoid area under the CCR–FPR curve of
  :func:`oscr_curve`, which equals ``100 · P(s_known > s_unknown and known correct)`` with
  ties counted ½ (the usual Mann–Whitney convention of a trapezoid ROC).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import roc_curve

from .classification import closed_set_report

ArrayLike = np.ndarray | Sequence[float] | Sequence[Sequence[float]]


def _scores(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} is empty; open-set metrics need at least one known and one unknown sample")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf ({int((~np.isfinite(a)).sum())} values)")
    return a


def _class_scores(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, K) array of class scores, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _known_correct(pred_known: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(row-max score, correct flag) of the known samples."""
    p = _class_scores(pred_known, "pred_known")
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"labels has {y.shape[0]} entries but pred_known has {p.shape[0]} rows")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must lie in [0, {p.shape[1] - 1}], got range [{y.min()}, {y.max()}]")
    return p.max(axis=1), p.argmax(axis=1) == y


def _open_scores(
    pred_known: ArrayLike,
    pred_unknown: ArrayLike,
    labels: ArrayLike,
    known_scores: ArrayLike | None,
    unknown_scores: ArrayLike | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open scores of knowns and unknowns (row max unless given) and the known-correct flags."""
    s_k, correct = _known_correct(pred_known, labels)
    s_u = _class_scores(pred_unknown, "pred_unknown").max(axis=1)
    if known_scores is not None:
        s_k = _scores(known_scores, "known_scores")
        if s_k.shape[0] != correct.shape[0]:
            raise ValueError(f"known_scores has {s_k.shape[0]} entries, pred_known has {correct.shape[0]} rows")
    if unknown_scores is not None:
        n_u = s_u.shape[0]
        s_u = _scores(unknown_scores, "unknown_scores")
        if s_u.shape[0] != n_u:
            raise ValueError(f"unknown_scores has {s_u.shape[0]} entries, pred_unknown has {n_u} rows")
    return s_k, s_u, correct


def auroc(known_scores: ArrayLike, unknown_scores: ArrayLike) -> float:
    """100 · fraction of (known i, unknown j) pairs with s_i > s_j; ties count 0 (SPEC §6).

    O((n + m) log m): each known score is located among the sorted unknown scores.
    """
    k = _scores(known_scores, "known_scores")
    u = np.sort(_scores(unknown_scores, "unknown_scores"))
    below = np.searchsorted(u, k, side="left")  # number of unknowns strictly below each known
    return float(100.0 * below.sum() / (k.size * u.size))


def oscr(
    pred_known: ArrayLike,
    pred_unknown: ArrayLike,
    labels: ArrayLike,
    *,
    known_scores: ArrayLike | None = None,
    unknown_scores: ArrayLike | None = None,
) -> float:
    """Open-Set Classification Rate as the reference code computes it (SPEC §6, numbered recipe).

    ``pred_*`` are (N, K) and (M, K) class scores; correct = row argmax equals label. The
    ranking score is the row max unless a method's own open scores are passed as
    ``known_scores``/``unknown_scores`` (correctness still comes from the argmax).
    """
    s_k, s_u, correct = _open_scores(pred_known, pred_unknown, labels, known_scores, unknown_scores)
    n_k, n_u = s_k.size, s_u.size
    n = n_k + n_u
    s = np.concatenate([s_k, s_u])
    order = np.argsort(s, kind="stable")  # knowns come first, so they sit below tied unknowns
    is_correct = np.concatenate([correct, np.zeros(n_u, dtype=bool)])[order].astype(np.int64)
    is_unknown = np.concatenate([np.zeros(n_k, dtype=bool), np.ones(n_u, dtype=bool)])[order].astype(np.int64)
    # suffix[k] = count at positions >= k, with suffix[n] = 0
    suf_c = np.concatenate([np.cumsum(is_correct[::-1])[::-1], [0]])
    suf_u = np.concatenate([np.cumsum(is_unknown[::-1])[::-1], [0]])
    ccr = np.zeros(n + 2)
    fpr = np.zeros(n + 2)
    ks = np.arange(n - 1)
    ccr[: n - 1] = suf_c[ks + 1] / n_k  # the half step: CCR from position k+1, FPR from k
    fpr[: n - 1] = suf_u[ks] / n_u
    # entry n-1 stays (0, 0); entry n is the appended (0, 0); entry n+1 is (1, 1)
    ccr[n + 1] = 1.0
    fpr[n + 1] = 1.0
    desc = np.lexsort((ccr, fpr))[::-1]  # (FPR, CCR) pairs in descending lexicographic order
    f, c = fpr[desc], ccr[desc]
    area = np.sum((f[:-1] - f[1:]) * (c[:-1] + c[1:]) / 2.0)
    return float(100.0 * area)


def oscr_curve(
    pred_known: ArrayLike,
    pred_unknown: ArrayLike,
    labels: ArrayLike,
    *,
    known_scores: ArrayLike | None = None,
    unknown_scores: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, CCR) points of the textbook CCR–FPR curve, as fractions in [0, 1], FPR ascending.

    One point per distinct open score t (descending): FPR(t) = share of unknowns with s ≥ t,
    CCR(t) = share of knowns with s ≥ t **and** a correct argmax; the curve starts at (0, 0).
    Tied scores move FPR and CCR together (a diagonal segment). The last point is
    (1, closed-set accuracy) once every sample is accepted.
    """
    s_k, s_u, correct = _open_scores(pred_known, pred_unknown, labels, known_scores, unknown_scores)
    thresholds = np.unique(np.concatenate([s_k, s_u]))[::-1]  # descending distinct scores
    u_sorted = np.sort(s_u)
    c_sorted = np.sort(s_k[correct])
    # count of values >= t = size - (count of values < t)
    fp = u_sorted.size - np.searchsorted(u_sorted, thresholds, side="left")
    cc = c_sorted.size - np.searchsorted(c_sorted, thresholds, side="left")
    fpr = np.concatenate([[0.0], fp / s_u.size])
    ccr = np.concatenate([[0.0], cc / s_k.size])
    return fpr, ccr


def oscr_textbook(
    pred_known: ArrayLike,
    pred_unknown: ArrayLike,
    labels: ArrayLike,
    *,
    known_scores: ArrayLike | None = None,
    unknown_scores: ArrayLike | None = None,
) -> float:
    """Trapezoid area under the :func:`oscr_curve` CCR–FPR curve, ×100.

    Equivalent pairwise form (used here): 100/(N_k N_u) · Σ over correct knowns i and all
    unknowns j of ([s_i > s_j] + ½·[s_i = s_j]). Unlike :func:`oscr` it has no half-step
    quirk, so it is the value to quote outside comparisons with the HESP/ARPL tables.
    """
    s_k, s_u, correct = _open_scores(pred_known, pred_unknown, labels, known_scores, unknown_scores)
    u = np.sort(s_u)
    sk = s_k[correct]
    below = np.searchsorted(u, sk, side="left")
    ties = np.searchsorted(u, sk, side="right") - below
    return float(100.0 * (below.sum() + 0.5 * ties.sum()) / (s_k.size * s_u.size))


def fpr_at_tpr(known_scores: ArrayLike, unknown_scores: ArrayLike, tpr: float = 0.95) -> float:
    """100 · share of unknowns accepted at the highest threshold that accepts ≥ ``tpr`` of knowns.

    Knowns are the positive class. Thresholds are the distinct scores (scikit-learn's
    ``roc_curve`` without dropping points); the first ROC point reaching the TPR is used.
    """
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    k = _scores(known_scores, "known_scores")
    u = _scores(unknown_scores, "unknown_scores")
    y = np.concatenate([np.ones(k.size), np.zeros(u.size)])
    fpr, tprs, _ = roc_curve(y, np.concatenate([k, u]), drop_intermediate=False)
    # tprs is non-decreasing; tolerate float noise in e.g. 19/20 vs 0.95
    idx = int(np.searchsorted(tprs, tpr - 1e-12, side="left"))
    return float(100.0 * fpr[min(idx, fpr.size - 1)])


def open_scores_from_logits(pred: ArrayLike) -> np.ndarray:
    """Default open score of a (N, K) class-score matrix: the row maximum (SPEC §6)."""
    return _class_scores(pred, "pred").max(axis=1)


def open_set_report(
    pred_known: ArrayLike,
    pred_unknown: ArrayLike,
    labels: ArrayLike,
    score_known: ArrayLike | None = None,
    score_unknown: ArrayLike | None = None,
) -> dict[str, Any]:
    """Every open-set number of one split (SPEC §5.3, §6) as a JSON-ready dict.

    The open score defaults to the row max of the class scores; methods with their own
    rule (SPEC §7) pass ``score_known``/``score_unknown``. The closed-set numbers are
    computed on the known test clips only (``closed_acc`` = their accuracy = ``war``).
    """
    s_k, s_u, _ = _open_scores(pred_known, pred_unknown, labels, score_known, score_unknown)
    kw = {"known_scores": s_k, "unknown_scores": s_u}
    num_known = np.asarray(pred_known).shape[1]
    closed = closed_set_report(pred_known, labels, num_known)
    return {
        "auroc": auroc(s_k, s_u),
        "oscr": oscr(pred_known, pred_unknown, labels, **kw),
        "oscr_textbook": oscr_textbook(pred_known, pred_unknown, labels, **kw),
        "fpr95": fpr_at_tpr(s_k, s_u, 0.95),
        "closed_acc": closed["war"],
        "war": closed["war"],
        "uar": closed["uar"],
        "macro_f1": closed["macro_f1"],
        "ovr_auc": closed.get("ovr_auc"),
        "per_class_recall": closed["per_class_recall"],
        "confusion": closed["confusion"],
        "num_known": int(s_k.size),
        "num_unknown": int(s_u.size),
    }
