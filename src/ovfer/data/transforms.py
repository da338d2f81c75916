"""Clip-consistent spatial transforms and normalisation presets (SPEC §2.4, METHODS §1–§4).

A clip is a tensor ``(T, 3, H, W)``, float in [0, 1] (uint8 is converted). Random
transforms draw their parameters **once per clip** from a ``numpy.random.Generator`` (the
dataset derives it per sample) and apply them to every frame, so a crop or flip never
differs between frames; only colour jitter can be drawn per frame, as DK-CLIP does.
Each operation is a pure function plus a small callable ``op(clip, rng) -> clip``;
presets by name (``hesp_train``, ``dk_clip_test``, ...) compose them for an output size S.
Normalisation is separate (:func:`normalize`): the dataset never normalises, the method
does (HESP adds its pixel-space patch before normalising, SPEC §7.3).
"""
from __future__ import annotations

import math
from typing import Callable, Literal, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

from ovfer.registry import Registry

Interp = Literal["bilinear", "bicubic", "nearest"]
NormPreset = Literal["none", "clip", "imagenet"]
Box = tuple[int, int, int, int]  # top, left, height, width

_INTERP = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
           "nearest": InterpolationMode.NEAREST}

#: Per-channel (mean, std) of each normalisation preset.
NORM_STATS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


# --------------------------------------------------------------------------- pure functions


def to_float_clip(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Decoder frames -> float32 clip (T, 3, H, W) in [0, 1].

    Accepts (T, H, W, 3) uint8 arrays or tensors (channels last, as ``ovfer.data.video``
    returns them) and (T, 3, H, W) tensors; a shape that is (T, 3, ...) is read as
    channels first.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if x.ndim == 4 and x.shape[1] != 3 and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a clip (T, 3, H, W) or frames (T, H, W, 3), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


def _hw(size: int | Sequence[int]) -> list[int]:
    return [int(size), int(size)] if isinstance(size, int) else [int(size[0]), int(size[1])]


def resize(clip: torch.Tensor, size: int | Sequence[int], interpolation: Interp = "bilinear") -> torch.Tensor:
    """Resize to exactly ``size`` (an int means S×S, aspect ratio not kept)."""
    out = F.resize(clip, _hw(size), interpolation=_INTERP[interpolation], antialias=True)
    return out.clamp_(0.0, 1.0) if interpolation == "bicubic" else out


def resize_shorter(clip: torch.Tensor, size: int, interpolation: Interp = "bilinear") -> torch.Tensor:
    """Resize so the shorter side is ``size``, keeping the aspect ratio."""
    h, w = clip.shape[-2:]
    if h <= w:
        hw = [size, max(1, round(w * size / h))]
    else:
        hw = [max(1, round(h * size / w)), size]
    return resize(clip, hw, interpolation)


def center_crop(clip: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    return F.center_crop(clip, _hw(size))


def resized_crop(clip: torch.Tensor, box: Box, size: int | Sequence[int], interpolation: Interp = "bilinear") -> torch.Tensor:
    """Crop ``box`` (top, left, h, w) from every frame and resize it to ``size``."""
    top, left, h, w = box
    out = F.resized_crop(clip, top, left, h, w, _hw(size), interpolation=_INTERP[interpolation], antialias=True)
    return out.clamp_(0.0, 1.0) if interpolation == "bicubic" else out


def hflip(clip: torch.Tensor) -> torch.Tensor:
    return F.horizontal_flip(clip)


def rotate(clip: torch.Tensor, angle: float, interpolation: Interp = "bilinear") -> torch.Tensor:
    """Rotate every frame by ``angle`` degrees (counter-clockwise) about the centre; corners filled black."""
    return F.rotate(clip, float(angle), interpolation=_INTERP[interpolation], fill=0.0)


def adjust_brightness(clip: torch.Tensor, factor: float) -> torch.Tensor:
    return F.adjust_brightness(clip, float(factor))


def color_jitter(
    img: torch.Tensor, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0, hue: float = 0.0,
    order: Sequence[int] = (0, 1, 2, 3),
) -> torch.Tensor:
    """Apply brightness/contrast/saturation factors and a hue shift in ``order`` (0..3 = b, c, s, h)."""
    ops: list[Callable[[torch.Tensor], torch.Tensor]] = [
        lambda x: F.adjust_brightness(x, brightness),
        lambda x: F.adjust_contrast(x, contrast),
        lambda x: F.adjust_saturation(x, saturation),
        lambda x: F.adjust_hue(x, hue),
    ]
    for i in order:
        img = ops[i](img)
    return img


def grayscale(clip: torch.Tensor) -> torch.Tensor:
    """Luma grayscale, kept as 3 channels."""
    return F.rgb_to_grayscale(clip, num_output_channels=3)


def normalize(x: torch.Tensor, preset: NormPreset) -> torch.Tensor:
    """Per-channel mean/std normalisation of ``(..., 3, H, W)``; ``none`` returns ``x`` unchanged.

    Applied by methods, never by the dataset (SPEC §2.4): DFER-CLIP uses none, DK-CLIP
    ImageNet, EmoCLIP and HESP CLIP statistics (METHODS §1–§3).
    """
    if preset == "none":
        return x
    if preset not in NORM_STATS:
        raise ValueError(f"unknown normalisation {preset!r}; valid: none, {', '.join(NORM_STATS)}")
    mean, std = NORM_STATS[preset]
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


# --------------------------------------------------------------------------- random parameters


def rrc_box(
    h: int, w: int, rng: np.random.Generator, scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10, swap_prob: float = 0.0,
    fallback: Literal["center", "random_square"] = "center",
) -> Box:
    """Random-resized-crop box: area fraction ~ U(scale), aspect w/h ~ U(ratio) (SPEC §2.4).

    The aspect is uniform as SPEC and METHODS §1 state (torchvision draws it log-uniform).

    ``swap_prob``: swap the crop's w and h with this probability (DFER-CLIP, METHODS §1).
    After ``tries`` misses: ``center`` takes the largest centred crop whose aspect is
    inside ``ratio``; ``random_square`` a random min(h, w) square (= DFER-CLIP's "shorter
    side to S, random S crop").
    """
    area = h * w
    for _ in range(tries):
        target = area * rng.uniform(scale[0], scale[1])
        ar = rng.uniform(ratio[0], ratio[1])
        cw = int(round(math.sqrt(target * ar)))
        ch = int(round(math.sqrt(target / ar)))
        if swap_prob > 0 and rng.random() < swap_prob:
            cw, ch = ch, cw
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    if fallback == "random_square":
        side = min(h, w)
        return int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side, side
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        cw, ch = int(round(h * ratio[1])), h
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def multiscale_box(
    h: int, w: int, rng: np.random.Generator, scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
    max_distort: int = 1,
) -> Box:
    """DK-CLIP's fixed-position multi-scale crop (METHODS §2 "Spatial").

    Width and height are each the shorter side × one of ``scales`` (scale indices at most
    ``max_distort`` apart); the crop sits at one of 5 fixed positions: 4 corners or centre.
    """
    base = min(h, w)
    sizes = [max(1, int(base * s)) for s in scales]
    pairs = [(i, j) for i in range(len(sizes)) for j in range(len(sizes)) if abs(i - j) <= max_distort]
    i, j = pairs[int(rng.integers(0, len(pairs)))]
    cw, ch = sizes[i], sizes[j]
    dy, dx = h - ch, w - cw
    positions = [(0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)]
    top, left = positions[int(rng.integers(0, len(positions)))]
    return top, left, ch, cw


# --------------------------------------------------------------------------- callable wrappers


class ClipTransform:
    """Base of the clip ops: ``op(clip, rng) -> clip``; reads and writes a (T, 3, H, W) float clip."""

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    # Without a generator the draw is unseeded; the dataset always passes one.
    return rng if rng is not None else np.random.default_rng()


class Compose(ClipTransform):
    def __init__(self, ops: Sequence[ClipTransform]) -> None:
        self.ops = list(ops)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = _rng(rng)
        for op in self.ops:
            clip = op(clip, rng)
        return clip


class ToFloat(ClipTransform):
    def __call__(self, clip, rng=None):
        return to_float_clip(clip)


class Resize(ClipTransform):
    """Square (int) or (h, w) resize."""

    def __init__(self, size: int | Sequence[int], interpolation: Interp = "bilinear") -> None:
        self.size, self.interpolation = size, interpolation

    def __call__(self, clip, rng=None):
        return resize(clip, self.size, self.interpolation)


class ResizeShorter(ClipTransform):
    def __init__(self, size: int, interpolation: Interp = "bilinear") -> None:
        self.size, self.interpolation = size, interpolation

    def __call__(self, clip, rng=None):
        return resize_shorter(clip, self.size, self.interpolation)


class CenterCrop(ClipTransform):
    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = size

    def __call__(self, clip, rng=None):
        return center_crop(clip, self.size)


class RandomCrop(ClipTransform):
    """One uniformly placed size×size window per clip (no resize); the clip must be at least that large."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, clip, rng=None):
        h, w = clip.shape[-2:]
        if h < self.size or w < self.size:
            raise ValueError(f"cannot crop {self.size}x{self.size} from a {h}x{w} clip")
        r = _rng(rng)
        top, left = int(r.integers(0, h - self.size + 1)), int(r.integers(0, w - self.size + 1))
        return clip[..., top:top + self.size, left:left + self.size]


class RandomResizedCrop(ClipTransform):
    """One :func:`rrc_box` per clip, resized to ``size`` for every frame."""

    def __init__(self, size: int, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 tries: int = 10, swap_prob: float = 0.0, fallback: Literal["center", "random_square"] = "center",
                 interpolation: Interp = "bilinear") -> None:
        self.size, self.scale, self.ratio, self.tries = size, scale, ratio, tries
        self.swap_prob, self.fallback, self.interpolation = swap_prob, fallback, interpolation

    def __call__(self, clip, rng=None):
        h, w = clip.shape[-2:]
        box = rrc_box(h, w, _rng(rng), self.scale, self.ratio, self.tries, self.swap_prob, self.fallback)
        return resized_crop(clip, box, self.size, self.interpolation)


class MultiScaleCrop(ClipTransform):
    """One :func:`multiscale_box` per clip, resized to size×size."""

    def __init__(self, size: int, scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66), max_distort: int = 1) -> None:
        self.size, self.scales, self.max_distort = size, tuple(scales), max_distort

    def __call__(self, clip, rng=None):
        h, w = clip.shape[-2:]
        return resized_crop(clip, multiscale_box(h, w, _rng(rng), self.scales, self.max_distort), self.size)


class RandomHorizontalFlip(ClipTransform):
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, clip, rng=None):
        return hflip(clip) if _rng(rng).random() < self.p else clip


class RandomRotation(ClipTransform):
    """Angle ~ U[-degrees, degrees], one per clip."""

    def __init__(self, degrees: float, interpolation: Interp = "bilinear") -> None:
        self.degrees, self.interpolation = degrees, interpolation

    def __call__(self, clip, rng=None):
        return rotate(clip, _rng(rng).uniform(-self.degrees, self.degrees), self.interpolation)


class RandomBrightness(ClipTransform):
    """Brightness factor ~ U[lo, hi], one per clip (DFER-CLIP: [0.5, 1.5])."""

    def __init__(self, lo: float = 0.5, hi: float = 1.5) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, clip, rng=None):
        return adjust_brightness(clip, _rng(rng).uniform(self.lo, self.hi))


class ColorJitter(ClipTransform):
    """With probability ``p`` (one draw per clip) jitter colours; factors and the order of the
    four ops are drawn per frame (``per_frame=True``, DK-CLIP) or once per clip."""

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.2, hue: float = 0.1,
                 p: float = 0.8, per_frame: bool = True) -> None:
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.p, self.per_frame = p, per_frame

    def _draw(self, rng: np.random.Generator) -> dict:
        return dict(
            brightness=rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness),
            contrast=rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast),
            saturation=rng.uniform(max(0.0, 1 - self.saturation), 1 + self.saturation),
            hue=rng.uniform(-self.hue, self.hue),
            order=tuple(int(i) for i in rng.permutation(4)),
        )

    def __call__(self, clip, rng=None):
        rng = _rng(rng)
        if rng.random() >= self.p:
            return clip
        if not self.per_frame:
            return color_jitter(clip, **self._draw(rng))
        return torch.stack([color_jitter(frame, **self._draw(rng)) for frame in clip])


class RandomGrayscale(ClipTransform):
    def __init__(self, p: float = 0.2) -> None:
        self.p = p

    def __call__(self, clip, rng=None):
        return grayscale(clip) if _rng(rng).random() < self.p else clip


# --------------------------------------------------------------------------- presets


#: name -> builder(size) -> ClipTransform.
TRANSFORMS: Registry[Callable[[int], ClipTransform]] = Registry("transform preset")


@TRANSFORMS.register("hesp_train")
def hesp_train(size: int = 224) -> ClipTransform:
    """SPEC §2.4: flip p 0.5 -> resize S×S -> random-resized crop (area U(0.08,1), aspect U(3/4,4/3)) to S."""
    return Compose([ToFloat(), RandomHorizontalFlip(0.5), Resize(size), RandomResizedCrop(size)])


@TRANSFORMS.register("hesp_test")
def hesp_test(size: int = 224) -> ClipTransform:
    """SPEC §2.4: resize S×S."""
    return Compose([ToFloat(), Resize(size)])


def _dfer_clip_ops(size: int, brightness: bool, rotation: bool) -> ClipTransform:
    """DFER-CLIP's training chain with the code's parameters; the two colour/geometry steps optional."""
    ops: list[ClipTransform] = [ToFloat()]
    if brightness:
        ops.append(RandomBrightness(0.5, 1.5))
    if rotation:
        ops.append(RandomRotation(4.0))
    ops += [RandomResizedCrop(size, swap_prob=0.5, fallback="random_square"), RandomHorizontalFlip(0.5)]
    return Compose(ops)


@TRANSFORMS.register("dfer_clip_train")
def dfer_clip_train(size: int = 224) -> ClipTransform:
    """METHODS §1: brightness U[0.5,1.5] -> rotation U[-4°,4°] -> RRC (w/h swap p 0.5, 10 tries,
    random-square fallback) -> flip p 0.5; all four on every dataset (ovfer default)."""
    return _dfer_clip_ops(size, brightness=True, rotation=True)


@TRANSFORMS.register("dfer_clip_train_dfew")
def dfer_clip_train_dfew(size: int = 224) -> ClipTransform:
    """Official DFER-CLIP code on DFEW (``dfer_clip.aug=code_per_dataset``): brightness -> RRC -> flip."""
    return _dfer_clip_ops(size, brightness=True, rotation=False)


@TRANSFORMS.register("dfer_clip_train_ferv39k")
def dfer_clip_train_ferv39k(size: int = 224) -> ClipTransform:
    """Official DFER-CLIP code on FERV39k: rotation U[-4°,4°] -> RRC -> flip."""
    return _dfer_clip_ops(size, brightness=False, rotation=True)


@TRANSFORMS.register("dfer_clip_train_mafw")
def dfer_clip_train_mafw(size: int = 224) -> ClipTransform:
    """Official DFER-CLIP code on MAFW: RRC -> flip only."""
    return _dfer_clip_ops(size, brightness=False, rotation=False)


@TRANSFORMS.register("dfer_clip_test")
def dfer_clip_test(size: int = 224) -> ClipTransform:
    """METHODS §1: resize directly to S×S."""
    return Compose([ToFloat(), Resize(size)])


def _dk_short(size: int) -> int:
    return int(round(256 * size / 224))  # 256 at S = 224, scaled for smaller CLIPs


@TRANSFORMS.register("dk_clip_train")
def dk_clip_train(size: int = 224) -> ClipTransform:
    """METHODS §2: shorter side 256 -> multi-scale crop -> S×S -> flip (clip) -> p 0.8 colour
    jitter (per frame) -> grayscale p 0.2 (clip). ImageNet normalisation is the method's."""
    return Compose([ToFloat(), ResizeShorter(_dk_short(size)), MultiScaleCrop(size), RandomHorizontalFlip(0.5),
                    ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8, per_frame=True), RandomGrayscale(0.2)])


@TRANSFORMS.register("dk_clip_test")
def dk_clip_test(size: int = 224) -> ClipTransform:
    """METHODS §2: shorter side 256 -> centre crop S (1 clip × 1 crop)."""
    return Compose([ToFloat(), ResizeShorter(_dk_short(size)), CenterCrop(size)])


@TRANSFORMS.register("emoclip_train")
def emoclip_train(size: int = 224) -> ClipTransform:
    """METHODS §3: shorter side S (bicubic) -> centre crop S -> rotation U[-6°,6°] -> flip p 0.5.

    The official code normalises first; here normalisation is the method's last step, so
    rotated-in corners are black rather than the mean colour (a negligible difference).
    """
    return Compose([ToFloat(), ResizeShorter(size, "bicubic"), CenterCrop(size), RandomRotation(6.0),
                    RandomHorizontalFlip(0.5)])


@TRANSFORMS.register("emoclip_train_random_crop")
def emoclip_train_random_crop(size: int = 224) -> ClipTransform:
    """``emoclip.random_crop``: shorter side S (bicubic) -> a random S×S crop -> rotation -> flip.

    One reading of the paper's "random centre crop" (METHODS §3); on square face crops the
    random window is the whole frame, so it differs from ``emoclip_train`` only on
    non-square input.
    """
    return Compose([ToFloat(), ResizeShorter(size, "bicubic"), RandomCrop(size), RandomRotation(6.0),
                    RandomHorizontalFlip(0.5)])


@TRANSFORMS.register("emoclip_test")
def emoclip_test(size: int = 224) -> ClipTransform:
    """METHODS §3: shorter side S (bicubic) -> centre crop S."""
    return Compose([ToFloat(), ResizeShorter(size, "bicubic"), CenterCrop(size)])


def build_transform(name: str, size: int = 224) -> ClipTransform:
    """A preset by name for output size S (224 default; 112 for the small CLIPs)."""
    return TRANSFORMS.get(name)(size)


def list_transform_presets() -> list[str]:
    return TRANSFORMS.names()
