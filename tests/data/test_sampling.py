"""Frame samplers (SPEC §2.4, METHODS §1–§3 "Frames")."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from ovfer.data.sampling import (
    SamplerConfig,
    build_sampler,
    dfer_clip_indices,
    dk_clip_indices,
    list_samplers,
    pad_short,
    reflect_pad,
    tsn_indices,
    window_indices,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- TSN


@pytest.mark.parametrize("n, T", [(100, 8), (16, 16), (17, 16), (33, 16), (1000, 7), (95, 16)])
def test_tsn_test_is_segment_centre(n, T):
    expected = [int(n / T / 2 + s * n / T) for s in range(T)]
    assert tsn_indices(n, T, train=False).tolist() == expected


def test_tsn_test_exact_values():
    assert tsn_indices(100, 8, train=False).tolist() == [6, 18, 31, 43, 56, 68, 81, 93]


@pytest.mark.parametrize("n, T", [(16, 16), (37, 16), (100, 8), (31, 4)])
def test_tsn_train_one_frame_per_segment(n, T):
    r = rng(1)
    for _ in range(50):
        idx = tsn_indices(n, T, train=True, rng=r)
        assert len(idx) == T and idx.dtype == np.int64
        for s, i in enumerate(idx):
            assert s * n / T <= i < (s + 1) * n / T


def test_tsn_train_reaches_every_frame_of_a_segment():
    seen = {int(tsn_indices(40, 4, True, rng(k))[0]) for k in range(200)}
    assert seen == set(range(10))


def test_tsn_train_needs_rng():
    with pytest.raises(ValueError, match="Generator"):
        tsn_indices(40, 4, train=True)


def test_short_policies():
    assert tsn_indices(5, 8, False, short="repeat_last").tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert tsn_indices(5, 8, True, rng(), short="edge_pad").tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    # round-half-even(i*5/8): 0, .625, 1.25, 1.875, 2.5->2, 3.125, 3.75, 4.375
    assert tsn_indices(5, 8, False, short="spread_round").tolist() == [0, 1, 1, 2, 2, 3, 4, 4]
    assert pad_short(3, 4, "spread").tolist() == [0, 1, 2, 2]  # 0, .75, 1.5->2, 2.25
    assert pad_short(1, 4, "spread").tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="policy"):
        pad_short(3, 4, "loop")  # type: ignore[arg-type]


def test_zero_frames_rejected():
    with pytest.raises(ValueError, match="0 frames"):
        tsn_indices(0, 8, train=False)


# --------------------------------------------------------------------------- DFER-CLIP / DK-CLIP


def test_dfer_clip_rules():
    # train: s = 40 // 16 = 2, idx_i = 2i + U{0, 1}
    for k in range(20):
        idx = dfer_clip_indices(40, 16, train=True, rng=rng(k))
        assert all(2 * i <= v <= 2 * i + 1 for i, v in enumerate(idx))
    assert dfer_clip_indices(10, 16, True, rng()).tolist() == list(range(10)) + [9] * 6
    assert dfer_clip_indices(40, 16, False).tolist() == [int(40 / 32 + i * 40 / 16) for i in range(16)]
    assert dfer_clip_indices(16, 16, False).tolist() == list(range(16))  # n <= T: padding rule
    assert dfer_clip_indices(12, 16, False).tolist() == list(range(12)) + [11] * 4


def test_dk_clip_rules():
    for k in range(20):
        idx = dk_clip_indices(50, 16, train=True, rng=rng(k))  # s = 3
        assert all(3 * i <= v <= 3 * i + 2 for i, v in enumerate(idx))
    short = dk_clip_indices(10, 16, train=True, rng=rng())
    assert short.tolist() == np.round(np.arange(16) * 10 / 16).astype(int).tolist()
    assert short.tolist() == [0, 1, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9, 9]  # 2.5->2, 7.5->8: half even
    assert dk_clip_indices(10, 16, train=False).tolist() == [int(i * 10 / 16 + 10 / 32) for i in range(16)]
    assert dk_clip_indices(3, 16, train=False).max() < 3


# --------------------------------------------------------------------------- EmoCLIP window


def test_reflect_pad_never_repeats_edge():
    assert reflect_pad(np.array([1, 2, 3]), 7).tolist() == [1, 2, 3, 2, 1, 2, 3]
    assert reflect_pad(np.array([4]), 3).tolist() == [4, 4, 4]


def test_window_long_clip_contiguous():
    idx = window_indices(400, 32, 4, start="first")
    assert idx.tolist() == list(range(0, 128, 4))
    c = window_indices(400, 32, 4, start="center")  # n' = 100, r = 34
    assert c.tolist() == [4 * (34 + i) for i in range(32)]


def test_window_wraps_once_then_reflects():
    # n = 160 -> n' = 40 kept frames; r = 30: 30..39 then wrap 0..21 (32 in all)
    class Fixed:
        def integers(self, lo, hi):
            return 30
    idx = window_indices(160, 32, 4, start="random", rng=Fixed())  # type: ignore[arg-type]
    assert idx.tolist() == [4 * p for p in list(range(30, 40)) + list(range(0, 22))]
    # n = 40 -> n' = 10; r = 0: 0..9, wrap 0..9 (20), reflect-pad to 32
    short = window_indices(40, 32, 4, start="first")
    kept = list(range(0, 40, 4))
    body = kept + kept
    assert short.tolist() == body + body[-2::-1][:12]
    # r = 7 on n' = 10: 7,8,9 then 0..9 (13 frames), then reflect
    class Seven:
        def integers(self, lo, hi):
            return 7
    pos = [7, 8, 9] + list(range(10))
    s7 = window_indices(40, 32, 4, start="seeded", rng=Seven())  # type: ignore[arg-type]
    assert s7[:13].tolist() == [4 * p for p in pos]
    assert s7[13] == 4 * 8 and s7[14] == 4 * 7  # mirror of ...,8,9 without repeating 9


def test_window_random_is_seeded_and_in_range():
    a = window_indices(300, 32, 4, "random", rng(5))
    b = window_indices(300, 32, 4, "random", rng(5))
    assert a.tolist() == b.tolist()
    assert all(v % 4 == 0 and 0 <= v < 300 for v in a)
    assert len(window_indices(2, 32, 4, "random", rng())) == 32  # one kept frame


# --------------------------------------------------------------------------- registry/config


def test_registry_and_config():
    assert set(list_samplers()) >= {"tsn", "dfer_clip", "dk_clip", "window", "window_start", "window_center"}
    s = build_sampler(SamplerConfig(name="tsn", num_frames=8))
    assert s(100, False).tolist() == [6, 18, 31, 43, 56, 68, 81, 93]
    w = build_sampler("window", num_frames=8, factor=2, test_start="first")
    assert w(100, False).tolist() == list(range(0, 16, 2))
    assert pickle.loads(pickle.dumps(w))(100, False).tolist() == w(100, False).tolist()
    with pytest.raises(KeyError, match="did you mean 'tsn'"):
        build_sampler("tns")
    with pytest.raises(ValueError):
        SamplerConfig(num_frames=0)
