"""The three-line Python API: ``ovfer.load(...)`` -> ``Recognizer.predict(video)``.

A deployable checkpoint holds the method name and config, the class names in label
order, the learned tensors, the backbone spec and the open-set threshold calibrated on
known training clips (SPEC §7.7), so a new clip scoring below it is "unknown".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ovfer.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ovfer.methods.base import Method, build_config, create_method

log = logging.getLogger(__name__)
UNKNOWN = "unknown"


class NoFaceError(ValueError):
    """The video shows no face; nothing is classified."""


@dataclass
class Prediction:
    """One video's answer: a known class name or ``"unknown"``."""

    video: str
    label: str
    score: float
    threshold: float
    top_class: str
    scores: dict[str, float] = field(default_factory=dict)
    face_frames: int | None = None
    frames: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def export_model(method: Method, path: str | Path, threshold: float | None, keep: float = 0.95,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write a deployable checkpoint (atomic; tensors and JSON only)."""
    bb = getattr(method, "backbone", None)
    state = {
        "model": {k: v.detach().cpu() for k, v in method.trainable_state_dict().items()},
        "config": {"method": method.config_dict()},
        "classnames": list(method.classnames),
        "method": method.name,
        "arch": getattr(bb, "arch", None),
        "extra": {"threshold": threshold, "threshold_keep": keep, **(extra or {})},
    }
    return save_checkpoint(path, state)


class Recognizer:
    """A trained method plus its threshold and the face pipeline, ready for new videos."""

    def __init__(self, method: Method, threshold: float | None, device: str = "cpu",
                 precision: str = "fp32", face_config: Any = None) -> None:
        self.method = method.to(device).eval()
        self.method.prepare_eval()
        self.threshold = threshold
        self.device = device
        self.precision = precision
        self.face_config = face_config

    @classmethod
    def load(cls, name: str, checkpoint: str | Path | None = None, classes: Sequence[str] | None = None,
             backbone_weights: str | None = None, **kwargs: Any) -> "Recognizer":
        """From a checkpoint (``name`` checked against it), or an untrained method over ``classes``."""
        if checkpoint is None:
            if not classes:
                raise ValueError(f"ovfer.load('{name}') needs checkpoint=... or classes=[...]")
            return cls(create_method(name, classes), None, **kwargs)
        state = load_checkpoint(checkpoint, expected_method=name if name != "auto" else None)
        cfg_dict = dict((state.get("config") or {}).get("method") or {})
        if backbone_weights is not None:
            cfg_dict.setdefault("backbone", {})["pretrained"] = backbone_weights
        cfg = build_config(state["method"], cfg_dict)
        method = create_method(state["method"], state["classnames"], cfg)
        missing, unexpected = method.load_state_dict(state["model"], strict=False)
        expected = set(method.trainable_state_dict())
        lost = sorted(expected & set(missing))
        if lost or unexpected:
            raise CheckpointError(f"{checkpoint}: tensors do not fit method '{state['method']}' "
                                  f"(missing {lost[:5]}, unexpected {list(unexpected)[:5]})")
        threshold = (state.get("extra") or {}).get("threshold")
        return cls(method, threshold, **kwargs)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.method.classnames

    def predict_tensor(self, video: torch.Tensor, name: str = "") -> Prediction:
        """Classify one prepared clip (T, 3, S, S) with pixels in [0, 1]."""
        from ovfer.engine.amp import autocast

        with torch.inference_mode(), autocast(self.precision, torch.device(self.device).type):
            out = self.method(video[None].to(self.device), [name] if name else None)
        logits = out.logits[0].float().cpu()
        score = float(out.open_score[0])
        top = int(logits.argmax())
        known = self.threshold is None or score >= self.threshold
        return Prediction(video=name, label=self.classes[top] if known else UNKNOWN, score=score,
                          threshold=float("nan") if self.threshold is None else float(self.threshold),
                          top_class=self.classes[top],
                          scores={c: float(v) for c, v in zip(self.classes, logits.tolist())})

    def predict(self, video: str | Path, aligned: bool = False) -> Prediction:
        """Decode, find and align the face (unless ``aligned``), sample frames, score."""
        from ovfer.data.sampling import build_sampler
        from ovfer.data.transforms import build_transform

        path = Path(video)
        if aligned:
            from ovfer.data.video import read_video

            frames = read_video(path)
            face_frames = len(frames)
        else:
            frames, face_frames = face_clip(path, self.face_config)
        p = self.method.data_preset
        idx = build_sampler(p.sampler, num_frames=p.num_frames)(len(frames), train=False)
        clip = build_transform(p.test_transform, p.image_size)(torch.from_numpy(np.ascontiguousarray(frames[idx])))
        pred = self.predict_tensor(clip, str(path))
        pred.face_frames, pred.frames = face_frames, len(frames)
        return pred


def face_clip(path: Path, face_config: Any = None) -> tuple[np.ndarray, int]:
    """Aligned face frames (N, S, S, 3) of the main face of a video, and N; NoFaceError when none."""
    from ovfer.data.preprocess import PreprocessConfig, extract_face_clip

    result = extract_face_clip(path, face_config or PreprocessConfig())
    if result.clip is None or len(result.clip) == 0:
        raise NoFaceError(f"no face found in {path}")
    return result.clip, len(result.clip)


def load(name: str, checkpoint: str | Path | None = None, **kwargs: Any) -> Recognizer:
    """``ovfer.load("hesp", checkpoint="hesp_mafw.pt")``."""
    return Recognizer.load(name, checkpoint, **kwargs)
