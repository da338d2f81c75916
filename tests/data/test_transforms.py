"""Clip transforms (SPEC §2.4, METHODS §1–§3 "Spatial")."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ovfer.data import transforms as tr

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def same_frames_clip(T: int = 6, h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    frame = torch.rand(1, 3, h, w, generator=g)
    return frame.repeat(T, 1, 1, 1)


GEOMETRIC = ["hesp_train", "hesp_test", "dfer_clip_train", "dfer_clip_test", "dk_clip_test", "emoclip_train",
             "emoclip_test"]


@pytest.mark.parametrize("name", GEOMETRIC)
@pytest.mark.parametrize("size", [112, 32])
def test_presets_are_clip_consistent(name, size):
    t = tr.build_transform(name, size)
    for seed in range(8):
        out = t(same_frames_clip(seed=seed), rng(seed))
        assert out.shape == (6, 3, size, size) and out.dtype == torch.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        assert all(torch.equal(out[0], out[i]) for i in range(1, 6)), name


def test_dk_clip_train_geometry_per_clip_jitter_per_frame():
    clip = same_frames_clip()
    no_jitter = tr.Compose([op for op in tr.dk_clip_train(64).ops if not isinstance(op, tr.ColorJitter)])
    for seed in range(8):
        out = no_jitter(clip, rng(seed))
        assert out.shape == (6, 3, 64, 64)
        assert all(torch.equal(out[0], out[i]) for i in range(1, 6))
    jitter = tr.ColorJitter(p=1.0, per_frame=True)
    out = jitter(clip, rng(0))
    assert not torch.allclose(out[0], out[1])
    once = tr.ColorJitter(p=1.0, per_frame=False)(clip, rng(0))
    assert all(torch.equal(once[0], once[i]) for i in range(1, 6))
    full = tr.build_transform("dk_clip_train", 64)(clip, rng(3))
    assert full.shape == (6, 3, 64, 64) and 0 <= full.min() and full.max() <= 1


def test_uint8_and_numpy_input():
    x = (torch.rand(4, 3, 20, 30) * 255).to(torch.uint8)
    out = tr.build_transform("hesp_test", 16)(x, rng())
    assert out.dtype == torch.float32 and out.shape == (4, 3, 16, 16)
    arr = np.zeros((4, 20, 30, 3), np.uint8)
    arr[..., 0] = 255
    f = tr.to_float_clip(arr)
    assert f.shape == (4, 3, 20, 30) and f[:, 0].min() == 1.0 and f[:, 1].max() == 0.0
    assert torch.equal(tr.to_float_clip(torch.from_numpy(arr)), f)  # channels-last tensor
    with pytest.raises(ValueError, match="T, H, W, 3"):
        tr.to_float_clip(np.zeros((4, 20, 30), np.uint8))


def test_flip_is_a_mirror_and_same_for_all_frames():
    clip = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).view(2, 3, 2, 4) / 100
    flipped = tr.RandomHorizontalFlip(p=1.0)(clip, rng())
    assert torch.equal(flipped, clip.flip(-1))
    assert torch.equal(tr.RandomHorizontalFlip(p=0.0)(clip, rng()), clip)


def test_resize_helpers():
    clip = torch.rand(2, 3, 40, 80)
    assert tr.resize(clip, 24).shape[-2:] == (24, 24)
    assert tr.resize_shorter(clip, 20).shape[-2:] == (20, 40)
    assert tr.resize_shorter(clip.transpose(-1, -2), 20).shape[-2:] == (40, 20)
    assert tr.center_crop(clip, 30).shape[-2:] == (30, 30)
    assert tr.rotate(clip, 5.0).shape == clip.shape
    g = tr.grayscale(clip)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])


def test_rrc_box_bounds_and_fallbacks():
    r = rng(0)
    for _ in range(200):
        top, left, h, w = tr.rrc_box(50, 70, r)
        assert 0 <= top and top + h <= 50 and 0 <= left and left + w <= 70
        area = h * w / (50 * 70)
        assert 0.06 <= area <= 1.0 + 1e-9
    # no tries -> fallbacks
    assert tr.rrc_box(50, 50, r, tries=0) == (0, 0, 50, 50)
    assert tr.rrc_box(40, 100, r, tries=0) == (0, (100 - round(40 * 4 / 3)) // 2, 40, round(40 * 4 / 3))
    top, left, h, w = tr.rrc_box(40, 100, r, tries=0, fallback="random_square")
    assert (h, w) == (40, 40) and top == 0 and 0 <= left <= 60


def test_multiscale_box_fixed_positions_and_scales():
    r = rng(0)
    sizes = {int(48 * s) for s in (1.0, 0.875, 0.75, 0.66)}
    for _ in range(200):
        top, left, h, w = tr.multiscale_box(48, 64, r)
        assert h in sizes and w in sizes
        dy, dx = 48 - h, 64 - w
        assert (top, left) in {(0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)}
        order = sorted(sizes, reverse=True)
        assert abs(order.index(h) - order.index(w)) <= 1


def test_same_rng_same_output():
    clip = torch.rand(3, 3, 40, 40)
    t = tr.build_transform("dfer_clip_train", 32)
    assert torch.equal(t(clip, rng(7)), t(clip, rng(7)))


def test_normalize_presets():
    x = torch.ones(2, 4, 3, 5, 5)  # (B, T, 3, H, W)
    assert tr.normalize(x, "none") is x
    y = tr.normalize(x, "imagenet")
    assert torch.allclose(y[0, 0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))
    c = tr.normalize(torch.full((3, 2, 2), 0.48145466), "clip")
    assert abs(float(c[0, 0, 0])) < 1e-6
    with pytest.raises(ValueError, match="imagenet"):
        tr.normalize(x, "bogus")  # type: ignore[arg-type]


def test_unknown_preset_lists_valid():
    with pytest.raises(KeyError, match="hesp_train"):
        tr.build_transform("hesp_trian")
