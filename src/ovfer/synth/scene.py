"""Framing, backgrounds and the camera: where the face goes and how the frame looks.

``aligned`` framing mimics the output of a face pipeline: a similarity transform puts
the (posed) eye centres on fixed positions, like landmark alignment does, so the head
pose shows as a shifted silhouette rather than a rotated crop. ``scene`` framing places
the same person at a random position and scale in a cluttered room, for ``preprocess``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import AppearanceConfig, FramingConfig

Box = tuple[int, int, int, int]


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 similarity transform mapping the two points ``src`` exactly onto ``dst``."""
    a = complex(*(dst[1] - dst[0])) / complex(*(src[1] - src[0]))
    b = complex(*dst[0]) - a * complex(*src[0])
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


@dataclass
class Placement:
    """Per-clip framing: eye targets (aligned) or head centre/scale (scene), empty frames."""

    mode: str
    size: tuple[int, int]  # (H, W)
    eyes: np.ndarray | None  # aligned: (T, 2, 2) target eye centres in output pixels
    centre: np.ndarray | None  # scene: (T, 2) output position of the face origin
    iod: float  # scene: pixels per face unit
    empty: np.ndarray  # (T,) bool: frame shows no face

    def transform(self, t: int, eyes_face: np.ndarray) -> np.ndarray:
        """Face units (after pose) -> output pixels for frame ``t``."""
        if self.mode == "aligned":
            return similarity(eyes_face, self.eyes[t])
        cx, cy = self.centre[t]
        return np.array([[self.iod, 0.0, cx], [0.0, self.iod, cy]])


def sample_placement(rng: np.random.Generator, T: int, H: int, W: int, cfg: FramingConfig,
                     zoom: float = 1.0) -> Placement:
    """``zoom`` scales the aligned crop (used to normalise face width, as box-based crops do)."""
    empty = np.zeros(T, bool)
    if cfg.mode == "aligned":
        d, y = cfg.eye_distance * W * zoom, cfg.eye_y * H
        base = np.array([[W / 2 - d / 2, y], [W / 2 + d / 2, y]])
        jit = rng.normal(0, cfg.jitter * W, (1, 2, 2))
        jit[:, 1] = jit[:, 0] + (jit[:, 1] - jit[:, 0]) * 0.5  # mostly shift, a little scale/tilt
        eyes = base + jit + rng.normal(0, cfg.frame_jitter * W, (T, 2, 2))
        return Placement("aligned", (H, W), eyes, None, 0.0, empty)
    iod = _u(rng, cfg.scene_iod) * H
    # keep the head (about 1.9 IOD above and 1.6 below the eyes, 1.5 to each side) inside
    lo = np.array([1.6 * iod, 2.0 * iod])
    hi = np.array([W - 1.6 * iod, H - 1.7 * iod])
    hi = np.maximum(hi, lo + 1)
    start = rng.uniform(lo, hi)
    drift = rng.uniform(-1, 1, 2) * cfg.scene_drift * W
    end = np.clip(start + drift, lo, hi)
    w = np.linspace(0, 1, T)[:, None]
    centre = start * (1 - w) + end * w + rng.normal(0, 0.3, (T, 2))
    if rng.random() < cfg.empty_prob:
        n = int(rng.integers(cfg.empty_frames[0], cfg.empty_frames[1] + 1))
        n = min(n, T - 2)
        if rng.random() < 0.5:
            empty[:n] = True
        else:
            empty[T - n:] = True
    return Placement("scene", (H, W), None, centre, iod, empty)


def background(rng: np.random.Generator, H: int, W: int, mode: str, clutter: int = 0) -> np.ndarray:
    """A static background (float32 RGB): soft gradient for aligned crops, a room for scenes."""
    c1, c2 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    if mode == "aligned":
        c1, c2 = c1 * 0.6 + 40, c2 * 0.6 + 40  # muted: a blurred backdrop
    ang = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    ramp = ((xs / W - 0.5) * np.cos(ang) + (ys / H - 0.5) * np.sin(ang)) + 0.5
    img = (c1 * (1 - ramp[..., None]) + c2 * ramp[..., None]).astype(np.float32)
    if mode == "aligned":
        for _ in range(3):
            cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.2, 0.5) * W
            colour = tuple(float(x) for x in rng.uniform(40, 200, 3))
            cv2.circle(img, (int(cx), int(cy)), int(r), colour, -1, cv2.LINE_AA)
        return cv2.GaussianBlur(img, (0, 0), W / 10)
    return _clutter(rng, img, clutter)


def _clutter(rng: np.random.Generator, img: np.ndarray, n: int) -> np.ndarray:
    """Furniture-like clutter: frames, shelves with books, windows, lamps, plant pots, cables."""
    H, W = img.shape[:2]
    floor = int(H * rng.uniform(0.65, 0.85))
    img[floor:] = img[floor:] * 0.6 + rng.uniform(30, 120, 3) * 0.4
    col = lambda: tuple(float(x) for x in rng.uniform(20, 235, 3))  # noqa: E731
    for _ in range(n):
        kind = rng.choice(["frame", "shelf", "window", "lamp", "box", "line"])
        x, y = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        w, h = int(rng.uniform(0.08, 0.3) * W), int(rng.uniform(0.08, 0.35) * H)
        if kind == "frame":
            cv2.rectangle(img, (x, y), (x + w, y + h), col(), -1)
            m = max(2, w // 8)
            cv2.rectangle(img, (x + m, y + m), (x + w - m, y + h - m), col(), -1)
        elif kind == "shelf":
            cv2.rectangle(img, (x, y), (x + w, y + 4), col(), -1)
            bx = x
            while bx < x + w:
                bw = int(rng.uniform(3, 8))
                cv2.rectangle(img, (bx, y - int(rng.uniform(8, 20))), (bx + bw, y), col(), -1)
                bx += bw + 1
        elif kind == "window":
            cv2.rectangle(img, (x, y), (x + w, y + h), tuple(float(v) for v in rng.uniform(190, 250, 3)), -1)
            cv2.line(img, (x + w // 2, y), (x + w // 2, y + h), (90, 90, 90), 2)
            cv2.line(img, (x, y + h // 2), (x + w, y + h // 2), (90, 90, 90), 2)
        elif kind == "lamp":
            cv2.line(img, (x, y), (x, min(H, y + h)), (60, 60, 60), 2)
            cv2.ellipse(img, (x, y), (w // 3 + 2, h // 5 + 2), 0, 180, 360, col(), -1, cv2.LINE_AA)
        elif kind == "box":
            cv2.rectangle(img, (x, max(y, floor - h)), (x + w, floor), col(), -1)
        else:
            end = (int(rng.uniform(0, W)), int(rng.uniform(0, H)))
            cv2.line(img, (x, y), end, col(), int(rng.integers(1, 4)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 0.8)


@dataclass
class Lighting:
    """Per-clip camera and light settings."""

    brightness: float
    contrast: float
    gain: np.ndarray  # (3,)
    ramp: np.ndarray | None  # (H, W, 1) multiplicative light falloff, or None
    shading: float
    side: float
    noise_sd: float
    blur: float


def sample_lighting(rng: np.random.Generator, H: int, W: int, cfg: AppearanceConfig) -> Lighting:
    g = _u(rng, cfg.gradient)
    ang = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    ramp = 1.0 + g * ((xs / W - 0.5) * np.cos(ang) + (ys / H - 0.5) * np.sin(ang)) * 2
    return Lighting(
        brightness=_u(rng, cfg.brightness), contrast=_u(rng, cfg.contrast),
        gain=np.clip(rng.normal(1.0, cfg.color_cast, 3), 0.6, 1.4).astype(np.float32),
        ramp=ramp[..., None].astype(np.float32) if g > 0 else None,
        shading=_u(rng, cfg.shading), side=_u(rng, cfg.light_side), noise_sd=_u(rng, cfg.noise_sd),
        blur=_u(rng, cfg.blur_sigma) if rng.random() < cfg.blur_prob else 0.0,
    )


def apply_camera(img: np.ndarray, light: Lighting, rng: np.random.Generator) -> np.ndarray:
    """Colour cast, contrast/brightness, light falloff, blur and sensor noise -> uint8 RGB."""
    out = img * light.gain
    if light.ramp is not None:
        out = out * light.ramp
    out = (out - 128.0) * light.contrast + 128.0 + light.brightness
    if light.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), light.blur)
    if light.noise_sd > 0:
        out = out + rng.standard_normal(out.shape, dtype=np.float32) * light.noise_sd
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
