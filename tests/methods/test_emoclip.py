"""EmoCLIP (METHODS §3, §5): texts, losses and logits by hand, trained parts per mode,
released-layout import, and one end-to-end caption + LP run on tiny SynthFER."""
import copy
import json
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from ovfer.data.transforms import build_transform
from ovfer.engine.optim import OptimConfig, build_param_groups
from ovfer.methods.base import METHODS, create_method
from ovfer.methods.emoclip import EmoCLIP, EmoCLIPConfig
from ovfer.methods.released import ReleasedCheckpointError
from ovfer.prompts.banks import TextBankError

NAMES = ["anger", "disgust", "happiness", "neutral"]


def make(bb, names=NAMES, **cfg):
    torch.manual_seed(0)
    base = {"num_frames": 2, "temporal": "intended", "neutral_seed": 0}
    fresh = copy.deepcopy(bb, {id(bb.tokenizer): bb.tokenizer})  # the tokenizer is only read: share it (fast)
    return create_method("emoclip", names, cfg={**base, **cfg}, backbone=fresh)


def batch(b=4, t=2, s=112, seed=0, captions=None, labels=None):
    g = torch.Generator().manual_seed(seed)
    return {"video": torch.rand(b, t, 3, s, s, generator=g),
            "label": torch.tensor(labels if labels is not None else [i % 4 for i in range(b)]),
            "id": [f"clip{i}" for i in range(b)],
            "caption": captions if captions is not None else [f"a face, caption number {i}" for i in range(b)]}


def trainable(m):
    return {n for n, p in m.named_parameters() if p.requires_grad}


# -- config and data preset ---------------------------------------------------------------------

def test_config_errors_name_the_value_and_choices(tiny_backbone_112):
    with pytest.raises(ValueError, match=r"temporal.*'big'.*\['code', 'intended'\]"):
        make(tiny_backbone_112, temporal="big")
    with pytest.raises(ValueError, match=r"emoclip.test_window = 'middle'; valid: \['seeded', 'start', 'center'\]"):
        EmoCLIPConfig(test_window="middle")
    with pytest.raises(ValueError, match="text_source"):
        make(tiny_backbone_112, text_source="labels")
    with pytest.raises(ValueError, match="encoder_checkpoint is read by head='lp'"):
        make(tiny_backbone_112, encoder_checkpoint="x.pt")


def test_data_preset(tiny_backbone_112):
    p = make(tiny_backbone_112, num_frames=32).data_preset
    assert (p.num_frames, p.sampler, p.train_transform, p.test_transform, p.normalization, p.image_size) == \
        (32, "window", "emoclip_train", "emoclip_test", "clip", 112)
    assert make(tiny_backbone_112, test_window="center").data_preset.sampler == "window_center"
    assert make(tiny_backbone_112, test_window="start").data_preset.sampler == "window_start"
    rc = make(tiny_backbone_112, random_crop=True).data_preset.train_transform
    assert rc == "emoclip_train_random_crop"
    out = build_transform(rc, 112)(torch.rand(2, 3, 120, 160))  # non-square: a random 112 window
    assert out.shape == (2, 3, 112, 112)


def test_default_config_is_the_paper_recipe():
    cfg = METHODS.get("emoclip").config_cls()
    assert (cfg.num_frames, cfg.temporal, cfg.text_source, cfg.compound, cfg.text_finetune, cfg.head) == \
        (32, "code", "caption", "average", "blocks", "text")
    assert cfg.logit_scale_init == pytest.approx(math.log(100)) and cfg.trains_backbone
    assert not replace(cfg, text_source="class_description").trains_backbone
    assert METHODS.get("emoclip").zero_shot


# -- trained and frozen parts ---------------------------------------------------------------------

NEW = {"logit_scale"}
TEXT_FROZEN = ("backbone.clip.token_embedding.weight", "backbone.clip.positional_embedding",
               "backbone.clip.ln_final.weight", "backbone.clip.text_projection")


def test_caption_model_trains_visual_tower_and_text_blocks(tiny_backbone_112):
    m = make(tiny_backbone_112)
    names = trainable(m)
    assert {"logit_scale", "backbone.clip.visual.conv1.weight", "backbone.clip.visual.proj",
            "backbone.clip.visual.transformer.resblocks.0.attn.in_proj_weight",
            "backbone.clip.transformer.resblocks.0.mlp.c_fc.weight"} <= names
    assert any(n.startswith("temporal.blocks.") for n in names)
    assert not names & set(TEXT_FROZEN) and "backbone.clip.logit_scale" not in names
    out = m.training_step(batch())
    out["loss"].backward()
    for n, p in m.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
        else:
            assert p.grad is None, n
    assert m.backbone.clip.visual.conv1.weight.grad.abs().sum() > 0
    assert m.backbone.clip.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0
    assert m.logit_scale.grad.abs() > 0


@pytest.mark.parametrize("kw", [{"text_source": "class_description"},
                                {"text_source": "caption", "finetune_backbone": False}])
def test_supervised_and_frozen_backbone_train_only_temporal_and_scale(tiny_backbone_112, kw):
    m = make(tiny_backbone_112, **kw)
    assert {n for n in trainable(m) if not n.startswith("temporal.")} == NEW
    m.training_step(batch())["loss"].backward()
    assert all(p.grad is None for p in m.backbone.parameters())
    assert all(p.grad is not None for p in m.temporal.parameters())


def test_finetune_options(tiny_backbone_112):
    sup = make(tiny_backbone_112, text_source="class_description", finetune_backbone=True)
    assert "backbone.clip.visual.conv1.weight" in trainable(sup)
    full = make(tiny_backbone_112, text_finetune="all")
    assert set(TEXT_FROZEN) <= trainable(full)
    full.training_step(batch(2))["loss"].backward()
    assert full.backbone.clip.token_embedding.weight.grad is not None


def test_param_groups_reproduce_the_recipe(tiny_backbone_112):
    optim = OptimConfig(lr=1e-3, momentum=0.9, weight_decay=5e-4)
    groups = {g["name"]: g for g in build_param_groups(make(tiny_backbone_112), optim)}
    assert set(groups) == {"temporal", "clip_visual", "clip_text"}
    assert groups["temporal"]["lr"] == pytest.approx(1e-3)
    assert groups["clip_visual"]["lr"] == pytest.approx(1e-6) and groups["clip_text"]["lr"] == pytest.approx(1e-6)
    sup = {g["name"] for g in build_param_groups(make(tiny_backbone_112, text_source="class_description"), optim)}
    assert sup == {"temporal"}
    lp = build_param_groups(make(tiny_backbone_112, head="lp"), optim)
    assert [g["name"] for g in lp] == ["lp_head"] and lp[0]["lr"] == pytest.approx(1e-3)


def test_trainable_state_dict_holds_learned_tensors_only(tiny_backbone_112):
    cap = make(tiny_backbone_112).trainable_state_dict()
    assert "logit_scale" in cap and "backbone.clip.visual.conv1.weight" in cap
    assert not set(TEXT_FROZEN) & set(cap)
    sup = make(tiny_backbone_112, text_source="class_description").trainable_state_dict()
    assert all(k.startswith("temporal.") or k == "logit_scale" for k in sup)
    lp = make(tiny_backbone_112, head="lp").trainable_state_dict()
    assert lp and all(k.startswith("lp_head.") for k in lp)


# -- text side by hand ----------------------------------------------------------------------------

def test_compound_embedding_averages_before_normalisation(tiny_backbone_112, monkeypatch):
    m = make(tiny_backbone_112, names=["anger", "disgust"])
    a, d = m.bank.text("anger"), m.bank.text("disgust")
    raw = {a: [3.0, 0.0], d: [0.0, 1.0], f"{a} {d}": [0.0, 2.0]}  # norms 3 and 1
    calls = []

    def stub(texts):
        calls.append(list(texts))
        return torch.tensor([raw[t] for t in texts])

    monkeypatch.setattr(m, "encode_texts", stub)
    emb = m.class_embed(["anger", "disgust", "anger_disgust"])
    # normalize(mean([3, 0], [0, 1])) = [1.5, 0.5] / sqrt(2.5)
    assert emb[2].tolist() == pytest.approx([1.5 / math.sqrt(2.5), 0.5 / math.sqrt(2.5)], abs=1e-6)
    # not the mean of normalised parts, [0.5, 0.5] / sqrt(0.5)
    assert emb[2].tolist() != pytest.approx([math.sqrt(0.5), math.sqrt(0.5)], abs=1e-3)
    assert emb[0].tolist() == pytest.approx([1.0, 0.0]) and emb[1].tolist() == pytest.approx([0.0, 1.0])
    m.cfg.compound = "concat"  # Tab. III baseline: one prompt of the concatenated descriptions
    calls.clear()
    assert m.class_embed(["anger_disgust"])[0].tolist() == pytest.approx([0.0, 1.0])
    assert calls == [[f"{a} {d}"]]


def test_logits_are_unclamped_scaled_cosines(tiny_backbone_112):
    m = make(tiny_backbone_112).eval()
    with torch.no_grad():
        m.logit_scale.fill_(math.log(1000.0))  # beyond CLIP's clamp at 100: must be used as is
    video = batch(2)["video"]
    m.prepare_eval()
    with torch.no_grad():
        out = m(video)
        zv, zt = m.video_embed(video), m.class_embed(NAMES)
    expected = 1000.0 * F.normalize(zv, dim=-1) @ zt.t()
    assert out.logits.shape == (2, 4)
    assert torch.allclose(out.logits, expected, atol=1e-3)
    assert torch.equal(out.open_score, out.logits.max(dim=1).values)
    assert torch.allclose(zt.norm(dim=1), torch.ones(4))


def test_frame_mean_start_begins_as_the_mean_of_frame_embeddings(tiny_backbone_112):
    """``temporal_start=frame_mean``: untrained z^V is the mean of the CLIP frame embeddings, so the
    logits are CLIP zero-shot against the descriptions; the default paper init is not."""
    video = batch(2)["video"]
    for start, same in (("frame_mean", True), ("random", False)):
        m = make(tiny_backbone_112, temporal_start=start).eval()
        with torch.no_grad():
            zv, frames = m.video_embed(video), m.frame_embed(video)
        assert torch.allclose(zv, frames.mean(1), atol=1e-5) is same
    assert set(m.temporal.state_dict()) == set(make(tiny_backbone_112, temporal_start="frame_mean").temporal.state_dict())


def _soft_ce(rows, targets):
    """Hand formula: mean over rows of -sum_j t_j log softmax(row)_j."""
    total = 0.0
    for row, t in zip(rows, targets):
        lse = math.log(sum(math.exp(v) for v in row))
        total += -sum(tj * (v - lse) for v, tj in zip(row, t))
    return total / len(rows)


def _stub_embeddings(m, monkeypatch, zv, text_vecs):
    monkeypatch.setattr(m, "video_embed", lambda video: torch.tensor(zv))
    monkeypatch.setattr(m, "encode_texts", lambda texts: torch.tensor([text_vecs[t] for t in texts]))


def test_infonce_by_hand(tiny_backbone_112, monkeypatch):
    m = make(tiny_backbone_112)
    with torch.no_grad():
        m.logit_scale.fill_(math.log(2.0))
    _stub_embeddings(m, monkeypatch, [[1.0, 0.0], [0.0, 1.0]], {"A": [1.0, 0.0], "B": [0.6, 0.8]})
    loss = m.training_step(batch(2, captions=["A", "B"]))["loss"]
    # S = 2·[[1, .6], [0, .8]]; rows (video->text) and columns (text->video), identity targets
    rows = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6))) / 2
    cols = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-0.4))) / 2
    assert loss.item() == pytest.approx(0.5 * (rows + cols), abs=1e-6)
    assert loss.item() == pytest.approx(0.298736, abs=1e-5)


@pytest.mark.parametrize("multi", [False, True])
def test_identical_texts_negatives_or_shared_positives(tiny_backbone_112, monkeypatch, multi):
    m = make(tiny_backbone_112, multi_positive=multi)
    with torch.no_grad():
        m.logit_scale.fill_(0.0)  # scale 1: S = cosines
    zv = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
    _stub_embeddings(m, monkeypatch, zv, {"A": [1.0, 0.0], "B": [0.0, 1.0]})
    loss = m.training_step(batch(3, captions=["A", "A", "B"]))["loss"]
    s = [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.6, 0.8]]
    st = [list(c) for c in zip(*s)]
    if multi:
        t = [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    else:
        t = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert loss.item() == pytest.approx(0.5 * (_soft_ce(s, t) + _soft_ce(st, t)), abs=1e-6)


# -- training texts ------------------------------------------------------------------------------

def test_neutral_pool_two_distinct_sentences_redrawn_each_epoch(tiny_backbone_112):
    m = make(tiny_backbone_112)
    pool = m.bank.neutral_captions
    ids = [f"n{i}" for i in range(12)]
    neutral = {"label": torch.full((12,), NAMES.index("neutral")), "id": ids, "caption": [""] * 12}
    first = m.batch_texts(neutral)
    for text in first:
        parts = [p for p in pool if text.startswith(p) or text.endswith(p)]
        assert len(parts) == 2 and text in (f"{parts[0]} {parts[1]}", f"{parts[1]} {parts[0]}")
    assert m.batch_texts(neutral) == first  # same epoch, same draw
    m.on_epoch_start(1)
    second = m.batch_texts(neutral)
    assert second != first
    m.on_epoch_start(0)
    assert m.batch_texts(neutral) == first
    other_seed = make(tiny_backbone_112, neutral_seed=1)
    assert other_seed.batch_texts(neutral) != first
    assert make(tiny_backbone_112).batch_texts(neutral) == first  # deterministic for a seed


def test_captions_used_and_missing_caption_names_the_clip(tiny_backbone_112):
    m = make(tiny_backbone_112)
    b = batch(2, captions=["She frowns.", ""], labels=[0, 1])
    with pytest.raises(ValueError, match="clip 'clip1' \\(class disgust\\) has no caption"):
        m.batch_texts(b)
    b["caption"][1] = "He wrinkles his nose."
    assert m.batch_texts(b) == ["She frowns.", "He wrinkles his nose."]


def test_class_description_texts(tiny_backbone_112):
    m = make(tiny_backbone_112, text_source="class_description")
    texts = m.batch_texts(batch(4, captions=["ignored"] * 4, labels=[2, 0, 2, 3]))
    assert texts == [m.bank.text(n) for n in ("happiness", "anger", "happiness", "neutral")]


def test_user_bank_needs_two_neutral_sentences(tiny_backbone_112, tmp_path):
    path = tmp_path / "bank.json"
    descs = {n: f"text of {n}" for n in NAMES}
    path.write_text(json.dumps({"descriptions": descs, "neutral_captions": ["Only one.", "Only one."]}))
    with pytest.raises(TextBankError, match="at least 2 distinct neutral_captions"):
        make(tiny_backbone_112, text_bank=str(path))
    m = make(tiny_backbone_112, text_bank=str(path), text_source="class_description")
    assert m.bank.text("anger") == "text of anger"
    with pytest.raises(TextBankError, match="'contempt'"):
        m.set_classes(["anger", "contempt"])


# -- zero-shot and LP ------------------------------------------------------------------------------

def test_zero_shot_on_classes_never_trained(tiny_backbone_112):
    m = make(tiny_backbone_112)  # trained on NAMES' texts (here: random init stands in for training)
    new = ["surprise", "fear", "sadness", "contempt", "fear_surprise", "anxiety_helplessness_sadness"]
    m.set_classes(new)
    m.eval()
    m.prepare_eval()
    with torch.no_grad():
        out = m(batch(2)["video"])
    assert out.logits.shape == (2, 6) and torch.isfinite(out.logits).all()
    assert out.features.shape == (2, m.backbone.embed_dim)
    lp = make(tiny_backbone_112, head="lp")
    assert m.zero_shot and not lp.zero_shot
    assert lp(batch(2)["video"]).logits.shape == (2, 4)
    lp.set_classes(new)
    assert lp.lp_head[-1].out_features == 6 and lp.lp_head[0].out_features == 256


def test_fp16_backbone(tiny_backbone_112):
    m = make(tiny_backbone_112, fp16_backbone=True)
    assert m.backbone.clip.visual.conv1.weight.dtype == torch.float16
    assert m.temporal.pos_embedding.dtype == torch.float32
    loss = m.training_step(batch(2))["loss"]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert m.backbone.clip.visual.conv1.weight.grad.dtype == torch.float16


# -- released layout (METHODS §5) ---------------------------------------------------------------------

_VITPYTORCH = {"norm1": "0.fn.norm", "attn.to_qkv": "0.fn.fn.to_qkv", "attn.to_out": "0.fn.fn.to_out.0",
               "norm2": "1.fn.norm", "mlp.fc1": "1.fn.fn.net.0", "mlp.fc2": "1.fn.fn.net.3"}


def released_layout(m) -> dict:
    """The official file's layout written from a method's weights: whole CLIP in fp16 under
    ``backbone.``, the vit-pytorch temporal net, ``logit_scale``; ``module.`` prefixes."""
    sd = {f"backbone.{k}": v.half() for k, v in m.backbone.clip.state_dict().items()}
    for k, v in m.temporal.state_dict().items():
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            part, leaf = rest.rsplit(".", 1)
            k = f"temporal_transformer.layers.{i}.{_VITPYTORCH[part]}.{leaf}"
        sd[f"temporal.{k}"] = v.clone()
    sd["logit_scale"] = m.logit_scale.detach().clone()
    return {"state_dict": {f"module.{k}": v for k, v in sd.items()}}


def test_released_checkpoint_round_trip(tiny_backbone, tmp_path):
    """Outputs identical (atol 1e-6) after import: the source instance's CLIP weights are
    round-tripped through fp16 first, as the file stores them in fp16."""
    src = make(tiny_backbone, temporal="code", num_frames=2)
    with torch.no_grad():
        for p in src.backbone.clip.parameters():
            p.copy_(p.half().float())
        src.logit_scale.fill_(3.0)
    wrapped = released_layout(src)
    sd = wrapped["state_dict"]
    d = tiny_backbone.embed_dim
    assert sd["module.temporal.pos_embedding"].shape == (1, 1024, d)
    assert sd["module.temporal.temporal_transformer.layers.1.0.fn.fn.to_qkv.weight"].shape == (3 * 8 * 2048, d)
    assert sd["module.temporal.temporal_transformer.layers.0.0.fn.fn.to_out.0.weight"].shape == (d, 8 * 2048)
    assert sd["module.backbone.visual.conv1.weight"].dtype == torch.float16
    path = tmp_path / "emoclip_released.pth"
    torch.save(wrapped, path)
    torch.manual_seed(1)  # a fresh instance with other random weights
    dst = EmoCLIP.from_released(path, NAMES, src.cfg, backbone=copy.deepcopy(tiny_backbone, {id(tiny_backbone.tokenizer): tiny_backbone.tokenizer}))
    assert dst.backbone.clip.visual.conv1.weight.dtype == torch.float32
    video = torch.rand(2, 2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    src.eval(), dst.eval()
    with torch.no_grad():
        a, b = src(video), dst(video)
    assert torch.allclose(a.logits, b.logits, atol=1e-6) and torch.allclose(a.features, b.features, atol=1e-6)
    assert dst.logit_scale.item() == pytest.approx(3.0)
    fm = make(tiny_backbone, temporal="code", num_frames=2, temporal_start="frame_mean")
    with pytest.raises(ReleasedCheckpointError, match="temporal_start=random"):
        fm.load_released(path)  # same shapes, other function: refused, not loaded silently


def test_released_checkpoint_shape_and_key_errors(tiny_backbone, tmp_path):
    src = make(tiny_backbone, temporal="code")
    path = tmp_path / "released.pth"
    torch.save(released_layout(src), path)
    intended = make(tiny_backbone, temporal="intended")
    with pytest.raises(ReleasedCheckpointError, match="shape .*temporal.blocks.0.attn.to_qkv.weight"):
        intended.load_released(path)
    wrapped = released_layout(src)
    wrapped["state_dict"]["module.fc.weight"] = torch.zeros(11, tiny_backbone.embed_dim)
    torch.save(wrapped, path)
    with pytest.raises(ReleasedCheckpointError, match="unexpected keys.*fc.weight"):
        src.load_released(path)


# -- end to end ----------------------------------------------------------------------------------------

def test_caption_training_then_linear_probe_end_to_end(tiny_backbone_112, synth_source, quick_train, tmp_path):
    from ovfer.protocols.common import LoaderConfig, evaluate, fit
    from ovfer.protocols.runs import split_of

    records = synth_source.load()
    classes = sorted({r.class_name for r in records})
    train = split_of(records, "train")
    neutral = [replace(r, caption=None) for r in train if r.class_name == "neutral"][:2]  # pool sentences
    train = neutral + [r for r in train if r.class_name != "neutral"][:10]
    test = split_of(records, "test")[:6]
    loader = LoaderConfig(batch_size=12, eval_batch_size=6)
    cap = make(tiny_backbone_112, names=classes)
    done = fit(cap, train, quick_train(1), loader, tmp_path / "captions")
    assert done.epochs == 1 and done.checkpoint is not None
    out = evaluate(cap, test, loader, device="cpu")
    assert out.logits.shape == (len(test), len(classes)) and (out.labels >= 0).all()
    lp = make(tiny_backbone_112, names=classes, head="lp", encoder_checkpoint=str(done.checkpoint))
    assert torch.equal(lp.temporal.blocks[0].attn.to_qkv.weight, cap.temporal.blocks[0].attn.to_qkv.weight)
    assert torch.equal(lp.backbone.clip.visual.conv1.weight, cap.backbone.clip.visual.conv1.weight)
    before = lp.temporal.pos_embedding.clone()
    fit(lp, train, quick_train(1), loader, tmp_path / "lp")
    assert torch.equal(lp.temporal.pos_embedding, before)  # E_V stays frozen
    assert evaluate(lp, test, loader, device="cpu").logits.shape == (len(test), len(classes))
    with pytest.raises(ReleasedCheckpointError, match="temporal_start='random'"):  # probe must match the run
        make(tiny_backbone_112, names=classes, head="lp", encoder_checkpoint=str(done.checkpoint),
             temporal_start="frame_mean")
