"""Captions that describe the visible Action Units in plain words (SPEC §2.6).

Wording varies on purpose (several phrasings per AU, random order, random sentence
frames), so a text encoder trained on them learns the AUs and the emotion words rather
than one fixed template. The emotion sentence ("she looks sad.") is optional per clip.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .aus import AU_INDEX
from .config import CaptionConfig

#: Several plain-word phrasings per AU (noun-phrase style, so they can be listed).
AU_PHRASES: dict[str, tuple[str, ...]] = {
    "AU1": ("inner brows raised", "the inner ends of the eyebrows lifted", "brows raised in the middle"),
    "AU2": ("outer brows raised", "the outer ends of the brows lifted", "arched eyebrows"),
    "AU1+AU2": ("eyebrows raised high", "brows lifted", "raised eyebrows", "brows pulled up"),
    "AU4": ("brows drawn together", "a frown between the brows", "eyebrows lowered and knitted", "furrowed brows"),
    "AU5": ("eyes wide open", "upper eyelids raised", "a wide-eyed stare", "widened eyes"),
    "AU6": ("cheeks raised", "crow's feet at the eye corners", "lifted cheeks narrowing the eyes"),
    "AU7": ("tightened eyelids", "narrowed eyes", "tense lower eyelids", "squinting eyes"),
    "AU9": ("a wrinkled nose", "the nose scrunched up", "nose wrinkles"),
    "AU10": ("the upper lip raised", "the upper lip curled up", "a raised upper lip showing the teeth"),
    "AU12": ("lip corners pulled up", "a smile", "mouth corners turned up", "a smiling mouth"),
    "AU14": ("dimpled mouth corners", "lip corners tightened", "dimples beside the mouth"),
    "AU12U": ("one lip corner pulled up", "a one-sided smirk", "the mouth raised on one side"),
    "AU14U": ("a dimple on one side of the mouth", "one mouth corner tightened"),
    "AU15": ("lip corners pulled down", "mouth corners turned down", "a downturned mouth"),
    "AU16": ("the lower lip pulled down", "a lowered lower lip", "the lower lip pushed down"),
    "AU17": ("the chin raised", "a wrinkled chin", "the chin pushed up"),
    "AU20": ("lips stretched sideways", "the mouth stretched wide", "lip corners pulled back"),
    "AU23": ("tightened lips", "tense, narrowed lips", "thin, tight lips"),
    "AU24": ("lips pressed together", "tightly pressed lips", "lips pressed firmly"),
    "AU25": ("lips parted", "the mouth slightly open", "parted lips"),
    "AU26": ("the jaw dropped", "the mouth hanging open", "an open mouth"),
    "AU25+AU26": ("the mouth open", "the jaw dropped open", "a gaping mouth"),
}

#: Emotion words per class (adjectives, several per class).
ADJECTIVES: dict[str, tuple[str, ...]] = {
    "anger": ("angry", "annoyed", "mad", "irritated"),
    "disgust": ("disgusted", "repulsed", "grossed out"),
    "fear": ("afraid", "scared", "frightened", "fearful"),
    "happiness": ("happy", "joyful", "pleased", "cheerful"),
    "neutral": ("calm", "neutral", "relaxed", "composed"),
    "sadness": ("sad", "unhappy", "sorrowful", "downcast"),
    "surprise": ("surprised", "astonished", "amazed"),
    "contempt": ("contemptuous", "scornful", "disdainful"),
    "anxiety": ("anxious", "nervous", "worried", "uneasy"),
    "helplessness": ("helpless", "powerless", "at a loss"),
    "disappointment": ("disappointed", "let down", "dismayed"),
}

#: Chinese emotion words for the MAFW-style captions (GBK-encodable).
CHINESE: dict[str, str] = {
    "anger": "生气", "disgust": "厌恶", "fear": "害怕", "happiness": "开心", "neutral": "平静",
    "sadness": "悲伤", "surprise": "惊讶", "contempt": "轻蔑", "anxiety": "焦虑",
    "helplessness": "无助", "disappointment": "失望",
}

NEUTRAL_PHRASES = (
    "a calm face with relaxed features", "a relaxed, expressionless face", "the face stays still and relaxed",
    "no visible muscle movement in the face", "an even, composed face", "relaxed brows and a closed mouth",
)
_FRAMES = ("{x}.", "a face with {x}.", "{S} shows {x}.", "we see {x}.", "{x} can be seen.", "{S} has {x}.")
_EMOTION = ("{S} looks {a}.", "{S} seems {a}.", "{S} appears {a}.", "the expression is {a}.", "{S} is {a}.")
_WEAK = ("slightly", "a little", "somewhat", "faintly")
_STRONG = ("very", "clearly", "really")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def au_phrases(apex_aus: np.ndarray, rng: np.random.Generator, cfg: CaptionConfig) -> list[str]:
    """Phrases for the strongest visible AUs (pairs like 1+2 get one phrase), in random order."""
    v = {n: float(apex_aus[i]) for n, i in AU_INDEX.items() if n != "AU45"}
    keys = [n for n, x in v.items() if x >= cfg.au_threshold]
    for pair in (("AU1", "AU2"), ("AU25", "AU26")):
        if all(p in keys for p in pair):
            keys = [k for k in keys if k not in pair] + ["+".join(pair)]
            v["+".join(pair)] = max(v[p] for p in pair)
    keys.sort(key=lambda k: -v[k])
    keys = keys[: cfg.max_phrases]
    order = rng.permutation(len(keys))
    return [_pick(rng, AU_PHRASES[keys[i]]) for i in order]


def _subject(rng: np.random.Generator, female: bool, cfg: CaptionConfig) -> str:
    if rng.random() < cfg.neutral_pronoun_prob:
        return _pick(rng, ("the person", "this person", "the woman" if female else "the man"))
    return "she" if female else "he"


def emotion_words(label: Sequence[str], rng: np.random.Generator, plain: bool = False) -> str:
    """``("happiness", "surprise")`` -> e.g. "happy and surprised" (``plain``: no "both"/"yet")."""
    words = [_pick(rng, ADJECTIVES[n]) for n in label]
    if len(words) == 1:
        return words[0]
    forms = ("{} and {}",) if plain else ("{} and {}", "both {} and {}", "{} yet {}")
    return _pick(rng, forms).format(words[0], " and ".join(words[1:]))


def make_caption(
    label: Sequence[str],
    apex_aus: np.ndarray,
    rng: np.random.Generator,
    cfg: CaptionConfig,
    female: bool,
    weak: bool = False,
    talking: bool = False,
    blinks: int = 0,
) -> str:
    """An English caption for one clip: visible AUs, maybe distractors, maybe the emotion."""
    subj = _subject(rng, female, cfg)
    neutral = tuple(label) == ("neutral",)
    adverb = ""
    if not neutral and weak and rng.random() < 0.7:
        adverb = _pick(rng, _WEAK) + " "
    elif not neutral and not weak and rng.random() < 0.2:
        adverb = _pick(rng, _STRONG) + " "
    adj = adverb + emotion_words(label, rng, plain=bool(adverb))
    emotion = _pick(rng, _EMOTION).format(S=subj, a=adj)
    if rng.random() < cfg.emotion_only_prob:
        return _cap(emotion)
    if neutral:
        desc = _pick(rng, NEUTRAL_PHRASES) + "."
    else:
        phrases = au_phrases(apex_aus, rng, cfg)
        if not phrases:  # a weak clip: describe its strongest AU anyway
            k = int(np.argmax(np.where(np.arange(len(apex_aus)) == AU_INDEX["AU45"], -1, apex_aus)))
            name = next(n for n, i in AU_INDEX.items() if i == k)
            phrases = [_pick(rng, ("{}, only faintly", "{}, barely visible")).format(_pick(rng, AU_PHRASES[name]))]
        desc = _pick(rng, _FRAMES).format(x=_join(phrases), S=subj)
    parts = [_cap(desc)]
    if talking and rng.random() < cfg.distractor_prob:
        talk = _pick(rng, ("{S} is talking.", "{S} speaks.", "the lips move while talking."))
        parts.append(_cap(talk.format(S=subj)))
    if blinks and rng.random() < cfg.distractor_prob:
        parts.append(_cap(_pick(rng, ("{S} blinks.", "the eyes blink.")).format(S=subj)))
    if rng.random() < cfg.emotion_sentence_prob:
        parts.append(_cap(emotion))
    return " ".join(parts)


def chinese_caption(label: Sequence[str]) -> str:
    """A fixed short Chinese sentence per class (MAFW files carry Chinese captions)."""
    if tuple(label) == ("neutral",):
        return "这个人表情平静，面部放松。"
    if len(label) == 1:
        return f"这个人看起来很{CHINESE[label[0]]}。"
    return f"这个人看起来既{CHINESE[label[0]]}又{'、'.join(CHINESE[n] for n in label[1:])}。"


#: Neutral-face sentences for SynthFER's text bank (caption-less neutral clips, METHODS §3).
NEUTRAL_SENTENCES: tuple[str, ...] = (
    "A face with relaxed brows and a closed mouth.",
    "The eyes are open and calm.",
    "The brows rest level and the lips are closed.",
    "No facial muscle is tense.",
    "A still, composed face.",
)


def class_description(name: str) -> str:
    """One description of a class in SynthFER's own caption vocabulary, without emotion words:
    the first phrasing of each prototype AU, strongest first (pairs merged as in captions)."""
    from .aus import PROTOTYPES

    if name not in PROTOTYPES:
        raise ValueError(f"unknown SynthFER class '{name}'; valid: {list(PROTOTYPES)}")
    aus = dict(PROTOTYPES[name][0])
    if not aus:
        return "A face with level brows, open eyes and a closed mouth."
    for pair in (("AU1", "AU2"), ("AU25", "AU26")):
        if all(p in aus for p in pair):
            aus["+".join(pair)] = max(aus.pop(p) for p in pair)
    keys = sorted(aus, key=lambda k: -aus[k])
    return "A face with " + _join([AU_PHRASES[k][0] for k in keys]) + "."


def text_bank(classes: Sequence[str]) -> dict[str, object]:
    """SynthFER's text bank in ovfer's ``--text-bank`` format, written beside the annotations
    (the role the published class descriptions play for MAFW)."""
    return {"_about": "SynthFER class descriptions from its AU prototypes in its caption vocabulary "
                      "(no emotion words), and a neutral-caption pool; use with --text-bank.",
            "descriptions": {c: class_description(c) for c in classes},
            "neutral_captions": list(NEUTRAL_SENTENCES)}
