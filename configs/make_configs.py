"""Write one protocol YAML per paper table row (HESP Tables 1-7, Table 6 loss ablations,
Fig. 3 patch sizes / negative context). Re-run after changing a default:

    .venv/bin/python configs/make_configs.py

Paths under data.options are placeholders for your licensed copies; paper recipes (ViT-B/32
OpenAI weights, SGD 0.01, 200 epochs, step x0.1 every 30, batch 64, T=8) are the config defaults.
"""
from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DATA = {
    "afew7": {"adapter": "afew", "options": {"root": "/data/AFEW"}},
    "mafw11": {"adapter": "mafw", "options": {"annotation": "/data/MAFW/Train & Test Set", "video_root": "/data/MAFW/data/clips", "fold": 1, "task": "single"}},
    "dfew7": {"adapter": "dfew", "options": {"annotation": "/data/DFEW/EmoLabel_DataSplit", "video_root": "/data/DFEW/Clip/clip_224x224", "fold": 1}},
    "compound": {"adapter": "mafw", "options": {"annotation": "/data/MAFW/Train & Test Set", "video_root": "/data/MAFW/data/clips", "fold": 1, "task": "compound"}},
}
DATA["fusion"] = {**DATA["afew7"], "more": [DATA["mafw11"]]}
ROWS = {
    "baseline1": ("clip_zeroshot", []),
    "baseline1_hesp": ("hesp", ["negative_branch=false"]),
    "baseline2": ("clip_arpl", []),
    "baseline2_tp": ("hesp", ["visual_prompt=false", "reciprocal_points=free", "losses=[ce,arpl,fused]"]),
    "hesp": ("hesp", []),
}
TERMS = ["ce", "supcon", "arpl", "neg_clip", "fused"]


def write(path: Path, task: str, method: str, overrides: list[str]) -> None:
    cfg = {"method": method, "method_overrides": overrides, "task": task, "data": DATA[task],
           "results_dir": f"results/{task}", "work_dir": f"runs/{task}"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {task}: {path.stem} — run with: ovfer protocol --config {path.relative_to(HERE.parent)}\n"
                    + yaml.safe_dump(cfg, sort_keys=False))


def main() -> None:
    for task in ("afew7", "mafw11", "fusion", "compound", "dfew7"):
        for row, (method, ov) in ROWS.items():
            write(HERE / "hesp" / task / f"{row}.yaml", task, method, ov)
    for term in TERMS:  # Table 6: drop one term at a time
        write(HERE / "hesp" / "ablations" / f"loss_without_{term}.yaml", "afew7", "hesp",
              [f"losses=[{','.join(t for t in TERMS if t != term)}]"])
    for size in (14, 28, 56, 112):  # Fig. 3: patch size
        write(HERE / "hesp" / "ablations" / f"patch_{size}.yaml", "afew7", "hesp", [f"patch_size={size}"])
    write(HERE / "hesp" / "ablations" / "learned_negative_context.yaml", "afew7", "hesp", ["learn_negative_context=true"])
    write(HERE / "hesp" / "ablations" / "fuse_probs.yaml", "afew7", "hesp", ["fuse=probs"])
    write(HERE / "hesp" / "ablations" / "official_behaviour.yaml", "afew7", "hesp",
          ["train_text_context=false", "patch_location=official"])


if __name__ == "__main__":
    main()
