"""Architecture names apart from weight sources, and loading weights without a network.

Architectures are open_clip model configs (``ViT-B-32`` ...) plus ovfer's own small
configs in ``configs/`` (same key layout, random init in tests, SynthFER CLIP). Weights
are a separate ``pretrained`` string:

* ``None`` / ``"none"`` — random init;
* an open_clip tag (``"openai"``, ``"laion2b_s34b_b79k"``) — taken from the local cache
  only; a missing file fails at once with instructions (never a download or a hang);
* a path — an OpenAI-layout ``.pt`` (TorchScript archive or state dict), an open_clip
  ``.bin``/``.pt`` state dict, a ``.safetensors`` file, or an ovfer CLIP checkpoint.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).with_name("configs")

#: User-facing spellings -> open_clip config names.
ARCH_ALIASES = {
    "vit-b/32": "ViT-B-32", "vit-b-32": "ViT-B-32", "b32": "ViT-B-32",
    "vit-b/16": "ViT-B-16", "vit-b-16": "ViT-B-16", "b16": "ViT-B-16",
    "vit-l/14": "ViT-L-14", "vit-l-14": "ViT-L-14", "l14": "ViT-L-14",
}


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are not on this machine; the message says how to get them."""


class WeightsMismatchError(ValueError):
    """A weight file does not fit the requested architecture."""


_registered = False


def register_ovfer_configs() -> None:
    """Make ovfer's small architectures known to open_clip (idempotent)."""
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


def canonical_arch(name: str) -> str:
    """``ViT-B/32`` -> ``ViT-B-32``; unknown names raise with the valid list."""
    import open_clip

    register_ovfer_configs()
    arch = ARCH_ALIASES.get(name.lower(), name)
    if arch not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(arch, open_clip.list_models(), n=3)
        raise ValueError(f"unknown CLIP architecture '{name}'; close matches: {close}; "
                         f"ovfer small configs: {sorted(p.stem for p in CONFIG_DIR.glob('*.json'))}")
    return arch


def _cache_candidates(arch: str, tag: str, cache_dir: str | None) -> list[Path]:
    """Where open_clip would have put the file for (arch, tag), without asking the network."""
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag)
    out: list[Path] = []
    if cfg.get("file"):
        out.append(Path(cfg["file"]))
    url = cfg.get("url", "")
    if url:
        root = Path(cache_dir) if cache_dir else Path(os.path.expanduser("~/.cache/clip"))
        out.append(root / os.path.basename(url.split("?")[0]))
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub ships with open_clip
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
            names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            for fn in names:
                for cand in (fn, fn.replace(".bin", ".safetensors")):
                    hit = try_to_load_from_cache(repo, cand, cache_dir=cache_dir)
                    if isinstance(hit, str):
                        out.append(Path(hit))
    return out


def resolve_pretrained(arch: str, pretrained: str, cache_dir: str | None = None) -> Path:
    """Turn a tag or path into an existing local file, or raise ``WeightsNotFoundError``."""
    from open_clip.pretrained import is_pretrained_cfg, list_pretrained_tags_by_model

    path = Path(os.path.expanduser(pretrained))
    if path.suffix in {".pt", ".pth", ".bin", ".safetensors", ".ckpt"} or os.sep in pretrained:
        if not path.is_file():
            raise WeightsNotFoundError(
                f"CLIP weight file not found: {path}. Put the file there (e.g. OpenAI's "
                f"ViT-B-32.pt, or an open_clip/ovfer checkpoint) or pass backbone.pretrained=<path>.")
        return path
    if not is_pretrained_cfg(arch, pretrained):
        raise WeightsNotFoundError(
            f"'{pretrained}' is neither a file nor an open_clip tag for {arch}; "
            f"tags for {arch}: {list_pretrained_tags_by_model(arch)}")
    for cand in _cache_candidates(arch, pretrained, cache_dir):
        if cand.is_file():
            return cand
    raise WeightsNotFoundError(
        f"pretrained weights {arch}/{pretrained} are not in the local cache and ovfer never downloads "
        f"at run time. On a machine with internet run: python -c \"import open_clip; "
        f"open_clip.create_model('{arch}', pretrained='{pretrained}')\" and copy ~/.cache/clip or the "
        f"Hugging Face cache (~/.cache/huggingface/hub) here, or download the weight file yourself and "
        f"pass its path as backbone.pretrained=/path/to/file.pt")


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a state dict safely (``weights_only=True``, safetensors or a TorchScript archive).

    Returns (state dict in open_clip's CLIP key layout, metadata).
    """
    meta: dict[str, str] = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            sd = {k: fh.get_tensor(k) for k in fh.keys()}
        return normalize_keys(sd), meta
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:  # not a plain state dict: maybe OpenAI's TorchScript archive
        try:
            obj = torch.jit.load(str(path), map_location="cpu").state_dict()
        except Exception:
            raise WeightsMismatchError(
                f"cannot read {path} as a state dict (weights_only) or a TorchScript archive: {first}"
            ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        meta = {k: str(v) for k, v in obj.items() if isinstance(v, (str, int, float))}
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsMismatchError(f"{path} does not hold a tensor state dict")
    return normalize_keys(dict(obj)), meta


def normalize_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip ``module.`` prefixes and TorchScript extras; keep open_clip CLIP key names."""
    out = {}
    for k, v in sd.items():
        while k.startswith("module."):
            k = k[len("module."):]
        if k in {"input_resolution", "context_length", "vocab_size"}:
            continue
        out[k] = v.float() if v.is_floating_point() else v
    return out


def describe_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Architecture facts read off an OpenAI-layout state dict (for error messages)."""
    facts: dict[str, int] = {}
    if "visual.conv1.weight" in sd:
        w = sd["visual.conv1.weight"]
        facts["vision_width"], facts["patch_size"] = int(w.shape[0]), int(w.shape[-1])
        facts["vision_layers"] = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
        n = sd["visual.positional_embedding"].shape[0] - 1
        facts["image_size"] = int(round(n ** 0.5)) * facts["patch_size"]
    if "text_projection" in sd:
        facts["embed_dim"] = int(sd["text_projection"].shape[1])
    if "ln_final.weight" in sd:
        facts["text_width"] = int(sd["ln_final.weight"].shape[0])
    return facts
