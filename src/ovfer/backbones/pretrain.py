"""Pretrain a small CLIP on SynthFER clips (SPEC §2.6; the analogue of CLIP's web data).

No pretrained weights can be downloaded here, so the default run's zero-shot and
prompting methods start from this checkpoint, as real users start from OpenAI CLIP.
Video side: frames mean-pooled; text side: the clip's caption. Loss: symmetric InfoNCE,
optionally with class-aware soft targets (captions of one class in a batch are all
positives), a SupCon term and a share of emotion-only captions. Clips come from a seed
separate from any evaluation clips; the output loads through ``ClipBackbone`` exactly
like real CLIP weights (a ``.safetensors`` file with the architecture in its metadata).
"""
from __future__ import annotations

import json
import logging
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ovfer.backbones.clip import ClipBackbone, BackboneConfig
from ovfer.config import to_dict
from ovfer.data.labels import BASIC7, MAFW11
from ovfer.engine.amp import autocast
from ovfer.losses.infonce import symmetric_infonce
from ovfer.losses.supcon import supcon_loss
from ovfer.prompts.banks import display_name

log = logging.getLogger(__name__)

EMOTION_ONLY = ("a face showing {}.", "this person feels {}.", "an expression of {}.", "{}.",
                "the face looks like {}.")


@dataclass
class PretrainConfig:
    """Small-CLIP pretraining recipe; the default gives useful features and imperfect zero-shot."""

    arch: str = "ovfer-synth-s"
    synth_config: str | None = None
    """SynthFER YAML (None = packaged default, aligned framing)."""
    synth_overrides: list[str] = field(default_factory=lambda: ["video.frames=6", "video.supersample=2"])
    """Short clips rendered at 2× supersampling: 4× faster to make, same faces."""
    classes: tuple[str, ...] = MAFW11
    seed: int = 1000
    """Clip seed: keep it apart from the evaluation sets' seeds (default SynthFER uses 0)."""
    num_clips: int = 3000
    frames: int = 1
    """Frames per clip fed to the image tower (mean-pooled), taken around the clip's apex."""
    epochs: int = 20
    batch_size: int = 32
    """Small batches: more updates per CPU second (measured better than 64 and 128 at equal time)."""
    lr: float = 5e-4
    weight_decay: float = 0.1
    warmup_frac: float = 0.05
    class_aware: bool = True
    """Captions of the same class in a batch are all positives (soft targets)."""
    supcon_weight: float = 0.0
    emotion_only_share: float = 0.1
    """Share of captions replaced by an emotion-only sentence (the strong recipe uses 0.2)."""
    precision: str = "fp32"
    """fp32 by default: on CPUs without AMX/AVX512-bf16 (this CI host) bf16 autocast is emulated and ~10× slower."""
    time_budget_s: float | None = 420.0
    """Training seconds: the step count is fitted to it after a few timed steps, and the
    cosine schedule is laid out for that count (None = exactly ``epochs`` epochs)."""
    eval_clips: int = 880
    """Held-out clips (separate seed): half train the linear probes, half test them."""
    workers: int = 2


def strong_recipe(cfg: PretrainConfig) -> PretrainConfig:
    """The prototype's strong setting: 20 % emotion-only captions and SupCon 0.5."""
    from dataclasses import replace

    return replace(cfg, emotion_only_share=0.2, supcon_weight=0.5)


# -- data -------------------------------------------------------------------------------
def _gen_chunk(args) -> tuple[np.ndarray, list[str], list[str]]:
    cfg_path, overrides, seed, n, classes, frames = args
    from ovfer.synth import load_synth_config, sample_clips

    scfg = load_synth_config(cfg_path, overrides)
    vids, labels, caps = [], [], []
    rng = np.random.default_rng(seed)
    for clip in sample_clips(scfg, seed=seed, n=n, classes=classes):
        t = clip.frames.shape[0]
        # frames near the apex carry the expression: centre the sampled frames on it, with jitter
        apex = int(clip.info.get("apex_frame", t // 2))
        start = int(np.clip(apex - frames // 2 + rng.integers(-1, 2), 0, max(0, t - frames)))
        idx = np.arange(start, min(t, start + frames))
        vids.append(clip.frames[idx])
        labels.append("_".join(clip.label))
        caps.append(clip.caption)
    return np.stack(vids), labels, caps


def generate_pool(cfg: PretrainConfig, n: int, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """(N, F, H, W, 3) uint8 frames, class names and captions, generated in parallel."""
    chunks = max(1, cfg.workers) * 4
    sizes = [n // chunks + (i < n % chunks) for i in range(chunks)]
    jobs = [(cfg.synth_config, list(cfg.synth_overrides), seed * 1000 + i, s, list(cfg.classes), cfg.frames)
            for i, s in enumerate(sizes) if s]
    if cfg.workers > 1:
        with ProcessPoolExecutor(cfg.workers) as ex:
            parts = list(ex.map(_gen_chunk, jobs))
    else:
        parts = [_gen_chunk(j) for j in jobs]
    return (np.concatenate([p[0] for p in parts]), sum((p[1] for p in parts), []), sum((p[2] for p in parts), []))


def _to_tensor(frames: np.ndarray, size: int) -> torch.Tensor:
    """(N, F, H, W, 3) uint8 -> (N, F, 3, size, size) in [0, 1] (resized when the clips differ)."""
    x = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        n, f = x.shape[:2]
        x = F.interpolate(x.flatten(0, 1), size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False).view(n, f, 3, size, size)
    return x


# -- training ---------------------------------------------------------------------------
def pretrain_clip(cfg: PretrainConfig, out_dir: str | Path) -> dict:
    """Train, save ``clip.safetensors`` + ``pretrain_report.json`` in ``out_dir``; returns the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    frames, labels, captions = generate_pool(cfg, cfg.num_clips, cfg.seed)
    t_gen = time.perf_counter() - t0
    log.info("generated %d pretraining clips in %.1fs", len(labels), t_gen)
    bb = ClipBackbone(BackboneConfig(arch=cfg.arch, pretrained=None))
    bb.train()
    class_index = {c: i for i, c in enumerate(sorted(set(labels)))}
    y_all = torch.tensor([class_index[c] for c in labels])
    opt = torch.optim.AdamW([p for p in bb.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    steps_per_epoch = max(1, len(labels) // cfg.batch_size)
    plan = {"total": steps_per_epoch * cfg.epochs}
    plan["warm"] = max(1, int(cfg.warmup_frac * plan["total"]))

    def lr_at(s: int) -> float:
        warm, total = plan["warm"], plan["total"]
        return (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = np.random.default_rng(cfg.seed)
    t1 = time.perf_counter()
    step, seen, stopped = 0, 0, False
    history = []
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(labels))
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            video = _to_tensor(frames[idx], bb.image_size)
            if rng.random() < 0.5:
                video = video.flip(-1)  # horizontal flip, whole clip
            texts = [EMOTION_ONLY[rng.integers(len(EMOTION_ONLY))].format(display_name(labels[i]))
                     if rng.random() < cfg.emotion_only_share else captions[i] for i in idx]
            y = y_all[idx]
            with autocast(cfg.precision, "cpu"):
                v = bb.encode_frames(bb.normalize(video)).mean(dim=1)
                t = bb.encode_text(bb.tokenize(texts))
            v, t = v.float(), t.float()
            logits = bb.logit_scale() * F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).t()
            loss = symmetric_infonce(logits, y if cfg.class_aware else None)
            if cfg.supcon_weight:
                loss = loss + cfg.supcon_weight * supcon_loss(v, y, temperature=0.1, scale=1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(bb.parameters(), 1.0)
            opt.step()
            sched.step()
            with torch.no_grad():
                bb.clip.logit_scale.clamp_(0, math.log(100))
            step += 1
            seen += len(idx)
            if cfg.time_budget_s and step == 5:  # fit the schedule to the time budget
                per_step = (time.perf_counter() - t1) / step
                fitted = max(step + 1, int(cfg.time_budget_s / per_step))
                if fitted < plan["total"]:
                    log.info("%.2fs per step: %d steps fit the %.0fs budget (planned %d)", per_step, fitted,
                             cfg.time_budget_s, plan["total"])
                    plan["total"] = fitted
                    plan["warm"] = min(plan["warm"], max(1, int(cfg.warmup_frac * fitted)))
            if step % 10 == 0:
                history.append({"step": step, "loss": float(loss.detach()), "lr": sched.get_last_lr()[0]})
                log.info("pretrain step %d/%d loss %.3f", step, plan["total"], float(loss.detach()))
            if step >= plan["total"]:
                stopped = True
                break
        if stopped:
            break
    t_train = time.perf_counter() - t1
    path = save_backbone(bb, out / "clip.safetensors", {"recipe": json.dumps(to_dict(cfg))})
    bb.eval()
    report = {"checkpoint": str(path), "steps": step, "planned_steps": plan["total"],
              "clips": len(labels), "videos_per_s": seen / max(t_train, 1e-9), "generate_s": t_gen,
              "train_s": t_train, "config": to_dict(cfg), "history": history}
    report["eval"] = evaluate_backbone(bb, cfg)
    (out / "pretrain_report.json").write_text(json.dumps(report, indent=2))
    return report


def save_backbone(bb: ClipBackbone, path: Path, meta: dict[str, str] | None = None) -> Path:
    """Atomic safetensors export of the CLIP state dict with its architecture name."""
    from safetensors.torch import save

    from ovfer.fsutil import atomic_write

    sd = {k: v.detach().contiguous().cpu() for k, v in bb.clip.state_dict().items() if k != "attn_mask"}
    data = save(sd, metadata={"arch": bb.arch, "format": "ovfer-clip", **(meta or {})})
    return atomic_write(path, lambda fh: fh.write(data))


# -- evaluation ---------------------------------------------------------------------------
@torch.no_grad()
def video_features(bb: ClipBackbone, frames: np.ndarray, batch: int = 128) -> torch.Tensor:
    feats = [bb.encode_frames(bb.normalize(_to_tensor(frames[i:i + batch], bb.image_size))).mean(1) for i in range(0, len(frames), batch)]
    return torch.cat(feats)


def _uar(pred: np.ndarray, y: np.ndarray) -> float:
    from ovfer.metrics.classification import uar

    return float(uar(pred, y))


def evaluate_backbone(bb: ClipBackbone, cfg: PretrainConfig) -> dict:
    """Zero-shot and linear-probe UAR on held-out clips (7 and 11 classes), plus a pixel baseline."""
    from ovfer.prompts.banks import ENSEMBLE_TEMPLATES, class_text_features

    ev_seed = cfg.seed + 7919  # apart from the pretraining clips and the default SynthFER seed
    frames, labels, _ = generate_pool(cfg, cfg.eval_clips, ev_seed)
    feats = video_features(bb, frames)
    out = {"eval_clips": len(labels)}
    for tag, classes in (("7", BASIC7), ("11", MAFW11)):
        keep = np.array([lab in classes for lab in labels])
        y = np.array([classes.index(lab) for lab, k in zip(labels, keep) if k])
        f = F.normalize(feats[torch.from_numpy(keep)], dim=-1)
        for name, templates in (("single", ("a face showing {}.",)), ("ensemble", ENSEMBLE_TEMPLATES)):
            tf = class_text_features(bb, classes, templates)
            out[f"zeroshot_uar_{tag}_{name}"] = _uar((f @ tf.t()).argmax(1).numpy(), y)
        half = len(y) // 2
        out[f"linear_probe_uar_{tag}"] = _probe(f.numpy(), y, half)
        out[f"pixel_lr_uar_{tag}"] = _probe(_pixel_features(frames[keep]), y, half)
    return out


def _probe(x: np.ndarray, y: np.ndarray, n_train: int) -> float:
    """Standardised logistic regression (C = 0.1) trained on the first ``n_train`` clips; UAR on the rest."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    clf.fit(x[:n_train], y[:n_train])
    return _uar(clf.predict(x[n_train:]), y[n_train:])


def _pixel_features(frames: np.ndarray) -> np.ndarray:
    """32×32 grayscale temporal-mean pixels, standardised (the SPEC §2.6 baseline)."""
    import cv2

    out = np.stack([np.mean([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
                             for f in clip], axis=0).ravel() for clip in frames]).astype(np.float32) / 255.0
    return out
