"""Draw a face display list: head pose, supersampled OpenCV drawing, shading.

Shapes are drawn with OpenCV at ``ss`` times the output resolution into a black canvas,
then area-downsampled, which anti-aliases every edge and yields a premultiplied colour
layer plus its coverage (alpha) — so the face can be composited onto any background.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .face import Op, depth
from .identity import Identity

_SHIFT = 3  # fixed-point bits for sub-pixel OpenCV drawing
_ONE = 1 << _SHIFT


def project(pts: np.ndarray, z: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotate face points with depth ``z`` by the head pose (degrees); orthographic projection."""
    ya, pa, ra = np.radians([yaw, pitch, roll])
    x, y = pts[:, 0], pts[:, 1]
    x1 = x * np.cos(ya) + z * np.sin(ya)
    z1 = -x * np.sin(ya) + z * np.cos(ya)
    yc = 0.3
    y1 = yc + (y - yc) * np.cos(pa) + z1 * np.sin(pa)
    cr, sr = np.cos(ra), np.sin(ra)
    return np.stack([x1 * cr - (y1 - yc) * sr, yc + x1 * sr + (y1 - yc) * cr], 1)


def _flatten(ops: list[Op], dz_parent: float, pts: list, dz: list, count: list[int]) -> list[tuple]:
    """Collect every point once (so the pose is applied in one vectorised call)."""
    items = []
    for op in ops:
        d = op.dz + dz_parent
        start = count[0]
        count[0] += len(op.pts)
        pts.append(op.pts)
        dz.append(np.full(len(op.pts), d))
        kids = _flatten(op.children, d, pts, dz, count) if op.children else []
        items.append((op, start, start + len(op.pts), kids))
    return items


class Canvas:
    """A supersampled drawing surface for the region ``roi`` (x0, y0, x1, y1) of the output."""

    def __init__(self, roi: tuple[int, int, int, int], M: np.ndarray, ss: int) -> None:
        x0, y0, x1, y1 = roi
        self.roi, self.ss = roi, ss
        h, w = (y1 - y0) * ss, (x1 - x0) * ss
        self.rgb = np.zeros((h, w, 3), np.uint8)
        self.alpha = np.zeros((h, w), np.uint8)
        self.skin = np.zeros((h, w), np.uint8)
        # face units -> canvas drawing coordinates (OpenCV pixel centres at integers)
        A = np.asarray(M, np.float64) * ss
        A[:, 2] -= np.array([x0, y0]) * ss + 0.5
        self.A = A
        self.unit = float(np.hypot(A[0, 0], A[1, 0]))  # canvas pixels per face unit

    def draw(self, ops: list[Op], idn: Identity, pose: tuple[float, float, float]) -> None:
        """Pose every point (depth from the head ellipsoid; ``dz <= -9`` marks flat silhouettes), then draw."""
        pts: list[np.ndarray] = []
        dzs: list[np.ndarray] = []
        items = _flatten(ops, 0.0, pts, dzs, [0])
        P, dz = np.concatenate(pts), np.concatenate(dzs)
        z = np.where(dz <= -9.0, 0.0, depth(P, idn) + dz)
        c = project(P, z, *pose) @ self.A[:, :2].T + self.A[:, 2]
        fixed = np.round(c * _ONE).astype(np.int32)
        for it in items:
            self._draw(it, fixed, self.rgb, (0, 0))

    def _draw(self, item: tuple, fixed: np.ndarray, img: np.ndarray, off: tuple[int, int]) -> None:
        op, i0, i1, kids = item
        p = fixed[i0:i1] - np.array(off, np.int32) * _ONE
        col = tuple(float(c) for c in op.colour)
        if op.kind == "fill":
            cv2.fillPoly(img, [p], col, cv2.LINE_AA, _SHIFT)
            if img is self.rgb:
                if op.alpha:
                    cv2.fillPoly(self.alpha, [p], 255, cv2.LINE_AA, _SHIFT)
                if op.skin:
                    cv2.fillPoly(self.skin, [p], 255 if op.skin > 0 else 0, cv2.LINE_AA, _SHIFT)
        elif op.kind == "line":
            t = max(1, int(round(op.width * self.unit)))
            cv2.polylines(img, [p], op.closed, col, t, cv2.LINE_AA, _SHIFT)
        elif op.kind == "clip":
            self._clip(op, kids, fixed, img, p, off)
        else:
            raise ValueError(f"unknown op kind '{op.kind}'; valid: fill, line, clip")

    def _clip(self, op: Op, kids: list, fixed: np.ndarray, img: np.ndarray, p: np.ndarray,
              off: tuple[int, int]) -> None:
        """Fill ``op.pts`` with its colour, then draw the children only inside it."""
        cv2.fillPoly(img, [p], tuple(float(c) for c in op.colour), cv2.LINE_AA, _SHIFT)
        h, w = img.shape[:2]
        q = p >> _SHIFT
        x0, y0 = max(int(q[:, 0].min()) - 2, 0), max(int(q[:, 1].min()) - 2, 0)
        x1, y1 = min(int(q[:, 0].max()) + 3, w), min(int(q[:, 1].max()) + 3, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        sub = img[y0:y1, x0:x1]
        layer = sub.copy()
        for k in kids:
            self._draw(k, fixed, layer, (off[0] + x0, off[1] + y0))
        mask = np.zeros(sub.shape[:2], np.uint8)
        cv2.fillPoly(mask, [p - np.array([x0, y0], np.int32) * _ONE], 255, cv2.LINE_AA, _SHIFT)
        m = (mask.astype(np.float32) / 255.0)[..., None]
        sub[:] = (layer * m + sub * (1 - m) + 0.5).astype(np.uint8)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Downsampled (premultiplied rgb float32, alpha, skin) at output resolution."""
        x0, y0, x1, y1 = self.roi
        size = (x1 - x0, y1 - y0)
        rgb = cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        alpha = cv2.resize(self.alpha, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        skin = cv2.resize(self.skin, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        return rgb, alpha, skin


@lru_cache(maxsize=8)
def _grid(x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(x0, x1, dtype=np.float32) + 0.5, np.arange(y0, y1, dtype=np.float32) + 0.5)


def shading(shape: tuple[int, int], roi: tuple[int, int, int, int], M: np.ndarray, idn: Identity,
            strength: float, side: float) -> np.ndarray:
    """Multiplicative shading of the head: darker towards the edges, lit from one side."""
    x0, y0, x1, y1 = roi
    h, w = shape
    xs, ys = _grid(x0, y0, x1, y1)
    Minv = cv2.invertAffineTransform(np.asarray(M, np.float64))
    u = Minv[0, 0] * xs + Minv[0, 1] * ys + Minv[0, 2]
    v = Minv[1, 0] * xs + Minv[1, 1] * ys + Minv[1, 2]
    un = u / (1.05 * idn.face_w)
    vn = (v - 0.3) / np.where(v < 0.3, idn.forehead + 0.3, idn.chin - 0.3)
    r2 = np.clip(un * un + vn * vn, 0, 1.6)
    s = 1.0 - strength * r2**1.5 + side * np.clip(un, -1.2, 1.2) * 0.35
    # soft shadow under the nose and in the eye sockets
    s -= 0.08 * np.exp(-((u / 0.25) ** 2 + ((v - 0.72) / 0.06) ** 2))
    s -= 0.06 * np.exp(-(((np.abs(u) - 0.5) / 0.3) ** 2 + ((v + 0.08) / 0.12) ** 2))
    return np.clip(s, 0.3, 1.3)[..., None].reshape(h, w, 1)
