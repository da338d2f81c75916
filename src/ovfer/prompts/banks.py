"""Texts keyed by class name: fixed templates, and the text banks of DFER-CLIP (facial-cue
descriptors), DK-CLIP (AU prompts generated from FACS facts) and EmoCLIP (descriptions and a
neutral-caption pool), written by ovfer; a user JSON (``--text-bank``) supplies published texts.
Never keyed by position: the official class orders differ (METHODS §0).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

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


# -- text banks keyed by class name (METHODS §4 "Text banks") ------------------------------------

TextKind = Literal["descriptor", "au_prompt", "au_prompt_and", "description"]
_BANK_FILES = {"descriptor": "dfer_clip_descriptors.json", "description": "emoclip_descriptions.json"}


class TextBankError(ValueError):
    """A class has no text in the bank, or a bank file is malformed; the message names it."""


@dataclass(frozen=True)
class TextBank:
    """Texts per canonical class name (one or several each) and a neutral-caption pool."""

    name: str
    descriptions: Mapping[str, tuple[str, ...]]
    neutral_captions: tuple[str, ...] = ()

    def texts(self, name: str) -> tuple[str, ...]:
        """The texts of one class; a missing class is an error that names it and the bank."""
        key = name.lower()
        if key not in self.descriptions:
            raise TextBankError(f"class '{name}' has no text in the {self.name} bank "
                                f"(it has: {', '.join(sorted(self.descriptions))})")
        return self.descriptions[key]

    def text(self, name: str) -> str:
        """The first text of a class (methods that use one text per class)."""
        return self.texts(name)[0]

    def check(self, names: Sequence[str], allow_compound: bool = False) -> None:
        """Raise once, naming every class of ``names`` without a text (compound parts if allowed)."""
        missing = []
        for n in names:
            parts = n.split("_") if allow_compound and n.lower() not in self.descriptions else [n]
            missing += [p for p in parts if p.lower() not in self.descriptions]
        if missing:
            raise TextBankError(f"class(es) {sorted(set(missing))} have no text in the {self.name} bank "
                                f"(it has: {', '.join(sorted(self.descriptions))})")


def _resource(name: str) -> dict[str, Any]:
    with resources.files("ovfer").joinpath("resources", "text_banks", name).open("r", encoding="utf-8") as fh:
        return json.load(fh)


def _as_texts(where: str, cls: str, value: Any) -> tuple[str, ...]:
    texts = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise TextBankError(f"{where}: class '{cls}' needs a non-empty text or list of texts, got {value!r}")
    return texts


def _from_json(data: Mapping[str, Any], name: str, where: str) -> TextBank:
    if not isinstance(data, Mapping) or not isinstance(data.get("descriptions"), Mapping):
        raise TextBankError(f"{where}: expected {{\"descriptions\": {{\"<class>\": \"<text>\" | [...]}}, "
                            "\"neutral_captions\": [...]}")
    desc = {str(k).lower(): _as_texts(where, k, v) for k, v in data["descriptions"].items()}
    pool = data.get("neutral_captions", [])
    if not isinstance(pool, list) or not all(isinstance(t, str) for t in pool):
        raise TextBankError(f"{where}: neutral_captions must be a list of strings")
    return TextBank(name, desc, tuple(pool))


def au_prompt(name: str, alternatives: bool = True) -> str:
    """DK-CLIP's AU-enriched prompt from the FACS facts: "<class> with <AU> and <AU or AU> ..."."""
    facs = _resource("facs.json")
    table = facs["prototypes" if alternatives else "all_and_prototypes"]
    if name not in table:
        return name
    groups = [" or ".join(facs["au_names"][au] for au in group) for group in table[name]]
    return f"{name} with " + " and ".join(groups)


def load_text_bank(kind: TextKind, path: str | Path | None = None) -> TextBank:
    """ovfer's bank of ``kind``, or the user's JSON (``--text-bank``) in its place.

    A user file replaces ovfer's descriptions entirely (so published texts are used as
    given); its neutral pool falls back to ovfer's when the file has none.
    """
    if kind in ("au_prompt", "au_prompt_and"):
        facs = _resource("facs.json")
        names = list(facs["prototypes"]) + list(facs["no_prototype"])
        own = TextBank(kind, {n: (au_prompt(n, kind == "au_prompt"),) for n in names})
    elif kind in _BANK_FILES:
        own = _from_json(_resource(_BANK_FILES[kind]), kind, _BANK_FILES[kind])
    else:
        raise TextBankError(f"unknown text bank kind '{kind}'; valid: descriptor, au_prompt, au_prompt_and, "
                            "description")
    if path is None:
        return own
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"text bank file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TextBankError(f"{p}: not valid JSON ({e})") from e
    user = _from_json(data, f"{kind} from {p.name}", str(p))
    if not user.neutral_captions and own.neutral_captions:
        log.info("%s has no neutral_captions; using ovfer's pool", p)
        user = TextBank(user.name, user.descriptions, own.neutral_captions)
    return user


def compound_parts(name: str) -> list[str]:
    """'anger_disgust' -> ['anger', 'disgust'] (MAFW compound labels join parts with '_')."""
    return name.split("_")


def class_embeddings(encode: Callable[[Sequence[str]], Tensor], names: Sequence[str], bank: TextBank,
                     compound: Literal["average", "concat"] = "average") -> Tensor:
    """(K, D) L2-normalised class embeddings from a bank; ``encode(texts)`` returns raw (N, D).

    A class with several texts gets the mean of their raw embeddings. A compound class the
    bank does not name itself is built from its parts: ``average`` = mean of the parts' raw
    (pre-normalisation) embeddings, EmoCLIP Eq. 2; ``concat`` = one prompt of the parts'
    texts joined (truncated by the tokenizer), EmoCLIP's baseline.
    """
    bank.check(names, allow_compound=True)
    out = []
    for n in names:
        if n.lower() in bank.descriptions or len(compound_parts(n)) == 1:
            out.append(encode(list(bank.texts(n))).mean(dim=0))
        elif compound == "concat":
            out.append(encode([" ".join(bank.text(p) for p in compound_parts(n))])[0])
        else:
            out.append(torch.stack([encode(list(bank.texts(p))).mean(dim=0) for p in compound_parts(n)]).mean(dim=0))
    return F.normalize(torch.stack(out), dim=-1)
