"""Prompt pieces written once: text context, pixel patch, negative images."""
from ovfer.prompts.text import PromptLearner
from ovfer.prompts.visual import NegativeImages, PixelPatch, normalized_gradient_step

__all__ = ["PromptLearner", "PixelPatch", "NegativeImages", "normalized_gradient_step"]
