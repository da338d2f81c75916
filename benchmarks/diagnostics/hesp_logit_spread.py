"""HESP vs zero-shot logit spread and accuracy per head on fold-1 known test clips (after `ovfer demo --out runs/demo`).

Run from the repository root: python benchmarks/diagnostics/hesp_logit_spread.py
"""
import torch, ovfer
from ovfer.methods import create_method
from ovfer.data.adapters import create_dataset_records
from ovfer.protocols.common import make_dataset
from ovfer.data.dataset import collate
torch.set_num_threads(1)
rec = ovfer.load("hesp", checkpoint="runs/demo/hesp.pt")
h = rec.method if hasattr(rec, "method") else rec._method
classes = list(h.classnames)
z = create_method("clip_zeroshot", classes, {"backbone": {"arch": "ovfer-synth-s", "pretrained": "runs/demo/clip/clip.safetensors"}}, ["num_frames=4"])
recs = create_dataset_records("mafw", split="test", annotation="runs/demo/synthfer/mafw", video_root="runs/demo/synthfer/videos", fold=1, task="single")
recs = [r for r in recs if r.class_name in classes]
lab = torch.tensor([classes.index(r.class_name) for r in recs])
for name, m in (("clip_zeroshot", z), ("hesp", h)):
    m.eval(); m.prepare_eval()
    ds = make_dataset(recs, m, train=False); b = collate([ds[i] for i in range(len(ds))])
    with torch.inference_mode():
        out = m(b["video"], b["id"])
    zs = {"logits": out.logits} if name == "clip_zeroshot" else out.extras
    for k, v in zs.items():
        print(f"{name:14s} {k:6s} range {v.min():7.1f}..{v.max():7.1f}  mean per-clip spread {(v.max(1).values - v.min(1).values).mean():5.2f}  known-test acc {(v.argmax(1) == lab).float().mean():.2f}")
print("n clips", len(recs), "classes", classes)
