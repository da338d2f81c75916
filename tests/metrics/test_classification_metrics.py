"""Tests of ovfer.metrics.classification (SPEC §5.1)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ovfer.metrics import (
    accuracy,
    closed_set_report,
    confusion,
    macro_f1,
    ovr_auc,
    per_class_recall,
    uar,
    war,
)

LABELS = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
PRED = [0, 0, 0, 1, 1, 0, 2, 2, 1, 2]


def test_hand_computed_values():
    # recalls: class 0 3/4, class 1 1/2, class 2 3/4
    assert war(PRED, LABELS) == pytest.approx(70.0)
    assert accuracy(PRED, LABELS) == pytest.approx(70.0)
    assert uar(PRED, LABELS) == pytest.approx(100 * (0.75 + 0.5 + 0.75) / 3)
    assert per_class_recall(PRED, LABELS).tolist() == pytest.approx([75.0, 50.0, 75.0])
    cm = confusion(PRED, LABELS, 3)
    assert cm.tolist() == [[3, 1, 0], [1, 1, 0], [0, 1, 3]]
    # F1: class0 p=3/4 r=3/4; class1 p=1/3 r=1/2; class2 p=1 r=3/4
    f1 = [0.75, 2 * (1 / 3 * 0.5) / (1 / 3 + 0.5), 2 * 0.75 / 1.75]
    assert macro_f1(PRED, LABELS) == pytest.approx(100 * np.mean(f1))


def test_scores_are_argmaxed():
    scores = np.eye(3)[PRED] * 0.8 + 0.1
    assert war(scores, LABELS) == war(PRED, LABELS)
    assert uar(scores, LABELS) == uar(PRED, LABELS)


def test_uar_excludes_classes_without_samples():
    # class 1 has no sample among 3 classes: mean over classes 0 and 2 only
    assert uar([0, 2, 1], [0, 2, 2], num_classes=3) == pytest.approx(100 * (1.0 + 0.5) / 2)
    rec = per_class_recall([0, 2, 1], [0, 2, 2], num_classes=3)
    assert np.isnan(rec[1])


def test_ovr_auc_matches_perfect_and_chance():
    y = np.array([0, 1, 2, 0, 1, 2])
    assert ovr_auc(np.eye(3)[y], y) == pytest.approx(100.0)
    assert ovr_auc(np.ones((6, 3)), y) == pytest.approx(50.0)  # constant scores: all ties


def test_closed_set_report_is_json_ready():
    rep = closed_set_report(np.eye(4)[[0, 1, 1, 0]], [0, 1, 0, 0], num_classes=4)
    text = json.dumps(rep)  # no numpy types or NaN left inside
    assert "NaN" not in text
    assert rep["per_class_recall"][2] is None and rep["per_class_recall"][3] is None
    assert rep["confusion"][0] == [2, 1, 0, 0]
    assert rep["war"] == pytest.approx(75.0)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="samples"):
        war([0, 1], [0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confusion([0], [3], num_classes=2)
