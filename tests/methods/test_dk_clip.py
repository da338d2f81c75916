"""DK-CLIP (METHODS §2): NRM, CMAM update, losses and mixing against hand-computed values;
gradient flow, recipe groups, options, and one end-to-end epoch on tiny SynthFER."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ovfer.data.mixing import fmix_mask, mix_batch, sample_beta
from ovfer.methods.base import create_method
from ovfer.methods.dk_clip import (consistency_kl, erase_noisy_snippets, fuse_heads,
                                   update_class_embeddings)

NAMES = ["happiness", "sadness", "neutral", "anger"]
E = math.e


def make(backbone, names=NAMES, **cfg):
    """A fresh method on a copy of the tiny backbone (the tokenizer is shared: copying it is slow)."""
    import copy

    torch.manual_seed(0)
    bb = copy.deepcopy(backbone, {id(backbone.tokenizer): backbone.tokenizer})
    return create_method("dk_clip", names, {"num_frames": 4, **cfg}, backbone=bb)


@pytest.fixture(scope="module")
def dk(tiny_backbone_112):
    return make(tiny_backbone_112)


def video(b=2, t=4, s=112, seed=0):
    return torch.rand(b, t, 3, s, s, generator=torch.Generator().manual_seed(seed))


# -- NRM (Eq. 9) ---------------------------------------------------------------------------------

def test_nrm_threshold_rule_by_hand():
    a = torch.tensor([[0.8, 0.8, 0.8, 0.2]])  # min-max: [1, 1, 1, 0]
    w, keep = erase_noisy_snippets(a, 0.15, 2)
    hi, lo = E / (3 * E + 1), 1 / (3 * E + 1)  # 0.2969, 0.1093
    assert torch.allclose(w, torch.tensor([[hi, hi, hi, lo]]), atol=1e-6)
    assert keep.tolist() == [[True, True, True, False]]
    # min-max normalisation makes the weights invariant to an affine change of the scores
    w2, keep2 = erase_noisy_snippets(3 * a - 1, 0.15, 2)
    assert torch.allclose(w, w2, atol=1e-6) and torch.equal(keep, keep2)
    # a single low score is not below θ: [1, 0, 0, 0] gives 1/(e + 3) = 0.1749
    w3, keep3 = erase_noisy_snippets(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), 0.15, 2)
    assert w3[0, 1].item() == pytest.approx(1 / (E + 3), abs=1e-6) and keep3.all()


def test_nrm_erases_at_most_two_even_when_three_fall_below():
    a = torch.tensor([[1.0, 1, 1, 1, 1, 0, 0, 0]])  # N = 8
    w, keep = erase_noisy_snippets(a, 0.15, 2)
    lo = 1 / (5 * E + 3)  # 0.0603 < θ for three snippets
    assert torch.allclose(w[0, 5:], torch.full((3,), lo), atol=1e-6)
    assert (~keep).sum().item() == 2 and keep[0, :5].all()


def test_nrm_never_erases_the_best():
    a = torch.tensor([[1.0, 0.5, 0.2, 0.0]])
    ex = torch.tensor([E, math.exp(0.5), math.exp(0.2), 1.0])
    w, keep = erase_noisy_snippets(a, 0.5, 3)  # every a* < 0.5, the best included
    assert torch.allclose(w[0], ex / ex.sum(), atol=1e-6) and w.max() < 0.5
    assert keep.tolist() == [[True, False, False, False]]


def test_nrm_ties_are_uniform_without_nan():
    a = torch.full((2, 8), 0.3, requires_grad=True)
    w, keep = erase_noisy_snippets(a, 0.15, 2)  # 1/8 < θ, yet nothing is erased
    assert torch.allclose(w, torch.full((2, 8), 1 / 8)) and keep.all()
    (w * torch.arange(8.0)).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_nrm_weights_carry_gradient_mask_does_not():
    a = torch.tensor([[0.8, 0.8, 0.8, 0.2]], requires_grad=True)
    w, keep = erase_noisy_snippets(a, 0.15, 2)
    assert w.requires_grad and keep.dtype == torch.bool and not keep.requires_grad


# -- CMAM update (Eq. 8), losses (Eq. 11), fused head ---------------------------------------------

def test_cmam_update_by_hand():
    c = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    x = torch.tensor([[[2.0, 0.0], [1.0, 1.0]]])  # stubbed cross-attention output (B=1, C=2, D=2)
    gamma = torch.tensor([0.1, 0.5])
    paper = torch.tensor([[1.1, 1.0], [2.8, 2.5]])  # c + γ(x − c)
    code = torch.tensor([[1.2, 2.0], [3.1, 4.5]])  # c + γx
    norm = lambda t: t / t.pow(2).sum(-1, keepdim=True).sqrt()  # noqa: E731
    assert torch.allclose(update_class_embeddings(c, x, gamma, "paper")[0], norm(paper), atol=1e-6)
    assert torch.allclose(update_class_embeddings(c, x, gamma, "code")[0], norm(code), atol=1e-6)


@pytest.mark.parametrize("mode", ["paper", "code"])
def test_cmam_update_inside_the_method(tiny_backbone_112, monkeypatch, mode):
    m = make(tiny_backbone_112, cmam_update=mode).eval()
    c = m.text_features
    x = torch.randn(1, len(NAMES), c.shape[1])
    monkeypatch.setattr(m.cmam, "forward", lambda q, vis: x.expand(vis.shape[0], -1, -1))
    with torch.no_grad():
        m.gamma.copy_(torch.linspace(0.1, 0.9, c.shape[1]))
        vid = video()
        v = m.encode_video(vid)["v"]
        out = m(vid)
    c_hat = c + m.gamma * ((x - c) if mode == "paper" else x)
    expect = m.backbone.logit_scale() * F.normalize(v, dim=-1)[:, None] @ F.normalize(c_hat, dim=-1).transpose(1, 2)
    assert torch.allclose(out.logits, expect.squeeze(1), atol=1e-4)


def test_kl_terms_by_hand():
    g = torch.tensor([[0.0, math.log(2.0)]])  # p_g = [1/3, 2/3]
    loc = torch.tensor([[math.log(3.0), 0.0]])  # p_l = [3/4, 1/4]
    kl = (1 / 3) * math.log((1 / 3) / (3 / 4)) + (2 / 3) * math.log((2 / 3) / (1 / 4))
    assert consistency_kl(g, loc, "paper").item() == pytest.approx(kl, abs=1e-6)
    lse = math.log(math.exp(0.75) + math.exp(0.25))  # log softmax of p_l = p_l − lse
    code = -((1 / 3) * (0.75 - lse) + (2 / 3) * (0.25 - lse))
    assert consistency_kl(g, loc, "code").item() == pytest.approx(code, abs=1e-6)


def test_fused_head_argmax_is_that_of_summed_probabilities():
    g, loc = torch.randn(5, 4) * 3, torch.randn(5, 4) * 3
    fused = fuse_heads(g, loc)
    assert torch.equal(fused.argmax(-1), (g.softmax(-1) + loc.softmax(-1)).argmax(-1))
    assert torch.allclose(fused.exp().sum(-1), torch.ones(5), atol=1e-5)


def test_label_smoothing_values(dk):
    t = dk.soft_targets(torch.tensor([2, 0]))
    assert torch.allclose(t[0], torch.tensor([0.025, 0.025, 0.925, 0.025]))
    assert torch.allclose(t[1], torch.tensor([0.925, 0.025, 0.025, 0.025]))


# -- mixing ---------------------------------------------------------------------------------------

def test_fmix_mask_covers_the_drawn_fraction():
    lam, h, w = 0.37, 7, 9  # λHW = 23.31
    counts = set()
    for seed in range(12):
        m = fmix_mask(lam, (h, w), generator=torch.Generator().manual_seed(seed))
        assert m.shape == (h, w) and set(m.unique().tolist()) <= {0.0, 1.0}
        counts.add(int(m.sum()))
    assert counts == {23, 24}


def test_fmix_one_mask_shared_by_frames_and_samples():
    torch.manual_seed(3)
    x = torch.rand(4, 3, 3, 16, 16)
    y = torch.eye(4)
    out, ty, info = mix_batch(x, y, fmix_prob=1.0)
    assert info.mode == "fmix" and info.mask.shape == (16, 16)
    on = info.mask.bool()
    assert torch.equal(out[..., on], x[..., on]) and torch.equal(out[..., ~on], x[info.perm][..., ~on])
    assert torch.allclose(ty, info.lam * y + (1 - info.lam) * y[info.perm])
    assert abs(info.mask.mean().item() - info.lam) <= 1 / 256 + 1e-6


def test_mixup_pixels_and_targets_share_lambda_and_permutation():
    x, y = torch.rand(5, 2, 3, 8, 8), F.one_hot(torch.arange(5) % 3, 3).float()
    torch.manual_seed(5)
    out, ty, info = mix_batch(x, y, fmix_prob=0.0)
    assert info.mode == "mixup" and info.mask is None and 0.0 <= info.lam <= 1.0
    assert torch.allclose(out, info.lam * x + (1 - info.lam) * x[info.perm])
    assert torch.allclose(ty, info.lam * y + (1 - info.lam) * y[info.perm])
    torch.manual_seed(5)
    out2, _, info2 = mix_batch(x, y, fmix_prob=0.0)  # deterministic under torch.manual_seed
    assert info2.lam == info.lam and torch.equal(out2, out)


def test_mixing_normalised_equals_normalising_mixed():
    from ovfer.data.transforms import normalize

    x = torch.rand(3, 2, 3, 8, 8)
    for p in (0.0, 1.0):
        a, _, _ = mix_batch(x, torch.eye(3), torch.Generator().manual_seed(1), fmix_prob=p)
        b, _, _ = mix_batch(normalize(x, "imagenet"), torch.eye(3), torch.Generator().manual_seed(1), fmix_prob=p)
        assert torch.allclose(normalize(a, "imagenet"), b, atol=1e-5)


def test_beta_draws_follow_the_generator():
    a = [sample_beta(0.8, 0.8, torch.Generator().manual_seed(0)) for _ in range(2)]
    assert a[0] == a[1] and 0 <= a[0] <= 1


# -- the method -----------------------------------------------------------------------------------

def test_forward_shapes_heads_and_local_fusion(dk):
    dk.eval()
    with torch.no_grad():
        out = dk(video(3))
        z = dk.heads_logits(dk.encode_video(video(3)), dk.class_text())
    assert out.logits.shape == (3, 4) and out.features.shape == (3, dk.backbone.embed_dim)
    assert set(dk.heads) <= set(out.extras) and torch.equal(out.logits, out.extras["global"])
    local = ((z["weights"] * z["keep"]).unsqueeze(-1) * z["snippet"]).sum(1)
    assert torch.allclose(out.extras["local"], local, atol=1e-5)
    assert torch.allclose(out.extras["fused"], fuse_heads(out.logits, local), atol=1e-5)


def test_bf16_autocast_forward_and_loss(dk):
    dk.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = dk.training_step({"video": video(), "label": torch.tensor([0, 1])})["loss"]
        dk.eval()
        out = dk(video())
    assert torch.isfinite(loss) and torch.isfinite(out.extras["fused"]).all()


def test_snippets_are_means_of_consecutive_frames(tiny_backbone_112):
    m = make(tiny_backbone_112, num_frames=4, num_snippets=2).eval()
    with torch.no_grad():
        enc = m.encode_video(video(1))
    assert torch.allclose(enc["s"][0], enc["u"][0].view(2, 2, -1).mean(1), atol=1e-6)


def test_gradient_flow_trained_and_frozen(dk):
    dk.train()
    dk.zero_grad(set_to_none=True)
    dk.training_step({"video": video(), "label": torch.tensor([0, 3])})["loss"].backward()
    named = dict(dk.named_parameters())
    for n in ("backbone.clip.visual.conv1.weight", "backbone.clip.logit_scale",
              "backbone.clip.token_embedding.weight", "backbone.clip.transformer.resblocks.0.attn.in_proj_weight",
              "backbone.clip.text_projection"):
        assert named[n].grad is None, n
    for n in ("backbone.clip.visual.class_embedding", "backbone.clip.visual.positional_embedding",
              "backbone.clip.visual.transformer.resblocks.0.attn.in_proj_weight", "backbone.clip.visual.proj",
              "messages.fc.0.weight", "messages.attn.1.in_proj_weight", "msim.pos_embedding",
              "msim.blocks.0.attn.to_qkv.weight", "ln_v.weight", "w_v", "cmam.layers.0.attn.to_q.weight", "gamma"):
        assert named[n].grad is not None and named[n].grad.abs().sum() > 0, n


def test_freeze_msim_and_train_patch_embed(tiny_backbone_112):
    m = make(tiny_backbone_112, freeze_msim=True, train_patch_embed=True)
    assert not any(p.requires_grad for p in m.msim.parameters())
    assert m.backbone.clip.visual.conv1.weight.requires_grad
    assert "msim" not in {g["name"] for g in m.param_groups()}
    assert any(k.startswith("msim.") for k in m.trainable_state_dict())  # random init kept in checkpoints


def test_recipe_param_groups_map_onto_adamw(dk):
    from ovfer.engine.optim import OptimConfig, build_optimizer

    opt = build_optimizer(dk, OptimConfig(optimizer="adamw", lr=2e-6, weight_decay=1e-3, betas=(0.9, 0.98),
                                          no_decay=True))
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["clip_visual"]["lr"] == pytest.approx(2e-6)
    for name in ("messages", "msim", "visual_context", "cmam"):
        assert by_name[name]["lr"] == pytest.approx(2e-5)
    ids = lambda g: {id(p) for p in by_name[g]["params"]}  # noqa: E731
    assert id(dk.gamma) in ids("cmam.no_decay") and id(dk.w_v) in ids("visual_context")
    assert id(dk.backbone.clip.visual.positional_embedding) in ids("clip_visual.no_decay")
    assert by_name["cmam.no_decay"]["weight_decay"] == 0.0 and by_name["cmam"]["weight_decay"] == 1e-3
    sd = dk.trainable_state_dict()
    assert "w_v" in sd and "gamma" in sd and "backbone.clip.visual.proj" in sd
    assert not any(k.startswith("backbone.clip.visual.conv1") or k.startswith("backbone.clip.transformer")
                   for k in sd)


def test_consistency_schedule_option(tiny_backbone_112):
    m = make(tiny_backbone_112, consistency_epochs=1, mixing=False).train()
    batch = {"video": video(), "label": torch.tensor([1, 2])}
    m.on_epoch_start(0)
    on = m.training_step(batch)
    m.on_epoch_start(1)
    off = m.training_step(batch)
    assert {"local", "kl"} <= set(on) and not {"local", "kl"} & set(off)
    assert off["loss"].item() == pytest.approx(off["global"].item())
    assert on["loss"].item() == pytest.approx((on["global"] + on["local"] + on["kl"]).item(), rel=1e-5)


def test_loss_without_mixing_by_hand(tiny_backbone_112, monkeypatch):
    m = make(tiny_backbone_112, mixing=False).train()
    g = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    loc = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    monkeypatch.setattr(m, "heads_logits", lambda enc, c: {"global": g, "local": loc, "keep": torch.ones(1, 4).bool()})
    loss = m.training_step({"video": video(1), "label": torch.tensor([0])})["loss"]
    y = torch.tensor([0.925, 0.025, 0.025, 0.025])
    sce = lambda z: -(y * (z - torch.logsumexp(z, -1))).sum()  # noqa: E731
    p_g, p_l = g.softmax(-1)[0], loc.softmax(-1)[0]
    expect = sce(g[0]) + sce(loc[0]) + (p_g * (p_g.log() - p_l.log())).sum()
    assert loss.item() == pytest.approx(expect.item(), rel=1e-6)


def test_options_reach_their_modules(tiny_backbone_112):
    m = make(tiny_backbone_112, msim_outer_residual=True, au_prompts="and", pixel_norm="clip")
    assert m.msim.cfg.outer_residual and m.text_bank().name == "au_prompt_and"
    p = m.data_preset
    assert (p.sampler, p.train_transform, p.test_transform, p.normalization, p.num_frames) == \
        ("dk_clip", "dk_clip_train", "dk_clip_test", "clip", 4)
    assert make(tiny_backbone_112).data_preset.normalization == "imagenet"
    from ovfer.data.sampling import build_sampler

    assert build_sampler("dk_clip", num_frames=16).min_frames == 3


def test_contexts_before_the_au_prompt_train(tiny_backbone_112):
    m = make(tiny_backbone_112, n_ctx=2).train()
    assert m.prompts.position == "end" and m.prompts.ctx.shape[:2] == (4, 2)
    m.training_step({"video": video(), "label": torch.tensor([0, 1])})["loss"].backward()
    assert m.prompts.ctx.grad.abs().sum() > 0
    assert "text_context" in {g["name"] for g in m.param_groups()}
    m.eval()
    m.prepare_eval()
    assert torch.allclose(m.class_text(), m.prompts.encode(m.backbone, normalize=False))


def test_code_extra_transformer_context(tiny_backbone_112):
    m = make(tiny_backbone_112, visual_context="code_extra_transformer", extra_depth=2).eval()
    with torch.no_grad():
        out = m(video())
    assert out.logits.shape == (2, 4) and torch.isfinite(out.logits).all()
    assert not any(p.requires_grad for p in m.extra.parameters())
    assert any(k.startswith("extra.") for k in m.trainable_state_dict())


def test_text_bank_json_and_missing_class(tiny_backbone_112, tmp_path):
    from ovfer.prompts.banks import TextBankError

    path = Path(tmp_path) / "bank.json"
    path.write_text(json.dumps({"descriptions": {n: f"a face of {n}" for n in NAMES}}))
    m = make(tiny_backbone_112, text_bank=str(path))
    assert torch.allclose(m.text_features[0], m.backbone.encode_texts(["a face of happiness"], normalize=False)[0])
    with pytest.raises(TextBankError, match="contempt"):
        make(tiny_backbone_112, names=NAMES + ["contempt"], text_bank=str(path))


@pytest.mark.parametrize("bad, match", [({"num_frames": 6}, "multiple of num_snippets"),
                                        ({"visual_context": "extra"}, "code_extra_transformer"),
                                        ({"max_erased": -1}, "max_erased")])
def test_config_errors_name_the_value(bad, match):
    from ovfer.methods.dk_clip import DKCLIPConfig

    with pytest.raises(ValueError, match=match):
        DKCLIPConfig(**bad)


def test_fit_and_evaluate_one_epoch(tiny_backbone_112, synth_source, quick_train, tmp_path):
    from ovfer.protocols.common import LoaderConfig, evaluate, fit

    records = [r for r in synth_source.load() if not r.is_compound]
    names = sorted({r.class_name for r in records})
    train = [r for r in records if r.split == "train"][:8]  # two steps are enough to prove the loop
    test = [r for r in records if r.split == "test"][:8]
    m = make(tiny_backbone_112, names)
    before = m.w_v.detach().clone()
    out = fit(m, train, quick_train(1), LoaderConfig(batch_size=4, eval_batch_size=16, drop_last=True),
              tmp_path / "run")
    assert out.epochs == 1 and not torch.equal(before, m.w_v)
    res = evaluate(m, test, LoaderConfig(eval_batch_size=16), device="cpu")
    assert res.logits.shape == (len(test), len(names)) and torch.isfinite(torch.from_numpy(res.logits)).all()
    assert set(res.extras) == {"global", "local", "fused"}


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "dk_clip").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_yaml_configs_load(path):
    from ovfer.config import load_yaml
    from ovfer.methods.base import build_config
    from ovfer.protocols.closed_set import ClosedSetConfig

    cfg = load_yaml(ClosedSetConfig, path)
    mcfg = build_config(cfg.method, None, cfg.method_overrides)
    assert cfg.method == "dk_clip" and mcfg.num_frames == 16
    assert cfg.train.optim.optimizer == "adamw" and cfg.train.scheduler.name == "warmup_cosine"
    assert cfg.loader.batch_size * cfg.train.accumulation == 32
