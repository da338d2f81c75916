"""Facial Action Units (FACS) and the class prototypes SynthFER draws from them.

The seven basic classes follow the EMFACS prototypes (SPEC §2.6). Contempt, anxiety,
helplessness and disappointment have no EMFACS entry; their prototypes below are our
own, chosen from the descriptions in the emotion literature and documented in
``docs/synthfer.md``. Compound classes are blends of two prototypes.

An AU vector is a float array over :data:`AU_NAMES` with intensities in [0, 1].
``AU12U``/``AU14U`` are the unilateral forms of AU12/AU14 (the side is a property of the
clip), used by contempt.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ovfer.data.labels import BASIC7, MAFW11

#: Every AU the renderer understands, in vector order.
AU_NAMES: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15",
    "AU16", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU45", "AU12U", "AU14U",
)
AU_INDEX: dict[str, int] = {n: i for i, n in enumerate(AU_NAMES)}
N_AUS = len(AU_NAMES)

#: FACS names, for the docs and the manifest.
AU_DESCRIPTIONS: dict[str, str] = {
    "AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer",
    "AU5": "upper lid raiser", "AU6": "cheek raiser", "AU7": "lid tightener",
    "AU9": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
    "AU14": "dimpler", "AU15": "lip corner depressor", "AU16": "lower lip depressor",
    "AU17": "chin raiser", "AU20": "lip stretcher", "AU23": "lip tightener",
    "AU24": "lip pressor", "AU25": "lips part", "AU26": "jaw drop", "AU45": "blink",
    "AU12U": "unilateral lip corner puller", "AU14U": "unilateral dimpler",
}

#: Class prototypes: one or more AU variants per class (intensity at full apex).
PROTOTYPES: dict[str, tuple[dict[str, float], ...]] = {
    # EMFACS basic emotions
    "anger": ({"AU4": 1.0, "AU5": 0.7, "AU7": 0.8, "AU23": 0.9},),
    "disgust": (
        {"AU9": 1.0, "AU15": 0.6, "AU16": 0.7},
        {"AU9": 0.9, "AU10": 1.0},
    ),
    "fear": ({"AU1": 0.9, "AU2": 0.7, "AU4": 0.6, "AU5": 1.0, "AU7": 0.5, "AU20": 0.9, "AU26": 0.6},),
    "happiness": ({"AU6": 0.8, "AU12": 1.0},),
    "neutral": ({},),
    "sadness": ({"AU1": 0.9, "AU4": 0.6, "AU15": 0.9},),
    "surprise": ({"AU1": 1.0, "AU2": 1.0, "AU5": 0.8, "AU26": 0.9},),
    # EMFACS contempt (unilateral)
    "contempt": ({"AU12U": 0.7, "AU14U": 0.9},),
    # Our own prototypes for the MAFW-only classes
    "anxiety": ({"AU1": 0.7, "AU4": 0.6, "AU7": 0.4, "AU20": 0.5, "AU24": 0.7},),
    "helplessness": ({"AU1": 0.9, "AU2": 0.5, "AU15": 0.6, "AU17": 0.5, "AU25": 0.4},),
    "disappointment": ({"AU4": 0.4, "AU14": 0.5, "AU15": 0.6, "AU17": 0.8, "AU24": 0.5},),
}

#: Non-AU behaviour per class (documented): gaze/pitch bias and blink-rate factor.
CLASS_BEHAVIOUR: dict[str, dict[str, float]] = {
    "sadness": {"gaze_y": 0.5, "pitch": 4.0},
    "helplessness": {"gaze_y": 0.3, "pitch": 2.0},
    "disappointment": {"gaze_y": 0.6, "pitch": 3.0},
    "anxiety": {"blink": 2.5, "gaze_shift": 1.0},
    "fear": {"blink": 1.5},
    "surprise": {"pitch": -3.0},
    "contempt": {"pitch": -2.0, "roll": 3.0},
}

#: Compound classes made of basic emotions only (the default compound set).
DEFAULT_COMPOUNDS: tuple[str, ...] = (
    "anger_disgust", "anger_sadness", "anger_surprise", "disgust_sadness",
    "disgust_surprise", "fear_sadness", "fear_surprise", "happiness_surprise",
    "sadness_surprise",
)

#: Default share of each component's prototype intensity in a compound blend.
COMPOUND_WEIGHT = 0.75


def split_label(name: str) -> tuple[str, ...]:
    """``"fear_surprise"`` -> ``("fear", "surprise")``, checking names and MAFW order."""
    parts = tuple(p for p in name.strip().split("_") if p)
    for p in parts:
        if p not in PROTOTYPES:
            raise ValueError(f"unknown SynthFER class '{p}' in '{name}'; valid: {list(PROTOTYPES)}")
    if len(set(parts)) != len(parts) or "neutral" in parts and len(parts) > 1:
        raise ValueError(f"compound label '{name}' repeats a class or includes neutral")
    if list(parts) != sorted(parts, key=MAFW11.index):
        raise ValueError(f"compound label '{name}' must list its classes in MAFW order {list(MAFW11)}")
    return parts


def to_vector(aus: Mapping[str, float]) -> np.ndarray:
    """AU dict -> float32 vector over :data:`AU_NAMES` (unknown names raise)."""
    v = np.zeros(N_AUS, np.float32)
    for k, x in aus.items():
        if k not in AU_INDEX:
            raise ValueError(f"unknown AU '{k}'; valid: {list(AU_NAMES)}")
        v[AU_INDEX[k]] = x
    return v


def to_dict(vec: np.ndarray, min_value: float = 0.0, digits: int = 3) -> dict[str, float]:
    """AU vector -> ``{name: intensity}`` keeping entries above ``min_value``."""
    return {n: round(float(x), digits) for n, x in zip(AU_NAMES, vec) if x > min_value}


def prototype_vectors(label: Sequence[str] | str, weight: float = COMPOUND_WEIGHT) -> list[np.ndarray]:
    """Every prototype variant of a (possibly compound) label as AU vectors.

    A compound blends its components: each component's AUs at ``weight`` times their
    prototype intensity, AUs the two share add up, clipped at 1 — so a blend differs
    from either parent in which AUs dominate.
    """
    parts = split_label(label) if isinstance(label, str) else tuple(label)
    if len(parts) == 1:
        return [to_vector(p) for p in PROTOTYPES[parts[0]]]
    out: list[np.ndarray] = [np.zeros(N_AUS, np.float32)]
    for name in parts:
        out = [np.clip(acc + weight * to_vector(p), 0.0, 1.0) for acc in out for p in PROTOTYPES[name]]
    return out


def classify_aus(
    aus: Mapping[str, float] | np.ndarray,
    classes: Sequence[str] | None = None,
    neutral_norm: float = 0.2,
) -> str:
    """Nearest prototype by cosine similarity (blinks ignored); near-zero vectors are neutral.

    Used to check labels: a generated clip's apex AU vector must classify to its own
    class. ``classes`` defaults to the seven basic emotions.
    """
    v = to_vector(aus) if isinstance(aus, Mapping) else np.asarray(aus, np.float32).copy()
    v[AU_INDEX["AU45"]] = 0.0
    classes = tuple(classes) if classes is not None else BASIC7
    norm = float(np.linalg.norm(v))
    if norm < neutral_norm:
        if "neutral" in classes:
            return "neutral"
        norm = max(norm, 1e-6)
    best, best_sim = classes[0], -np.inf
    for c in classes:
        if c == "neutral":
            continue
        for p in prototype_vectors(c):
            p = p.copy()
            p[AU_INDEX["AU45"]] = 0.0
            sim = float(v @ p) / (norm * float(np.linalg.norm(p)) + 1e-9)
            if sim > best_sim:
                best, best_sim = c, sim
    return best
