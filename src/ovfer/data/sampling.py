"""Frame samplers: pure functions from a frame count to frame indices (SPEC §2.4, METHODS §1–§4).

Every sampler has a train mode (random, from a ``numpy.random.Generator`` the dataset
derives per (seed, epoch, sample)) and a deterministic test mode. Indices are int64
arrays of length T into the clip's frames, in temporal order. Samplers are registered by
name in :data:`SAMPLERS` and built from a :class:`SamplerConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from ovfer.registry import Registry

ShortPolicy = Literal["repeat_last", "edge_pad", "spread", "spread_round"]
WindowStart = Literal["random", "seeded", "first", "center"]


def _check(n: int, T: int) -> None:
    if n < 1:
        raise ValueError(f"cannot sample from a clip with {n} frames")
    if T < 1:
        raise ValueError(f"number of frames to sample must be >= 1, got {T}")


def _need_rng(rng: np.random.Generator | None, who: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{who}: train mode needs a numpy Generator (the dataset derives one per sample)")
    return rng


def pad_short(n: int, T: int, policy: ShortPolicy = "repeat_last") -> np.ndarray:
    """Indices for a clip shorter than T (SPEC §2.4).

    ``repeat_last``/``edge_pad``: 0..n-1, then n-1 repeated (DFER-CLIP).
    ``spread``/``spread_round``: round-half-even(i·n/T), every frame repeated evenly (DK-CLIP).
    """
    _check(n, T)
    if policy in ("repeat_last", "edge_pad"):
        return np.minimum(np.arange(T), n - 1).astype(np.int64)
    if policy in ("spread", "spread_round"):
        # np.rint rounds half to even; i*n/T is exact whenever it is a .5 tie.
        return (np.rint(np.arange(T) * n / T).astype(np.int64)) % n
    raise ValueError(f"unknown short-clip policy {policy!r}; valid: repeat_last, edge_pad, spread, spread_round")


def segment_centres(n: int, T: int) -> np.ndarray:
    """Centre of each of T equal segments: ``int(n/T/2 + s·n/T)`` = ⌊n(2s+1)/(2T)⌋ (integer-exact)."""
    s = np.arange(T, dtype=np.int64)
    return (n * (2 * s + 1)) // (2 * T)


def tsn_indices(
    n: int, T: int, train: bool, rng: np.random.Generator | None = None, short: ShortPolicy = "repeat_last"
) -> np.ndarray:
    """TSN sampling (SPEC §2.4, HESP): T equal segments of length n/T.

    Train: a uniform frame inside each segment (segment s holds the integers in
    [s·n/T, (s+1)·n/T)). Test: each segment's centre. n < T: the ``short`` policy.
    """
    _check(n, T)
    if n < T:
        return pad_short(n, T, short)
    if not train:
        return segment_centres(n, T)
    r = _need_rng(rng, "tsn")
    s = np.arange(T, dtype=np.int64)
    lo = (s * n + T - 1) // T  # ceil(s·n/T)
    hi = ((s + 1) * n + T - 1) // T  # exclusive; hi > lo because n >= T
    return r.integers(lo, hi).astype(np.int64)


def _strided(T: int, s: int, rng: np.random.Generator) -> np.ndarray:
    """idx_i = i·s + U{0..s-1}: the random-in-stride draw DFER-CLIP and DK-CLIP share."""
    return (np.arange(T, dtype=np.int64) * s + rng.integers(0, s, size=T)).astype(np.int64)


def dfer_clip_indices(n: int, T: int = 16, train: bool = True, rng: np.random.Generator | None = None) -> np.ndarray:
    """DFER-CLIP's exact rule (METHODS §1 "Frames"), n = the annotation's frame count.

    Train: s = ⌊n/T⌋; if s ≥ 1, idx_i = i·s + U{0..s-1}, else 0..n-1 padded with n-1.
    Test: if n > T, ⌊n/(2T) + i·n/T⌋, else the same padding.
    """
    _check(n, T)
    if train:
        s = n // T
        if s < 1:
            return pad_short(n, T, "repeat_last")
        return _strided(T, s, _need_rng(rng, "dfer_clip"))
    if n > T:
        return segment_centres(n, T)
    return pad_short(n, T, "repeat_last")


def dk_clip_indices(n: int, T: int = 16, train: bool = True, rng: np.random.Generator | None = None) -> np.ndarray:
    """DK-CLIP's exact rule (METHODS §2 "Frames"); indices are taken mod n.

    Train: s = ⌊n/T⌋; if s ≥ 1, idx_i = i·s + U{0..s-1}; else round-half-even(i·n/T).
    Test: ⌊i·n/T + n/(2T)⌋. (Dropping clips with < 3 frames is the dataset's job:
    ``SamplerConfig.min_frames``.)
    """
    _check(n, T)
    if train:
        s = n // T
        if s < 1:
            return pad_short(n, T, "spread_round")
        idx = _strided(T, s, _need_rng(rng, "dk_clip"))
    else:
        idx = segment_centres(n, T)
    return (idx % n).astype(np.int64)


def reflect_pad(seq: np.ndarray, T: int) -> np.ndarray:
    """Extend ``seq`` at its end to length T by mirroring, never repeating the edge element
    (``a b c`` -> ``a b c b a b c``). A one-element sequence can only repeat itself."""
    if len(seq) >= T:
        return seq[:T]
    if len(seq) == 1:
        return np.repeat(seq, T)
    return np.pad(seq, (0, T - len(seq)), mode="reflect")


def window_indices(
    n: int,
    T: int = 32,
    factor: int = 4,
    start: WindowStart = "random",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """EmoCLIP's downsample-window sampler (METHODS §3 "Frames"), train and test alike.

    (1) keep frames with index % factor == 0 (n' of them); (2) start r: ``random``/``seeded``
    draw U{0..n'-1} from ``rng`` (``seeded`` = the caller's rng depends only on (seed,
    sample), so a test window is fixed across epochs; without an rng, e.g. when one video
    is predicted outside a dataset, ``seeded`` draws from a generator seeded with 0),
    ``first`` r = 0, ``center`` centres the window; (3) take r..r+T-1, wrapping once to the
    start; (4) reflect-pad to T.
    """
    _check(n, T)
    if factor < 1:
        raise ValueError(f"downsample factor must be >= 1, got {factor}")
    kept = np.arange(0, n, factor, dtype=np.int64)
    m = len(kept)
    if start == "seeded" and rng is None:
        rng = np.random.default_rng(0)
    if start in ("random", "seeded"):
        r = int(_need_rng(rng, f"window(start={start})").integers(0, m))
    elif start == "first":
        r = 0
    elif start == "center":
        r = max(0, (m - T) // 2)
    else:
        raise ValueError(f"unknown window start {start!r}; valid: random, seeded, first, center")
    if r + T < m:
        pos = np.arange(r, r + T)
    else:
        wrap = min(r + T - m, m)
        pos = np.concatenate([np.arange(r, m), np.arange(0, wrap)])
    return reflect_pad(kept[pos], T).astype(np.int64)


# --------------------------------------------------------------------------- configs and registry


@dataclass(frozen=True)
class SamplerConfig:
    """How a method picks frames; methods declare one in their data preset (STYLE pattern 5)."""

    name: str = "tsn"
    """A registered sampler: tsn, dfer_clip, dk_clip, window (window_start, window_center: the
    window with a fixed test start) (see :func:`list_samplers`)."""
    num_frames: int = 16
    """T, frames per clip (HESP/DFER-CLIP/DK-CLIP 16, EmoCLIP 32)."""
    short: ShortPolicy = "repeat_last"
    """tsn only: policy for clips shorter than T (SPEC §2.4)."""
    factor: int = 4
    """window*: temporal downsample factor (EmoCLIP scripts use 4)."""
    train_start: WindowStart = "random"
    """window only: start of the training window."""
    test_start: WindowStart = "seeded"
    """window only: start of the test window (METHODS §3: seeded per (seed, sample))."""
    min_frames: int = 1
    """Clips with fewer frames are skipped by the dataset (DK-CLIP: 3)."""

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {self.min_frames}")


@dataclass(frozen=True)
class Sampler:
    """A configured sampler: ``sampler(n, train, rng) -> indices`` (picklable for DataLoader workers)."""

    config: SamplerConfig
    fn: Callable[[SamplerConfig, int, bool, "np.random.Generator | None"], np.ndarray]

    @property
    def num_frames(self) -> int:
        return self.config.num_frames

    @property
    def min_frames(self) -> int:
        return self.config.min_frames

    def __call__(self, n: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.fn(self.config, n, train, rng)


#: name -> function(config, n, train, rng) -> indices.
SAMPLERS: Registry[Callable[[SamplerConfig, int, bool, "np.random.Generator | None"], np.ndarray]] = Registry("sampler")


@SAMPLERS.register("tsn")
def _tsn(cfg: SamplerConfig, n: int, train: bool, rng: np.random.Generator | None) -> np.ndarray:
    return tsn_indices(n, cfg.num_frames, train, rng, cfg.short)


@SAMPLERS.register("dfer_clip")
def _dfer(cfg: SamplerConfig, n: int, train: bool, rng: np.random.Generator | None) -> np.ndarray:
    return dfer_clip_indices(n, cfg.num_frames, train, rng)


@SAMPLERS.register("dk_clip")
def _dk(cfg: SamplerConfig, n: int, train: bool, rng: np.random.Generator | None) -> np.ndarray:
    return dk_clip_indices(n, cfg.num_frames, train, rng)


@SAMPLERS.register("window")
def _window(cfg: SamplerConfig, n: int, train: bool, rng: np.random.Generator | None) -> np.ndarray:
    return window_indices(n, cfg.num_frames, cfg.factor, cfg.train_start if train else cfg.test_start, rng)


@SAMPLERS.register("window_start")
def _window_start(cfg: SamplerConfig, n: int, train: bool, rng: np.random.Generator | None) -> np.ndarray:
    """EmoCLIP window whose test window starts at the first kept frame (``emoclip.test_window=start``)."""
    return window_indices(n, cfg.num_frames, cfg.factor, cfg.train_start if train else "first", rng)


@SAMPLERS.register("window_center")
def _window_center(cfg: SamplerConfig, n: int, train: bool, rng: np.random.Generator | None) -> np.ndarray:
    """EmoCLIP window whose test window is centred (``emoclip.test_window=center``)."""
    return window_indices(n, cfg.num_frames, cfg.factor, cfg.train_start if train else "center", rng)


#: Minimum frame count a sampler's method requires when it is built by name (METHODS §2: DK-CLIP
#: drops clips with fewer than 3 frames); other samplers accept any clip.
DEFAULT_MIN_FRAMES: dict[str, int] = {"dk_clip": 3}


def build_sampler(cfg: SamplerConfig | str, **overrides) -> Sampler:
    """A :class:`Sampler` from a config or a registered name (plus config field overrides).

    Built by name, ``min_frames`` defaults to :data:`DEFAULT_MIN_FRAMES` (``dk_clip``: 3).
    """
    if isinstance(cfg, str):
        overrides.setdefault("min_frames", DEFAULT_MIN_FRAMES.get(cfg, 1))
        cfg = SamplerConfig(name=cfg, **overrides)  # type: ignore[arg-type]
    elif overrides:
        from dataclasses import replace

        cfg = replace(cfg, **overrides)
    return Sampler(cfg, SAMPLERS.get(cfg.name))


def list_samplers() -> list[str]:
    """Names of the registered samplers."""
    return SAMPLERS.names()
