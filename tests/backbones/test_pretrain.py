"""SynthFER carries learnable signal for the image tower used by the small CLIP (issue 8's sanity check)."""
import numpy as np
import torch
import torch.nn.functional as F

from ovfer.backbones import build_backbone
from ovfer.backbones.pretrain import PretrainConfig, _to_tensor, generate_pool, save_backbone
from ovfer.data.labels import BASIC7


def test_image_tower_with_supervised_head_learns_basic_classes():
    cfg = PretrainConfig(classes=BASIC7, frames=1, workers=1,
                         synth_overrides=["video.frames=4", "video.supersample=2", "expression.weak_prob=0.0"])
    frames, labels, _ = generate_pool(cfg, 280, seed=123)
    y = torch.tensor([BASIC7.index(lab) for lab in labels])
    torch.manual_seed(0)
    bb = build_backbone("ovfer-tiny-112", None)
    head = torch.nn.Linear(bb.embed_dim, len(BASIC7))
    x = _to_tensor(frames, bb.image_size)
    train, test = np.arange(0, 210), np.arange(210, 280)
    opt = torch.optim.AdamW(list(bb.parameters()) + list(head.parameters()), lr=3e-4, weight_decay=0.01)
    for step in range(300):
        idx = torch.from_numpy(np.random.default_rng(step).choice(train, 32, replace=False))
        logits = head(bb.encode_frames(bb.normalize(x[idx])).mean(1))
        loss = F.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = head(bb.encode_frames(bb.normalize(x[test])).mean(1)).argmax(1)
    acc = float((pred == y[test]).float().mean())
    assert acc > 0.30, f"held-out accuracy {acc:.2f}; chance is 0.14"  # measured 0.41


def test_saved_small_clip_loads_like_real_weights(tmp_path, tiny_backbone_112):
    path = save_backbone(tiny_backbone_112, tmp_path / "clip.safetensors")
    again = build_backbone("ovfer-tiny-112", str(path))
    x = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(again.encode_image(x), tiny_backbone_112.encode_image(x), atol=1e-6)
