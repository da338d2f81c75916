"""Annotation writers in the official formats, so SynthFER runs through the real adapters.

Layout under the output folder (SPEC §2.2):

- ``mafw/{single,compound}/{with,no}_caption/set_{k}/{train,test}.txt``: GBK, tab separated,
  no header; ``<id>.mp4 \\t <label> [\\t <Chinese caption> \\t <English caption>]``. The
  compound task holds every clip (11 single classes + compound ``a_b`` labels).
- ``dfew/train(single-labeled)/set_{k}.csv`` and ``dfew/test(single-labeled)/set_{k}.csv``:
  ``video_name,label`` with DFEW's 1..7 numbering (Happy, Sad, Neutral, Angry, Surprise,
  Disgust, Fear); the 7 basic classes only.
- ``dfew/lists/set_{k}_{train,test}.txt``: ``videos/<id>.mp4 <num_frames> <label0>`` with the
  0-based order happiness, sadness, neutral, anger, surprise, disgust, fear.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ovfer.data.labels import canonical_classes

_FOLD_STREAM = 10**9 + 1  # rng stream of the fold assignment


def assign_folds(labels: Sequence[str], folds: int, seed: int) -> list[int]:
    """Fold 1..``folds`` per clip, stratified by class: each clip is in exactly one test fold.

    Within a class the clips are shuffled and dealt round-robin; the starting fold moves on
    from class to class so that fold sizes stay balanced overall.
    """
    rng = np.random.default_rng([int(seed), _FOLD_STREAM])
    out = [0] * len(labels)
    offset = 0
    for cls in sorted(set(labels)):
        idx = [i for i, c in enumerate(labels) if c == cls]
        for rank, j in enumerate(rng.permutation(len(idx))):
            out[idx[j]] = 1 + (offset + rank) % folds
        offset += len(idx)
    return out


def _clean(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="\n") as fh:
        fh.writelines(line + "\n" for line in lines)


def write_mafw(out: Path, clips: Sequence[dict[str, Any]], folds: int) -> None:
    """MAFW-style split files (single = single-label clips; compound = all clips)."""
    for task in ("single", "compound"):
        subset = [c for c in clips if task == "compound" or "_" not in c["label"]]
        for k in range(1, folds + 1):
            for split in ("train", "test"):
                part = [c for c in subset if (c["fold"] == k) == (split == "test")]
                with_cap = [f"{c['id']}.mp4\t{c['label']}\t{_clean(c['caption_zh'])}\t{_clean(c['caption'])}"
                            for c in part]
                no_cap = [f"{c['id']}.mp4\t{c['label']}" for c in part]
                _write(out / "mafw" / task / "with_caption" / f"set_{k}" / f"{split}.txt", with_cap, "gbk")
                _write(out / "mafw" / task / "no_caption" / f"set_{k}" / f"{split}.txt", no_cap, "gbk")


def write_dfew(out: Path, clips: Sequence[dict[str, Any]], folds: int) -> None:
    """DFEW-style fold CSVs and list files for the clips of the 7 basic classes."""
    order = canonical_classes("dfew")  # happiness, sadness, neutral, anger, surprise, disgust, fear
    basic = [c for c in clips if c["label"] in order]
    for k in range(1, folds + 1):
        for split in ("train", "test"):
            part = [c for c in basic if (c["fold"] == k) == (split == "test")]
            rows = ["video_name,label"] + [f"{c['id']},{order.index(c['label']) + 1}" for c in part]
            _write(out / "dfew" / f"{split}(single-labeled)" / f"set_{k}.csv", rows)
            lines = [f"{c['video']} {c['frames']} {order.index(c['label'])}" for c in part]
            _write(out / "dfew" / "lists" / f"set_{k}_{split}.txt", lines)
