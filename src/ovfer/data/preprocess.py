"""Raw videos -> aligned face clips in the clip cache (SPEC §2.3, §2.5).

``preprocess(videos, cache, cfg, workers)`` runs, per video: decode (PyAV, any codec) ->
detect the main face on keyframes and track it in between (:func:`track_main_face`) ->
align by five landmarks and crop -> write the clip and a JSON sidecar to the cache. It is

* parallel over videos (``ProcessPoolExecutor``, ``spawn`` start; ``workers=0`` inline),
* resumable: the cache key is computed from the source's path/size/mtime and the
  settings, and a video whose key is already in the cache (as a clip, or as a recorded
  "no face" outcome) is skipped without decoding or detecting anything,
* honest about failures: unreadable videos are logged and counted with their reason,
  never raised; a video without any face is reported and gets no clip (SPEC §2.3).

**Partial faces.** When the face is visible in only part of a video, the clip holds the
face frames only; the dropped source frames are listed in the sidecar
(``no_face_frames``) and ``frame_indices`` maps clip frames back to source frames. A
clip of background frames would teach a FER model nothing, and padding with reused boxes
over long stretches would crop background under a stale box.

**Memory.** Frames are kept at detection resolution (longest side <= ``detect_max_side``)
for the whole video. Larger sources also keep their full-resolution frames for alignment
up to 512 MiB per video and are decoded a second time beyond that. Use ``max_frames``
for very long inputs.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence, Union

import numpy as np

from ovfer.data.cache import ClipCache
from ovfer.data.faces import (
    DETECTORS, ORIGIN_NAMES, FaceDetector, RescaledDetector, align_face, create_detector, track_main_face,
)
from ovfer.data.video import VideoReadError, iter_frames

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
Status = Literal["done", "skipped", "no_face", "failed"]
#: Full-resolution frames are kept for alignment up to this many bytes per video; beyond
#: it the video is decoded a second time instead.
_FULL_FRAME_BUDGET = 512 * 2**20


@dataclass
class PreprocessConfig:
    """Face-pipeline settings; every field changes the output, so all enter the cache key."""

    detector: str = "mtcnn"
    """Registered detector name (``ovfer.data.faces.list_detectors()``)."""
    detector_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra constructor arguments for the detector."""
    detect_every: int = 5
    """Run the detector on every N-th frame and track in between; 1 = every frame."""
    min_face_size: int = 40
    """Smallest face (shorter box side, source pixels) that counts."""
    score_threshold: float = 0.9
    """Minimum detector confidence."""
    output_size: int = 224
    """Side of the square aligned crop (SPEC §2.3 step 3)."""
    margin: float = 0.15
    """Context around the tight face square, as a fraction of it on each side."""
    max_frames: int | None = None
    """Use at most the first N frames of each video (None = all)."""
    detect_max_side: int = 640
    """Frames are downscaled to this longest side for detection (alignment uses full res)."""
    link_iou: float = 0.2
    """IoU needed to link detections on successive keyframes into one face track."""
    max_gap: int = 15
    """Longest detection dropout (frames) bridged by reusing the nearest good box."""

    def __post_init__(self) -> None:
        checks = {
            "detect_every": self.detect_every >= 1, "min_face_size": self.min_face_size >= 0,
            "score_threshold": 0.0 <= self.score_threshold <= 1.0, "output_size": self.output_size >= 16,
            "margin": 0.0 <= self.margin <= 2.0, "detect_max_side": self.detect_max_side >= 64,
            "link_iou": 0.0 <= self.link_iou <= 1.0, "max_gap": self.max_gap >= 0,
            "max_frames": self.max_frames is None or self.max_frames >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid PreprocessConfig value(s) {[(k, getattr(self, k)) for k in bad]}")

    def settings(self) -> dict[str, Any]:
        """The dict that keys the cache: ``ClipCache.key_for(video, cfg.settings())``."""
        return {"pipeline": "ovfer.face/1", **asdict(self)}


@dataclass
class VideoResult:
    source: str
    status: Status
    key: str | None = None
    reason: str = ""
    frames: int = 0
    face_frames: int = 0
    detector_calls: int = 0
    seconds: float = 0.0


@dataclass
class PreprocessSummary:
    """Per-video outcomes; ``str(summary)`` is the report printed by the CLI."""

    results: list[VideoResult] = field(default_factory=list)

    def _with(self, status: Status) -> list[VideoResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[VideoResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[VideoResult]:
        return self._with("skipped")

    @property
    def no_face(self) -> list[VideoResult]:
        return self._with("no_face")

    @property
    def failed(self) -> list[VideoResult]:
        return self._with("failed")

    @property
    def detector_calls(self) -> int:
        return sum(r.detector_calls for r in self.results)

    def counts(self) -> dict[str, int]:
        return {s: len(self._with(s)) for s in ("done", "skipped", "no_face", "failed")}

    def __str__(self) -> str:
        c = self.counts()
        lines = [f"preprocess: {c['done']} done, {c['skipped']} skipped (already cached), "
                 f"{c['no_face']} without a face, {c['failed']} failed"]
        lines += [f"  no face: {r.source}" for r in self.no_face]
        lines += [f"  failed:  {r.source}: {r.reason}" for r in self.failed]
        return "\n".join(lines)


# --------------------------------------------------------------------------- one video
@dataclass
class FaceClip:
    """Output of :func:`extract_face_clip`: the clip (None without a face) and its sidecar."""

    clip: np.ndarray | None  # (T, S, S, 3) uint8
    meta: dict[str, Any]


def _round(a: np.ndarray, nd: int = 2) -> list:
    return np.round(np.asarray(a, np.float64), nd).tolist()


def _decode_for_detection(
    source: PathLike, cfg: PreprocessConfig
) -> tuple[list[np.ndarray], list[np.ndarray] | None, float, tuple[int, int]]:
    """Frames at detection resolution, the full-res frames if they fit the memory budget
    (None otherwise; unused when no downscaling happens), the scale and the full size."""
    import cv2

    small: list[np.ndarray] = []
    full: list[np.ndarray] | None = []
    scale, full_size, used = 1.0, (0, 0), 0
    for frame in iter_frames(source, cfg.max_frames):
        if not small:
            full_size = frame.shape[:2]
            scale = min(1.0, cfg.detect_max_side / max(full_size))
        if frame.shape[:2] != full_size:
            raise VideoReadError(source, f"frame size changes from {full_size} to {frame.shape[:2]}")
        if scale < 1.0:
            used += frame.nbytes
            full = None if full is None or used > _FULL_FRAME_BUDGET else full
            if full is not None:
                full.append(frame)
            # bilinear is 4x cheaper than area averaging and alias-free enough above 0.5x
            interp = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
            frame = cv2.resize(frame, (round(full_size[1] * scale), round(full_size[0] * scale)),
                               interpolation=interp)
        small.append(frame)
    return small, full, scale, full_size


def extract_face_clip(source: PathLike, cfg: PreprocessConfig, detector: FaceDetector | None = None) -> FaceClip:
    """Decode, track the main face and align it (SPEC §2.3 steps 1–3) for one input.

    Raises :class:`VideoReadError` for unreadable input; used by :func:`preprocess` and
    by ``predict`` on raw videos.
    """
    detector = detector if detector is not None else create_detector(cfg.detector, **cfg.detector_kwargs)
    small, full, scale, full_size = _decode_for_detection(source, cfg)
    if hasattr(detector, "min_face_size"):  # let the detector skip scales it cannot need
        try:
            detector.min_face_size = max(cfg.min_face_size * scale, 12)
        except AttributeError:
            pass
    track = track_main_face(small, RescaledDetector(detector, scale), cfg.detect_every,
                            cfg.min_face_size, cfg.score_threshold, cfg.link_iou, cfg.max_gap)
    keep = np.flatnonzero(track.has_face)
    meta: dict[str, Any] = {
        "source": os.path.abspath(source), "source_frames": len(small), "source_size": list(full_size),
        "frame_indices": keep.tolist(), "no_face_frames": np.flatnonzero(~track.has_face).tolist(),
        "detector_calls": track.detector_calls, "settings": cfg.settings(),
    }
    if keep.size == 0:
        return FaceClip(None, meta)
    if scale == 1.0:
        frames: Any = small
    else:  # second decode only when the full-res frames did not fit in memory
        frames = full if full is not None else iter_frames(source, cfg.max_frames)
    wanted = set(keep.tolist())
    clip, mats = [], []
    for i, frame in enumerate(frames):
        if i in wanted:
            crop, m = align_face(frame, track.landmarks[i], cfg.output_size, cfg.margin)
            clip.append(crop)
            mats.append(m)
    if len(clip) != keep.size:
        raise VideoReadError(source, f"second decode gave {len(clip)} of {keep.size} face frames")
    meta.update({
        "boxes": _round(track.boxes[keep]), "landmarks": _round(track.landmarks[keep]),
        "scores": [None if np.isnan(s) else round(float(s), 4) for s in track.scores[keep]],
        "origin": [ORIGIN_NAMES[int(o)] for o in track.origin[keep]],
        "transforms": _round(np.stack(mats), 5),
    })
    return FaceClip(np.stack(clip), meta)


def _process(source: str, key: str, cache: ClipCache, cfg: PreprocessConfig, detector: FaceDetector) -> VideoResult:
    t0 = time.perf_counter()
    res = VideoResult(source, "failed", key)
    try:
        out = extract_face_clip(source, cfg, detector)
        res.frames, res.detector_calls = out.meta["source_frames"], out.meta["detector_calls"]
        if out.clip is None:
            cache.put_meta(key, {**out.meta, "status": "no_face"})
            res.status, res.reason = "no_face", "no face found in any frame"
        else:
            cache.put(key, out.clip, {**out.meta, "status": "done"})
            res.status, res.face_frames = "done", len(out.clip)
    except VideoReadError as e:
        res.reason = e.reason
    except Exception as e:  # one bad video must not end a long run; reason goes to the summary
        log.debug("preprocess failed on %s", source, exc_info=True)
        res.reason = f"{e.__class__.__name__}: {e}"
    res.seconds = time.perf_counter() - t0
    return res


# --------------------------------------------------------------------------- worker side
_WORKER: dict[str, Any] = {}


def _init_worker(cache_root: str, verify: str, cfg: PreprocessConfig) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV threads would oversubscribe
    _WORKER.update(cache=ClipCache(cache_root, verify=verify), cfg=cfg,
                   detector=create_detector(cfg.detector, **cfg.detector_kwargs))


def _worker_run(source: str, key: str) -> VideoResult:
    return _process(source, key, _WORKER["cache"], _WORKER["cfg"], _WORKER["detector"])


# --------------------------------------------------------------------------- driver
def _cached_result(source: str, cache: ClipCache, cfg: PreprocessConfig) -> tuple[str | None, VideoResult | None]:
    """Key of ``source`` and, when the cache already answers it, the skip result."""
    try:
        key = cache.key_for(source, cfg.settings())
    except (OSError, ValueError) as e:
        return None, VideoResult(source, "failed", None, f"cannot stat source ({e})")
    if cache.has(key):
        return key, VideoResult(source, "skipped", key, "already cached")
    meta = cache.meta(key)
    if meta is not None and meta.get("status") == "no_face":
        return key, VideoResult(source, "no_face", key, "no face (cached result)",
                                frames=meta.get("source_frames", 0))
    return key, None


def preprocess(
    videos: Sequence[PathLike],
    cache: ClipCache | PathLike,
    cfg: PreprocessConfig | None = None,
    workers: int = 0,
    progress: bool = True,
    start_method: Literal["spawn", "forkserver", "fork"] = "spawn",
) -> PreprocessSummary:
    """Turn ``videos`` (files, frame folders or images) into face clips in ``cache``.

    Returns a :class:`PreprocessSummary`; never raises for a bad video. Loaders find a
    clip with ``cache.get(cache.key_for(video, cfg.settings()))``. ``workers`` processes
    are started with ``start_method``; ``spawn`` is the safe default (a forked child can
    inherit locked thread pools), at the price of re-importing ovfer in each worker.
    Custom detectors must be registered at import time of a module the workers import.
    """
    from tqdm.auto import tqdm

    cfg = cfg or PreprocessConfig()
    DETECTORS.get(cfg.detector)  # an unknown name fails here, listing the valid ones
    cache = cache if isinstance(cache, ClipCache) else ClipCache(cache)
    cache.remove_stale_temp()
    summary = PreprocessSummary()
    todo: list[tuple[str, str]] = []
    seen: set[str] = set()
    for v in dict.fromkeys(str(v) for v in videos):  # de-duplicate, keep order
        key, res = _cached_result(v, cache, cfg)
        if res is not None:
            summary.results.append(res)
        elif key in seen:  # the same file under another spelling of its path
            summary.results.append(VideoResult(v, "skipped", key, "duplicate of an earlier input"))
        else:
            seen.add(key)
            todo.append((v, key))
    bar = tqdm(total=len(todo), desc="preprocess", unit="video", disable=not progress or not todo)
    if workers <= 0 or not todo:
        detector = create_detector(cfg.detector, **cfg.detector_kwargs) if todo else None
        for v, key in todo:
            summary.results.append(_process(v, key, cache, cfg, detector))
            bar.update()
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=mp.get_context(start_method),
                                 initializer=_init_worker, initargs=(str(cache.root), cache.verify, cfg)) as pool:
            futures = {pool.submit(_worker_run, v, key): (v, key) for v, key in todo}
            for fut in as_completed(futures):
                v, key = futures[fut]
                try:
                    summary.results.append(fut.result())
                except Exception as e:  # a worker died (e.g. out of memory)
                    summary.results.append(VideoResult(v, "failed", key, f"worker error: {e!r}"))
                bar.update()
    bar.close()
    for r in summary.results:
        if r.status == "failed":
            log.warning("preprocess: skipped %s: %s", r.source, r.reason)
        elif r.status == "no_face" and r.detector_calls:
            log.warning("preprocess: no face in %s; no clip written", r.source)
    log.info("%s", summary)
    return summary
