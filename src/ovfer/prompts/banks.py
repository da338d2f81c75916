"""Fixed text templates and class text features (texts keyed by class name, SPEC §2.1)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: Baseline 1's template (SPEC §7.6).
PHOTO_TEMPLATE = "a photo of a {} face."
#: A small ensemble for the zero-shot option (our own wording).
ENSEMBLE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {} face.",
    "a face showing {}.",
    "a video of a person feeling {}.",
    "a close-up of a face expressing {}.",
    "an expression of {}.",
)
#: HESP's fixed negative prompt (SPEC §7.2).
NEGATIVE_TEMPLATE = "This video is not {}."


def display_name(name: str) -> str:
    """Compound labels ``a_b`` read as 'a and b' in prompts."""
    return " and ".join(name.split("_"))


@torch.no_grad()
def class_text_features(backbone, names: Sequence[str], templates: Sequence[str]) -> Tensor:
    """(K, D) L2-normalised features: per class, the normalised mean over templates."""
    feats = []
    for name in names:
        texts = [t.format(display_name(name)) for t in templates]
        f = backbone.encode_text(backbone.tokenize(texts), normalize=True).mean(dim=0)
        feats.append(F.normalize(f, dim=-1))
    return torch.stack(feats)
