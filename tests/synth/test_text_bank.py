"""SynthFER's own text bank: written by generate, loadable with --text-bank, free of emotion words."""
from __future__ import annotations

from ovfer.data.labels import MAFW11
from ovfer.prompts.banks import load_text_bank
from ovfer.synth.captions import ADJECTIVES, class_description


def test_generate_writes_a_loadable_bank_without_emotion_words(tiny_synthfer):
    path = tiny_synthfer / "text_bank.json"
    assert path.is_file()
    bank = load_text_bank("description", path)
    bank.check(MAFW11)
    for name in MAFW11:
        text = bank.text(name).lower()
        assert name not in text and not any(adj in text for adj in ADJECTIVES[name]), (name, text)
    assert len(set(bank.neutral_captions)) >= 2


def test_descriptions_follow_the_prototype_aus_strongest_first():
    assert class_description("happiness") == "A face with lip corners pulled up and cheeks raised."
    assert class_description("surprise").startswith("A face with eyebrows raised high")  # AU1+AU2 merged
