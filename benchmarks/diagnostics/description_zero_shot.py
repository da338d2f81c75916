"""Zero-shot UAR of frame-mean video features on SynthFER folds 1-3 (test) with three text sets:
class-name template, ovfer's EmoCLIP descriptions, SynthFER's own descriptions (after `ovfer demo --out runs/demo`).

Run from the repository root: python benchmarks/diagnostics/description_zero_shot.py
"""
import torch, numpy as np, torch.nn.functional as F
from ovfer.backbones.clip import ClipBackbone, BackboneConfig
from ovfer.prompts.banks import load_text_bank
from ovfer.data.labels import MAFW11
from ovfer.synth.captions import class_description as synth_desc
from ovfer.methods import create_method
from ovfer.data.adapters import create_dataset_records
from ovfer.protocols.common import make_dataset
from ovfer.data.dataset import collate
from ovfer.modules.clip_video import video_mean_features
torch.set_num_threads(1)
bb = ClipBackbone(BackboneConfig(arch="ovfer-synth-s", pretrained="runs/demo/clip/clip.safetensors")).eval()
m = create_method("clip_zeroshot", list(MAFW11), {"backbone": {"arch": "ovfer-synth-s", "pretrained": "runs/demo/clip/clip.safetensors"}}, ["num_frames=8"], backbone=bb)
feats, labs = [], []
for fold in (1, 2, 3):
    recs = create_dataset_records("mafw", split="test", annotation="runs/demo/synthfer/mafw", video_root="runs/demo/synthfer/videos", fold=fold, task="single")
    ds = make_dataset(recs, m, train=False); b = collate([ds[i] for i in range(len(ds))])
    with torch.inference_mode():
        feats.append(F.normalize(video_mean_features(bb, b["video"]), dim=-1)); labs.append(b["label"])
f = torch.cat(feats); y = torch.cat(labs)
def uar(t):
    p = (f @ t.t()).argmax(1); return np.mean([(p[y == k] == k).float().mean().item() for k in range(len(MAFW11))]) * 100
with torch.no_grad():
    for name, texts in [("template", [f"a photo of a {c} face." for c in MAFW11]),
                        ("ovfer descriptions", [load_text_bank("description").text(c) for c in MAFW11]),
                        ("synthfer-vocabulary descriptions", [synth_desc(c) for c in MAFW11])]:
        print(f"{name:34s} zero-shot UAR (frame mean, folds 1-3): {uar(bb.encode_texts(texts)):.1f}")
