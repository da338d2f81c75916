import time

import pytest
import torch

from ovfer.backbones import BackboneConfig, ClipBackbone, WeightsMismatchError, WeightsNotFoundError, build_backbone


def _features(bb, images, ids):
    with torch.no_grad():
        return bb.encode_image(bb.normalize(images)), bb.encode_text(ids)


def test_openai_layout_state_dict_roundtrip(tmp_path, tiny_backbone):
    torch.manual_seed(1)
    src = build_backbone("ovfer-tiny-b32", None, quick_gelu=True).eval()
    sd = {k: v.clone() for k, v in src.clip.state_dict().items() if k != "attn_mask"}
    # OpenAI's files carry these extras and store half-precision tensors for some weights
    sd["input_resolution"] = torch.tensor(224)
    sd["context_length"] = torch.tensor(77)
    path = tmp_path / "openai_layout.pt"
    torch.save(sd, path)
    dst = ClipBackbone(BackboneConfig(arch="ovfer-tiny-b32", pretrained=str(path), quick_gelu=True)).eval()
    images = torch.rand(3, 3, 224, 224)
    ids = src.tokenize(["a photo of a happy face.", "a sad face"])
    a_img, a_txt = _features(src, images, ids)
    b_img, b_txt = _features(dst, images, ids)
    assert (a_img - b_img).abs().max() < 1e-5
    assert (a_txt - b_txt).abs().max() < 1e-5
    # the same through safetensors and with a DDP-style 'module.' prefix
    from safetensors.torch import save_file

    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.clip.state_dict().items() if k != "attn_mask"}, str(st))
    c_img, _ = _features(ClipBackbone(BackboneConfig(arch="ovfer-tiny-b32", pretrained=str(st), quick_gelu=True)).eval(), images, ids)
    assert (a_img - c_img).abs().max() < 1e-5
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, wrapped)
    d_img, _ = _features(ClipBackbone(BackboneConfig(arch="ovfer-tiny-b32", pretrained=str(wrapped), quick_gelu=True)).eval(), images, ids)
    assert (a_img - d_img).abs().max() < 1e-5


def test_assembled_embeddings_equal_plain_text(tiny_backbone):
    bb = tiny_backbone
    ids = bb.tokenize(["X X X X happiness.", "a face showing fear"])
    with torch.no_grad():
        plain = bb.encode_text(ids)
        emb = bb.token_embedding(ids)
        prefix, ctx, suffix = emb[:, :1], emb[:, 1:5].clone(), emb[:, 5:]
        assembled = bb.encode_text_embeddings(torch.cat([prefix, ctx, suffix], dim=1), ids)
    assert (plain - assembled).abs().max() < 1e-5
    # a different context really changes the result
    with torch.no_grad():
        other = bb.encode_text_embeddings(torch.cat([prefix, ctx + torch.randn_like(ctx), suffix], dim=1), ids)
    assert (plain - other).abs().max() > 1e-3


@pytest.mark.parametrize("arch,tokens", [("ViT-B-32", 49), ("ViT-B-16", 196)])
def test_patch_token_shapes(arch, tokens):
    bb = build_backbone(arch, None).eval()
    with torch.no_grad():
        out = bb.encode_image_with_patches(torch.randn(1, 3, 224, 224))
    assert out["patch_tokens"].shape == (1, tokens, 768)
    assert out["patch_embeds"].shape == (1, tokens, 512)
    assert out["embeds"].shape == (1, 512)
    assert bb.grid_size ** 2 == tokens


def test_patch_path_matches_encode_image(tiny_backbone):
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a = tiny_backbone.encode_image(x)
        b = tiny_backbone.encode_image_with_patches(x)["embeds"]
    assert (a - b).abs().max() < 1e-5


def test_token_hook_appends_and_drops(tiny_backbone):
    x = torch.randn(2, 3, 224, 224)
    calls = []

    def hook(i, tokens):
        calls.append((i, tokens.shape))
        return torch.ones(tokens.shape[0], 2, tokens.shape[2])

    with torch.no_grad():
        plain = tiny_backbone.visual_tokens(x)
        hooked = tiny_backbone.visual_tokens(x, token_hook=hook)
        none = tiny_backbone.visual_tokens(x, token_hook=lambda i, t: None)
    assert [c[0] for c in calls] == list(range(len(tiny_backbone.visual_blocks)))
    assert all(c[1][1] == 50 for c in calls)  # extra tokens never leak into the next block
    assert hooked.shape == plain.shape
    assert (hooked - plain).abs().max() > 1e-4
    assert torch.equal(none, plain)


def test_missing_weights_fail_fast(tmp_path):
    t = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match="never downloads"):
        build_backbone("ViT-B-32", "openai", cache_dir=str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="not found"):
        build_backbone("ovfer-tiny-b32", str(tmp_path / "nope.pt"))
    assert time.perf_counter() - t < 2.0 + 4.0  # model construction is not part of the failure


def test_missing_weights_message_under_two_seconds(tmp_path):
    from ovfer.backbones.weights import resolve_pretrained

    t = time.perf_counter()
    with pytest.raises(WeightsNotFoundError):
        resolve_pretrained("ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path))
    assert time.perf_counter() - t < 2.0


def test_wrong_architecture_is_refused(tmp_path, tiny_backbone_112):
    path = tmp_path / "w.pt"
    torch.save({k: v for k, v in tiny_backbone_112.clip.state_dict().items() if k != "attn_mask"}, path)
    with pytest.raises(WeightsMismatchError, match="does not fit"):
        build_backbone("ovfer-tiny-b32", str(path))


def test_pickled_object_weights_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": object.__new__(type("Evil", (), {}))} if False else {"f": print}, path)
    with pytest.raises(WeightsMismatchError):
        build_backbone("ovfer-tiny-b32", str(path))


def test_freeze_groups_and_unknown_group(tiny_backbone_112):
    bb = tiny_backbone_112
    bb.freeze("all")
    assert not any(p.requires_grad for p in bb.parameters())
    bb.freeze(["visual_blocks"], frozen=False)
    trainable = {n for n, p in bb.clip.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("visual.transformer.") for n in trainable)
    with pytest.raises(ValueError, match="valid"):
        bb.freeze(["nope"])
    bb.freeze("all")
    groups = bb.named_groups()
    assert sum(len(v) for v in groups.values()) == len(list(bb.clip.parameters()))
    assert not groups.get("other")


def test_other_input_size_resizes_pos_embed(tmp_path, tiny_backbone):
    path = tmp_path / "w.pt"
    torch.save({k: v for k, v in tiny_backbone.clip.state_dict().items() if k != "attn_mask"}, path)
    bb = build_backbone("ovfer-tiny-b32", str(path), image_size=160)
    with torch.no_grad():
        out = bb.encode_image_with_patches(torch.randn(1, 3, 160, 160))
    assert out["patch_tokens"].shape[1] == 25


def test_bf16_inference_uses_a_bf16_copy_that_follows_the_weights():
    """inference_mode + bf16 autocast: bf16 tower copy (close to fp32), rebuilt when weights change."""
    torch.manual_seed(0)
    bb = build_backbone("ovfer-tiny-b32", None).eval()
    x = torch.rand(3, 3, bb.image_size, bb.image_size)
    with torch.inference_mode():
        ref = bb.encode_image(x)
        assert ref.dtype == torch.float32 and not bb._lowp  # fp32: no copy
        with torch.autocast("cpu", torch.bfloat16):
            low = bb.encode_image(x)
            tokens = bb.encode_image_with_patches(x)["embeds"]
        first = bb._lowp["module"]
    assert low.dtype == torch.bfloat16 and next(first.parameters()).dtype == torch.bfloat16
    assert torch.nn.functional.cosine_similarity(low.float(), ref).min() > 0.99
    assert torch.nn.functional.cosine_similarity(tokens.float(), ref).min() > 0.99
    assert all(p.dtype == torch.float32 for p in bb.parameters())  # master weights untouched
    with torch.no_grad():
        bb.clip.visual.proj.mul_(-1)  # an in-place update (as an optimizer step) must rebuild the copy
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        flipped = bb.encode_image(x)
    assert bb._lowp["module"] is not first
    assert torch.nn.functional.cosine_similarity(flipped.float(), -ref).min() > 0.99
    with torch.autocast("cpu", torch.bfloat16):  # training-style autocast (grad mode): fp32 weights
        out = bb.encode_image(x.requires_grad_())
    assert out.requires_grad
