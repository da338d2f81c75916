"""Text banks keyed by class name (METHODS §4): ovfer's texts, user JSON, compound averaging."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ovfer.data.labels import MAFW11
from ovfer.prompts.banks import TextBankError, au_prompt, class_embeddings, load_text_bank


@pytest.mark.parametrize("kind", ["descriptor", "au_prompt", "au_prompt_and", "description"])
def test_every_bank_covers_the_eleven_mafw_classes(kind):
    bank = load_text_bank(kind)
    bank.check(MAFW11)
    for name in MAFW11:
        assert all(t.strip() for t in bank.texts(name))


def test_descriptors_and_descriptions_do_not_name_the_class():
    for kind in ("descriptor", "description"):
        bank = load_text_bank(kind)
        for name in MAFW11:
            assert name not in bank.text(name).lower(), (kind, name)
    assert len(load_text_bank("description").neutral_captions) >= 2


def test_au_prompts_follow_the_facs_facts():
    assert au_prompt("anger") == "anger with brow lowerer and lid tightener and chin raiser and lip pressor"
    assert au_prompt("fear") == "fear with brow raiser or brow lowerer and upper lid raiser and lip stretcher or lips part"
    assert au_prompt("happiness", alternatives=False) == "happiness with cheek raiser and lip corner puller and lips part"
    assert au_prompt("contempt") == "contempt" and au_prompt("neutral") == "neutral"


def test_user_file_replaces_texts_and_a_missing_class_is_named(tmp_path):
    f = tmp_path / "bank.json"
    f.write_text(json.dumps({"descriptions": {"Anger": "furrowed brows", "fear": ["wide eyes", "raised brows"]}}))
    bank = load_text_bank("description", f)
    assert bank.texts("anger") == ("furrowed brows",) and bank.texts("fear") == ("wide eyes", "raised brows")
    assert bank.neutral_captions == load_text_bank("description").neutral_captions  # fallback pool
    with pytest.raises(TextBankError, match="'happiness'"):
        bank.texts("happiness")
    with pytest.raises(TextBankError, match=r"\['sadness'\]"):
        bank.check(["anger", "sadness"])
    f.write_text(json.dumps({"descriptions": {"anger": ""}}))
    with pytest.raises(TextBankError, match="non-empty"):
        load_text_bank("descriptor", f)
    with pytest.raises(TextBankError, match="unknown text bank kind"):
        load_text_bank("captions")


def test_compound_classes_average_raw_embeddings_before_normalising():
    raw = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([0.0, 1.0])}
    bank = load_text_bank("descriptor")
    bank = type(bank)("t", {"anger": ("a",), "fear": ("b",)})

    def encode(texts):
        return torch.stack([raw[t] for t in texts])

    out = class_embeddings(encode, ["anger", "fear", "anger_fear"], bank)
    torch.testing.assert_close(out[2], F.normalize(torch.tensor([1.5, 0.5]), dim=0))
    assert not torch.allclose(out[2], F.normalize(torch.tensor([0.5, 0.5]), dim=0))
    concat = class_embeddings(lambda ts: torch.stack([torch.tensor([float(len(t)), 1.0]) for t in ts]),
                              ["anger_fear"], bank, compound="concat")
    torch.testing.assert_close(concat[0], F.normalize(torch.tensor([3.0, 1.0]), dim=0))  # "a b"
    with pytest.raises(TextBankError, match="'sadness'"):
        class_embeddings(encode, ["anger_sadness"], bank)
