"""SynthFER: config -> clips (in memory) -> files (MP4 + official-format annotations).

Every clip is a pure function of ``(config, seed, clip index, label)``: its random
stream is ``numpy.random.default_rng([seed, index])``, so a set is reproducible clip by
clip, in any order and with any number of worker processes.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ovfer.config import ConfigError, from_dict, load_yaml, override, to_dict

from .aus import split_label, to_dict as aus_to_dict, to_vector
from .captions import chinese_caption, make_caption
from .config import SynthConfig
from .face import build_face, depth, head_outline
from .identity import Identity, sample_identity
from .raster import Canvas, project, shading
from .scene import Placement, apply_camera, background, sample_lighting, sample_placement, similarity
from .timeline import sample_timeline

log = logging.getLogger(__name__)

GENERATOR_VERSION = "synthfer-1.1"  # 1.1: x264 without mbtree (deterministic bitstreams)
PRESETS = ("default", "hard", "scene")
_PLAN_STREAM = 10**9  # rng stream of the class order; far from any clip index
REFERENCE_FACE_WIDTH = 1.3  # face half width (IOD units) that the aligned eye distance refers to


@dataclass
class SynthClip:
    """One generated clip in memory."""

    id: str
    label: tuple[str, ...]  # canonical class names; two for compound clips
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    caption: str
    apex_aus: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        """MAFW-style name: compound labels joined by '_'."""
        return "_".join(self.label)


def load_synth_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> SynthConfig:
    """Load a SynthFER config: ``None`` -> packaged ``default.yaml``; a preset name; or a YAML path.

    Presets (``hard``, ``scene``) only list what differs from the defaults.
    """
    name = "default" if path is None else str(path)
    if name in PRESETS:
        with resources.files("ovfer.synth").joinpath(f"{name}.yaml").open("r", encoding="utf-8") as fh:
            import yaml

            data = yaml.safe_load(fh) or {}
        cfg = from_dict(SynthConfig, data, where=f"{name}.yaml")
        return override(cfg, overrides) if overrides else cfg
    p = Path(name)
    if not p.is_file():
        raise ConfigError(f"SynthFER config '{name}' is neither a preset {list(PRESETS)} nor a file")
    return load_yaml(SynthConfig, p, overrides)


def parse_label(label: str | Sequence[str]) -> tuple[str, ...]:
    """``"fear_surprise"`` or ``("fear", "surprise")`` -> checked tuple of class names."""
    return split_label(label if isinstance(label, str) else "_".join(label))


def _eyes(idn: Identity) -> np.ndarray:
    o = idn.eye_offsets
    return np.array([[-0.5 + o[0], o[1]], [0.5 + o[2], o[3]]])


def _roi(M: np.ndarray, idn: Identity, place: Placement) -> tuple[int, int, int, int]:
    """Output region the person can cover (whole frame for aligned crops)."""
    H, W = place.size
    if place.mode == "aligned":
        return (0, 0, W, H)
    top, bottom = -idn.forehead - 0.6, idn.chin + 5.5  # hair volume above, shoulders below
    c = np.array([[-4.0, top], [4.0, top], [-4.0, bottom], [4.0, bottom]])
    p = c @ M[:, :2].T + M[:, 2]
    x0, y0 = np.floor(p.min(0)).astype(int) - 2
    x1, y1 = np.ceil(p.max(0)).astype(int) + 2
    return (max(0, x0), max(0, y0), min(W, x1), min(H, y1))


def aligned_zoom(idn: Identity) -> float:
    """Aligned crops normalise the face width (like a detector box), not only the eye distance."""
    return float(np.clip(REFERENCE_FACE_WIDTH / idn.face_w, 0.9, 1.1))


def render_clip(
    label: str | Sequence[str], rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """Render one clip of class ``label``: (T, H, W, 3) uint8 RGB frames and its metadata."""
    label = parse_label(label)
    v = cfg.video
    T, H, W = v.frames, v.height, v.width
    idn = sample_identity(rng, cfg.identity)
    tl = sample_timeline(rng, label, cfg)
    place = sample_placement(rng, T, H, W, cfg.framing, zoom=aligned_zoom(idn))
    bg = background(rng, H, W, cfg.framing.mode, cfg.framing.clutter)
    light = sample_lighting(rng, H, W, cfg.appearance)
    eyes = _eyes(idn)
    frames = np.empty((T, H, W, 3), np.uint8)
    boxes: list[list[int] | None] = []
    fractions: list[float] = []
    shade = None
    for t in range(T):
        img = bg.copy()
        if place.empty[t]:
            boxes.append(None)
            fractions.append(0.0)
        else:
            pose = (float(tl.pose[t, 0]), float(tl.pose[t, 1]), float(tl.pose[t, 2]))
            M = place.transform(t, project(eyes, depth(eyes, idn) - 0.08, *pose))
            roi = _roi(M, idn, place)
            canvas = Canvas(roi, M, v.supersample)
            canvas.draw(build_face(idn, tl.aus[t], (float(tl.gaze[t, 0]), float(tl.gaze[t, 1])), tl.side), idn, pose)
            rgb, alpha, face = canvas.result()
            x0, y0, x1, y1 = roi
            if shade is None or place.mode == "scene":  # aligned crops barely move: shade once
                shade = shading((y1 - y0, x1 - x0), roi, M, idn, light.shading, light.side)
            rgb *= shade
            sub = img[y0:y1, x0:x1]
            sub[:] = rgb + sub * (1.0 - alpha[..., None])
            fractions.append(round(float(face.sum()) / (H * W), 4))
            boxes.append(_face_box(idn, tl.aus[t], pose, M, H, W) if place.mode == "scene" else [0, 0, W, H])
        frames[t] = apply_camera(img, light, rng)
    caption = make_caption(label, tl.apex_aus, rng, cfg.captions, idn.female, tl.weak and label != ("neutral",),
                           tl.talking, tl.blinks)
    info = {
        "label": list(label), "caption": caption, "caption_zh": chinese_caption(label),
        "frames": T, "apex_frame": tl.apex_frame, "apex_aus": aus_to_dict(tl.apex_aus, 0.0),
        "apex_intensity": round(tl.apex_intensity, 3), "weak": tl.weak, "talking": tl.talking,
        "blinks": tl.blinks, "unilateral_side": "right" if tl.side > 0 else "left",
        "female": idn.female, "framing": place.mode, "face_fraction": fractions, "face_boxes": boxes,
        "empty_frames": [int(i) for i in np.flatnonzero(place.empty)],
        "aus": tl.aus, "expression": tl.expression, "pose": tl.pose,
    }
    return frames, info


def render_face(
    idn: Identity,
    aus: np.ndarray | Mapping[str, float],
    cfg: SynthConfig,
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
    gaze: tuple[float, float] = (0.0, 0.0),
    side: int = 1,
    background_value: float = 110.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One aligned still without lighting or noise: (H, W, 3) uint8 RGB and the face mask in [0, 1].

    For inspecting and testing AU effects with everything else held fixed.
    """
    H, W = cfg.video.height, cfg.video.width
    vec = to_vector(aus) if isinstance(aus, Mapping) else np.asarray(aus, np.float32)
    f = cfg.framing
    d, y = f.eye_distance * W * aligned_zoom(idn), f.eye_y * H
    M = similarity(project(_eyes(idn), depth(_eyes(idn), idn) - 0.08, *pose),
                   np.array([[W / 2 - d / 2, y], [W / 2 + d / 2, y]]))
    canvas = Canvas((0, 0, W, H), M, cfg.video.supersample)
    canvas.draw(build_face(idn, vec, gaze, side), idn, pose)
    rgb, alpha, face = canvas.result()
    rgb *= shading((H, W), (0, 0, W, H), M, idn, 0.22, 0.0)
    img = rgb + background_value * (1.0 - alpha[..., None])
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), face


def _face_box(idn: Identity, aus: np.ndarray, pose: tuple[float, float, float], M: np.ndarray,
              H: int, W: int) -> list[int]:
    from .aus import AU_INDEX

    pts, _ = head_outline(idn, 0.24 * float(aus[AU_INDEX["AU26"]]))
    p = project(pts, np.zeros(len(pts)), *pose) @ M[:, :2].T + M[:, 2]
    x0, y0 = np.clip(p.min(0), 0, [W, H])
    x1, y1 = np.clip(p.max(0), 0, [W, H])
    return [int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))]


def make_clip(cfg: SynthConfig, seed: int, index: int, label: str | Sequence[str],
              clip_id: str | None = None) -> SynthClip:
    """Clip number ``index`` of stream ``seed`` (random stream ``default_rng([seed, index])``)."""
    rng = np.random.default_rng([int(seed), int(index)])
    frames, info = render_clip(label, rng, cfg)
    return SynthClip(clip_id or f"s{seed}_{index:06d}", tuple(info["label"]), frames, info["caption"],
                     info["apex_aus"], info)


def plan_clips(cfg: SynthConfig, seed: int) -> list[tuple[str, tuple[str, ...]]]:
    """Ids and labels of a full set, in id order (classes shuffled so ids carry no label)."""
    labels = [c for c in cfg.classes for _ in range(cfg.clips_per_class)]
    labels += [c for c in cfg.compound_classes for _ in range(cfg.clips_per_compound)]
    order = np.random.default_rng([int(seed), _PLAN_STREAM]).permutation(len(labels))
    return [(f"{i + 1:05d}", parse_label(labels[j])) for i, j in enumerate(order)]


_WORKER_CFG: SynthConfig | None = None


def _init_worker(cfg: SynthConfig) -> None:
    global _WORKER_CFG
    _WORKER_CFG = cfg
    import cv2

    cv2.setNumThreads(1)


def _sample_one(task: tuple[int, int, tuple[str, ...]]) -> SynthClip:
    seed, index, label = task
    return make_clip(_WORKER_CFG, seed, index, label)


def _pool(workers: int, cfg: SynthConfig) -> ProcessPoolExecutor:
    # forkserver: safe after torch/OpenMP were loaded in the parent, imports paid once
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["ovfer.synth.generator"])
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg,))


def sample_clips(cfg: SynthConfig, seed: int, n: int, classes: Sequence[str] | None = None,
                 start: int = 0, workers: int = 0) -> Iterator[SynthClip]:
    """Yield ``n`` clips in memory (no files), cycling through ``classes`` (default ``cfg.classes``).

    Clip ``i`` uses index ``start + i``, so consecutive calls can continue one stream.
    ``workers > 1`` renders in a process pool (order is kept).
    """
    classes = list(classes) if classes is not None else list(cfg.classes)
    if not classes:
        raise ValueError("sample_clips needs at least one class")
    tasks = [(seed, start + i, parse_label(classes[(start + i) % len(classes)])) for i in range(n)]
    if workers > 1:
        with _pool(workers, cfg) as ex:
            yield from ex.map(_sample_one, tasks, chunksize=4)
    else:
        for seed_, index, label in tasks:
            yield make_clip(cfg, seed_, index, label)


def _write_one(task: tuple[int, int, str, tuple[str, ...], str]) -> dict[str, Any]:
    return _write_clip(_WORKER_CFG, task)


def _write_clip(cfg: SynthConfig, task: tuple[int, int, str, tuple[str, ...], str]) -> dict[str, Any]:
    """Render one clip, write its MP4, return its manifest entry."""
    from .video import write_mp4

    seed, index, clip_id, label, path = task
    clip = make_clip(cfg, seed, index, label, clip_id)
    write_mp4(path, clip.frames, cfg.video.fps, cfg.video.crf, cfg.video.preset)
    keep = ("caption_zh", "apex_frame", "apex_intensity", "weak", "talking", "blinks", "unilateral_side",
            "female", "framing", "empty_frames")
    meta = {"id": clip_id, "index": index, "video": f"videos/{clip_id}.mp4", "label": clip.class_name,
            "caption": clip.caption, "frames": int(clip.frames.shape[0]), "apex_aus": clip.apex_aus}
    meta.update({k: clip.info[k] for k in keep})
    if cfg.framing.mode == "scene":
        meta["face_boxes"] = clip.info["face_boxes"]
    return meta


def write_text_bank(out: str | Path, classes: Sequence[str]) -> Path:
    """``<out>/text_bank.json``: the set's class descriptions and neutral pool (``--text-bank``)."""
    from .captions import text_bank

    path = Path(out) / "text_bank.json"
    tmp = path.with_name(".text_bank.json.tmp")
    tmp.write_text(json.dumps(text_bank(classes), indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def generate(cfg: SynthConfig, out_dir: str | Path, seed: int | None = None, workers: int | None = None) -> Path:
    """Write a whole SynthFER set: ``videos/*.mp4``, MAFW/DFEW-style annotations, ``text_bank.json``
    (class descriptions for EmoCLIP/DFER-CLIP-style methods) and ``synthfer.json``."""
    from .annotations import assign_folds, write_dfew, write_mafw

    seed = cfg.seed if seed is None else int(seed)
    workers = cfg.workers if workers is None else int(workers)
    workers = workers if workers > 0 else (os.cpu_count() or 1)
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    plan = plan_clips(cfg, seed)
    tasks = [(seed, i, cid, label, str(out / "videos" / f"{cid}.mp4")) for i, (cid, label) in enumerate(plan)]
    t0 = time.perf_counter()
    if workers > 1 and len(tasks) > 1:
        with _pool(min(workers, len(tasks)), cfg) as ex:
            metas = list(ex.map(_write_one, tasks, chunksize=max(1, min(8, len(tasks) // (4 * workers)))))
    else:
        metas = [_write_clip(cfg, t) for t in tasks]
    ids = {cid for cid, _ in plan}
    stale = sorted(p.name for p in (out / "videos").glob("*.mp4") if p.stem not in ids)
    if stale:
        log.warning("%s/videos holds %d videos that are not part of this set (e.g. %s); "
                    "the annotation files ignore them", out, len(stale), stale[0])
    folds = assign_folds([m["label"] for m in metas], cfg.folds, seed)
    for m, f in zip(metas, folds):
        m["fold"] = f
    write_mafw(out, metas, cfg.folds)
    write_dfew(out, metas, cfg.folds)
    write_text_bank(out, cfg.classes)
    manifest = {
        "generator": GENERATOR_VERSION, "seed": seed, "config": to_dict(cfg) | {"seed": seed},
        "num_clips": len(metas), "classes": list(cfg.classes), "compound_classes": list(cfg.compound_classes),
        "clips": metas,
    }
    tmp = out / ".synthfer.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / "synthfer.json")
    log.info("SynthFER: %d clips (%dx%d, %d frames) in %.1fs with %d worker(s) -> %s", len(metas),
             cfg.video.width, cfg.video.height, cfg.video.frames, time.perf_counter() - t0, workers, out)
    return out
