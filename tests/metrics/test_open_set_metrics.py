"""Tests of ovfer.metrics.open_set against SPEC §6 test vectors and independent slow implementations."""
from __future__ import annotations

import numpy as np
import pytest

from ovfer.metrics import (
    auroc,
    fpr_at_tpr,
    open_set_report,
    oscr,
    oscr_curve,
    oscr_textbook,
)

# SPEC §6 test vectors
A_KNOWN = [[0.9, 0.1], [0.2, 0.7], [0.6, 0.4], [0.3, 0.35]]
A_LABELS = [0, 1, 1, 1]
A_UNKNOWN = [[0.5, 0.2], [0.1, 0.8], [0.32, 0.1]]
D_KNOWN = [[3, 1, 0], [0, 2, 1], [1, 0, 4], [0.5, 0.2, 0.1], [2, 2.5, 0]]
D_LABELS = [0, 1, 2, 1, 0]
D_UNKNOWN = [[5, 0, 0], [0, 1.5, 0], [0, 0, 0.7], [2.2, 0, 0]]


# ---- slow reference implementations, written straight from the definitions ----------------

def brute_auroc(known, unknown) -> float:
    hits = sum(1 for a in known for b in unknown if a > b)
    return 100.0 * hits / (len(known) * len(unknown))


def slow_oscr(pred_known, pred_unknown, labels) -> float:
    """SPEC §6 recipe, step by step with Python lists."""
    pk, pu = np.asarray(pred_known, float), np.asarray(pred_unknown, float)
    samples = []  # (score, is_correct_known, is_unknown)
    for row, y in zip(pk, labels):
        samples.append((float(row.max()), int(row.argmax()) == int(y), False))
    for row in pu:
        samples.append((float(row.max()), False, True))
    ranked = sorted(samples, key=lambda t: t[0])  # Python's sort is stable
    n, n_k, n_u = len(ranked), len(pk), len(pu)
    ccr = [0.0] * (n + 2)
    fpr = [0.0] * (n + 2)
    for k in range(n - 1):
        ccr[k] = sum(1 for t in ranked[k + 1:] if t[1]) / n_k
        fpr[k] = sum(1 for t in ranked[k:] if t[2]) / n_u
    ccr[n + 1], fpr[n + 1] = 1.0, 1.0
    pts = sorted(zip(fpr, ccr), reverse=True)
    area = 0.0
    for j in range(len(pts) - 1):
        area += (pts[j][0] - pts[j + 1][0]) * (pts[j][1] + pts[j + 1][1]) / 2.0
    return 100.0 * area


def slow_oscr_textbook(pred_known, pred_unknown, labels) -> float:
    """Threshold sweep over distinct scores, trapezoid area of CCR against FPR."""
    pk, pu = np.asarray(pred_known, float), np.asarray(pred_unknown, float)
    sk, su = pk.max(1), pu.max(1)
    ok = pk.argmax(1) == np.asarray(labels)
    pts = [(0.0, 0.0)]
    for t in sorted(set(sk.tolist()) | set(su.tolist()), reverse=True):
        pts.append((float(np.mean(su >= t)), float(np.sum((sk >= t) & ok) / len(sk))))
    return 100.0 * sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(pts[:-1], pts[1:]))


def random_case(rng: np.random.Generator, ties: bool = False):
    n_k, n_u, k = int(rng.integers(1, 30)), int(rng.integers(1, 30)), int(rng.integers(2, 6))
    if ties:
        pk = rng.integers(0, 4, size=(n_k, k)).astype(float)
        pu = rng.integers(0, 4, size=(n_u, k)).astype(float)
    else:  # continuous scores: ties have probability 0
        pk, pu = rng.normal(size=(n_k, k)), rng.normal(size=(n_u, k))
    labels = rng.integers(0, k, size=n_k)
    return pk, pu, labels


# ---- test vectors ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "pk,pu,y,want_auroc,want_oscr",
    [(A_KNOWN, A_UNKNOWN, A_LABELS, 66.666667, 41.666667), (D_KNOWN, D_UNKNOWN, D_LABELS, 55.0, 37.5)],
    ids=["A", "D"],
)
def test_spec_vectors(pk, pu, y, want_auroc, want_oscr):
    assert auroc(np.max(pk, 1), np.max(pu, 1)) == pytest.approx(want_auroc, abs=1e-6)
    assert oscr(pk, pu, y) == pytest.approx(want_oscr, abs=1e-6)
    rep = open_set_report(pk, pu, y)
    assert rep["auroc"] == pytest.approx(want_auroc, abs=1e-6)
    assert rep["oscr"] == pytest.approx(want_oscr, abs=1e-6)


def test_textbook_vectors_by_hand():
    # A: correct knowns 0.9, 0.7, 0.35 beat 3, 2, 1 of the unknowns 0.5, 0.8, 0.32 -> 6 / 12
    assert oscr_textbook(A_KNOWN, A_UNKNOWN, A_LABELS) == pytest.approx(50.0)
    # D: correct knowns 3 (beats 2.2, 1.5, 0.7), 2 (beats 1.5, 0.7), 4 (beats 2.2, 1.5, 0.7) -> 8 / 20
    assert oscr_textbook(D_KNOWN, D_UNKNOWN, D_LABELS) == pytest.approx(40.0)


# ---- random agreement -------------------------------------------------------------------

def test_random_tie_free_agree_with_slow_versions():
    rng = np.random.default_rng(1234)
    for _ in range(500):
        pk, pu, y = random_case(rng)
        sk, su = pk.max(1), pu.max(1)
        assert auroc(sk, su) == pytest.approx(brute_auroc(sk, su), abs=1e-9)
        assert oscr(pk, pu, y) == pytest.approx(slow_oscr(pk, pu, y), abs=1e-9)
        assert oscr_textbook(pk, pu, y) == pytest.approx(slow_oscr_textbook(pk, pu, y), abs=1e-9)


def test_random_with_ties_agree_with_slow_versions():
    rng = np.random.default_rng(99)
    for _ in range(200):
        pk, pu, y = random_case(rng, ties=True)
        sk, su = pk.max(1), pu.max(1)
        assert auroc(sk, su) == pytest.approx(brute_auroc(sk, su), abs=1e-9)
        assert oscr(pk, pu, y) == pytest.approx(slow_oscr(pk, pu, y), abs=1e-9)
        assert oscr_textbook(pk, pu, y) == pytest.approx(slow_oscr_textbook(pk, pu, y), abs=1e-9)


def test_oscr_half_step_closed_form():
    """Tie-free: each unknown earns its correct knowns above it, minus ½ if one sits directly above."""
    rng = np.random.default_rng(7)
    for _ in range(100):
        pk, pu, y = random_case(rng)
        sk, su, ok = pk.max(1), pu.max(1), pk.argmax(1) == y
        s = np.concatenate([sk, su])
        order = np.argsort(s)
        correct = np.concatenate([ok, np.zeros(len(su), bool)])[order]
        unknown = np.concatenate([np.zeros(len(sk), bool), np.ones(len(su), bool)])[order]
        total = 0.0
        for pos in np.flatnonzero(unknown):
            total += correct[pos + 1:].sum()
            if pos + 1 < len(s) and correct[pos + 1]:
                total -= 0.5
        assert oscr(pk, pu, y) == pytest.approx(100 * total / (len(sk) * len(su)), abs=1e-9)


def test_curve_area_is_textbook_oscr():
    rng = np.random.default_rng(3)
    for ties in (False, True):
        for _ in range(50):
            pk, pu, y = random_case(rng, ties=ties)
            f, c = oscr_curve(pk, pu, y)
            assert f[0] == 0 and c[0] == 0 and f[-1] == pytest.approx(1.0)
            assert np.all(np.diff(f) >= 0) and np.all(np.diff(c) >= 0)
            assert c[-1] == pytest.approx(np.mean(pk.argmax(1) == y))
            area = 100 * np.sum(np.diff(f) * (c[1:] + c[:-1]) / 2)
            assert area == pytest.approx(oscr_textbook(pk, pu, y), abs=1e-9)


# ---- explicit ties ------------------------------------------------------------------------

def test_auroc_ties_count_zero():
    assert auroc([0.5], [0.5]) == 0.0
    assert auroc([0.5, 0.5], [0.5, 0.4]) == pytest.approx(50.0)  # 2 wins of 4 pairs, ties 0
    assert auroc([1.0, 2.0], [0.0]) == 100.0
    assert auroc([0.0], [1.0, 2.0]) == 0.0


def test_oscr_ties_put_knowns_below_unknowns():
    # One correct known tied with one unknown: stable sort puts the known first, so no credit.
    assert oscr([[0.5, 0.1]], [[0.5, 0.2]], [0]) == 0.0
    # Same pair separated: the one unknown sits directly below the correct known -> ½ pair = 50.
    assert oscr([[0.6, 0.1]], [[0.5, 0.2]], [0]) == pytest.approx(50.0)
    # Textbook counts the tie as ½ and the clean win as 1.
    assert oscr_textbook([[0.5, 0.1]], [[0.5, 0.2]], [0]) == pytest.approx(50.0)
    assert oscr_textbook([[0.6, 0.1]], [[0.5, 0.2]], [0]) == pytest.approx(100.0)


def test_oscr_ignores_wrong_knowns_and_uses_given_open_scores():
    pk, pu, y = [[0.9, 0.1], [0.8, 0.2]], [[0.1, 0.3]], [1, 1]  # both knowns misclassified
    assert oscr(pk, pu, y) == 0.0 and oscr_textbook(pk, pu, y) == 0.0
    # custom open scores reorder the ranking; correctness still comes from the argmax
    pk, pu, y = [[0.9, 0.1], [0.1, 0.8]], [[0.7, 0.1]], [0, 1]
    assert oscr_textbook(pk, pu, y, known_scores=[0.0, 0.0], unknown_scores=[1.0]) == 0.0
    assert auroc([0.0, 0.0], [1.0]) == 0.0


def test_fpr_at_tpr():
    known = np.arange(1, 21, dtype=float)  # 20 knowns 1..20; 95 % TPR keeps 19 -> threshold 2
    unknown = np.array([0.5, 1.5, 2.0, 2.5, 30.0])
    assert fpr_at_tpr(known, unknown) == pytest.approx(60.0)  # 2.0, 2.5, 30 accepted
    assert fpr_at_tpr(known, unknown, tpr=1.0) == pytest.approx(80.0)  # threshold 1
    assert fpr_at_tpr([2.0, 3.0], [0.0, 1.0]) == 0.0


def test_input_errors():
    with pytest.raises(ValueError, match="empty"):
        auroc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan], [1.0])
    with pytest.raises(ValueError, match="labels"):
        oscr([[1.0, 0.0]], [[1.0, 0.0]], [0, 1])
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        oscr([1.0, 0.0], [[1.0, 0.0]], [0])


def test_report_keys_and_types():
    rep = open_set_report(D_KNOWN, D_UNKNOWN, D_LABELS)
    for key in ("auroc", "oscr", "oscr_textbook", "fpr95", "closed_acc", "uar", "war", "macro_f1"):
        assert isinstance(rep[key], float), key
    assert rep["closed_acc"] == pytest.approx(60.0)
    assert rep["num_known"] == 5 and rep["num_unknown"] == 4
    assert len(rep["confusion"]) == 3
