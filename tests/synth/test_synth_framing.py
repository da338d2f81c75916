"""Aligned and scene framing, empty frames, in-memory clips."""
from __future__ import annotations

import numpy as np

from ovfer.synth import load_synth_config, make_clip, render_clip, sample_clips


def test_aligned_face_fills_the_frame():
    cfg = load_synth_config(None, ["video.frames=4"])
    for i, c in enumerate(["happiness", "surprise", "neutral", "anger", "fear", "disgust"]):
        clip = make_clip(cfg, 5, i, c)
        assert clip.frames.shape == (4, 112, 112, 3) and clip.frames.dtype == np.uint8
        assert min(clip.info["face_fraction"]) >= 0.85, clip.info["face_fraction"]


def test_scene_face_is_smaller_and_inside_the_frame():
    cfg = load_synth_config("scene", ["video.frames=4", "video.width=160", "video.height=120",
                                      "framing.empty_prob=0.0"])
    for i in range(3):
        clip = make_clip(cfg, 6, i, "sadness")
        assert clip.frames.shape == (4, 120, 160, 3)
        assert all(0.02 < f < 0.4 for f in clip.info["face_fraction"])
        for x0, y0, x1, y1 in clip.info["face_boxes"]:
            assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120
            assert (x1 - x0) * (y1 - y0) < 0.5 * 160 * 120


def test_scene_empty_frames_have_no_face():
    cfg = load_synth_config("scene", ["video.frames=6", "video.width=96", "video.height=64",
                                      "framing.empty_prob=1.0", "framing.empty_frames=[2,2]"])
    clip = make_clip(cfg, 1, 0, "happiness")
    empty = clip.info["empty_frames"]
    assert len(empty) == 2 and empty in ([0, 1], [4, 5])
    for t in range(6):
        has_face = t not in empty
        assert (clip.info["face_fraction"][t] > 0) == has_face
        assert (clip.info["face_boxes"][t] is not None) == has_face
    # empty frames show only the static background (up to sensor noise)
    a, b = clip.frames[empty[0]].astype(float), clip.frames[empty[1]].astype(float)
    face_t = 3 if empty[0] == 0 else 2
    assert np.abs(a - b).mean() < np.abs(a - clip.frames[face_t].astype(float)).mean()


def test_render_clip_is_deterministic_per_rng():
    cfg = load_synth_config(None, ["video.frames=4", "video.width=64", "video.height=64"])
    f1, i1 = render_clip("fear_surprise", np.random.default_rng([1, 2]), cfg)
    f2, i2 = render_clip(("fear", "surprise"), np.random.default_rng([1, 2]), cfg)
    np.testing.assert_array_equal(f1, f2)
    assert i1["caption"] == i2["caption"] and i1["label"] == ["fear", "surprise"]
    assert i1["aus"].shape[0] == 4


def test_sample_clips_cycles_classes_and_continues():
    cfg = load_synth_config(None, ["video.frames=3", "video.width=48", "video.height=48"])
    clips = list(sample_clips(cfg, seed=9, n=5, classes=["anger", "happiness_surprise"]))
    assert [c.label for c in clips] == [("anger",), ("happiness", "surprise")] * 2 + [("anger",)]
    assert all(c.frames.shape == (3, 48, 48, 3) and c.caption for c in clips)
    assert clips[1].class_name == "happiness_surprise"
    again = list(sample_clips(cfg, seed=9, n=2, classes=["anger", "happiness_surprise"], start=3))
    np.testing.assert_array_equal(again[0].frames, clips[3].frames)
    assert again[1].id == clips[4].id
