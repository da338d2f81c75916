"""CLIP backbones: one wrapper over open_clip shared by every method."""
from ovfer.backbones.clip import BackboneConfig, ClipBackbone, build_backbone
from ovfer.backbones.weights import WeightsMismatchError, WeightsNotFoundError

__all__ = ["BackboneConfig", "ClipBackbone", "build_backbone", "WeightsMismatchError", "WeightsNotFoundError"]
