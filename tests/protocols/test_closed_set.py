"""Closed-set protocol (SPEC §5.1) on tiny SynthFER: folds, seeds, resuming, selection, heads."""
from __future__ import annotations

import zlib
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ovfer.backbones.clip import BackboneConfig
from ovfer.data.labels import MAFW11
from ovfer.methods.base import ClipMethodConfig, DataPreset, Method, MethodOutput, register_method
from ovfer.methods.clip_zeroshot import ClipZeroShot
from ovfer.metrics import closed_set_report
from ovfer.protocols import closed_set
from ovfer.protocols.closed_set import ClosedSetConfig, run_closed_set
from ovfer.protocols.common import LoaderConfig
from ovfer.protocols.cross import cross_table
from ovfer.protocols.report import closed_table
from ovfer.protocols.runs import plan_folds
from ovfer.protocols.data_source import DataSource

TRUTH: dict[str, str] = {}
"""Clip id -> class name, filled by the test using the scripted stub."""
SCHEDULE = (0.0, 1.0, 0.5)
"""Share of test clips the scripted stub gets right after each epoch."""


def _right(clip_id: str, quality: float) -> bool:
    return zlib.crc32(clip_id.encode()) % 1000 < quality * 1000


@register_method("test_scripted")
class Scripted(Method):
    """Ignores the video: after epoch e it is right on a fixed, id-hashed share SCHEDULE[e] of clips."""

    config_cls = ClipMethodConfig
    extra_state_keys = ("quality",)

    def __init__(self, cfg: ClipMethodConfig, backbone=None) -> None:
        super().__init__(cfg)
        self.w = nn.Parameter(torch.zeros(1))
        self.register_buffer("quality", torch.zeros(()))

    @property
    def data_preset(self) -> DataPreset:
        return DataPreset(num_frames=1, image_size=32)

    def on_epoch_start(self, epoch: int) -> None:
        self.quality.fill_(SCHEDULE[epoch])

    def forward(self, video, ids=None) -> MethodOutput:
        k = len(self.classnames)
        pred = []
        for i in ids:
            y = self.classnames.index(TRUTH[i])
            pred.append(y if _right(i, float(self.quality)) else (y + 1) % k)
        logits = F.one_hot(torch.tensor(pred), k).float() + 0.0 * self.w
        return MethodOutput(logits, self.open_score(logits))

    def training_step(self, batch):
        return {"loss": self.w.sum() * 0.0}


@register_method("test_two_heads")
class TwoHeads(ClipZeroShot):
    """CLIP zero-shot whose "global" head is its logits and "local" head their negation."""

    heads = ("global", "local")

    def forward(self, video, ids=None) -> MethodOutput:
        out = super().forward(video, ids)
        out.extras = {"global": out.logits, "local": -out.logits}
        return out


@pytest.fixture()
def make_cfg(synth_source, quick_train):
    def make(tmp_path, method="clip_arpl", folds=(1,), seeds=(0,), epochs=1, **kw):
        return ClosedSetConfig(method=method, method_overrides=[] if method == "test_scripted" else ["num_frames=2"],
                               backbone=BackboneConfig(arch="ovfer-tiny-112", pretrained=None),
                               data=replace(synth_source, name="synthfer"), folds=list(folds), seeds=list(seeds),
                               train=quick_train(epochs), loader=LoaderConfig(batch_size=16, eval_batch_size=32),
                               results_dir=str(tmp_path / "results"), work_dir=str(tmp_path / "work"), **kw)

    return make


def test_folds_are_the_datasets_official_ones():
    assert plan_folds(DataSource("mafw"), None) == [1, 2, 3, 4, 5]
    assert plan_folds(DataSource("dfew"), None) == [1, 2, 3, 4, 5]
    assert plan_folds(DataSource("afew"), None) == [None]
    assert plan_folds(DataSource("mafw"), [3]) == [3]
    with pytest.raises(ValueError, match="empty"):
        plan_folds(DataSource("mafw"), [])


def test_two_folds_metrics_resume_and_seeds(tmp_path, make_cfg, tiny_backbone_112, monkeypatch):
    cfg = make_cfg(tmp_path, folds=(1, 2))
    results = run_closed_set(cfg, backbone=tiny_backbone_112)
    assert [r.fold for r in results] == [1, 2]
    root = tmp_path / "results" / "closed_set" / "synthfer" / "clip_arpl"
    assert (root / "fold_1.json").is_file() and (root / "fold_2.json").is_file()
    for r in results:
        assert r.kind == "closed_set" and r.protocol == "closed_set" and r.classes == list(MAFW11)
        m = r.metrics
        assert 0.0 <= m["war"] <= 100.0 and 0.0 <= m["uar"] <= 100.0 and 0.0 <= m["macro_f1"] <= 100.0
        assert len(m["per_class_recall"]) == 11 and np.asarray(m["confusion"]).shape == (11, 11)
        scores = r.load_scores()
        assert closed_set_report(scores["pred"], scores["labels"], 11)["war"] == m["war"]
        assert r.timing["epochs"] == 1 and r.timing["test_clips"] == np.asarray(m["confusion"]).sum()
    table = closed_table(results, "war")
    assert table.value("clip_arpl", "mean") == pytest.approx(np.mean([r.metrics["war"] for r in results]))

    # finished folds are read back, never redone
    monkeypatch.setattr(closed_set, "run_fold", lambda *a, **k: pytest.fail("finished fold redone"))
    again = run_closed_set(make_cfg(tmp_path, folds=(1, 2)), backbone=tiny_backbone_112)
    assert [r.metrics for r in again] == [r.metrics for r in results]


def test_seeds_do_not_overwrite_each_other(tmp_path, make_cfg, tiny_backbone_112, monkeypatch):
    [first] = run_closed_set(make_cfg(tmp_path, method="clip_zeroshot"), backbone=tiny_backbone_112)
    calls = []
    real = closed_set.run_fold

    def spy(cfg, fold, seed, records, backbone=None):
        calls.append((fold, seed))
        return real(cfg, fold, seed, records, backbone)

    monkeypatch.setattr(closed_set, "run_fold", spy)
    both = run_closed_set(make_cfg(tmp_path, method="clip_zeroshot", seeds=(0, 1)), backbone=tiny_backbone_112)
    assert calls == [(1, 1)]
    assert [(r.fold, r.seed) for r in both] == [(1, 0), (1, 1)]
    root = tmp_path / "results" / "closed_set" / "synthfer" / "clip_zeroshot"
    assert sorted(p.name for p in root.glob("*.json")) == ["fold_1.json", "fold_1_seed1.json"]
    assert both[0].metrics == first.metrics and both[1].path == root / "fold_1_seed1.json"


def test_best_on_test_keeps_the_epoch_with_best_test_war(tmp_path, make_cfg, synth_source, tiny_backbone_112):
    records = synth_source.load()
    TRUTH.update({r.id: r.class_name for r in records})
    test_ids = [r.id for r in records if r.split == "test"]
    cfg = make_cfg(tmp_path, method="test_scripted", epochs=3, selection="best_on_test")
    [res] = run_closed_set(cfg, backbone=tiny_backbone_112)
    assert res.selection == "best_on_test" and res.method_label == "test_scripted (best on test)"
    assert res.path.parent.name == "test_scripted@best_on_test"
    assert res.timing["selected_epoch"] == 2
    assert res.metrics["war"] == pytest.approx(100.0) and res.metrics["uar"] == pytest.approx(100.0)
    last = res.metrics["last_epoch"]
    assert last["epoch"] == 3
    assert last["war"] == pytest.approx(100.0 * np.mean([_right(i, SCHEDULE[2]) for i in test_ids]))
    assert last["war"] < 100.0
    # the default rule reports the last epoch
    [plain] = run_closed_set(make_cfg(tmp_path, method="test_scripted", epochs=3), backbone=tiny_backbone_112)
    assert plain.metrics["war"] == pytest.approx(last["war"]) and "last_epoch" not in plain.metrics


def test_every_head_is_scored(tmp_path, make_cfg, tiny_backbone_112):
    [res] = run_closed_set(make_cfg(tmp_path, method="test_two_heads"), backbone=tiny_backbone_112)
    heads = res.metrics["heads"]
    assert set(heads) == {"global", "local"}
    assert heads["global"]["war"] == res.metrics["war"] and heads["global"]["uar"] == res.metrics["uar"]
    scores = res.load_scores()
    assert np.allclose(scores["pred_local"], -scores["pred"])
    assert heads["local"] == closed_set_report(scores["pred_local"], scores["labels"], 11)


def test_a_variant_gets_its_own_files_and_a_changed_config_is_refused(tmp_path, make_cfg, tiny_backbone_112):
    [plain] = run_closed_set(make_cfg(tmp_path, method="clip_zeroshot"), backbone=tiny_backbone_112)
    plain_file = plain.path.read_text()
    # another method option into the same folder: reusing the plain file would report its numbers
    other = make_cfg(tmp_path, method="clip_zeroshot")
    other = replace(other, method_overrides=["num_frames=3"])
    with pytest.raises(ValueError, match=r"another config \(method_config.num_frames: 2 -> 3\).*variant"):
        run_closed_set(other, backbone=tiny_backbone_112)
    # what does not change the computation does not count: where files go, the spelling of an
    # override or a path, and training settings of a run that trained nothing (clip_zeroshot)
    base = make_cfg(tmp_path, method="clip_zeroshot")
    video_root = Path(base.data.options["video_root"])
    respelled = replace(base.data, options={**base.data.options,
                                            "video_root": str(video_root.parent / "." / video_root.name)})
    same = replace(base, work_dir=str(tmp_path / "elsewhere"), method_overrides=["num_frames=02"], data=respelled,
                   train=replace(base.train, epochs=9))
    assert run_closed_set(same, backbone=tiny_backbone_112)[0].metrics == plain.metrics
    [var] = run_closed_set(replace(other, variant="f3"), backbone=tiny_backbone_112)
    root = tmp_path / "results" / "closed_set" / "synthfer"
    assert var.path == root / "clip_zeroshot~f3" / "fold_1.json" and var.variant == "f3"
    assert var.method_label == "clip_zeroshot [f3]" and var.config["method_config"]["num_frames"] == 3
    assert plain.path.read_text() == plain_file
    table = cross_table([plain, var])
    assert table.rows == ["Baseline 1", "Baseline 1 [f3]"]
    assert table.value("Baseline 1 [f3]", "closed-set UAR") == pytest.approx(var.metrics["uar"])
    with pytest.raises(ValueError, match="variant 'a b'"):
        replace(other, variant="a b")
