"""Random identities: face geometry and colours, drawn once per clip.

Geometry is in face units: the inter-ocular distance (IOD) is 1, the origin is the
midpoint between the eyes, y points down. Colours are RGB floats in 0..255.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import IdentityConfig, Range

#: Skin tones from light to dark (RGB); ``skin_tone`` interpolates along this list.
SKIN_PALETTE = np.array(
    [(252, 222, 198), (240, 196, 164), (226, 174, 134), (200, 144, 104),
     (172, 116, 80), (138, 92, 62), (108, 70, 50)], np.float32)
HAIR_COLOURS = np.array(
    [(28, 24, 22), (58, 40, 30), (98, 68, 44), (186, 156, 108), (136, 68, 38), (150, 148, 146)],
    np.float32)
IRIS_COLOURS = np.array(
    [(52, 34, 22), (92, 60, 34), (116, 96, 52), (76, 104, 68), (72, 112, 160), (112, 122, 134)],
    np.float32)
CLOTHES_COLOURS = np.array(
    [(40, 60, 110), (150, 40, 40), (60, 60, 60), (220, 220, 215), (40, 100, 70), (200, 160, 60)],
    np.float32)


@dataclass(frozen=True)
class Identity:
    """Everything that makes one synthetic person look like themselves."""

    female: bool
    face_w: float
    forehead: float
    chin: float
    jaw_taper: float
    eye_w: float
    eye_h: float
    eye_lo: float
    iris_r: float
    eye_tilt: float
    eye_offsets: tuple[float, float, float, float]  # (dx, dy) of the left then the right eye
    brow_y: float
    brow_th: float
    brow_arch: float
    brow_len: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_up: float
    lip_lo: float
    wrinkles: float
    hair_style: str
    hairline: float
    hair_volume: float
    beard: float
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    brow: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    sclera: tuple[float, float, float]
    clothes: tuple[float, float, float]
    chin_dots: tuple[tuple[float, float], ...]  # AU17 "orange peel" dimples, face units


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _rgb(c: np.ndarray) -> tuple[float, float, float]:
    c = np.clip(c, 0, 255)
    return (float(c[0]), float(c[1]), float(c[2]))


def _pick(rng: np.random.Generator, palette: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    i = rng.choice(len(palette), p=None if weights is None else weights / weights.sum())
    return palette[i] * rng.uniform(0.9, 1.1, 3).astype(np.float32)


def skin_colour(tone: float) -> np.ndarray:
    """Interpolated skin RGB for ``tone`` in [0, 1] (0 = lightest)."""
    x = float(np.clip(tone, 0, 1)) * (len(SKIN_PALETTE) - 1)
    i = min(int(x), len(SKIN_PALETTE) - 2)
    return SKIN_PALETTE[i] * (1 - (x - i)) + SKIN_PALETTE[i + 1] * (x - i)


def sample_identity(rng: np.random.Generator, cfg: IdentityConfig) -> Identity:
    """Draw one identity from ``cfg``'s ranges."""
    female = bool(rng.random() < cfg.female_prob)
    tone = _u(rng, cfg.skin_tone)
    skin = skin_colour(tone) * rng.uniform(0.96, 1.04, 3).astype(np.float32)
    # darker skin tones come with dark hair and eyes more often
    hair_w = np.array([3, 3, 2, 1.2 * (1 - tone), 0.6 * (1 - tone), 0.5], np.float32)
    hair = _pick(rng, HAIR_COLOURS, hair_w)
    iris_w = np.array([3, 3, 1.5, 1 - tone, 1.3 * (1 - tone), 0.6 * (1 - tone)], np.float32) + 0.05
    lips = skin * 0.72 + np.array([190, 70, 80], np.float32) * 0.28
    lips *= rng.uniform(0.82, 0.95)
    if female:
        lips = lips * 0.85 + np.array([175, 55, 70], np.float32) * 0.15 * rng.uniform(0.0, 1.0)
    styles = list(cfg.hair_styles)
    w = np.array([cfg.hair_styles[s] for s in styles], np.float64)
    if female:  # long hair more likely, baldness unlikely
        w = w * np.array([{"long": 2.5, "bald": 0.1}.get(s, 1.0) for s in styles])
    style = styles[rng.choice(len(styles), p=w / w.sum())]
    a = cfg.asymmetry
    thick = _u(rng, cfg.brow_thickness) * (0.8 if female else 1.1)
    chin_dots = tuple((float(rng.uniform(-0.16, 0.16)), float(rng.uniform(-0.06, 0.06))) for _ in range(6))
    return Identity(
        female=female,
        face_w=_u(rng, cfg.face_width) * (0.97 if female else 1.0),
        forehead=_u(rng, cfg.forehead),
        chin=_u(rng, cfg.chin),
        jaw_taper=_u(rng, cfg.jaw_taper) * (1.1 if female else 0.9),
        eye_w=_u(rng, cfg.eye_width),
        eye_h=_u(rng, cfg.eye_open),
        eye_lo=_u(rng, cfg.eye_open) * rng.uniform(0.6, 0.8),
        iris_r=_u(rng, cfg.iris),
        eye_tilt=float(rng.uniform(-0.02, 0.035)),
        eye_offsets=tuple(float(x) for x in rng.normal(0, a, 4)),
        brow_y=-_u(rng, cfg.brow_height),
        brow_th=thick,
        brow_arch=float(rng.uniform(0.02, 0.08)),
        brow_len=float(rng.uniform(0.85, 1.0)),
        nose_len=_u(rng, cfg.nose_length),
        nose_w=_u(rng, cfg.nose_width) * (0.92 if female else 1.0),
        mouth_y=_u(rng, cfg.mouth_height),
        mouth_w=_u(rng, cfg.mouth_width),
        lip_up=_u(rng, cfg.lip_thickness),
        lip_lo=_u(rng, cfg.lip_thickness) * 1.2,
        wrinkles=_u(rng, cfg.wrinkles),
        hair_style=style,
        hairline=float(rng.uniform(1.15, 1.45)),
        hair_volume=float(rng.uniform(0.08, 0.25)),
        beard=float(rng.uniform(0.3, 0.8)) if (not female and rng.random() < cfg.beard_prob) else 0.0,
        skin=_rgb(skin),
        hair=_rgb(hair),
        brow=_rgb(hair * 0.75 if hair.mean() < 120 else hair * 0.55),
        iris=_rgb(_pick(rng, IRIS_COLOURS, iris_w)),
        lips=_rgb(lips),
        sclera=_rgb(np.array([238, 234, 226], np.float32) * rng.uniform(0.92, 1.0)),
        clothes=_rgb(_pick(rng, CLOTHES_COLOURS)),
        chin_dots=chin_dots,
    )
