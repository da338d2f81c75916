"""Typed SynthFER configuration: every distribution the generator samples from.

Ranges are ``(low, high)`` pairs sampled uniformly; lengths of the face are in units of
the inter-ocular distance (IOD, eye centre to eye centre), angles in degrees, pixel
intensities in 0..255. ``default.yaml`` next to this file holds the documented
defaults; ``hard.yaml`` and ``scene.yaml`` are presets on top of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Range = tuple[float, float]


def _check_range(name: str, r: Range) -> None:
    if r[0] > r[1]:
        raise ValueError(f"{name}: low {r[0]} > high {r[1]}")


@dataclass
class IdentityConfig:
    """Per-clip identity: face shape, feature sizes and positions, colours."""

    female_prob: float = 0.5  # P(pronoun "she"; longer hair and thinner brows more likely)
    face_width: Range = (1.24, 1.36)  # half width of the face at cheek level
    forehead: Range = (1.55, 1.8)  # eye line -> top of the head
    chin: Range = (1.4, 1.52)  # eye line -> chin
    jaw_taper: Range = (0.25, 0.42)  # how much the jaw narrows towards the chin
    eye_width: Range = (0.21, 0.25)  # half width of the eye opening
    eye_open: Range = (0.085, 0.105)  # upper half height of the eye opening
    iris: Range = (0.09, 0.105)  # iris radius
    brow_height: Range = (0.33, 0.41)  # eye line -> brow centre line
    brow_thickness: Range = (0.05, 0.09)
    nose_length: Range = (0.56, 0.66)  # eye line -> nose tip
    nose_width: Range = (0.16, 0.22)  # half width of the nose wings
    mouth_height: Range = (0.93, 1.0)  # eye line -> mouth line
    mouth_width: Range = (0.36, 0.45)  # half width of the mouth
    lip_thickness: Range = (0.08, 0.12)  # upper lip; lower lip is 1.2x
    skin_tone: Range = (0.0, 1.0)  # position on the light -> dark palette
    wrinkles: Range = (0.0, 0.3)  # resting depth of folds and lines (age)
    asymmetry: float = 0.015  # s.d. of left/right feature offsets
    beard_prob: float = 0.15  # stubble shadow, men only
    hair_styles: dict = field(
        default_factory=lambda: {"short": 0.45, "long": 0.35, "fringe": 0.1, "bald": 0.1}
    )

    def __post_init__(self) -> None:
        for k, v in vars(self).items():
            if isinstance(v, tuple):
                _check_range(k, v)
        if not self.hair_styles or any(p < 0 for p in self.hair_styles.values()):
            raise ValueError(f"hair_styles needs non-negative weights, got {self.hair_styles}")
        unknown = set(self.hair_styles) - {"short", "long", "fringe", "bald"}
        if unknown:
            raise ValueError(f"hair_styles: unknown style(s) {sorted(unknown)}; valid: short, long, fringe, bald")


@dataclass
class ExpressionConfig:
    """Onset -> apex -> offset intensity curve and per-AU noise."""

    onset_start: Range = (0.0, 0.3)  # fraction of the clip before the onset begins
    onset: Range = (0.15, 0.35)  # onset duration, fraction of the clip
    apex: Range = (0.2, 0.5)  # apex hold, fraction of the clip
    offset: Range = (0.15, 0.35)  # offset duration (may run past the clip end)
    apex_intensity: Range = (0.65, 1.0)
    weak_prob: float = 0.2  # share of weak clips ...
    weak_intensity: Range = (0.3, 0.55)  # ... whose apex intensity is drawn from here
    au_noise: float = 0.15  # s.d. of the per-clip multiplicative noise of each AU
    frame_noise: float = 0.03  # s.d. of additive per-frame AU noise
    au_lag: int = 1  # max per-AU onset lag in frames (AUs do not start in lockstep)
    leak_prob: float = 0.3  # P(one random extra AU at low intensity)
    leak_intensity: Range = (0.04, 0.14)
    compound_weight: Range = (0.65, 0.85)  # share of each parent prototype in a blend
    disgust_variant_prob: float = 0.5  # P(9+15+16) vs 9+10

    def __post_init__(self) -> None:
        for k, v in vars(self).items():
            if isinstance(v, tuple):
                _check_range(k, v)


@dataclass
class DistractorConfig:
    """Motion unrelated to the label, so that single frames are ambiguous."""

    talk_prob: float = 0.3  # P(clip shows talking: AU25/26 oscillation)
    talk_amplitude: Range = (0.2, 0.5)
    talk_period: Range = (2.5, 5.0)  # frames per mouth cycle
    blink_rate: float = 0.03  # P(a blink starts) per frame
    gaze_shift_prob: float = 0.3  # P(the gaze moves once during the clip)
    gaze_sd: float = 0.25  # s.d. of the resting gaze (fraction of the eye's range)


@dataclass
class PoseConfig:
    """Head pose (degrees) and small head motion."""

    yaw_sd: float = 4.0
    pitch_sd: float = 3.0
    roll_sd: float = 3.0
    max_angle: float = 10.0
    motion_amplitude: Range = (0.5, 2.5)  # degrees of slow sway during the clip
    motion_period: Range = (8.0, 24.0)  # frames per sway cycle


@dataclass
class AppearanceConfig:
    """Lighting, colour and sensor noise applied to the rendered frame."""

    brightness: Range = (-20.0, 20.0)  # added to every pixel
    contrast: Range = (0.85, 1.15)
    color_cast: float = 0.05  # s.d. of the per-channel gain
    gradient: Range = (0.0, 0.25)  # strength of a linear light falloff across the frame
    shading: Range = (0.15, 0.3)  # depth of the face's shading towards its edge
    light_side: Range = (-0.25, 0.25)  # side lighting of the face (negative = from the left)
    noise_sd: Range = (1.0, 4.0)  # Gaussian sensor noise, per frame
    blur_prob: float = 0.15  # P(slightly out-of-focus clip)
    blur_sigma: Range = (0.5, 1.0)  # in output pixels


@dataclass
class FramingConfig:
    """How the face sits in the frame (SPEC §2.6: aligned or scene)."""

    mode: Literal["aligned", "scene"] = "aligned"
    eye_y: float = 0.39  # aligned: eye height, fraction of the frame height
    eye_distance: float = 0.46  # aligned: IOD as a fraction of the frame width (for a face half width of 1.3)
    jitter: float = 0.015  # aligned: s.d. of the per-clip eye position (fraction of width)
    frame_jitter: float = 0.004  # aligned: s.d. of per-frame alignment noise
    scene_iod: Range = (0.08, 0.14)  # scene: IOD as a fraction of the frame height
    scene_drift: float = 0.03  # scene: max drift of the head over the clip (fraction of width)
    clutter: int = 14  # scene: number of background objects
    empty_prob: float = 0.0  # scene: P(clip has leading or trailing frames without a face)
    empty_frames: tuple[int, int] = (1, 3)  # scene: how many such frames

    def __post_init__(self) -> None:
        _check_range("scene_iod", self.scene_iod)


@dataclass
class VideoConfig:
    """Output size and encoding."""

    width: int = 112
    height: int = 112
    frames: int = 16
    fps: float = 10.0
    crf: int = 18  # libx264 quality (0 = lossless)
    preset: str = "veryfast"  # libx264 speed preset
    supersample: int = 3  # render at this factor, then area-downsample (anti-aliasing)

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ValueError(f"video size must be even and >= 32, got {self.width}x{self.height}")
        if self.frames < 2:
            raise ValueError(f"frames must be >= 2, got {self.frames}")


@dataclass
class CaptionConfig:
    """Caption wording options."""

    au_threshold: float = 0.25  # an AU is described when its apex intensity reaches this
    max_phrases: int = 4  # at most this many AU phrases
    emotion_sentence_prob: float = 0.8  # P(caption ends with "she looks sad.")
    emotion_only_prob: float = 0.0  # P(caption is only the emotion sentence)
    distractor_prob: float = 0.3  # P(mentioning talking/blinking when present)
    neutral_pronoun_prob: float = 0.3  # P("the person" instead of he/she)


@dataclass
class SynthConfig:
    """A whole SynthFER set: classes, sizes and every distribution."""

    seed: int = 0
    workers: int = 2  # processes for `generate` (0 = all cores)
    classes: list[str] = field(
        default_factory=lambda: [
            "anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
            "contempt", "anxiety", "helplessness", "disappointment",
        ]
    )
    compound_classes: list[str] = field(
        default_factory=lambda: [
            "anger_disgust", "anger_sadness", "anger_surprise", "disgust_sadness",
            "disgust_surprise", "fear_sadness", "fear_surprise", "happiness_surprise",
            "sadness_surprise",
        ]
    )
    clips_per_class: int = 24
    clips_per_compound: int = 8
    folds: int = 5
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    expression: ExpressionConfig = field(default_factory=ExpressionConfig)
    distractors: DistractorConfig = field(default_factory=DistractorConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    framing: FramingConfig = field(default_factory=FramingConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)

    def __post_init__(self) -> None:
        from .aus import split_label  # local import: aus has no config dependency

        for name in self.classes:
            if len(split_label(name)) != 1:
                raise ValueError(f"classes holds single classes only; move '{name}' to compound_classes")
        for name in self.compound_classes:
            if len(split_label(name)) < 2:
                raise ValueError(f"compound_classes: '{name}' is not a compound label (a_b)")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
