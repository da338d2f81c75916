"""The parametric face: AU intensities -> a display list of shapes in face units.

Every AU moves or darkens specific parts (see ``docs/synthfer.md`` for the table).
Displacements are in IOD units and large enough to move several pixels at 112 px
output (the IOD is ~45 px there, so 0.1 IOD is ~4.5 px). The display list is drawn by
:mod:`ovfer.synth.raster`, which also applies the head pose through each point's depth.

Sides: ``s = -1`` is the image-left half of the face, ``s = +1`` the image-right half.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .aus import AU_INDEX
from .identity import Identity

Colour = tuple[float, float, float]

# constant sample positions along curves (computed once: the renderer runs per frame)
_EYE_T = np.linspace(0, 1, 13)[:, None]
_BROW_U = np.linspace(0, 1, 9)
_MOUTH_T = np.linspace(-1, 1, 17)
_FOREHEAD_X = np.linspace(-0.42, 0.42, 9)
_FOREHEAD_SIDE_X = np.linspace(0.3, 0.95, 7)
_TEETH_X = np.linspace(-0.85, 0.85, 9)
_CHIN_X = np.linspace(-0.22, 0.22, 9)


@dataclass
class Op:
    """One drawing operation; points are (N, 2) face units, ``dz`` adds depth for the pose."""

    kind: str  # "fill" | "line" | "clip" (children drawn inside pts)
    pts: np.ndarray
    colour: Colour = (0.0, 0.0, 0.0)
    width: float = 0.0  # line width, face units
    closed: bool = False
    dz: float = 0.0
    alpha: bool = False  # counts as part of the person (compositing mask)
    skin: int = 0  # +1 adds to the face-skin mask, -1 removes from it
    children: list["Op"] = field(default_factory=list)


def mix(c1: Colour, c2: Colour, a: float) -> Colour:
    """Linear blend c1 -> c2; used instead of alpha blending (features sit on flat skin)."""
    a = min(1.0, max(0.0, float(a)))
    return (c1[0] + (c2[0] - c1[0]) * a, c1[1] + (c2[1] - c1[1]) * a, c1[2] + (c2[2] - c1[2]) * a)


def scale(c: Colour, k: float) -> Colour:
    return (min(255.0, c[0] * k), min(255.0, c[1] * k), min(255.0, c[2] * k))


@lru_cache(maxsize=None)
def _circle(n: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1)


@lru_cache(maxsize=None)
def _bernstein(n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return np.concatenate([(1 - t) ** 2, 2 * (1 - t) * t, t**2], 1)


def ellipse(cx: float, cy: float, ax: float, ay: float, angle: float = 0.0, n: int = 20) -> np.ndarray:
    u = _circle(n) * (ax, ay)
    if angle:
        ca, sa = np.cos(angle), np.sin(angle)
        u = u @ np.array([[ca, sa], [-sa, ca]])
    return u + (cx, cy)


def bezier(p0, p1, p2, n: int = 10) -> np.ndarray:
    """Quadratic Bezier curve with ``n`` points."""
    return _bernstein(n) @ np.array([p0, p1, p2], np.float64)


def thick_curve(centre: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Polygon around a centre line with per-point widths (brows, lip-like strips)."""
    d = np.gradient(centre, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], 1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
    half = (widths / 2)[:, None]
    return np.concatenate([centre + n * half, (centre - n * half)[::-1]])


class _AUs:
    """Intensity lookup with per-side AU12/AU14 (unilateral forms added on ``side``)."""

    def __init__(self, vec: np.ndarray, side: int) -> None:
        self.v, self.side = vec, side

    def __getitem__(self, name: str) -> float:
        return float(self.v[AU_INDEX[name]])

    def side12(self, s: int) -> float:
        return min(1.0, self["AU12"] + (self["AU12U"] if s == self.side else 0.0))

    def side14(self, s: int) -> float:
        return min(1.0, self["AU14"] + (self["AU14U"] if s == self.side else 0.0))


def head_outline(idn: Identity, jaw: float, n: int = 72) -> tuple[np.ndarray, np.ndarray]:
    """Face silhouette (superellipse top, tapered jaw); ``jaw`` lowers the chin. Returns pts, depth."""
    th = np.linspace(-np.pi / 2, 1.5 * np.pi, n, endpoint=False)
    c, s = np.cos(th), np.sin(th)
    ym = 0.3
    top = s < 0
    nexp = np.where(top, 2.2, 2.5)
    x = idn.face_w * np.sign(c) * np.abs(c) ** (2 / nexp)
    x = x * np.where(top, 1.0, 1 - idn.jaw_taper * np.abs(s) ** 1.5)
    b = np.where(top, idn.forehead + ym, idn.chin - ym)
    y = ym + b * np.sign(s) * np.abs(s) ** (2 / nexp)
    y = y + jaw * _jaw_weight(idn, y)
    depth = 0.8 * np.clip(s, 0, None) ** 3
    return np.stack([x, y], 1), depth


def _jaw_weight(idn: Identity, y: np.ndarray | float) -> np.ndarray | float:
    """How much a point below the mouth follows the jaw (0 above the mouth, 1 at the chin)."""
    y0 = idn.mouth_y - 0.1
    return np.clip((np.asarray(y) - y0) / (idn.chin - y0), 0.0, 1.0)


def depth(pts: np.ndarray, idn: Identity) -> np.ndarray:
    """Depth of frontal face points on a head ellipsoid (used to rotate them with the pose)."""
    u = pts[:, 0] / (1.1 * idn.face_w)
    v = (pts[:, 1] - 0.35) / 2.3
    return 1.25 * np.sqrt(np.clip(1 - u * u - v * v, 0, None))


def build_face(idn: Identity, aus: np.ndarray, gaze: tuple[float, float], side: int) -> list[Op]:
    """Display list of the whole person for one frame (back to front)."""
    a = _AUs(aus, side)
    jaw = 0.24 * a["AU26"]
    ops: list[Op] = []
    skin = idn.skin
    dark = scale(skin, 0.35)  # creases and folds
    outline, _ = head_outline(idn, jaw)
    ops += _body(idn)
    ops += _hair_back(idn)
    ops.append(Op("fill", outline, skin, alpha=True, skin=1, dz=-9.0))  # dz<0: silhouette depth
    if idn.beard > 0:
        ops.append(_beard(idn, outline, jaw))
    ops += _cheeks(idn, a)
    ops += _forehead(idn, a, dark)
    for s in (-1, 1):
        ops += _eye_surround(idn, a, s, dark)
        ops += _nasolabial(idn, a, s, dark)
    ops += _nose(idn, a, dark)
    mouth = _mouth_curves(idn, a, jaw)
    ops += _chin(idn, a, jaw, dark, mouth)
    ops += _mouth(idn, a, jaw, dark, mouth)
    for s in (-1, 1):
        ops += _eye(idn, a, s, gaze)
        ops += _brow(idn, a, s)
    ops += _hair_front(idn)
    return ops


# ---------------------------------------------------------------- body, hair, beard
@lru_cache(maxsize=64)
def _body(idn: Identity) -> list[Op]:
    w, y0 = idn.face_w, idn.chin
    neck = np.array([[-0.55 * w, 0.9], [0.55 * w, 0.9], [0.62 * w, y0 + 1.0], [-0.62 * w, y0 + 1.0]])
    shirt = np.array([[-0.62 * w, y0 + 0.75], [0.62 * w, y0 + 0.75], [3.4, y0 + 1.6], [3.8, y0 + 5],
                      [-3.8, y0 + 5], [-3.4, y0 + 1.6]])
    collar = bezier([-0.62 * w, y0 + 0.78], [0, y0 + 1.25], [0.62 * w, y0 + 0.78], 9)
    ears = [ellipse(s * (idn.face_w - 0.02), 0.22, 0.13, 0.27, s * 0.15, 14) for s in (-1, 1)]
    out = [Op("fill", shirt, idn.clothes, alpha=True, dz=-9.0),
           Op("fill", np.concatenate([collar, collar[::-1] + [0, 0.02]]), scale(idn.skin, 0.8), dz=-9.0),
           Op("line", collar, scale(idn.clothes, 0.6), 0.05, dz=-9.0)]
    for s, e in zip((-1, 1), ears):
        out.append(Op("fill", e, scale(idn.skin, 0.9), alpha=True, dz=-9.0))
        out.append(Op("line", e[3:9] * [0.9, 1] + [s * 0.1 * idn.face_w, 0], scale(idn.skin, 0.7), 0.03, dz=-9.0))
    out.append(Op("fill", neck, scale(idn.skin, 0.82), alpha=True, dz=-9.0))
    return out


@lru_cache(maxsize=64)
def _hair_back(idn: Identity) -> list[Op]:
    if idn.hair_style != "long":
        return []
    w, v = idn.face_w, idn.hair_volume
    out = []
    for s in (-1, 1):
        curtain = np.array([[s * 0.5 * w, -1.0], [s * (w + v + 0.12), -0.6], [s * (w + v + 0.2), 1.2],
                            [s * (w + v + 0.05), idn.chin + 0.9], [s * 0.8 * w, idn.chin + 0.7],
                            [s * 0.85 * w, 0.6]])
        out.append(Op("fill", curtain, idn.hair, alpha=True, dz=-9.0))
    return out


@lru_cache(maxsize=64)
def _hair_front(idn: Identity) -> list[Op]:
    if idn.hair_style == "bald":
        return []
    outline, _ = head_outline(idn, 0.0)
    w, v = idn.face_w, idn.hair_volume
    top = outline[outline[:, 1] < 0.0]
    top = top[np.argsort(np.arctan2(top[:, 1] - 0.3, top[:, 0]))]  # left side -> over the top -> right
    centre = np.array([0.0, 0.3])
    # volume on top of the head, none at the temples
    grow = 1 + (v / 1.6) * np.sqrt(np.clip(-top[:, 1] / idn.forehead, 0, 1))[:, None]
    cap = centre + (top - centre) * grow
    lower = -idn.hairline
    if idn.hair_style == "fringe":
        lower = idn.brow_y - 0.28
    xs = np.linspace(w * 0.97, -w * 0.97, 15)
    ys = lower + (-0.3 - lower) * (np.abs(xs) / w) ** 2.5  # the hairline drops to the temples
    if idn.hair_style == "fringe":
        ys = ys + 0.04 * np.sin(np.arange(len(xs)) * 2.1)
    ys = np.minimum(ys, 0.05)
    hairline = np.stack([xs, ys], 1)
    poly = np.concatenate([cap, [[w * 1.02, 0.05]], hairline, [[-w * 1.02, 0.05]]])
    ops = [Op("fill", poly, idn.hair, alpha=True, dz=-9.0)]
    dk = scale(idn.hair, 0.7)
    for k in (-1, 0, 1):  # a few strands for texture, inside the cap
        x0 = k * 0.3 * w
        strand = bezier([x0 * 0.8, -idn.forehead - v * 0.3], [x0 * 1.15, lower - 0.3], [x0 * 1.1, lower + 0.02], 6)
        ops.append(Op("line", strand, dk, 0.025, dz=-9.0))
    return ops


def _beard(idn: Identity, outline: np.ndarray, jaw: float) -> Op:
    lower = outline[outline[:, 1] > idn.nose_len + 0.15]
    lower = lower[np.argsort(-np.arctan2(lower[:, 1] - 0.3, lower[:, 0]))]
    # lower outline from left to right, then a curved moustache line back to the start
    top = bezier(lower[-1], [0, idn.nose_len - 0.1], lower[0], 9)
    poly = np.concatenate([lower, top[1:-1]])
    return Op("fill", poly, mix(idn.skin, (48, 40, 36), 0.18 * idn.beard))


# ---------------------------------------------------------------- upper face
def _cheeks(idn: Identity, a: _AUs) -> list[Op]:
    ops = []
    rosy = (idn.skin[0] * 1.16 + 10, idn.skin[1] * 1.03 + 4, idn.skin[2] * 1.0 + 2)
    for s in (-1, 1):
        lift = 0.12 * a["AU6"] + 0.05 * a.side12(s)
        c = (s * 0.62, 0.5 - lift)
        k = 0.15 + 0.5 * a["AU6"] + 0.2 * a.side12(s)
        grow = 0.03 * a["AU6"]
        ops.append(Op("fill", ellipse(*c, 0.28 + grow, 0.18 + grow), mix(idn.skin, rosy, 0.5 * k)))
        ops.append(Op("fill", ellipse(*c, 0.19 + grow, 0.12 + grow), mix(idn.skin, rosy, k)))
        bulge = 0.5 * a["AU6"] + 0.25 * a.side12(s)
        if bulge > 0.02:  # shadow under the raised cheek
            arc = bezier([s * 0.38, c[1] + 0.2], [s * 0.62, c[1] + 0.3], [s * 0.88, c[1] + 0.1], 8)
            ops.append(Op("line", arc, mix(idn.skin, scale(idn.skin, 0.55), bulge), 0.035))
    return ops


def _forehead(idn: Identity, a: _AUs, dark: Colour) -> list[Op]:
    ops = []
    up = 0.05 * (a["AU1"] + a["AU2"])
    for k in range(3):
        yk = idn.brow_y - 0.2 - 0.1 * k - up
        k1 = 0.85 * a["AU1"] + 0.25 * idn.wrinkles - 0.1 * k
        if k1 > 0.03:
            x = _FOREHEAD_X
            line = np.stack([x, yk - 0.05 * np.cos(np.pi * x / 0.84)], 1)
            ops.append(Op("line", line, mix(idn.skin, dark, k1), 0.024))
        k2 = 0.8 * a["AU2"] + 0.2 * idn.wrinkles - 0.1 * k
        if k2 > 0.03:
            for s in (-1, 1):
                x = s * _FOREHEAD_SIDE_X
                ops.append(Op("line", np.stack([x, yk + 0.02 * (np.abs(x) - 0.3)], 1), mix(idn.skin, dark, k2), 0.024))
    k4 = 0.9 * a["AU4"]
    if k4 > 0.03:  # vertical glabella lines
        for s in (-1, 1):
            ops.append(Op("line", bezier([s * 0.05, idn.brow_y + 0.16], [s * 0.08, idn.brow_y + 0.05],
                                         [s * 0.07, idn.brow_y - 0.06], 6), mix(idn.skin, dark, k4), 0.026))
    return ops


def _eye_geometry(idn: Identity, a: _AUs, s: int) -> dict[str, np.ndarray]:
    i = 0 if s < 0 else 2
    cx, cy = s * 0.5 + idn.eye_offsets[i], idn.eye_offsets[i + 1]
    inner = np.array([cx - s * idn.eye_w, cy + 0.01])
    outer = np.array([cx + s * idn.eye_w, cy - idn.eye_tilt])
    t = _EYE_T
    base = inner * (1 - t) + outer * t
    blink = a["AU45"]
    hu = idn.eye_h * max(0.1, 1 + 1.1 * a["AU5"] - 0.35 * a["AU7"] - 0.3 * a["AU6"] - 0.2 * a["AU4"])
    hl = idn.eye_lo * max(0.1, 1 - 0.65 * a["AU7"] - 0.55 * a["AU6"] + 0.2 * a["AU5"])
    bu = np.sin(np.pi * t[:, 0] ** 0.9)
    bl = np.sin(np.pi * t[:, 0] ** 1.1)
    upper = base.copy()
    upper[:, 1] += -hu * bu * (1 - blink) + 0.85 * hl * bl * blink
    lower = base.copy()
    lower[:, 1] += hl * bl
    return {"centre": np.array([cx, cy]), "upper": upper, "lower": lower, "base": base,
            "hu": np.array(hu), "outer": outer, "inner": inner}


def _eye_surround(idn: Identity, a: _AUs, s: int, dark: Colour) -> list[Op]:
    g = _eye_geometry(idn, a, s)
    ops = []
    k = 0.15 + 0.25 * idn.wrinkles + 0.6 * a["AU6"] + 0.45 * a["AU7"]
    furrow = g["lower"][2:11] + [0, 0.07 - 0.02 * a["AU6"]]
    ops.append(Op("line", furrow, mix(idn.skin, dark, k * 0.7), 0.026))
    k6 = 0.9 * a["AU6"] + 0.15 * idn.wrinkles
    if k6 > 0.03:  # crow's feet
        o = g["outer"] + [s * 0.06, 0.0]
        for ang in (-0.45, 0.0, 0.45):
            d = np.array([s * np.cos(ang), np.sin(ang)]) * 0.15
            ops.append(Op("line", np.stack([o, o + d]), mix(idn.skin, dark, k6), 0.022))
    return ops


def _eye(idn: Identity, a: _AUs, s: int, gaze: tuple[float, float]) -> list[Op]:
    g = _eye_geometry(idn, a, s)
    opening = np.concatenate([g["upper"], g["lower"][::-1][1:-1]])
    cx, cy = g["centre"]
    ix = cx + gaze[0] * idn.eye_w * 0.45
    iy = cy - 0.1 * idn.eye_h + gaze[1] * idn.eye_h * 0.5
    r = idn.iris_r
    lid_shadow = np.concatenate([g["upper"], (g["upper"] + [0, 0.035])[::-1]])
    kids = [
        Op("fill", ellipse(ix, iy, r, r, 0, 20), idn.iris),
        Op("line", ellipse(ix, iy, r, r, 0, 20), scale(idn.iris, 0.55), 0.018, closed=True),
        Op("fill", ellipse(ix, iy, 0.42 * r, 0.42 * r, 0, 12), (14, 12, 12)),
        Op("fill", ellipse(ix - 0.3 * r, iy - 0.35 * r, 0.18 * r, 0.18 * r, 0, 8), (250, 250, 250)),
        Op("fill", lid_shadow, scale(idn.sclera, 0.55)),
    ]
    lash = (22, 18, 18)
    crease_d = 0.075 * (1 - 0.6 * a["AU5"]) + 0.03 * a["AU45"]
    crease = g["upper"][2:12] - [0, crease_d + float(g["hu"]) * 0.3]
    return [
        Op("clip", opening, idn.sclera, children=kids, dz=-0.08),
        Op("line", g["upper"], lash, 0.05 if idn.female else 0.038, dz=-0.05),
        Op("line", g["lower"][1:12], mix(idn.skin, (60, 40, 40), 0.55), 0.018, dz=-0.05),
        Op("line", crease, mix(idn.skin, scale(idn.skin, 0.5), 0.6), 0.022, dz=-0.05),
    ]


def _brow(idn: Identity, a: _AUs, s: int) -> list[Op]:
    u = _BROW_U
    x = s * (0.16 + u * (idn.brow_len - 0.16))
    y = idn.brow_y - idn.brow_arch * np.sin(np.pi * u**0.8)
    dy = (-0.26 * a["AU1"] * (1 - u) ** 1.3 - 0.05 * a["AU1"]
          - a["AU2"] * (0.24 * u**1.3 + 0.07 * np.sin(np.pi * u))
          + a["AU4"] * (0.14 * (1 - u) ** 0.8 + 0.04)
          + 0.06 * a["AU9"] * (1 - u) + 0.03 * a["AU7"] * (1 - u) + 0.03 * a["AU6"] * u)
    dx = -s * 0.09 * a["AU4"] * (1 - u) ** 1.2
    centre = np.stack([x + dx, y + dy], 1)
    widths = idn.brow_th * (1.15 - 0.55 * u)
    return [Op("fill", thick_curve(centre, widths), idn.brow)]


# ---------------------------------------------------------------- nose and folds
def _ala_shift(a: _AUs) -> tuple[float, float]:
    return 0.035 * a["AU9"] + 0.02 * a["AU10"], -(0.08 * a["AU9"] + 0.045 * a["AU10"])


def _nose(idn: Identity, a: _AUs, dark: Colour) -> list[Op]:
    L, w = idn.nose_len, idn.nose_w
    adx, ady = _ala_shift(a)
    ops = []
    for s in (-1, 1):
        side = bezier([s * 0.12, 0.02], [s * 0.15, 0.3], [s * (w * 0.7), L - 0.12], 8)
        ops.append(Op("line", side, mix(idn.skin, dark, 0.22), 0.03, dz=0.15))
    ops.append(Op("fill", ellipse(0, L - 0.07, 0.07, 0.06), scale(idn.skin, 1.07), dz=0.45))
    ops.append(Op("line", bezier([-0.09, L + 0.06], [0, L + 0.1], [0.09, L + 0.06], 6),
                  mix(idn.skin, dark, 0.45), 0.03, dz=0.4))
    for s in (-1, 1):
        wing = bezier([s * w * 0.5, L - 0.13 + ady], [s * (w + adx) * 1.2, L + ady * 0.8],
                      [s * w * 0.42, L + 0.08 + ady * 0.6], 9)
        ops.append(Op("line", wing, mix(idn.skin, dark, 0.6), 0.03, dz=0.25))
        nostril = ellipse(s * w * 0.5, L + 0.045 + ady * 0.7, 0.055 + 0.02 * a["AU9"], 0.026, s * 0.3, 12)
        ops.append(Op("fill", nostril, scale(idn.skin, 0.3), dz=0.3))
    k9 = 0.9 * a["AU9"]
    if k9 > 0.03:  # wrinkles across the bridge and "bunny lines"
        for yk in (0.13, 0.21):
            ops.append(Op("line", bezier([-0.12, yk + 0.025], [0, yk - 0.02], [0.12, yk + 0.025], 6),
                          mix(idn.skin, dark, 0.8 * k9), 0.02, dz=0.2))
        for s in (-1, 1):
            ops.append(Op("line", np.array([[s * 0.13, 0.08], [s * 0.24, 0.3]]), mix(idn.skin, dark, k9 * 0.8), 0.022))
    return ops


def _mouth_corner(idn: Identity, a: _AUs, s: int, jaw: float) -> np.ndarray:
    a12, a14 = a.side12(s), a.side14(s)
    x = (idn.mouth_w + 0.12 * a12 + 0.2 * a["AU20"] - 0.09 * a14 - 0.08 * a["AU23"]
         - 0.05 * a["AU24"] - 0.05 * a["AU26"] + 0.02 * a["AU16"])
    dy = (-0.15 * a12 - 0.03 * a14 + 0.18 * a["AU15"] + 0.05 * a["AU20"] + 0.04 * a["AU16"]
          + 0.45 * jaw + 0.02 * a["AU17"] - 0.03 * a["AU10"])
    return np.array([s * x, dy])


def _nasolabial(idn: Identity, a: _AUs, s: int, dark: Colour) -> list[Op]:
    adx, ady = _ala_shift(a)
    a12 = a.side12(s)
    corner = _mouth_corner(idn, a, s, 0.24 * a["AU26"]) + [0, idn.mouth_y]
    p0 = [s * (idn.nose_w + 0.06 + adx), idn.nose_len - 0.1 + ady * 0.8]
    p1 = [s * (idn.nose_w + 0.2 + 0.06 * a12), idn.nose_len + 0.16 - 0.07 * a["AU10"] - 0.05 * a12]
    p2 = corner + [s * (0.08 + 0.03 * a12), 0.07 - 0.04 * a12]
    k = 0.05 + 0.3 * idn.wrinkles + 0.55 * a12 + 0.5 * a["AU10"] + 0.45 * a["AU9"] + 0.15 * a["AU6"] + 0.15 * a["AU20"]
    return [Op("line", bezier(p0, p1, p2, 10), mix(idn.skin, dark, min(k, 0.8)), 0.03)]


# ---------------------------------------------------------------- mouth and chin
def _mouth_curves(idn: Identity, a: _AUs, jaw: float) -> dict[str, np.ndarray]:
    cl, cr = _mouth_corner(idn, a, -1, jaw), _mouth_corner(idn, a, 1, jaw)
    t = _MOUTH_T
    x = np.where(t < 0, -t * cl[0], t * cr[0])  # each half follows its own corner
    yc = idn.mouth_y - 0.05 * a["AU17"]
    base = yc + np.where(t < 0, cl[1], cr[1]) * t**2
    a12 = (a.side12(-1) + a.side12(1)) / 2
    raise_up = 0.075 * a["AU10"] + 0.02 * a["AU9"]
    press = 1 - 0.7 * a["AU24"] - 0.3 * a["AU23"]
    gap_up = max(0.0, (0.04 * a["AU25"] + 0.04 * a["AU26"] + 0.05 * a12) * press)
    gap_lo = max(0.0, (0.05 * a["AU25"] + 0.9 * jaw + 0.11 * a["AU16"] - 0.05 * a["AU17"]) * press)
    f = (1 - t**2) ** 0.7
    inner_up = base - raise_up * (1 - t**2) ** 0.4 - gap_up * f
    inner_lo = base + gap_lo * f
    tu = idn.lip_up * max(0.2, 1 - 0.6 * a["AU23"] - 0.75 * a["AU24"] - 0.3 * a12 - 0.35 * a["AU20"])
    tl = idn.lip_lo * max(0.2, 1 - 0.6 * a["AU23"] - 0.75 * a["AU24"] - 0.35 * a["AU20"] + 0.3 * a["AU17"])
    bow = 1 - 0.3 * np.exp(-((t / 0.13) ** 2))
    outer_up = inner_up - tu * (1 - t**2) ** 0.55 * bow
    outer_lo = inner_lo + tl * (1 - t**2) ** 0.6
    return {"x": x, "t": t, "base": base, "inner_up": inner_up, "inner_lo": inner_lo,
            "outer_up": outer_up, "outer_lo": outer_lo, "gap": np.array(gap_up + gap_lo + raise_up),
            "cl": cl, "cr": cr}


def _mouth(idn: Identity, a: _AUs, jaw: float, dark: Colour, m: dict[str, np.ndarray]) -> list[Op]:
    x = m["x"]
    P = lambda y: np.stack([x, y], 1)  # noqa: E731
    ops: list[Op] = []
    my = idn.mouth_y
    k24 = 0.8 * a["AU24"] + 0.25 * a["AU23"]
    if k24 > 0.03:  # bulges above and below pressed lips
        ops.append(Op("line", P(m["outer_up"] - 0.07)[3:14], mix(idn.skin, dark, k24), 0.03))
        ops.append(Op("line", P(m["outer_lo"] + 0.07)[3:14], mix(idn.skin, dark, k24), 0.03))
    k20 = 0.8 * a["AU20"]
    if k20 > 0.03:  # skin stretched beside the mouth corners
        for c, s in ((m["cl"], -1), (m["cr"], 1)):
            cy = idn.mouth_y + c[1]
            ops.append(Op("line", np.array([[c[0] + s * 0.06, cy - 0.02], [c[0] + s * 0.22, cy + 0.04]]),
                          mix(idn.skin, dark, k20), 0.026))
    k15 = 0.7 * a["AU15"]
    if k15 > 0.03:  # lines running down from the depressed corners
        for c, s in ((m["cl"], -1), (m["cr"], 1)):
            cy = idn.mouth_y + c[1]
            line = bezier([c[0] + s * 0.03, cy + 0.04], [c[0] + s * 0.06, cy + 0.14], [c[0] + s * 0.03, cy + 0.24], 5)
            ops.append(Op("line", line, mix(idn.skin, dark, k15), 0.026))
    for s in (-1, 1):  # philtrum
        bow = float(m["outer_up"][6 if s < 0 else 10])
        ops.append(Op("line", np.array([[s * 0.05, idn.nose_len + 0.1], [s * 0.065, bow]]),
                      mix(idn.skin, dark, 0.18), 0.025, dz=0.1))
    if float(m["gap"]) > 0.004:
        cavity = np.concatenate([P(m["inner_up"]), P(m["inner_lo"])[::-1][1:-1]])
        tx = _TEETH_X * idn.mouth_w
        edge = my + 0.03 + 0.06 * (tx / idn.mouth_w) ** 2  # biting edge of the upper teeth
        upper_teeth = np.concatenate([np.stack([tx, my - 0.14 + 0 * tx], 1), np.stack([tx, edge], 1)[::-1]])
        lo_top = my + 0.04 + 0.9 * jaw
        lower_teeth = np.concatenate([np.stack([tx, lo_top + 0.05 * (tx / idn.mouth_w) ** 2], 1),
                                      np.stack([tx[::-1], lo_top + 0.12 + 0 * tx], 1)])
        tongue = ellipse(0, float(m["inner_lo"][8]) - 0.02, idn.mouth_w * 0.5, 0.07)
        teeth = (236, 232, 220)
        ops.append(Op("clip", cavity, (52, 18, 22), dz=0.1, children=[
            Op("fill", tongue, (150, 60, 70)),
            Op("fill", upper_teeth, teeth), Op("fill", lower_teeth, scale(teeth, 0.92)),
            Op("line", np.stack([tx, edge], 1), (170, 160, 150), 0.012)]))
    upper = np.concatenate([P(m["outer_up"]), P(m["inner_up"])[::-1][1:-1]])
    lower = np.concatenate([P(m["inner_lo"]), P(m["outer_lo"])[::-1][1:-1]])
    pale = mix(idn.lips, idn.skin, 0.45 * a["AU24"])  # pressed lips blanch
    ops.append(Op("fill", upper, scale(pale, 0.95), dz=0.1))
    ops.append(Op("fill", lower, pale, dz=0.1))
    hi = P(m["inner_lo"] + 0.55 * (m["outer_lo"] - m["inner_lo"]))[5:12]
    ops.append(Op("line", hi, scale(idn.lips, 1.12), 0.025, dz=0.1))
    k23 = 0.9 * a["AU23"]
    if k23 > 0.03:  # tightened lips: sharp, dark borders
        ops.append(Op("line", upper, scale(idn.lips, 1 - 0.55 * k23), 0.028, closed=True, dz=0.1))
        ops.append(Op("line", lower, scale(idn.lips, 1 - 0.55 * k23), 0.028, closed=True, dz=0.1))
    line = P((m["inner_up"] + m["inner_lo"]) / 2) if float(m["gap"]) <= 0.004 else P(m["inner_up"])
    ops.append(Op("line", line, scale(idn.lips, 0.45), 0.028, dz=0.1))
    for s, c in ((-1, m["cl"]), (1, m["cr"])):  # dimples and corner shadows
        cx, cy = c[0], idn.mouth_y - 0.05 * a["AU17"] + c[1]
        k14 = a.side14(s)
        ops.append(Op("line", bezier([cx, cy - 0.02], [cx + s * 0.035, cy], [cx, cy + 0.03], 5),
                      mix(idn.skin, dark, 0.3 + k14 * 0.6), 0.022 + 0.02 * k14))
        if k14 > 0.03:  # the dimple: a deep crescent beside the corner
            ops.append(Op("line", bezier([cx + s * 0.06, cy - 0.1], [cx + s * 0.14, cy], [cx + s * 0.06, cy + 0.1], 7),
                          mix(idn.skin, dark, k14), 0.035))
    return ops


def _chin(idn: Identity, a: _AUs, jaw: float, dark: Colour, m: dict[str, np.ndarray]) -> list[Op]:
    lo = float(m["outer_lo"][8])
    ys = lo + 0.11 - 0.05 * a["AU17"]
    xs = _CHIN_X
    k = 0.08 + 0.3 * idn.wrinkles + 0.65 * a["AU17"]
    ops = [Op("line", np.stack([xs, ys - 0.045 * (xs / 0.22) ** 2], 1), mix(idn.skin, dark, k), 0.03)]
    cy = idn.chin + jaw - 0.22 - 0.03 * a["AU17"]
    if a["AU17"] > 0.03:
        boss = ellipse(0, cy, 0.2, 0.1 + 0.02 * a["AU17"])  # the chin boss bulges and catches light
        ops.append(Op("fill", boss, mix(idn.skin, scale(idn.skin, 1.15), a["AU17"])))
        for dx, dy in idn.chin_dots:
            ops.append(Op("fill", ellipse(dx, cy + dy, 0.018, 0.014, 0, 6), mix(idn.skin, dark, 0.4 * a["AU17"])))
    return ops
