"""Annotated output video for ``ovfer predict --annotate``: face box and answer on every
frame, plus an inset of the aligned face with the visual-prompt window (HESP)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def annotate_video(rec, video: Path, pred, out: Path) -> Path:
    import cv2

    from ovfer.data.preprocess import PreprocessConfig, extract_face_clip
    from ovfer.data.video import probe_video, read_video, write_video

    face = extract_face_clip(video, rec.face_config or PreprocessConfig())
    frames = read_video(video).copy()
    boxes = dict(zip(face.meta.get("frame_indices", []), face.meta.get("boxes", [])))
    text = f"{pred.label} ({pred.score:.2f} / thr {pred.threshold:.2f})"
    inset = _prompt_inset(rec, face.clip)
    for i, frame in enumerate(frames):
        if i in boxes:
            x0, y0, x1, y1 = (int(round(v)) for v in boxes[i])
            cv2.rectangle(frame, (x0, y0), (x1, y1), (0, 255, 0), 2)
            cv2.putText(frame, text, (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1, cv2.LINE_AA)
        if inset is not None:
            h, w = inset.shape[:2]
            frame[:h, :w] = inset
    try:
        fps = float(probe_video(video).fps or 25.0)
    except Exception:  # noqa: BLE001 - metadata only sets the output frame rate
        fps = 25.0
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(out, frames, fps=fps)
    return out


def _prompt_inset(rec, clip: np.ndarray | None, size: int = 96) -> np.ndarray | None:
    """First aligned face frame with the patch window drawn (methods without one: plain face)."""
    import cv2

    if clip is None or not len(clip):
        return None
    method = rec.method
    s = method.data_preset.image_size
    first = cv2.resize(clip[0], (s, s), interpolation=cv2.INTER_AREA)
    if getattr(method, "patch", None) is not None and hasattr(method, "locations"):
        x = torch.from_numpy(first).permute(2, 0, 1).float().div(255)[None, None]
        with torch.inference_mode():
            y, x0 = (int(v) for v in method.locations(x)[0])
        l = method.patch_len
        first = first.copy()
        cv2.rectangle(first, (x0, y), (x0 + l - 1, y + l - 1), (255, 0, 0), 2)
    return cv2.resize(first, (size, size), interpolation=cv2.INTER_AREA)
