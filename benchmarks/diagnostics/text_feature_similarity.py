"""Mean pairwise cosine of the 11 class text features of the demo's small CLIP: template vs descriptors vs learned-context prompts.

Run from the repository root after `ovfer demo --out runs/demo`: python benchmarks/diagnostics/text_feature_similarity.py
"""
import torch
from ovfer.backbones.clip import ClipBackbone, BackboneConfig
from ovfer.prompts.banks import load_text_bank
from ovfer.prompts.text import PromptLearner
from ovfer.data.labels import MAFW11
bb = ClipBackbone(BackboneConfig(arch="ovfer-synth-s", pretrained="runs/demo/clip/clip.safetensors")).eval()
print("logit scale", bb.logit_scale().item(), "ctx len", bb.context_length, "tok emb std", bb.clip.token_embedding.weight.std().item())
def offdiag(f):
    s = f @ f.t(); n = s.shape[0]; return (s.sum() - s.diag().sum()).item() / (n*n-n)
torch.manual_seed(0)
with torch.no_grad():
    desc = load_text_bank("descriptor")
    t1 = bb.encode_texts([f"a photo of a {c} face." for c in MAFW11])
    t2 = bb.encode_texts([desc.text(c) + "." for c in MAFW11])
    pl = PromptLearner(bb, [desc.text(c) + "." for c in MAFW11], 8, True, 0.02, "end")
    t3 = pl.encode(bb)
    pl2 = PromptLearner(bb, [c + "." for c in MAFW11], 16, True, 0.02, "end")
    t4 = pl2.encode(bb)
    lens = [(bb.tokenize([ "X "*8 + desc.text(c) + "."])[0] > 0).sum().item() for c in MAFW11]
for n, t in [("template", t1), ("descriptor", t2), ("8ctx+descriptor", t3), ("16ctx+name (HESP)", t4)]:
    print(f"{n:20s} mean off-diagonal cosine between classes: {offdiag(t):.3f}")
print("token lengths of 8ctx+descriptor prompts:", lens)
