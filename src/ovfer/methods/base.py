"""The one contract every method implements, and the method registry.

A protocol (closed-set, zero-shot, open-set) sees only this interface, so a new method
runs under all of them. A method:

* is an ``nn.Module`` built by name from a typed config (``create_method``);
* declares its data preset (frames, sampler, transforms, normalisation) so loaders can
  never mismatch it (STYLE pattern 5);
* returns a ``MethodOutput`` from ``forward(video)``: class logits over the current
  classes, an open-set score (SPEC §6: max logit unless the method says otherwise) and
  the video features;
* returns a dict of losses from ``training_step(batch)``, ``"loss"`` being the total;
* may adapt gradients after backward in ``after_backward()`` (HESP's normalised patch
  step) — a method hook, never an engine branch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping, Sequence

from torch import Tensor, nn

from ovfer.backbones.clip import BackboneConfig, ClipBackbone
from ovfer.config import from_dict, override, to_dict
from ovfer.registry import Registry

log = logging.getLogger(__name__)

Normalization = Literal["none", "clip", "imagenet"]


@dataclass(frozen=True)
class DataPreset:
    """What the method needs from the data pipeline (read by loaders, never guessed)."""

    num_frames: int = 8
    sampler: str = "tsn"  # name in ovfer.data.sampling.SAMPLERS
    short_policy: str = "repeat_last"
    train_transform: str = "hesp_train"  # preset name in ovfer.data.transforms
    test_transform: str = "hesp_test"
    normalization: Normalization = "clip"  # applied by the method, not the dataset
    image_size: int = 224


@dataclass
class MethodOutput:
    """Result of ``Method.forward``: logits (B, K), open score (B,), features (B, D)."""

    logits: Tensor
    open_score: Tensor
    features: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class MethodConfig:
    """Fields every method config has; each method subclasses it with its paper defaults."""

    num_frames: int = 8
    """Frames sampled per video (T)."""


class Method(nn.Module):
    """Base class: subclasses implement ``set_classes``, ``forward``, ``training_step``."""

    config_cls: ClassVar[type[MethodConfig]] = MethodConfig
    name: ClassVar[str] = "method"
    zero_shot: ClassVar[bool] = False
    """True if, after training, ``set_classes`` may name classes never trained on (text-only
    class side: CLIP zero-shot, EmoCLIP); the zero-shot protocols run only such methods."""
    heads: ClassVar[tuple[str, ...]] = ()
    """Extra named logits in ``MethodOutput.extras`` that protocols also score (DK-CLIP's
    "global", "local", "fused"); ``logits`` itself is always the method's prediction."""

    def __init__(self, cfg: MethodConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.classnames: tuple[str, ...] = ()

    # -- contract -------------------------------------------------------------------
    @property
    def data_preset(self) -> DataPreset:
        return DataPreset(num_frames=self.cfg.num_frames)

    def set_classes(self, names: Sequence[str]) -> None:
        """Set the K class names in label order (label id = position)."""
        self.classnames = tuple(names)

    def forward(self, video: Tensor, ids: Sequence[str] | None = None) -> MethodOutput:
        """Score videos (B, T, 3, H, W) with pixels in [0, 1]; ``ids`` lets a method cache per video."""
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Losses for one batch; ``"loss"`` is what backward runs on."""
        raise NotImplementedError(f"method '{self.name}' has nothing to train")

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer groups: dicts with ``name``, ``params`` and optional ``lr``/``lr_mult``/``weight_decay``."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"name": "all", "params": params}] if params else []

    def after_backward(self) -> None:
        """Hook between backward and the optimizer step (default: nothing)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Hook at the start of each training epoch (default: nothing)."""

    def prepare_eval(self) -> None:
        """Cache whatever does not depend on the video (text features, ...) before evaluation."""

    def open_score(self, logits: Tensor) -> Tensor:
        """SPEC §6 default: the max of the K class scores."""
        return logits.max(dim=-1).values

    # -- checkpoint helpers -----------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Only learned tensors (and buffers a method marks as state) go into checkpoints."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        names |= set(getattr(self, "extra_state_keys", ()))
        return {k: v for k, v in self.state_dict().items() if k in names}

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.cfg)


METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: ``@register_method("hesp") class HESP(Method): config_cls = HESPConfig``."""

    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name)(cls)

    return deco


def list_methods() -> list[str]:
    _import_all()
    return METHODS.names()


def build_config(name: str, cfg: MethodConfig | Mapping[str, Any] | None = None,
                 overrides: Sequence[str] = ()) -> MethodConfig:
    """Method config from defaults, a dict/dataclass and dotted overrides."""
    _import_all()
    cls = METHODS.get(name).config_cls
    if cfg is None:
        c = cls()
    elif isinstance(cfg, MethodConfig):
        if not isinstance(cfg, cls):
            raise TypeError(f"method '{name}' takes {cls.__name__}, got {type(cfg).__name__}")
        c = cfg
    else:
        c = from_dict(cls, cfg, where=name)
    return override(c, overrides) if overrides else c


def create_method(name: str, classnames: Sequence[str] | None = None,
                  cfg: MethodConfig | Mapping[str, Any] | None = None,
                  overrides: Sequence[str] = (), **kwargs: Any) -> Method:
    """Build a registered method by name (timm ``create_model`` style)."""
    c = build_config(name, cfg, overrides)
    method = METHODS.get(name)(c, **kwargs)
    if classnames is not None:
        method.set_classes(classnames)
    return method


def _import_all() -> None:
    """Import the method modules so their ``@register_method`` decorators run."""
    import importlib
    import pkgutil

    import ovfer.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "base":
            importlib.import_module(f"ovfer.methods.{info.name}")


@dataclass
class ClipMethodConfig(MethodConfig):
    """A method over the shared CLIP backbone."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    """Which CLIP and which weights (SPEC §3); ViT-B/32 OpenAI by default, as HESP."""


class ClipMethod(Method):
    """Base for methods on ``ClipBackbone``: builds it (or takes a shared one) and sizes data."""

    config_cls: ClassVar[type[MethodConfig]] = ClipMethodConfig

    def __init__(self, cfg: ClipMethodConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(cfg)
        self.backbone = backbone if backbone is not None else ClipBackbone(cfg.backbone)

    @property
    def image_size(self) -> int:
        return self.backbone.image_size

    @property
    def data_preset(self) -> DataPreset:
        return DataPreset(num_frames=self.cfg.num_frames, image_size=self.image_size)

    def backbone_spec(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild the (frozen) backbone."""
        return {"arch": self.backbone.arch, "pretrained": self.backbone.cfg.pretrained}
