"""HESP inference speed: a naive loop vs ovfer's evaluation path, measured side by side.

Random-init ViT-B/32 (real size), T = 8 frames at 224 px, K = 7 classes.
* naive: fp32, one video at a time, eager, everything recomputed per video (text prompts,
  negative prompts, negative-image features, CAM location) — what a straightforward port does;
* ovfer: ``prepare_eval`` (text and negative-image features once), batched, inference mode,
  CAM locations cached per clip id (cold = first pass computes them; warm = cached), fp32 and bf16.
Features of each path are compared with the naive fp32 features (cosine).

    .venv/bin/python benchmarks/inference.py --videos 16 --write benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ovfer.backbones import build_backbone
from ovfer.engine.amp import autocast
from ovfer.methods.base import create_method

CLASSES = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]


def naive(method, videos):
    """One video at a time; every video-independent feature recomputed each time."""
    feats = []
    with torch.no_grad():
        for i in range(videos.shape[0]):
            method._eval_cache = None
            method._loc_cache.clear()
            method.train(False)
            fv = method.video_features(videos[i:i + 1], None)
            method.head_logits(fv, method.class_features())
            feats.append(fv)
    return torch.cat(feats)


def ovfer_path(method, videos, batch, precision, ids):
    feats = []
    with torch.inference_mode(), autocast(precision, "cpu"):
        method.prepare_eval()
        for i in range(0, videos.shape[0], batch):
            out = method(videos[i:i + batch], ids[i:i + batch])
            feats.append(out.features.float())
    return torch.cat(feats)


def timed(fn, *a):
    t = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - t


def machine() -> str:
    try:
        model = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    except (OSError, IndexError):
        model = platform.processor()
    flags = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {torch.get_num_threads()} threads, ISA: {' '.join(isa)}, torch {torch.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    bb = build_backbone("ViT-B-32", None).eval()
    method = create_method("hesp", CLASSES, backbone=bb, overrides=[f"num_frames={args.frames}"]).eval()
    with torch.no_grad():
        method.patch.delta.uniform_(-0.2, 0.2)
    videos = torch.rand(args.videos, args.frames, 3, 224, 224)
    ids = [f"v{i}" for i in range(args.videos)]
    rows = []
    ref, t_naive = timed(naive, method, videos)
    rows.append(("naive fp32, 1 video/step, nothing cached", t_naive, 1.0))
    for prec in ("fp32", "bf16"):
        method._loc_cache.clear()
        cold, t_cold = timed(ovfer_path, method, videos, args.batch, prec, ids)
        warm, t_warm = timed(ovfer_path, method, videos, args.batch, prec, ids)
        rows.append((f"ovfer {prec}, batch {args.batch}, CAM cold", t_cold, F.cosine_similarity(cold, ref).min().item()))
        rows.append((f"ovfer {prec}, batch {args.batch}, CAM cached", t_warm, F.cosine_similarity(warm, ref).min().item()))
    lines = [f"| path | videos/s | × naive | min cosine vs naive fp32 |", "|---|---|---|---|"]
    for name, sec, cos in rows:
        lines.append(f"| {name} | {args.videos / sec:.2f} | {t_naive / sec:.2f} | {cos:.5f} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        head = (f"## HESP inference (ViT-B/32 random init, T={args.frames}, K=7, {args.videos} videos)\n\n"
                f"Command: `.venv/bin/python benchmarks/inference.py --videos {args.videos} --frames {args.frames} "
                f"--batch {args.batch} --write {args.write}`  \nMachine: {machine()}  \n"
                f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC\n\n")
        _replace_section(args.write, "inference", head + table + "\n")


def _replace_section(path: Path, tag: str, body: str) -> None:
    start, end = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{start}\n{body}{end}\n"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


if __name__ == "__main__":
    main()
