"""Contact sheets of SynthFER faces, for the docs and for eyeballing a config.

``python -m ovfer.synth.preview out.png`` writes the class grid shown in
``docs/synthfer.md`` (one row per identity, one column per class, prototypes at apex).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .aus import prototype_vectors
from .config import SynthConfig
from .generator import load_synth_config, render_face
from .identity import sample_identity


def class_grid(cfg: SynthConfig, classes: Sequence[str], identity_seeds: Sequence[int] = (0,),
               label_height: int = 14) -> np.ndarray:
    """(rows*H + label_height, len(classes)*W, 3) uint8 RGB: each class's first prototype at apex."""
    rows = []
    for seed in identity_seeds:
        idn = sample_identity(np.random.default_rng(seed), cfg.identity)
        rows.append(np.concatenate([render_face(idn, prototype_vectors(c)[0], cfg)[0] for c in classes], 1))
    grid = np.concatenate(rows, 0)
    W = cfg.video.width
    head = np.full((label_height, grid.shape[1], 3), 255, np.uint8)
    for i, c in enumerate(classes):
        text = c if len(c) <= 14 else c[:13] + "."
        cv2.putText(head, text, (i * W + 2, label_height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return np.concatenate([head, grid], 0)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write a SynthFER class grid (PNG).")
    p.add_argument("out", type=Path)
    p.add_argument("--config", default=None, help="preset name or YAML path (default: packaged default)")
    p.add_argument("--seeds", default="0,1,2", help="identity seeds, one row each")
    p.add_argument("--compounds", action="store_true", help="add the compound classes")
    a = p.parse_args(argv)
    cfg = load_synth_config(a.config)
    classes = list(cfg.classes) + (list(cfg.compound_classes) if a.compounds else [])
    grid = class_grid(cfg, classes, [int(s) for s in a.seeds.split(",")])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


if __name__ == "__main__":
    main()
