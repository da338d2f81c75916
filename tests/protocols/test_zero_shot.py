"""Zero-shot protocols (SPEC §5.2, METHODS §3): direct, captions, cross-dataset, LOCO, compound."""
from __future__ import annotations

from dataclasses import dataclass, replace

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ovfer.backbones.clip import BackboneConfig
from ovfer.data.labels import MAFW11, canonical_classes
from ovfer.data.records import VideoRecord
from ovfer.methods.base import ClipMethod, ClipMethodConfig, MethodOutput, register_method
from ovfer.modules.clip_video import video_mean_features
from ovfer.prompts.banks import PHOTO_TEMPLATE, class_text_features
from ovfer.protocols import loco, zero_shot
from ovfer.protocols.common import EvalOutputs, FitOutcome, LoaderConfig
from ovfer.protocols.data_source import DataSource
from ovfer.protocols.loco import loco_report
from ovfer.protocols.zero_shot import ZeroShotConfig, run_zero_shot


@dataclass
class LinearZSConfig(ClipMethodConfig):
    text: str = "labels"
    """"labels": CE against class-name texts; "captions": contrastive against each clip's caption."""


@register_method("test_linear_zs")
class LinearZS(ClipMethod):
    """A trainable zero-shot method: a linear map on frozen CLIP video features, scored
    against class-name text features (so any class list works after training)."""

    config_cls = LinearZSConfig
    zero_shot = True

    def __init__(self, cfg: LinearZSConfig, backbone=None) -> None:
        super().__init__(cfg, backbone)
        self.backbone.freeze("all")
        d = self.backbone.embed_dim
        self.proj = nn.Linear(d, d)
        nn.init.eye_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.register_buffer("text_features", torch.zeros(0), persistent=False)

    def set_classes(self, names) -> None:
        super().set_classes(names)
        self.text_features = class_text_features(self.backbone, self.classnames, (PHOTO_TEMPLATE,))

    def _embed(self, video):
        return F.normalize(self.proj(video_mean_features(self.backbone, video)), dim=-1)

    def forward(self, video, ids=None) -> MethodOutput:
        logits = 10.0 * self._embed(video) @ self.text_features.t()
        return MethodOutput(logits, self.open_score(logits))

    def training_step(self, batch):
        z = self._embed(batch["video"])
        if self.cfg.text == "captions":
            logits = 10.0 * z @ self.backbone.encode_texts(batch["caption"]).t()
            target = torch.arange(z.shape[0])
        else:
            logits, target = 10.0 * z @ self.text_features.t(), batch["label"]
        return {"loss": F.cross_entropy(logits, target)}


@pytest.fixture()
def make_cfg(synth_source, quick_train):
    def make(tmp_path, method="clip_zeroshot", mode="direct", epochs=1, **kw):
        return ZeroShotConfig(method=method, mode=mode, method_overrides=kw.pop("method_overrides", ["num_frames=2"]),
                              backbone=BackboneConfig(arch="ovfer-tiny-112", pretrained=None),
                              data=kw.pop("data", replace(synth_source, name="synthfer")), folds=kw.pop("folds", [1]),
                              train=quick_train(epochs), loader=LoaderConfig(batch_size=16, eval_batch_size=32),
                              results_dir=str(tmp_path / "results"), work_dir=str(tmp_path / "work"), **kw)

    return make


def test_only_zero_shot_methods_run(tmp_path, make_cfg):
    with pytest.raises(ValueError, match=r"'clip_arpl' cannot score classes.*clip_zeroshot"):
        run_zero_shot(make_cfg(tmp_path, method="clip_arpl"))
    with pytest.raises(ValueError, match="target is for mode 'captions'"):
        make_cfg(tmp_path, target=DataSource("dfew"))


def test_direct_clip_zero_shot(tmp_path, make_cfg, tiny_backbone_112):
    [res] = run_zero_shot(make_cfg(tmp_path), backbone=tiny_backbone_112)
    assert res.kind == "zero_shot" and res.protocol == "zero_shot" and res.classes == list(MAFW11)
    assert res.path == tmp_path / "results" / "zero_shot" / "synthfer" / "clip_zeroshot" / "fold_1.json"
    assert res.selection == "last" and res.timing["epochs"] == 0
    assert 0.0 <= res.metrics["uar"] <= 100.0 and len(res.metrics["per_class_recall"]) == 11
    assert res.load_scores()["pred"].shape[1] == 11


def test_captions_then_the_same_model_from_its_checkpoint(tmp_path, make_cfg, synth_source, tiny_backbone_112,
                                                         monkeypatch):
    records = synth_source.load()
    # two non-neutral training clips lose their caption (skipped, counted); neutral ones may lack one
    no_cap = [r.id for r in records if r.split == "train" and r.class_name == "anger"][:2]
    neutral = [r.id for r in records if r.split == "train" and r.class_name == "neutral"][:1]
    records = [replace(r, caption=None) if r.id in no_cap + neutral else r for r in records]
    with pytest.raises(ValueError, match="2 of .* training clips have no caption"):
        run_zero_shot(make_cfg(tmp_path, "test_linear_zs", "captions"), records=records, backbone=tiny_backbone_112)
    seen = {}
    real_fit = zero_shot.fit

    def spy(method, train, *a, **k):
        seen["train"] = list(train)
        return real_fit(method, train, *a, **k)

    monkeypatch.setattr(zero_shot, "fit", spy)
    cfg = make_cfg(tmp_path, "test_linear_zs", "captions", missing_caption="skip",
                   method_overrides=["num_frames=2", "text=captions"])
    [res] = run_zero_shot(cfg, records=records, backbone=tiny_backbone_112)
    ids = {r.id for r in seen["train"]}
    assert not ids & set(no_cap) and set(neutral) <= ids and all(r.split == "train" for r in seen["train"])
    assert res.protocol == "zero_shot_captions" and res.extra["skipped_no_caption"] == 2
    assert res.path.parent.parent.name == "synthfer" and res.timing["epochs"] == 1
    ckpt = tmp_path / "work" / "zero_shot_captions" / "synthfer" / "test_linear_zs" / "fold_{fold}" / "last.pt"
    [direct] = run_zero_shot(make_cfg(tmp_path, "test_linear_zs", "direct", checkpoint=str(ckpt)), records=records,
                             backbone=tiny_backbone_112)
    assert direct.protocol == "zero_shot" and direct.extra["checkpoint"].endswith("fold_1/last.pt")
    assert np.allclose(direct.load_scores()["pred"], res.load_scores()["pred"], atol=1e-5)


def test_cross_dataset_scores_the_targets_classes(tmp_path, make_cfg, synth_source, tiny_synthfer,
                                                  tiny_backbone_112):
    target = DataSource("dfew", {"annotation": str(tiny_synthfer / "dfew"),
                                 "video_root": str(tiny_synthfer / "videos")})
    cfg = make_cfg(tmp_path, "test_linear_zs", "captions", target=target, target_folds=[1, 2],
                   method_overrides=["num_frames=2", "text=captions"])
    few = [r for r in synth_source.load() if r.class_name in ("anger", "happiness", "contempt")]  # quick training
    [res] = run_zero_shot(cfg, records=few, backbone=tiny_backbone_112)
    assert res.protocol == "zero_shot_cross" and res.dataset == "dfew" and res.fold == 1
    assert res.classes == list(canonical_classes("dfew")) and res.extra["source"] == {"dataset": "synthfer", "fold": 1}
    per_fold = res.metrics["target_folds"]
    assert set(per_fold) == {"fold_1", "fold_2"}
    assert res.metrics["war"] == pytest.approx(np.mean([per_fold[f]["war"] for f in per_fold]))
    assert res.path.parts[-4:] == ("zero_shot_cross", "dfew", "test_linear_zs", "fold_1.json")


# -- LOCO on hand-made records with stubbed training and evaluation --------------------------------

LOCO_CLASSES = ["anger", "happiness", "sadness"]
LOCO_PRED = {"anger": [0, 1], "happiness": [1, 1, 0], "sadness": [2]}
"""Predicted class ids of each held-out class's test clips: recalls 50, 66.67, 100."""


def _records() -> list[VideoRecord]:
    out = []
    for c in LOCO_CLASSES:
        out += [VideoRecord(f"{c}{i}.mp4", (c,), "toy", "train", f"tr_{c}{i}", fold=1) for i in range(2)]
        out += [VideoRecord(f"{c}t{i}.mp4", (c,), "toy", "test", f"te_{c}{i}", fold=1)
                for i in range(len(LOCO_PRED[c]))]
    return out


def test_loco_aggregation_by_hand():
    rows = {c: (np.eye(3)[LOCO_PRED[c]], np.full(len(LOCO_PRED[c]), LOCO_CLASSES.index(c))) for c in LOCO_CLASSES}
    m = loco_report(rows, LOCO_CLASSES)
    assert m["uar"] == pytest.approx((50.0 + 200.0 / 3 + 100.0) / 3)
    assert m["war"] == pytest.approx(100.0 * 4 / 6)
    assert m["per_class_recall"] == pytest.approx([50.0, 200.0 / 3, 100.0])
    assert m["confusion"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]] and m["num_samples"] == 6


def test_loco_protocol_trains_without_k_and_resumes_per_class(tmp_path, make_cfg, tiny_backbone_112, monkeypatch):
    trained = []

    def fake_fit(method, train, *a, **k):
        trained.append((tuple(method.classnames), {r.class_name for r in train}))
        if len(trained) == 2 and not calls.get("resumed"):
            raise KeyboardInterrupt("simulated kill")
        return FitOutcome(1, 0.0)

    def fake_evaluate(method, records, *a, **k):
        assert tuple(method.classnames) == tuple(LOCO_CLASSES)  # tested against all classes
        k_name = records[0].class_name
        labels = np.array([LOCO_CLASSES.index(r.class_name) for r in records])
        return EvalOutputs(np.eye(3)[LOCO_PRED[k_name]], np.zeros(len(records)), labels, [r.id for r in records])

    calls: dict[str, bool] = {}
    monkeypatch.setattr(loco, "fit", fake_fit)
    monkeypatch.setattr(loco, "evaluate", fake_evaluate)
    cfg = make_cfg(tmp_path, mode="loco", classes=LOCO_CLASSES, data=DataSource("mafw", name="toy"))
    with pytest.raises(KeyboardInterrupt):
        run_zero_shot(cfg, records=_records(), backbone=tiny_backbone_112)
    assert not (tmp_path / "results").exists()  # the fold's result waits for every class
    calls["resumed"] = True
    [res] = run_zero_shot(cfg, records=_records(), backbone=tiny_backbone_112)
    # anger done before the kill is not retrained; happiness (killed) and sadness are
    assert [t[0] for t in trained] == [("happiness", "sadness"), ("anger", "sadness"), ("anger", "sadness"),
                                       ("anger", "happiness")]
    assert all(set(cls) == seen for cls, seen in trained)  # training clips never include k
    assert res.protocol == "loco" and res.dataset == "toy" and res.classes == LOCO_CLASSES
    assert res.metrics["uar"] == pytest.approx((50.0 + 200.0 / 3 + 100.0) / 3)
    assert res.metrics["war"] == pytest.approx(100.0 * 4 / 6)
    assert res.metrics["loco"]["happiness"] == {"n": 3, "correct": 2, "recall": pytest.approx(200.0 / 3)}
    # a finished class part from another recipe is not mixed into a re-run fold's numbers
    (tmp_path / "results").rename(tmp_path / "old_results")
    with pytest.raises(ValueError, match=r"LOCO part .*class_anger.* another config \(train.epochs: 1 -> 2\)"):
        run_zero_shot(replace(cfg, train=replace(cfg.train, epochs=2)), records=_records(), backbone=tiny_backbone_112)


def test_compound_mode_records_four_metrics(tmp_path, make_cfg, tiny_backbone_112):
    [res] = run_zero_shot(make_cfg(tmp_path, mode="compound", folds=[2]), backbone=tiny_backbone_112)
    assert res.protocol == "compound" and res.config["data"]["options"]["task"] == "compound"
    assert res.classes == list(MAFW11) + ["fear_surprise", "happiness_surprise"]
    for key in ("uar", "war", "macro_f1", "ovr_auc"):
        assert 0.0 <= res.metrics[key] <= 100.0, key
    assert res.metrics["ovr_auc_scores"] == "softmax"
    cm = np.asarray(res.metrics["confusion"])
    assert cm.shape == (13, 13) and cm[11:].sum() > 0  # compound test clips were scored
