"""DFER-CLIP (METHODS §1, §5): prompts, temporal model, logits, training set-up, released import."""
from __future__ import annotations

import copy
import json
import logging
import re

import pytest
import torch
import torch.nn.functional as F

from ovfer.config import ConfigError
from ovfer.data import transforms as tr
from ovfer.data.labels import source_order
from ovfer.engine.optim import OptimConfig, build_optimizer
from ovfer.methods.base import build_config, create_method
from ovfer.methods.dfer_clip import DFERCLIP, DFERCLIPConfig
from ovfer.methods.released import ReleasedCheckpointError
from ovfer.prompts.banks import TextBankError, load_text_bank
from ovfer.prompts.text import PromptLearner

NAMES = ["anger", "happiness", "sadness"]
BASIC7 = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]  # not the release's order
SOS, EOT = 49406, 49407


def fresh(backbone):
    """A private copy (DFER-CLIP trains the visual tower); the tokenizer is shared, copying it is slow."""
    return copy.deepcopy(backbone, memo={id(backbone.tokenizer): backbone.tokenizer})


def make(backbone, names=NAMES, seed=0, **cfg) -> DFERCLIP:
    torch.manual_seed(seed)
    return create_method("dfer_clip", names, {"num_frames": 2, **cfg}, backbone=fresh(backbone))


def video(b=2, t=2, s=224, seed=0) -> torch.Tensor:
    return torch.rand(b, t, 3, s, s, generator=torch.Generator().manual_seed(seed))


def words(bb, text: str) -> list[int]:
    """BPE ids of ``text`` alone, without SOS/EOT."""
    return bb.tokenizer.encode(text)


# -- prompt assembly: where the context goes (acceptance test) ------------------------------------

def expected_layout(position: str, m: int, n_text: int) -> tuple[list[int], list[int]]:
    """(context rows, text rows) of "[SOS] ... [EOT]" written out by hand for each position."""
    if position == "end":
        return list(range(1, 1 + m)), list(range(1 + m, 1 + m + n_text))
    if position == "front":
        return list(range(1 + n_text, 1 + n_text + m)), list(range(1, 1 + n_text))
    h = m // 2  # middle: floor(M/2) contexts before the text, the rest after it
    return list(range(1, 1 + h)) + list(range(1 + h + n_text, 1 + n_text + m)), list(range(1 + h, 1 + h + n_text))


@pytest.mark.parametrize("position", ["end", "middle", "front"])
@pytest.mark.parametrize("m", [8, 5])
def test_context_positions_scatter_where_stated(tiny_backbone, position, m):
    bb = tiny_backbone
    texts = ["nose wrinkled, upper lip raised, chin pushed up.", "happiness.", "a photo of surprise."]
    torch.manual_seed(0)
    pl = PromptLearner(bb, texts, m, True, 0.02, position)
    assembled = pl().detach()  # (K, L, W)
    x_id = words(bb, "X")[0]
    for k, text in enumerate(texts):
        tok = words(bb, text)
        ctx_rows, text_rows = expected_layout(position, m, len(tok))
        assert pl.ctx_index[k].tolist() == ctx_rows
        ids = pl.ids[k]
        assert int(ids[0]) == SOS and int(ids[max(ctx_rows + text_rows) + 1]) == EOT
        assert ids[text_rows].tolist() == tok  # the text tokens, unchanged and contiguous
        assert ids[ctx_rows].tolist() == [x_id] * m
        if position == "middle":  # half before, the rest after, text in between
            assert max(ctx_rows[: m // 2]) < min(text_rows) and min(ctx_rows[m // 2:]) > max(text_rows)
        if position == "front":
            assert max(text_rows) < min(ctx_rows)
        # row by row: context j at its row, every other row the frozen token embedding
        token_rows = bb.token_embedding(ids[None])[0].detach()
        for row in range(ids.shape[0]):
            want = pl.ctx[k, ctx_rows.index(row)] if row in ctx_rows else token_rows[row]
            assert torch.equal(assembled[k, row], want.detach()), (position, k, row)


def test_long_and_short_texts_mix_and_overflow_names_the_text(tiny_backbone):
    long = " ".join(["brow"] * 50) + "."  # 51 tokens: fits 77 with 8 contexts, beyond the short text's EOT
    pl = PromptLearner(tiny_backbone, [long, "fear."], 8, True, 0.02, "front")
    assert pl.ctx_index[0].tolist() == list(range(52, 60)) and pl.ctx_index[1].tolist() == list(range(3, 11))
    with pytest.raises(ValueError, match="end-of-text.*brow brow"):
        PromptLearner(tiny_backbone, [" ".join(["brow"] * 70) + ".", "fear."], 8, True, 0.02, "front")


def test_method_prompts_are_descriptors_with_contexts(tiny_backbone):
    m = make(tiny_backbone, context_position="middle")
    bank = load_text_bank("descriptor")
    for k, name in enumerate(NAMES):
        keep = [i for i in range(m.prompts.ids.shape[1]) if i not in m.prompts.ctx_index[k].tolist()]
        plain = tiny_backbone.tokenize([bank.text(name) + "."])[0]  # [SOS] description. [EOT] padding
        assert torch.equal(m.prompts.ids[k, keep], plain[: len(keep)])
    assert m.prompts.ctx.shape == (3, 8, tiny_backbone.text_width)
    assert 0.015 < float(m.prompts.ctx.detach().std()) < 0.025  # N(0, 0.02²)


@pytest.mark.parametrize("text,cfg,want", [
    ("class_name", {}, "happiness."),
    ("template", {}, "an expression of happiness."),
    ("template", {"template": "a photo of {}"}, "a photo of happiness."),
])
def test_text_option(tiny_backbone, text, cfg, want):
    m = make(tiny_backbone, ["happiness"], text=text, **cfg)
    ids = m.prompts.ids[0]
    assert ids[1 + 8: 1 + 8 + len(words(tiny_backbone, want))].tolist() == words(tiny_backbone, want)


def test_shared_context_is_one_context_for_all(tiny_backbone):
    m = make(tiny_backbone, shared_context=True)
    assert m.prompts.ctx.shape == (1, 8, tiny_backbone.text_width)
    emb = m.prompts().detach()
    assert torch.equal(emb[0, 1:9], emb[2, 1:9])


# -- text banks -------------------------------------------------------------------------------------

def test_user_text_bank_and_two_descriptions_per_class(tiny_backbone, tmp_path):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps({"descriptions": {"anger": ["brows down", "lips pressed"],
                                                 "happiness": ["cheeks up", "lip corners up"]}}))
    m = make(tiny_backbone, ["anger", "happiness"], text_bank=str(path), descriptions_per_class=2)
    assert m.prompts.ctx.shape[0] == 4  # one context per description
    t = m.class_features().detach()
    bb = m.backbone
    each = torch.stack([bb.encode_text_embeddings(m.prompts()[i:i + 1], m.prompts.ids[i:i + 1], normalize=True)[0]
                        for i in range(4)]).detach()
    want = F.normalize(torch.stack([each[0] + each[1], each[2] + each[3]]) / 2, dim=-1)
    assert torch.allclose(t, want, atol=1e-6)
    with pytest.raises(TextBankError, match="fear"):
        make(tiny_backbone, ["anger", "fear"], text_bank=str(path))


def test_two_descriptions_need_two_texts(tiny_backbone):
    m = make(tiny_backbone, BASIC7, descriptions_per_class=2)  # ovfer's bank has two for the basic classes
    assert m.prompts.ctx.shape[0] == 14
    with pytest.raises(ValueError, match="anxiety"):
        make(tiny_backbone, ["anger", "anxiety"], descriptions_per_class=2)


# -- video side, logits ------------------------------------------------------------------------------

def test_temporal_model_is_g_by_hand(tiny_backbone):
    m = make(tiny_backbone, num_frames=4)
    g, d = m.temporal, tiny_backbone.embed_dim
    blk = g.blocks[0]
    assert len(g.blocks) == 1 and g.cls_token.shape == (1, 1, d) and g.pos_embedding.shape == (1, 5, d)
    assert blk.attn.to_qkv.weight.shape == (1536, d) and blk.attn.to_qkv.bias is None
    assert blk.attn.to_out.weight.shape == (d, 512) and blk.mlp.fc1.weight.shape == (1024, d)
    assert 0.8 < float(g.pos_embedding.detach().std()) < 1.2  # N(0, 1)
    f = torch.randn(2, 4, d)
    x = torch.cat([g.cls_token.expand(2, -1, -1), f], 1) + g.pos_embedding
    h = F.layer_norm(x, (d,), blk.norm1.weight, blk.norm1.bias) @ blk.attn.to_qkv.weight.t()
    q, k, v = (t.view(2, 5, 8, 64).transpose(1, 2) for t in h.chunk(3, -1))
    att = ((q @ k.transpose(-1, -2)) / 8.0).softmax(-1) @ v  # softmax(qkᵀ/√64)·v
    x = x + att.transpose(1, 2).reshape(2, 5, 512) @ blk.attn.to_out.weight.t() + blk.attn.to_out.bias
    h2 = F.layer_norm(x, (d,), blk.norm2.weight, blk.norm2.bias)
    x = x + blk.mlp.fc2(F.gelu(blk.mlp.fc1(h2), approximate="tanh"))
    assert torch.allclose(g(f), x[:, 0], atol=1e-5)


def test_logits_are_cosine_over_tau_and_pixels_raw(tiny_backbone, monkeypatch):
    m = make(tiny_backbone).eval()
    seen = []
    orig = m.backbone.encode_frames
    monkeypatch.setattr(m.backbone, "encode_frames", lambda x, chunk=None: seen.append(x) or orig(x, chunk))
    x = video()
    with torch.no_grad():
        out = m(x)
        v, t = m.temporal(orig(x)), m.class_features()
    assert torch.equal(seen[0], x)  # no mean/std normalisation by default
    assert out.logits.shape == (2, 3) and out.features.shape == (2, tiny_backbone.embed_dim)
    assert torch.allclose(out.logits, 100.0 * F.cosine_similarity(v[:, None], t[None], dim=-1), atol=1e-4)
    assert torch.equal(out.open_score, out.logits.max(-1).values)
    mc = make(tiny_backbone, pixel_norm="clip").eval()
    with torch.no_grad():
        assert torch.allclose(mc.frame_features(x), orig(tr.normalize(x, "clip")), atol=1e-5)


def test_without_temporal_model_is_frame_mean(tiny_backbone):
    m = make(tiny_backbone, temporal_depth=0).eval()
    x = video()
    with torch.no_grad():
        assert torch.allclose(m.video_features(x), m.backbone.encode_frames(x).mean(1), atol=1e-6)
    assert [g["name"] for g in m.param_groups()] == ["visual", "prompts"]
    assert len(make(tiny_backbone, temporal_depth=2).temporal.blocks) == 2


# -- what trains, at which LR ------------------------------------------------------------------------

def test_gradients_reach_visual_tower_temporal_and_context_only(tiny_backbone):
    m = make(tiny_backbone).train()
    losses = m.training_step({"video": video(), "label": torch.tensor([0, 2])})
    assert set(losses) == {"loss", "ce"}
    losses["loss"].backward()
    for name, p in m.named_parameters():
        trained = name.startswith(("backbone.clip.visual.", "temporal.", "prompts.ctx"))
        assert p.requires_grad == trained, name
        assert (p.grad is not None and p.grad.abs().sum() > 0) == trained, name


def test_param_groups_reproduce_the_recipe(tiny_backbone):
    m = make(tiny_backbone)
    opt = build_optimizer(m, OptimConfig(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4))
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"visual": 1e-5, "temporal": 1e-2, "prompts": 1e-3}
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 1e-4 for g in opt.param_groups)
    in_groups = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_groups == {id(p) for p in m.parameters() if p.requires_grad}
    sd = m.trainable_state_dict()
    assert sd and all(k.startswith(("backbone.clip.visual.", "temporal.", "prompts.ctx")) for k in sd)
    assert len(sd) == sum(1 for p in m.parameters() if p.requires_grad)


def test_text_recomputed_in_training_cached_in_eval(tiny_backbone, monkeypatch):
    m = make(tiny_backbone)
    calls = {"n": 0}
    orig = m.backbone.encode_text_embeddings

    def spy(*a, **k):
        calls["n"] += 1
        return orig(*a, **k)

    monkeypatch.setattr(m.backbone, "encode_text_embeddings", spy)
    m.train()
    for _ in range(2):
        m.training_step({"video": video(), "label": torch.tensor([0, 1])})
    assert calls["n"] == 2
    m.eval()
    m.prepare_eval()
    with torch.no_grad():
        m(video())
        m(video())
    assert calls["n"] == 3
    m.train()
    assert m._text_cache is None


# -- config and data preset ------------------------------------------------------------------------

def test_config_defaults_and_errors():
    c = DFERCLIPConfig()
    assert (c.num_frames, c.n_ctx, c.temporal_depth, c.temperature, c.text, c.context_position) == \
        (16, 8, 1, 0.01, "descriptor", "end")
    assert (c.lr_visual, c.lr_temporal, c.lr_prompt, c.pixel_norm, c.aug) == (1e-5, 1e-2, 1e-3, "none", "all")
    for bad, match in [({"context_position": "side"}, "side.*front"), ({"text": "caption"}, "caption.*class_name"),
                       ({"aug": "code_per_dataset"}, "aug_dataset.*ferv39k"), ({"temporal_depth": -1}, "-1"),
                       ({"descriptions_per_class": 2, "text": "class_name"}, "text=descriptor"),
                       ({"text": "template", "template": "a face"}, "a face"), ({"pixel_norm": "z"}, "imagenet")]:
        with pytest.raises(ValueError, match=match):
            DFERCLIPConfig(**bad)
    with pytest.raises(ConfigError, match="middle"):
        build_config("dfer_clip", None, ["context_position=centre"])


@pytest.mark.parametrize("aug,dataset,ops", [
    ("all", None, ["RandomBrightness", "RandomRotation"]),
    ("code_per_dataset", "dfew", ["RandomBrightness"]),
    ("code_per_dataset", "ferv39k", ["RandomRotation"]),
    ("code_per_dataset", "mafw", []),
])
def test_augmentation_presets(tiny_backbone_112, aug, dataset, ops):
    m = make(tiny_backbone_112, aug=aug, aug_dataset=dataset)
    p = m.data_preset
    assert (p.num_frames, p.sampler, p.test_transform, p.normalization, p.image_size) == \
        (2, "dfer_clip", "dfer_clip_test", "none", 112)
    t = tr.build_transform(p.train_transform, 32)
    assert [type(op).__name__ for op in t.ops] == ["ToFloat", *ops, "RandomResizedCrop", "RandomHorizontalFlip"]
    rrc = t.ops[-2]
    assert (rrc.swap_prob, rrc.fallback, rrc.tries, rrc.scale) == (0.5, "random_square", 10, (0.08, 1.0))
    clip = torch.rand(1, 3, 40, 48).repeat(3, 1, 1, 1)
    for seed in range(4):
        out = t(clip, tr.np.random.default_rng(seed))
        assert out.shape == (3, 3, 32, 32) and all(torch.equal(out[0], out[i]) for i in (1, 2))


# -- released checkpoint (METHODS §5) ------------------------------------------------------------------

_TO_RELEASED = [  # ovfer temporal names -> the vit-pytorch layout of the release, written from METHODS §5
    (r"^blocks\.(\d+)\.norm1\.", r"temporal_transformer.layers.\1.0.fn.norm."),
    (r"^blocks\.(\d+)\.attn\.to_qkv\.", r"temporal_transformer.layers.\1.0.fn.fn.to_qkv."),
    (r"^blocks\.(\d+)\.attn\.to_out\.", r"temporal_transformer.layers.\1.0.fn.fn.to_out.0."),
    (r"^blocks\.(\d+)\.norm2\.", r"temporal_transformer.layers.\1.1.fn.norm."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"temporal_transformer.layers.\1.1.fn.fn.net.0."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"temporal_transformer.layers.\1.1.fn.fn.net.3."),
]


def released_state(m: DFERCLIP, texts: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    """The official layout for ``m``: rows in DFER-CLIP's class order, the prompt buffers built the
    official way ("X"×8 + description + ".", prefix = row 0, suffix = rows 9:), duplicate CLIP."""
    order = list(source_order("dfew", "dfer_clip"))
    bank = load_text_bank("descriptor")
    bb, clip = m.backbone, m.backbone.clip
    prompts = [" ".join(["X"] * 8) + " " + (texts or {}).get(c, bank.text(c)) + "." for c in order]
    with torch.no_grad():
        emb = bb.token_embedding(bb.tokenize(prompts))
    sd = {"prompt_learner.ctx": m.prompts.ctx.detach()[[m.classnames.index(c) for c in order]],
          "prompt_learner.token_prefix": emb[:, :1], "prompt_learner.token_suffix": emb[:, 9:]}
    sd |= {f"text_encoder.{k}": v for k, v in clip.state_dict().items()
           if k.startswith(("transformer.", "positional_embedding", "ln_final.", "text_projection"))}
    sd |= {f"image_encoder.{k}": v for k, v in clip.visual.state_dict().items()}
    for k, v in m.temporal.state_dict().items():
        for pat, repl in _TO_RELEASED:
            k = re.sub(pat, repl, k)
        sd[f"temporal_net.{k}"] = v
    sd |= {f"clip_model_.{k}": v for k, v in clip.state_dict().items()}
    return {k: v.clone() for k, v in sd.items()}


def save_released(sd, path):
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": torch.tensor(7)}, path)
    return path


def test_released_round_trip(tiny_backbone, tmp_path):
    src = make(tiny_backbone, BASIC7, seed=1, num_frames=4)
    with torch.no_grad():  # make the trained parts differ from the backbone the import starts from
        for p in src.backbone.clip.visual.parameters():
            p.add_(0.01 * torch.randn_like(p))
    sd = released_state(src)
    assert sd["prompt_learner.ctx"].shape == (7, 8, tiny_backbone.text_width)
    assert sd["prompt_learner.token_suffix"].shape == (7, 77 - 1 - 8, tiny_backbone.text_width)
    assert sd["temporal_net.pos_embedding"].shape == (1, 5, tiny_backbone.embed_dim)
    path = save_released(sd, tmp_path / "dfew_fold1.pth")
    torch.manual_seed(2)
    dst = DFERCLIP.import_released(path, BASIC7, DFERCLIPConfig(num_frames=4), fresh(tiny_backbone),
                                   text_check="error")  # prefix/suffix = ovfer's "end" rows
    assert torch.equal(dst.prompts.ctx, src.prompts.ctx)
    x = video(t=4, seed=3)
    src.eval(), dst.eval()
    with torch.no_grad():
        assert torch.allclose(dst(x).logits, src(x).logits, atol=1e-6)
        assert torch.allclose(dst(x).features, src(x).features, atol=1e-6)


def test_released_wrong_classes_and_texts(tiny_backbone, tmp_path, caplog):
    src = make(tiny_backbone, BASIC7, num_frames=4)
    path = save_released(released_state(src), tmp_path / "a.pth")
    five = make(tiny_backbone, BASIC7[:5], num_frames=4)
    with pytest.raises(ReleasedCheckpointError, match="contexts for 7 classes, this method has 5"):
        five.load_released(path)
    other = save_released(released_state(src, {"fear": "eyes wide"}), tmp_path / "b.pth")
    with caplog.at_level(logging.WARNING, logger="ovfer.methods.dfer_clip"):
        make(tiny_backbone, BASIC7, num_frames=4).load_released(other)
    assert "['fear']" in caplog.text and "text_bank" in caplog.text
    with pytest.raises(ReleasedCheckpointError, match="fear"):
        make(tiny_backbone, BASIC7, num_frames=4).load_released(other, text_check="error")
    with pytest.raises(ReleasedCheckpointError, match="shared_context=True"):
        make(tiny_backbone, BASIC7, num_frames=4, shared_context=True).load_released(path)
    with pytest.raises(ReleasedCheckpointError, match="temporal_start=random"):
        make(tiny_backbone, BASIC7, num_frames=4, temporal_start="frame_mean").load_released(path)


# -- end to end ------------------------------------------------------------------------------------

def test_fit_and_evaluate_one_epoch(tiny_backbone_112, synth_source, quick_train, tmp_path):
    from ovfer.protocols.common import LoaderConfig, evaluate, fit

    records = [r for r in synth_source.load() if not r.is_compound]
    names = sorted({r.class_name for r in records})

    def first(split: str, n: int) -> list:  # a few clips per class keep the run short
        return [r for c in names for r in [r for r in records if r.split == split and r.class_name == c][:n]]

    train, test = first("train", 2), first("test", 1)
    m = make(tiny_backbone_112, names)
    before = m.temporal.cls_token.detach().clone()
    out = fit(m, train, quick_train(1), LoaderConfig(batch_size=8, eval_batch_size=16, drop_last=True),
              tmp_path / "run")
    assert out.epochs == 1 and not torch.equal(before, m.temporal.cls_token)
    res = evaluate(m, test, LoaderConfig(eval_batch_size=16), device="cpu")
    assert res.logits.shape == (len(test), len(names)) and torch.isfinite(torch.from_numpy(res.logits)).all()


# -- shipped configs ---------------------------------------------------------------------------------

def test_paper_configs_carry_the_recipe():
    from pathlib import Path

    from ovfer.config import load_yaml
    from ovfer.data.labels import canonical_classes
    from ovfer.protocols.closed_set import ClosedSetConfig

    root = Path(__file__).resolve().parents[2] / "configs" / "dfer_clip"
    paths = sorted(root.rglob("*.yaml"))
    assert {"dfew", "ferv39k", "mafw"} <= {p.stem for p in paths}
    stems = {p.stem for p in (root / "ablations").glob("dfew_*.yaml")}
    assert {"dfew_no_temporal", "dfew_class_name", "dfew_shared_context", "dfew_temporal_depth2",
            "dfew_two_descriptions"} <= stems
    for path in paths:
        cfg = load_yaml(ClosedSetConfig, path)
        mcfg = build_config(cfg.method, None, cfg.method_overrides)
        t = cfg.train
        assert (t.epochs, t.optim.optimizer, t.optim.momentum, t.optim.weight_decay, t.precision) == \
            (50, "sgd", 0.9, 1e-4, "fp32"), path
        assert (t.scheduler.name, t.scheduler.milestones, t.scheduler.gamma) == ("multistep", [30, 40], 0.1), path
        assert (cfg.loader.batch_size, cfg.loader.drop_last, cfg.seeds) == (48, True, [1, 2, 3]), path
        if mcfg.descriptions_per_class > 1:  # ovfer's bank must hold enough texts for the dataset
            bank = load_text_bank("descriptor")
            assert all(len(bank.texts(c)) >= 2 for c in canonical_classes(cfg.data.adapter)), path
