import math

import pytest
import torch

from ovfer.losses import arpl_logits, arpl_margin, kl_divergence, smooth_one_hot, soft_cross_entropy, supcon_loss
from ovfer.losses.infonce import symmetric_infonce


def test_arpl_logits_by_hand():
    x = torch.tensor([[1.0, 2.0]])
    p = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # ||x-p0||²/2 - x·p0 = 5/2 - 0 ; ||x-p1||²/2 - x·p1 = 1/2 - 3
    assert torch.allclose(arpl_logits(x, p), torch.tensor([[2.5, -2.5]]))


def test_arpl_margin_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    p = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1])
    r = torch.tensor(2.0)
    # dists: 2.5 and 1.0 -> relu(2.5-2+1)=1.5, relu(1-2+1)=0 -> mean 0.75
    assert math.isclose(float(arpl_margin(x, p, labels, r)), 0.75, rel_tol=1e-6)


def test_supcon_by_hand():
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    t = 0.5
    # anchor 0: sims to 1 and 2 are 1/t=2 and 0; -log(e^2/(e^2+e^0)); anchor 1 same; anchor 2 has no positive
    expected = 0.5 * -math.log(math.exp(2) / (math.exp(2) + 1))
    assert math.isclose(float(supcon_loss(f, y, t, 0.5)), expected, rel_tol=1e-6)


def test_supcon_without_positive_is_zero_with_finite_grad():
    f = torch.randn(4, 3, requires_grad=True)
    loss = supcon_loss(f, torch.arange(4))
    assert float(loss) == 0.0
    loss.backward()
    assert torch.isfinite(f.grad).all()


def test_supcon_normalises_features():
    f = torch.randn(6, 5)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.allclose(supcon_loss(f, y), supcon_loss(3.0 * f, y), atol=1e-6)


def test_soft_ce_equals_ce_for_one_hot_and_smoothing():
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(soft_cross_entropy(logits, smooth_one_hot(y, 4)), torch.nn.functional.cross_entropy(logits, y))
    s = smooth_one_hot(y, 4, 0.1)
    assert torch.allclose(s.sum(1), torch.ones(5))
    assert math.isclose(float(s[0, 0]), 0.9 + 0.025, rel_tol=1e-6)


def test_kl_by_hand():
    a = torch.tensor([[0.0, math.log(3.0)]])  # p = [1/4, 3/4]
    b = torch.zeros(1, 2)  # q = [1/2, 1/2]
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert math.isclose(float(kl_divergence(a, b)), expected, rel_tol=1e-6)


def test_infonce_identity_and_groups():
    s = torch.randn(4, 4)
    ce = torch.nn.functional.cross_entropy
    expected = 0.5 * (ce(s, torch.arange(4)) + ce(s.t(), torch.arange(4)))
    assert torch.allclose(symmetric_infonce(s), expected)
    g = torch.tensor([0, 0, 1, 2])
    # rows 0 and 1 share their target mass over columns 0 and 1
    lp = torch.log_softmax(s, 1)
    row0 = -(0.5 * lp[0, 0] + 0.5 * lp[0, 1])
    got = symmetric_infonce(s, g)
    assert torch.isfinite(got) and got > 0
    assert float(got) != pytest.approx(float(expected))
    assert float(row0) > 0
