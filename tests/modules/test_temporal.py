"""The shared temporal transformer and cross-attention (METHODS §4), against hand-built math."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ovfer.modules.temporal import (CrossAttention, TemporalConfig, TemporalTransformer,
                                    convert_vitpytorch_keys)


def _manual_block(blk, x):
    """Pre-LN block written out: softmax(qkᵀ/√d)v per head, tanh-GELU MLP."""
    h, d = blk.attn.heads, blk.attn.dim_head
    y = blk.norm1(x)
    q, k, v = (y @ blk.attn.to_qkv.weight.t()).chunk(3, dim=-1)
    split = lambda t: t.view(t.shape[0], t.shape[1], h, d).transpose(1, 2)  # noqa: E731
    a = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(d), dim=-1) @ split(v)
    x = x + blk.attn.to_out(a.transpose(1, 2).reshape(x.shape[0], x.shape[1], h * d))
    y = blk.norm2(x)
    return x + blk.mlp.fc2(F.gelu(blk.mlp.fc1(y), approximate="tanh"))


def test_dfer_clip_shape_matches_the_spec_and_hand_computation():
    torch.manual_seed(0)
    cfg = TemporalConfig(dim=16, heads=2, dim_head=4, mlp_dim=24)
    net = TemporalTransformer(cfg, num_frames=5)
    assert net.cls_token.shape == (1, 1, 16) and net.pos_embedding.shape == (1, 6, 16)
    assert net.blocks[0].attn.to_qkv.weight.shape == (3 * 8, 16) and net.blocks[0].attn.to_qkv.bias is None
    assert net.blocks[0].attn.to_out.bias is not None
    frames = torch.randn(3, 5, 16)
    x = torch.cat([net.cls_token.expand(3, -1, -1), frames], 1) + net.pos_embedding
    expected = _manual_block(net.blocks[0], x)[:, 0]
    torch.testing.assert_close(net(frames), expected, atol=1e-5, rtol=1e-5)


def test_depth_zero_is_the_frame_mean_and_mean_output_with_outer_residual():
    frames = torch.randn(2, 4, 8)
    torch.testing.assert_close(TemporalTransformer(TemporalConfig(dim=8, depth=0), 4)(frames), frames.mean(1))
    torch.manual_seed(1)
    cfg = TemporalConfig(dim=8, heads=2, dim_head=4, mlp_dim=32, act="quick_gelu", qkv_bias=True, cls_token=False,
                         output="mean", init="trunc_normal", outer_residual=True)
    net = TemporalTransformer(cfg, 4)
    assert net.cls_token is None and net.pos_embedding.shape == (1, 4, 8)
    assert float(net.blocks[0].attn.to_qkv.bias.detach().abs().sum()) == 0.0
    assert float(net.pos_embedding.detach().std()) < 0.05  # trunc-normal 0.02, not N(0, 1)
    h = frames + net.pos_embedding
    inner = net.blocks[0](h)
    torch.testing.assert_close(net(frames), (inner + frames).mean(1))  # Block(s + e) + s


def test_frame_mean_start_returns_the_frame_mean_untrained_and_adds_block_updates_after():
    torch.manual_seed(2)
    frames = torch.randn(3, 5, 16)
    for output, cls in (("cls", True), ("mean", False)):
        cfg = TemporalConfig(dim=16, depth=2, heads=2, dim_head=4, mlp_dim=24, start="frame_mean",
                             output=output, cls_token=cls)
        net = TemporalTransformer(cfg, num_frames=5)
        torch.testing.assert_close(net(frames), frames.mean(1))  # untrained: CLIP's frame mean exactly
        for blk in net.blocks:  # perturb the zero-initialised projections: now updates are added
            blk.attn.to_out.weight.data.normal_()
            blk.mlp.fc2.weight.data.normal_()
        x = frames if not cls else torch.cat([net.cls_token.expand(3, -1, -1), frames], 1)
        h0 = x + net.pos_embedding
        h = net.blocks[1](net.blocks[0](h0))
        upd = (h - h0)[:, 0] if cls else (h - h0).mean(1)
        torch.testing.assert_close(net(frames), frames.mean(1) + upd)
    # gradient reaches the zero-initialised output projections on the first step
    net = TemporalTransformer(TemporalConfig(dim=16, heads=2, dim_head=4, mlp_dim=24, start="frame_mean"), 5)
    net(frames).pow(2).sum().backward()
    assert float(net.blocks[0].mlp.fc2.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="start"):
        TemporalConfig(start="identity")
    with pytest.raises(ValueError, match="outer_residual"):
        TemporalConfig(start="frame_mean", outer_residual=True, cls_token=False, output="mean")


def test_too_many_frames_for_the_position_table_is_a_clear_error():
    net = TemporalTransformer(TemporalConfig(dim=8, heads=2, dim_head=4, mlp_dim=8, pos_len=3), 2)
    with pytest.raises(ValueError, match="position table"):
        net(torch.randn(1, 5, 8))


def test_cross_attention_queries_per_video_and_hand_computed_single_layer():
    torch.manual_seed(2)
    ca = CrossAttention(8, depth=1, heads=2)
    c, z = torch.randn(3, 8), torch.randn(2, 5, 8)
    out = ca(c, z)
    assert out.shape == (2, 3, 8)
    layer = ca.layers[0]
    kv = ca.norm_kv(z)
    q = layer["attn"].to_q(layer["norm1"](c)).expand(2, -1, -1)
    k, v = layer["attn"].to_kv(kv).chunk(2, -1)
    split = lambda t: t.view(t.shape[0], t.shape[1], 2, 4).transpose(1, 2)  # noqa: E731
    a = torch.softmax(split(q) @ split(k).transpose(-1, -2) / 2.0, -1) @ split(v)
    x = c + layer["attn"].to_out(a.transpose(1, 2).reshape(2, 3, 8))
    x = x + layer["mlp"](layer["norm3"](x))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)
    assert layer["attn"].to_q.bias is None and layer["attn"].to_kv.bias is None


def test_released_vitpytorch_keys_map_onto_ours_and_unknown_keys_raise():
    net = TemporalTransformer(TemporalConfig(dim=8, heads=2, dim_head=4, mlp_dim=16, depth=2), 3)
    ours = net.state_dict()
    names = {"cls_token": "cls_token", "pos_embedding": "pos_embedding"}
    for i in range(2):
        base = f"temporal_transformer.layers.{i}"
        names |= {f"{base}.0.fn.norm.weight": f"blocks.{i}.norm1.weight", f"{base}.0.fn.norm.bias": f"blocks.{i}.norm1.bias",
                  f"{base}.0.fn.fn.to_qkv.weight": f"blocks.{i}.attn.to_qkv.weight",
                  f"{base}.0.fn.fn.to_out.0.weight": f"blocks.{i}.attn.to_out.weight",
                  f"{base}.0.fn.fn.to_out.0.bias": f"blocks.{i}.attn.to_out.bias",
                  f"{base}.1.fn.norm.weight": f"blocks.{i}.norm2.weight", f"{base}.1.fn.norm.bias": f"blocks.{i}.norm2.bias",
                  f"{base}.1.fn.fn.net.0.weight": f"blocks.{i}.mlp.fc1.weight",
                  f"{base}.1.fn.fn.net.0.bias": f"blocks.{i}.mlp.fc1.bias",
                  f"{base}.1.fn.fn.net.3.weight": f"blocks.{i}.mlp.fc2.weight",
                  f"{base}.1.fn.fn.net.3.bias": f"blocks.{i}.mlp.fc2.bias"}
    released = {"temporal_net." + k: ours[v] for k, v in names.items()} | {"image_encoder.conv1.weight": torch.zeros(1)}
    converted = convert_vitpytorch_keys(released, "temporal_net.")
    assert set(converted) == set(ours)
    with pytest.raises(KeyError, match="unrecognised"):
        convert_vitpytorch_keys({"temporal_net.something.weight": torch.zeros(1)}, "temporal_net.")
