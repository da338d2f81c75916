"""Per-frame tracks of a clip: expression AUs, blinks, talking, head pose and gaze.

The expression follows an onset -> apex -> offset curve with random timing and apex
intensity; each AU gets its own multiplicative noise and a small onset lag, so AUs do
not move in lockstep. Talking (AU25/26 oscillation) and blinks (AU45) are added on top
and are *not* part of the label: they make single frames ambiguous.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .aus import AU_INDEX, AU_NAMES, CLASS_BEHAVIOUR, N_AUS, PROTOTYPES, to_vector
from .config import SynthConfig

_NO_LEAK = {"AU45", "AU12U", "AU14U"}
_BLINK = np.array([0.6, 1.0, 0.45], np.float32)  # AU45 over three frames


@dataclass
class Timeline:
    """Everything that changes over a clip's frames."""

    aus: np.ndarray  # (T, N_AUS) rendered intensities: expression + distractors
    expression: np.ndarray  # (T, N_AUS) the expression alone (what the label describes)
    curve: np.ndarray  # (T,) onset/apex/offset envelope in [0, 1]
    apex_frame: int
    apex_intensity: float
    weak: bool
    pose: np.ndarray  # (T, 3) yaw, pitch, roll in degrees
    gaze: np.ndarray  # (T, 2) in [-1, 1] of the eye's range
    talking: bool
    blinks: int
    side: int  # -1 / +1: image side of unilateral AUs (contempt)

    @property
    def apex_aus(self) -> np.ndarray:
        return self.expression[self.apex_frame]


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def envelope(rng: np.random.Generator, T: int, cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Sample onset/apex/offset timing; returns the (T,) curve and its phase boundaries (frames)."""
    e = cfg.expression
    d1 = max(1.0, _u(rng, e.onset) * T)
    d2 = max(1.0, _u(rng, e.apex) * T)
    d3 = max(1.0, _u(rng, e.offset) * T)
    s0 = min(_u(rng, e.onset_start) * T, max(0.0, T - 2.0 - d1))  # the apex is always inside the clip
    bounds = np.array([s0, s0 + d1, s0 + d1 + d2, s0 + d1 + d2 + d3])
    return _curve(np.arange(T, dtype=np.float64), bounds), bounds


def _curve(t: np.ndarray, b: np.ndarray) -> np.ndarray:
    up = _smooth((t - b[0]) / (b[1] - b[0]))
    down = 1.0 - _smooth((t - b[2]) / (b[3] - b[2]))
    return np.minimum(up, down)


def class_vector(rng: np.random.Generator, label: tuple[str, ...], cfg: SynthConfig) -> np.ndarray:
    """The clip's prototype: a variant per component, blended with random weights for compounds."""
    e = cfg.expression
    acc = np.zeros(N_AUS, np.float32)
    for name in label:
        variants = PROTOTYPES[name]
        k = 0
        if name == "disgust" and len(variants) > 1:
            k = 0 if rng.random() < e.disgust_variant_prob else 1
        w = 1.0 if len(label) == 1 else _u(rng, e.compound_weight)
        acc += w * to_vector(variants[k])
    return np.clip(acc, 0.0, 1.0)


def sample_timeline(rng: np.random.Generator, label: tuple[str, ...], cfg: SynthConfig) -> Timeline:
    """Draw every per-frame track of one clip of class ``label``."""
    T, e, d = cfg.video.frames, cfg.expression, cfg.distractors
    proto = class_vector(rng, label, cfg)
    weak = bool(rng.random() < e.weak_prob)
    apex = _u(rng, e.weak_intensity if weak else e.apex_intensity)
    active = proto > 0
    noisy = np.clip(proto * (1 + rng.normal(0, e.au_noise, N_AUS)), 0, 1).astype(np.float32) * active
    curve, bounds = envelope(rng, T, cfg)
    t = np.arange(T, dtype=np.float64)
    expr = np.zeros((T, N_AUS), np.float32)
    lags = rng.integers(-e.au_lag, e.au_lag + 1, N_AUS) if e.au_lag > 0 else np.zeros(N_AUS, int)
    for k in np.flatnonzero(active):
        expr[:, k] = apex * noisy[k] * _curve(t - lags[k], bounds)
    if rng.random() < e.leak_prob:
        pool = [n for n in AU_NAMES if n not in _NO_LEAK and not active[AU_INDEX[n]]]
        k = AU_INDEX[pool[rng.integers(len(pool))]]
        expr[:, k] = _u(rng, e.leak_intensity) * curve
    on = expr > 0
    expr = np.clip(expr + on * rng.normal(0, e.frame_noise, expr.shape) * curve[:, None], 0, 1).astype(np.float32)
    peak = np.flatnonzero(curve >= curve.max() - 1e-6)
    apex_frame = int(peak[len(peak) // 2])

    behaviour: dict[str, float] = {}
    for name in label:
        for k, v in CLASS_BEHAVIOUR.get(name, {}).items():
            behaviour[k] = behaviour.get(k, 0.0) + v
    aus = expr.copy()
    talking = bool(rng.random() < d.talk_prob)
    if talking:
        amp, period = _u(rng, d.talk_amplitude), _u(rng, d.talk_period)
        talk = amp * (0.5 - 0.5 * np.cos(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)))
        start = int(rng.integers(0, max(1, T // 2)))
        talk[:start] = 0.0
        aus[:, AU_INDEX["AU26"]] = np.maximum(aus[:, AU_INDEX["AU26"]], talk)
        aus[:, AU_INDEX["AU25"]] = np.maximum(aus[:, AU_INDEX["AU25"]], np.clip(3 * talk, 0, 1))
    rate = d.blink_rate * behaviour.get("blink", 1.0)
    blink = np.zeros(T + len(_BLINK), np.float32)
    blinks = 0
    for i in range(T):
        if blink[i] == 0 and rng.random() < rate:
            blink[i:i + len(_BLINK)] = np.maximum(blink[i:i + len(_BLINK)], _BLINK)
            blinks += 1
    aus[:, AU_INDEX["AU45"]] = np.maximum(aus[:, AU_INDEX["AU45"]], blink[:T])
    return Timeline(
        aus=aus, expression=expr, curve=curve.astype(np.float32), apex_frame=apex_frame,
        apex_intensity=apex, weak=weak, pose=_pose(rng, T, cfg, curve, behaviour),
        gaze=_gaze(rng, T, cfg, curve, behaviour), talking=talking, blinks=blinks,
        side=int(rng.choice([-1, 1])),
    )


def _pose(rng: np.random.Generator, T: int, cfg: SynthConfig, curve: np.ndarray, beh: dict) -> np.ndarray:
    p = cfg.pose
    base = np.clip(rng.normal(0, [p.yaw_sd, p.pitch_sd, p.roll_sd]), -p.max_angle, p.max_angle)
    amp, period = _u(rng, p.motion_amplitude), _u(rng, p.motion_period)
    t = np.arange(T)[:, None]
    phase = rng.uniform(0, 2 * np.pi, 3)
    sway = amp * np.array([1.0, 0.6, 0.5]) * np.sin(2 * np.pi * t / (period * np.array([1.0, 1.3, 0.8])) + phase)
    pose = base + sway
    pose[:, 1] += beh.get("pitch", 0.0) * curve
    pose[:, 2] += beh.get("roll", 0.0) * curve * rng.choice([-1, 1])
    return pose.astype(np.float32)


def _gaze(rng: np.random.Generator, T: int, cfg: SynthConfig, curve: np.ndarray, beh: dict) -> np.ndarray:
    d = cfg.distractors
    g0 = np.clip(rng.normal(0, d.gaze_sd, 2), -1, 1)
    gaze = np.tile(g0, (T, 1))
    if rng.random() < min(1.0, d.gaze_shift_prob * (1 + beh.get("gaze_shift", 0.0))):
        g1 = np.clip(rng.normal(0, max(d.gaze_sd, 0.3) * 1.5, 2), -1, 1)
        ts = rng.uniform(0, T - 1)
        w = _smooth((np.arange(T) - ts) / 2.0)[:, None]
        gaze = gaze * (1 - w) + g1 * w
    gaze[:, 1] += beh.get("gaze_y", 0.0) * curve
    return np.clip(gaze, -1, 1).astype(np.float32)
