"""Captions: AU wording, variety, the emotion sentence, Chinese captions."""
from __future__ import annotations

import numpy as np

from ovfer.data.labels import MAFW11
from ovfer.synth import load_synth_config, prototype_vectors
from ovfer.synth.captions import ADJECTIVES, AU_PHRASES, NEUTRAL_PHRASES, chinese_caption, make_caption
from ovfer.synth.config import CaptionConfig


def _captions(label, n=60, **kw):
    cfg = CaptionConfig(**kw)
    v = prototype_vectors("_".join(label))[0]
    return [make_caption(label, v, np.random.default_rng(i), cfg, female=bool(i % 2)) for i in range(n)]


def test_captions_describe_the_aus():
    for cap in _captions(("sadness",), emotion_sentence_prob=0.0):
        low = cap.lower()
        assert any(p in low for p in AU_PHRASES["AU4"]) and any(p in low for p in AU_PHRASES["AU15"])
        assert not any(a in low for a in ADJECTIVES["sadness"])
        assert cap.isascii() and cap.endswith(".")


def test_captions_vary_and_mostly_name_the_emotion():
    caps = _captions(("happiness",))
    assert len(set(caps)) >= 30
    named = sum(any(a in c.lower() for a in ADJECTIVES["happiness"]) for c in caps)
    assert 0.6 * len(caps) <= named <= len(caps)


def test_neutral_and_emotion_only_captions():
    for cap in _captions(("neutral",), emotion_sentence_prob=0.0):
        assert any(p in cap.lower() for p in NEUTRAL_PHRASES)
    for cap in _captions(("anger",), emotion_only_prob=1.0):
        assert cap.count(".") == 1 and any(a in cap.lower() for a in ADJECTIVES["anger"])


def test_compound_captions_name_both_emotions():
    for cap in _captions(("happiness", "surprise"), emotion_sentence_prob=1.0):
        low = cap.lower()
        assert any(a in low for a in ADJECTIVES["happiness"]) and any(a in low for a in ADJECTIVES["surprise"])


def test_chinese_captions_are_gbk():
    for c in MAFW11:
        chinese_caption((c,)).encode("gbk")
    assert "又" in chinese_caption(("fear", "surprise"))


def test_default_caption_options_load():
    assert load_synth_config().captions.emotion_sentence_prob == 0.8
