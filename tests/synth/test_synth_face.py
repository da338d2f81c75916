"""Each Action Unit visibly changes the rendered face, in its own region and its own way."""
from __future__ import annotations

import numpy as np
import pytest

from ovfer.synth import AU_NAMES, load_synth_config, render_face, sample_identity

CFG = load_synth_config()  # 112 px aligned
H = W = 112
IOD = CFG.framing.eye_distance * W
EYE_Y = CFG.framing.eye_y * H
REGION = {  # (y0, y1, x0, x1) in IOD units around the eye midpoint
    "brows": (-0.95, -0.15, -1.3, 1.3), "eyes": (-0.55, 0.45, -1.3, 1.3), "cheeks": (-0.55, 0.9, -1.3, 1.3),
    "midface": (-0.6, 1.3, -1.0, 1.0), "mouth": (0.6, 1.5, -0.9, 0.9),
}
AU_REGION = {
    "AU1": "brows", "AU2": "brows", "AU4": "brows", "AU5": "eyes", "AU6": "cheeks", "AU7": "eyes",
    "AU9": "midface", "AU45": "eyes", **{au: "mouth" for au in (
        "AU10", "AU12", "AU14", "AU15", "AU16", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU12U", "AU14U")},
}
IDENTITIES = [sample_identity(np.random.default_rng(s), CFG.identity) for s in (0, 1, 5)]


def _mask(name: str) -> np.ndarray:
    y0, y1, x0, x1 = REGION[name]
    m = np.zeros((H, W), bool)
    ys = slice(max(0, int(EYE_Y + y0 * IOD)), min(H, int(np.ceil(EYE_Y + y1 * IOD))))
    xs = slice(max(0, int(W / 2 + x0 * IOD)), min(W, int(np.ceil(W / 2 + x1 * IOD))))
    m[ys, xs] = True
    return m


def _diff(idn, aus: dict, side: int = 1) -> np.ndarray:
    base = render_face(idn, {}, CFG, side=side)[0].astype(np.float32)
    return np.abs(render_face(idn, aus, CFG, side=side)[0].astype(np.float32) - base).mean(-1)


def test_au_list_covers_spec():
    required = {1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26, 45}
    assert {f"AU{i}" for i in required} <= set(AU_NAMES) and set(AU_REGION) == set(AU_NAMES)


@pytest.mark.parametrize("au", AU_NAMES)
def test_each_au_is_visible_in_its_region(au):
    region = _mask(AU_REGION[au])
    for idn in IDENTITIES:
        d = _diff(idn, {au: 1.0})
        changed = int((d[region] > 20).sum())  # pixels changed by > 20 grey levels
        assert changed >= 25, f"{au}: only {changed} pixels changed clearly"
        assert d[region].sum() >= 0.7 * d.sum(), f"{au}: change is mostly outside its region"


def test_aus_have_distinct_difference_maps():
    for idn in IDENTITIES[:2]:
        names = list(AU_NAMES)
        maps = np.stack([_diff(idn, {au: 1.0}).ravel() for au in names])
        maps /= np.linalg.norm(maps, axis=1, keepdims=True)
        corr = maps @ maps.T
        np.fill_diagonal(corr, 0)
        i, j = np.unravel_index(corr.argmax(), corr.shape)
        assert corr.max() < 0.95, f"{names[i]} and {names[j]} look alike ({corr.max():.3f})"


@pytest.mark.parametrize("au", ["AU12U", "AU14U"])
def test_unilateral_aus_act_on_one_side(au):
    idn = IDENTITIES[0]
    for side in (-1, 1):
        d = _diff(idn, {au: 1.0}, side=side)
        left, right = d[:, : W // 2].sum(), d[:, W // 2:].sum()
        strong, weak = (right, left) if side > 0 else (left, right)
        assert strong > 3 * weak


def test_intensity_scales_the_effect():
    idn = IDENTITIES[0]
    region = _mask("mouth")
    effect = [_diff(idn, {"AU12": x})[region].sum() for x in (0.25, 0.5, 1.0)]
    assert effect[0] < effect[1] < effect[2]
