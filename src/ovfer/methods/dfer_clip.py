"""DFER-CLIP: CLIP frames + a temporal transformer vs learnable-context facial descriptors
(Zhao & Patras, BMVC 2023; METHODS §1).

Video side: the (trained) CLIP visual tower embeds each frame, the temporal transformer g
turns the T frame embeddings into v (its class-token output). Text side: per class, M
learnable context vectors are written into the token embeddings of "X … X <description>."
and the frozen CLIP text encoder gives t_k. Logits are cos(v, t_k)/τ with τ = 0.01 fixed;
the loss is CE. There is no classifier head, so any class list works as long as the text
bank has a description for each class (texts are looked up by class name, METHODS §0).

Options cover the paper's ablations (context position, shared context, class names or
templates instead of descriptors, temporal depth incl. "w/o TM", several descriptions per
class) and the official code's behaviours where they differ (per-dataset augmentation,
pixel normalisation). ``load_released`` imports the official checkpoints (METHODS §5).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from ovfer.backbones.clip import ClipBackbone
from ovfer.data.transforms import normalize
from ovfer.methods.base import ClipMethod, ClipMethodConfig, DataPreset, MethodOutput, Normalization, register_method
from ovfer.methods.released import (ReleasedCheckpointError, load_mapped, read_released, remap_keys,
                                    require_paper_temporal)
from ovfer.modules.temporal import TemporalConfig, TemporalTransformer, convert_vitpytorch_keys
from ovfer.prompts.banks import TextBank, display_name, load_text_bank
from ovfer.prompts.text import ContextPosition, PromptLearner

log = logging.getLogger(__name__)

TextSource = Literal["descriptor", "class_name", "template"]
Augmentation = Literal["all", "code_per_dataset"]
AugDataset = Literal["dfew", "ferv39k", "mafw"]

#: CLIP parameter groups DFER-CLIP trains: the whole visual tower (METHODS §1 "Trained / frozen").
VISUAL_GROUPS = ("patch_embed", "visual_blocks", "visual_head")
#: The paper's two templates for the ``text=template`` ablation ('{}' = the class name).
TEMPLATES = ("an expression of {}", "a photo of {}")


def _check_choice(field: str, value: Any, choices: Any) -> None:
    valid = get_args(choices)
    if value not in valid:
        raise ValueError(f"dfer_clip.{field}={value!r} is not valid; choose one of {list(valid)}")


@dataclass
class DFERCLIPConfig(ClipMethodConfig):
    num_frames: int = 16
    """T = 16 frames per clip, DFER-CLIP's TSN-style sampler (METHODS §1 "Frames")."""
    n_ctx: int = 8
    """M learnable context vectors per prompt (§1 text side, Eq. 3)."""
    ctx_init_std: float = 0.02
    """Context init N(0, 0.02²) (official code; the paper is silent)."""
    context_position: ContextPosition = "end"
    """Where the context sits: end = "X…X <text>." (paper), middle = half on each side, front = after the text."""
    shared_context: bool = False
    """One context for all classes instead of class-specific contexts (ablation "shared context (end)")."""
    text: TextSource = "descriptor"
    """Prompt text: facial-cue descriptors (paper), the bare class name, or ``template`` (ablation rows)."""
    template: str = TEMPLATES[0]
    """Used when text=template; '{}' takes the class name. The paper's two: "an expression of {}", "a photo of {}"."""
    descriptions_per_class: int = 1
    """K descriptors per class (App. B, Tab. A: K=2 scores higher). [ovfer] each gets its own context; the
    class embedding is the normalised mean of the K normalised text embeddings."""
    text_bank: str | None = None
    """A user JSON replacing ovfer's descriptors (``--text-bank``, METHODS §4), e.g. the published lists."""
    temporal_depth: int = 1
    """Blocks of the temporal transformer g (Eq. 2); 0 = mean of frame embeddings ([ovfer] reading of "w/o TM")."""
    temperature: float = 0.01
    """τ in ℓ = cos(v, t)/τ, fixed (Eq. 5; = CLIP's learned scale 100)."""
    pixel_norm: Normalization = "none"
    """Pixels go to CLIP raw in [0, 1] as the official code does (paper silent); ``clip`` normalises first."""
    aug: Augmentation = "all"
    """all: brightness + rotation + crop + flip on every dataset (paper); code_per_dataset: the official subset."""
    aug_dataset: AugDataset | None = None
    """Which dataset's official augmentation when aug=code_per_dataset (DFEW / FERV39k / MAFW)."""
    lr_visual: float = 1e-5
    """LR of the CLIP visual tower (§1 "Recipe")."""
    temporal_start: Literal["random", "frame_mean"] = "random"
    """``random``: the paper's g. ``frame_mean`` (ovfer option, ``dfer_clip.temporal_start``): g starts as
    the frame mean and learns residual updates on it (``TemporalConfig.start``)."""
    lr_temporal: float = 1e-2
    """LR of the temporal transformer g."""
    lr_prompt: float = 1e-3
    """LR of the learnable contexts P."""

    def __post_init__(self) -> None:
        _check_choice("context_position", self.context_position, ContextPosition)
        _check_choice("text", self.text, TextSource)
        _check_choice("pixel_norm", self.pixel_norm, Normalization)
        _check_choice("aug", self.aug, Augmentation)
        for name in ("num_frames", "n_ctx", "descriptions_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"dfer_clip.{name} must be >= 1, got {getattr(self, name)}")
        if self.temporal_depth < 0:
            raise ValueError(f"dfer_clip.temporal_depth must be >= 0 (0 = frame mean), got {self.temporal_depth}")
        if self.temperature <= 0:
            raise ValueError(f"dfer_clip.temperature must be > 0, got {self.temperature}")
        if self.descriptions_per_class > 1 and self.text != "descriptor":
            raise ValueError(f"dfer_clip.descriptions_per_class={self.descriptions_per_class} needs text=descriptor, "
                             f"got text={self.text!r}")
        if self.text == "template" and "{}" not in self.template:
            raise ValueError(f"dfer_clip.template={self.template!r} needs a '{{}}' for the class name, "
                             f"e.g. one of {list(TEMPLATES)}")
        if self.aug == "code_per_dataset":
            if self.aug_dataset is None:
                raise ValueError("dfer_clip.aug=code_per_dataset needs aug_dataset, one of "
                                 f"{list(get_args(AugDataset))}")
            _check_choice("aug_dataset", self.aug_dataset, AugDataset)


@register_method("dfer_clip")
class DFERCLIP(ClipMethod):
    """DFER-CLIP (METHODS §1): trained visual tower + g + class contexts; frozen text tower."""

    config_cls = DFERCLIPConfig

    def __init__(self, cfg: DFERCLIPConfig, backbone: ClipBackbone | None = None) -> None:
        super().__init__(cfg, backbone)
        bb = self.backbone
        bb.freeze("all")
        bb.freeze(VISUAL_GROUPS, frozen=False)  # text side and logit scale stay frozen
        # g's shape by default (§1 step 3)
        tcfg = TemporalConfig(dim=bb.embed_dim, depth=cfg.temporal_depth, start=cfg.temporal_start)
        self.temporal = TemporalTransformer(tcfg, cfg.num_frames).to(bb.pixel_mean.device)
        self.bank: TextBank | None = load_text_bank("descriptor", cfg.text_bank) if cfg.text == "descriptor" else None
        self.prompts: PromptLearner | None = None
        self._text_cache: Tensor | None = None

    # -- data ---------------------------------------------------------------------------
    @property
    def data_preset(self) -> DataPreset:
        cfg = self.cfg
        train = "dfer_clip_train" if cfg.aug == "all" else f"dfer_clip_train_{cfg.aug_dataset}"
        return DataPreset(num_frames=cfg.num_frames, sampler="dfer_clip", short_policy="edge_pad",
                          train_transform=train, test_transform="dfer_clip_test", normalization=cfg.pixel_norm,
                          image_size=self.image_size)

    # -- classes and texts ---------------------------------------------------------------
    def class_texts(self, names: Sequence[str]) -> list[str]:
        """Prompt texts, class-major (K per class): "<description>." / "<class>." / "<template>."."""
        cfg, out = self.cfg, []
        for name in names:
            if cfg.text == "descriptor":
                texts = self.bank.texts(name)
                if len(texts) < cfg.descriptions_per_class:
                    raise ValueError(f"class '{name}' has {len(texts)} descriptor(s) in the {self.bank.name} bank, "
                                     f"descriptions_per_class={cfg.descriptions_per_class} needs more (add them "
                                     "with --text-bank)")
                texts = texts[:cfg.descriptions_per_class]
            elif cfg.text == "class_name":
                texts = (display_name(name),)
            else:
                texts = (cfg.template.format(display_name(name)),)
            out += [t.strip() if t.strip().endswith(".") else t.strip() + "." for t in texts]
        return out

    def set_classes(self, names: Sequence[str]) -> None:
        if self.bank is not None:
            self.bank.check(names)  # one error naming every class without a descriptor
        super().set_classes(names)
        cfg, bb = self.cfg, self.backbone
        texts = self.class_texts(names)
        fits = self.prompts is not None and (cfg.shared_context or self.prompts.ctx.shape[0] == len(texts))
        if fits:
            self.prompts.rebuild(bb, texts)
        else:
            self.prompts = PromptLearner(bb, texts, cfg.n_ctx, not cfg.shared_context, cfg.ctx_init_std,
                                         cfg.context_position).to(bb.pixel_mean.device)
        self._text_cache = None

    # -- features ------------------------------------------------------------------------
    def frame_features(self, video: Tensor) -> Tensor:
        """Pixels (B, T, 3, S, S) in [0, 1] -> f_{b,t} (B, T, D); no normalisation by default (§1 "Spatial")."""
        return self.backbone.encode_frames(normalize(video, self.cfg.pixel_norm))

    def video_features(self, video: Tensor) -> Tensor:
        """v_b (B, D): g's class-token output over the frame embeddings (or their mean at depth 0)."""
        return self.temporal(self.frame_features(video))

    def class_features(self) -> Tensor:
        """t_k (C, D), L2-normalised; recomputed every training step so gradients reach P (§1)."""
        if self._text_cache is not None and not self.training:
            return self._text_cache
        t = self.prompts.encode(self.backbone, normalize=True)  # (C·K, D)
        k = self.cfg.descriptions_per_class
        if k > 1:
            t = F.normalize(t.view(-1, k, t.shape[-1]).mean(dim=1), dim=-1)  # (C, D)
        return t

    def similarity_logits(self, v: Tensor, t: Tensor) -> Tensor:
        """ℓ_{b,k} = cos(v_b, t_k)/τ (Eq. 5)."""
        return F.normalize(v, dim=-1) @ t.t().to(v.dtype) / self.cfg.temperature

    def forward(self, video: Tensor, ids: Sequence[str] | None = None) -> MethodOutput:
        v = self.video_features(video)  # (B, D)
        logits = self.similarity_logits(v, self.class_features())  # (B, C)
        return MethodOutput(logits=logits, open_score=self.open_score(logits), features=v)

    # -- training ------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        out = self(batch["video"])
        ce = F.cross_entropy(out.logits.float(), batch["label"])
        return {"loss": ce, "ce": ce.detach()}

    def param_groups(self) -> list[dict[str, Any]]:
        """§1 "Recipe": visual 1e-5, g 1e-2, P 1e-3 (absolute LRs; SGD, momentum and decay from OptimConfig)."""
        cfg = self.cfg
        groups = [{"name": "visual", "params": self.backbone.parameters_of(VISUAL_GROUPS), "lr": cfg.lr_visual},
                  {"name": "temporal", "params": list(self.temporal.parameters()), "lr": cfg.lr_temporal}]
        if self.prompts is not None:
            groups.append({"name": "prompts", "params": [self.prompts.ctx], "lr": cfg.lr_prompt})
        return [g for g in groups if g["params"]]

    def prepare_eval(self) -> None:
        """Text features once per evaluation: they do not depend on the video."""
        was = self.training
        self.eval()
        self._text_cache = None
        with torch.no_grad():
            text = self.class_features().detach()
        self.train(was)
        self._text_cache = text

    def train(self, mode: bool = True) -> "DFERCLIP":
        if mode:
            self._text_cache = None  # contexts will change
        return super().train(mode)

    # -- released checkpoints (METHODS §5) -------------------------------------------------
    @classmethod
    def import_released(cls, path: str | Path, classnames: Sequence[str], cfg: DFERCLIPConfig | None = None,
                        backbone: ClipBackbone | None = None, released_classes: Sequence[str] | None = None,
                        text_check: Literal["warn", "error", "ignore"] = "warn") -> "DFERCLIP":
        """A method over ``classnames`` with the official weights of one fold file loaded."""
        method = cls(cfg or DFERCLIPConfig(), backbone)
        method.set_classes(classnames)
        method.load_released(path, released_classes, text_check)
        return method

    def load_released(self, path: str | Path, released_classes: Sequence[str] | None = None,
                      text_check: Literal["warn", "error", "ignore"] = "warn") -> None:
        """Load an official DFER-CLIP file: visual tower, temporal net and contexts.

        The release keeps its class rows in the official order (METHODS §0; ``released_classes``,
        default the DFER-CLIP order for 7 or 11 classes); they are moved to this method's order
        by name. Its prompt prefix/suffix buffers are the official "end" layout ([SOS] | ctx |
        text tokens, EOT, padding); they are compared with ovfer's own token embeddings of the
        current texts — a mismatch means another text (pass the published descriptors with
        ``text_bank``) and is warned about, raised or ignored per ``text_check``. The frozen
        text encoder and the duplicate ``clip_model_`` copy are dropped.
        """
        require_paper_temporal(self.cfg.temporal_start, "dfer_clip")
        sd = read_released(path)
        order = self._released_order(sd, released_classes)
        perm = torch.tensor([order.index(n) for n in self.classnames])
        self._check_prompt_buffers(sd, perm, text_check)
        mapped = remap_keys(sd, [("image_encoder.", "backbone.clip.visual.")],
                            drop=("text_encoder.", "clip_model_.", "prompt_learner.", "temporal_net."))
        mapped["prompts.ctx"] = sd["prompt_learner.ctx"][perm]
        mapped |= {"temporal." + k: v for k, v in convert_vitpytorch_keys(sd, "temporal_net.").items()}
        load_mapped(self, mapped, required=("backbone.clip.visual.", "temporal.", "prompts.ctx"))
        self._text_cache = None

    def _released_order(self, sd: Mapping[str, Tensor], released: Sequence[str] | None) -> list[str]:
        cfg = self.cfg
        if cfg.shared_context or cfg.descriptions_per_class != 1 or cfg.context_position != "end":
            raise ReleasedCheckpointError(
                "released DFER-CLIP files hold one class-specific context per class at the end position; this "
                f"method has shared_context={cfg.shared_context}, descriptions_per_class="
                f"{cfg.descriptions_per_class}, context_position={cfg.context_position!r}")
        if "prompt_learner.ctx" not in sd:
            raise ReleasedCheckpointError("no 'prompt_learner.ctx' in the file: not a DFER-CLIP checkpoint")
        n = int(sd["prompt_learner.ctx"].shape[0])
        if n != len(self.classnames):
            raise ReleasedCheckpointError(f"the checkpoint has contexts for {n} classes, this method has "
                                          f"{len(self.classnames)} ({', '.join(self.classnames)})")
        if released is None:
            from ovfer.data.labels import source_order

            if n not in (7, 11):
                raise ReleasedCheckpointError(f"{n} classes: pass released_classes (the file's class order)")
            released = source_order("dfew" if n == 7 else "mafw", "dfer_clip")
        released = [str(c).lower() for c in released]
        if len(released) != n or sorted(released) != sorted(self.classnames):
            raise ReleasedCheckpointError(f"the checkpoint's classes {released} are not this method's classes "
                                          f"{list(self.classnames)}")
        return released

    def _check_prompt_buffers(self, sd: Mapping[str, Tensor], perm: Tensor, mode: str) -> None:
        """Official prefix (C, 1, W) and suffix (C, 77-1-M, W) vs ovfer's "end" prompt rows."""
        if mode == "ignore":
            return
        m, ours = self.cfg.n_ctx, self.prompts.token_embeds.float().cpu()  # (C, L, W)
        bad = []
        rows = {"prompt_learner.token_prefix": ours[:, :1], "prompt_learner.token_suffix": ours[:, 1 + m:]}
        for key, own in rows.items():
            if key not in sd:
                continue
            theirs = sd[key][perm].float()
            if theirs.shape != own.shape:
                raise ReleasedCheckpointError(f"{key} has shape {tuple(theirs.shape)}, ovfer's end-position "
                                              f"prompts give {tuple(own.shape)}")
            bad += [self.classnames[i] for i in range(len(own)) if not torch.allclose(theirs[i], own[i], atol=1e-3)]
        if bad:
            msg = (f"the released prompts' token embeddings differ from ovfer's texts for {sorted(set(bad))}: the "
                   "checkpoint was trained with other descriptions (pass them with text_bank=... to reproduce it)")
            if mode == "error":
                raise ReleasedCheckpointError(msg)
            log.warning(msg)
