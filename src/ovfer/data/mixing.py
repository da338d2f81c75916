"""Batch Mixup / FMix on video clips with soft targets (METHODS §2 "Mixing", §4 "Transforms").

One call mixes a whole batch with one random permutation π and one λ:

* **Mixup** (Zhang et al.): λ ~ Beta(α, α), x ← λx + (1−λ)x_π;
* **FMix** (Harris et al.): λ ~ Beta(α, α), a binary low-frequency Fourier mask m whose
  top ⌈λHW⌉ or ⌊λHW⌋ pixels (p 0.5 each) are 1, x ← m⊙x + (1−m)⊙x_π;

and in both cases the soft targets become λỹ + (1−λ)ỹ_π. FMix is chosen with probability
``fmix_prob``, otherwise Mixup (DK-CLIP: 0.5, α 0.8 for Mixup and 1 for FMix, decay power 3).
The FMix mask is one (H, W) image shared by every sample, frame and channel.

Both mixes are affine with weights summing to 1 per pixel, so mixing [0, 1] pixels and then
normalising with any per-channel mean/std equals mixing normalised tensors: methods may mix
before their own normalisation step.

All randomness comes from torch's RNG (the global one, seeded by the engine, or a given
``torch.Generator``), so a batch mixes identically under the same ``torch.manual_seed``.
The Beta draws go through a numpy generator seeded by one torch draw, because
``torch.distributions`` cannot take a generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

MixMode = Literal["mixup", "fmix"]


@dataclass
class MixInfo:
    """What one ``mix_batch`` call did: mode, λ, the permutation (B,) and the FMix mask (H, W)."""

    mode: MixMode
    lam: float
    perm: Tensor
    mask: Tensor | None = None


def sample_beta(alpha: float, beta: float, generator: torch.Generator | None = None) -> float:
    """One draw of Beta(alpha, beta) from torch's RNG (via a numpy generator seeded by one torch draw)."""
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta parameters must be > 0, got ({alpha}, {beta})")
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, beta))


def fourier_frequencies(h: int, w: int) -> Tensor:
    """Radial frequency |f| of each bin of an (h, w) real FFT: shape (h, w // 2 + 1)."""
    fy = torch.fft.fftfreq(h).view(-1, 1)
    fx = torch.fft.rfftfreq(w).view(1, -1)
    return torch.sqrt(fy * fy + fx * fx)


def low_frequency_image(h: int, w: int, decay_power: float = 3.0,
                        generator: torch.Generator | None = None) -> Tensor:
    """A random grey image (h, w) with power concentrated in low frequencies (FMix).

    Gaussian complex spectrum, amplitude ∝ 1 / max(|f|, 1/max(h, w))^decay_power, then an
    inverse real FFT. Only the ranking of its pixels matters to :func:`fmix_mask`.
    """
    freqs = fourier_frequencies(h, w)
    scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)).pow(decay_power)  # (h, w//2+1)
    spectrum = torch.randn(2, *freqs.shape, generator=generator)  # real and imaginary parts
    spectrum = torch.complex(spectrum[0] * scale, spectrum[1] * scale)
    return torch.fft.irfft2(spectrum, s=(h, w))


def binarise(image: Tensor, lam: float, generator: torch.Generator | None = None) -> Tensor:
    """1 on the top ⌈λN⌉ or ⌊λN⌋ pixels of ``image`` (p 0.5 each), 0 elsewhere; same shape, float."""
    n = image.numel()
    exact = lam * n
    up = bool(torch.rand((), generator=generator) < 0.5)
    count = min(n, max(0, math.ceil(exact) if up else math.floor(exact)))
    order = torch.argsort(image.flatten(), descending=True, stable=True)
    mask = torch.zeros(n, dtype=torch.float32)
    mask[order[:count]] = 1.0
    return mask.view(image.shape)


def fmix_mask(lam: float, size: tuple[int, int], decay_power: float = 3.0,
              generator: torch.Generator | None = None) -> Tensor:
    """Binary FMix mask (H, W) covering ⌈λHW⌉ or ⌊λHW⌋ pixels."""
    return binarise(low_frequency_image(size[0], size[1], decay_power, generator), lam, generator)


def mix_batch(video: Tensor, targets: Tensor, generator: torch.Generator | None = None,
              fmix_prob: float = 0.5, mixup_alpha: float = 0.8, fmix_alpha: float = 1.0,
              decay_power: float = 3.0) -> tuple[Tensor, Tensor, MixInfo]:
    """Mix a batch: video (B, ..., H, W), soft targets (B, K) -> mixed video, mixed targets, info.

    One permutation π and one λ per call; FMix with probability ``fmix_prob``, else Mixup.
    The targets are mixed with the drawn λ (FMix's mask covers λHW up to rounding).
    """
    if video.shape[0] != targets.shape[0]:
        raise ValueError(f"video batch {video.shape[0]} != targets batch {targets.shape[0]}")
    if not 0.0 <= fmix_prob <= 1.0:
        raise ValueError(f"fmix_prob must lie in [0, 1], got {fmix_prob}")
    b = video.shape[0]
    use_fmix = bool(torch.rand((), generator=generator) < fmix_prob)
    perm = torch.randperm(b, generator=generator).to(video.device)
    if use_fmix:
        lam = sample_beta(fmix_alpha, fmix_alpha, generator)
        mask = fmix_mask(lam, (video.shape[-2], video.shape[-1]), decay_power, generator)
        m = mask.to(device=video.device, dtype=video.dtype)  # (H, W), broadcast over (B, T, 3)
        mixed = m * video + (1.0 - m) * video[perm]
        info = MixInfo("fmix", lam, perm, mask)
    else:
        lam = sample_beta(mixup_alpha, mixup_alpha, generator)
        mixed = lam * video + (1.0 - lam) * video[perm]
        info = MixInfo("mixup", lam, perm)
    mixed_targets = lam * targets + (1.0 - lam) * targets[perm.to(targets.device)]
    return mixed, mixed_targets, info
