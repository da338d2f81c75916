"""EmoCLIP's downsample-window sampler (METHODS §3 "Frames") against hand-computed indices.

Rule: keep frames with index % 4 == 0 (n' of them); start r; if r + 32 < n' take r..r+31,
else r..n'-1 then 0..min(r+32-n', n')-1 (one wrap); reflect-pad to 32 without repeating
the edge. Expected arrays below are written out by hand as positions p in the kept list
(index = 4p).
"""
import numpy as np
import pytest

from ovfer.data.sampling import build_sampler, window_indices


class Start:
    """A stand-in generator whose draw is the start r."""

    def __init__(self, r: int) -> None:
        self.r = r

    def integers(self, lo, hi):
        assert lo == 0 and 0 <= self.r < hi
        return self.r


def positions(n: int, r: int) -> list[int]:
    idx = window_indices(n, 32, 4, start="random", rng=Start(r))  # type: ignore[arg-type]
    assert idx.dtype == np.int64 and len(idx) == 32 and all(i % 4 == 0 and 0 <= i < n for i in idx)
    return [int(i) // 4 for i in idx]


def test_long_clip_near_the_end_wraps_once():
    # n = 200 -> n' = 50; r = 45: 45..49, then 0..26 (45 + 32 - 50 = 27 frames)
    assert positions(200, 45) == [45, 46, 47, 48, 49] + list(range(27))
    assert window_indices(200, 32, 4, "random", Start(45))[:6].tolist() == [180, 184, 188, 192, 196, 0]


def test_window_ending_exactly_at_the_last_kept_frame():
    # r + 32 = n': the else-branch takes r..n'-1 and wraps min(0, n') = 0 frames
    assert positions(200, 18) == list(range(18, 50))
    # r + 32 < n': the plain window
    assert positions(200, 17) == list(range(17, 49))


def test_short_clip_wraps_then_reflects():
    # n = 40 -> n' = 10 kept frames (< 32). r = 6: 6..9, wrap once 0..9 (min(28, 10) = 10) -> 14 frames,
    # then the mirror without repeating the edge: back 8..0 and 9..6, then forward again 7..1.
    body = [6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    mirror = [8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6]
    forward = [7, 8, 9, 0, 1]
    assert positions(40, 6) == body + mirror + forward
    # r = 0: 0..9 and the wrap 0..9, then the mirror
    assert positions(40, 0) == list(range(10)) * 2 + [8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7]


def test_tiny_clips():
    # n = 3 -> one kept frame (index 0): the wrap repeats it, the pad can only repeat it
    assert window_indices(3, 32, 4, "random", Start(0)).tolist() == [0] * 32
    # n = 9 -> kept 0, 4, 8; r = 2: [2] + wrap [0, 1, 2], then mirror 1, 0, then 2, 0, 1, ...
    assert positions(9, 2) == ([2, 0, 1, 2, 1, 0] * 6)[:32]
    # n = 5 -> kept 0, 4; r = 1: [1] + wrap [0, 1] -> alternating, never two equal neighbours
    assert positions(5, 1) == [1, 0] * 16


def test_center_start_and_first_start():
    # n = 400 -> n' = 100; centre r = (100 - 32) // 2 = 34
    assert window_indices(400, 32, 4, "center").tolist() == [4 * p for p in range(34, 66)]
    # a short clip has no centre to speak of: r = 0
    assert window_indices(40, 32, 4, "center").tolist() == window_indices(40, 32, 4, "first").tolist()


def test_seeded_start_is_fixed_per_generator_and_without_one():
    a = window_indices(300, 32, 4, "seeded", np.random.default_rng(3))
    b = window_indices(300, 32, 4, "seeded", np.random.default_rng(3))
    assert a.tolist() == b.tolist()
    # predicting one video outside a dataset: no generator, still deterministic
    assert window_indices(300, 32, 4, "seeded").tolist() == window_indices(300, 32, 4, "seeded").tolist()
    with pytest.raises(ValueError, match="numpy Generator"):
        window_indices(300, 32, 4, "random")


def test_window_samplers_by_test_start():
    n = 400
    seeded, start, center = (build_sampler(name, num_frames=32) for name in ("window", "window_start", "window_center"))
    assert start(n, train=False).tolist() == list(range(0, 128, 4))
    assert center(n, train=False).tolist() == [4 * p for p in range(34, 66)]
    assert seeded(n, False, np.random.default_rng(1)).tolist() == seeded(n, False, np.random.default_rng(1)).tolist()
    # training windows start at random for all three
    for s in (seeded, start, center):
        draws = {int(s(n, True, np.random.default_rng(i))[0]) for i in range(20)}
        assert len(draws) > 1
