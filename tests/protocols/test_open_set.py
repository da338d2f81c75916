import pytest

from ovfer.backbones.clip import BackboneConfig
from ovfer.data.splits import get_task
from ovfer.protocols import open_set
from ovfer.protocols.common import LoaderConfig
from ovfer.protocols.open_set import OpenSetConfig, run_open_set
from ovfer.protocols.report import load_results, openset_table, to_markdown


@pytest.fixture()
def make_cfg(synth_source, tiny_clip_file, quick_train):
    def make(tmp_path, method="clip_arpl", indices=(0,), epochs=1, **kw):
        return _cfg(tmp_path, synth_source, tiny_clip_file, quick_train(epochs), method, indices, **kw)

    return make


def _cfg(tmp_path, synth_source, clip_file, train, method="clip_arpl", indices=(0,), **kw):
    return OpenSetConfig(method=method, method_overrides=["num_frames=2"],
                         backbone=BackboneConfig(arch="ovfer-tiny-112", pretrained=str(clip_file)),
                         task="synth11", openness=["O(8:3)"], indices=list(indices), data=synth_source,
                         train=train, loader=LoaderConfig(batch_size=8, eval_batch_size=16),
                         results_dir=str(tmp_path / "results"), work_dir=str(tmp_path / "work"), **kw)


def test_no_unknown_clip_is_trained_and_prompts_follow_label_order(tmp_path, make_cfg, monkeypatch):
    seen = {}
    real_fit = open_set.fit

    def spy(method, train_records, *a, **k):
        seen["classes"] = method.classnames
        seen["train"] = list(train_records)
        return real_fit(method, train_records, *a, **k)

    monkeypatch.setattr(open_set, "fit", spy)
    cfg = make_cfg(tmp_path, method="hesp")
    [res] = run_open_set(cfg)
    split = get_task("synth11").splits("O(8:3)", 0)[0]
    assert seen["classes"] == split.known  # text prompts are built from the label order
    assert seen["train"] and all(r.class_name in split.known for r in seen["train"])
    assert not any(r.class_name in split.unknown for r in seen["train"])
    assert res.known == list(split.known) and res.unknown == list(split.unknown)
    for k in ("auroc", "oscr", "closed_acc"):
        assert 0.0 <= res.metrics[k] <= 100.0
    assert res.metrics["num_unknown"] > 0 and res.metrics["num_known"] > 0
    assert res.load_scores()["pred_known"].shape[1] == split.K


def test_finished_splits_are_skipped_and_table_is_stable(tmp_path, make_cfg, monkeypatch):
    full = run_open_set(make_cfg(tmp_path / "a", indices=(0, 1)))
    # a run killed during its second split ...
    calls = {"n": 0}
    real = open_set.run_split

    def dies_on_second(cfg, split, records, backbone=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill")
        return real(cfg, split, records, backbone)

    monkeypatch.setattr(open_set, "run_split", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_open_set(make_cfg(tmp_path / "b", indices=(0, 1)))
    assert len(load_results(tmp_path / "b" / "results")) == 1
    # ... and re-run: the finished split is not redone, the table equals the uninterrupted one
    calls["n"] = 10
    again = run_open_set(make_cfg(tmp_path / "b", indices=(0, 1)))
    assert calls["n"] == 11
    strip = lambda rs: to_markdown([openset_table(rs, "auroc"), openset_table(rs, "oscr")])  # noqa: E731
    assert strip(again) == strip(full)
    monkeypatch.setattr(open_set, "run_split", lambda *a, **k: pytest.fail("finished split redone"))
    run_open_set(make_cfg(tmp_path / "b", indices=(0, 1)))

    # a finished split from another recipe is not passed off as this run's; a variant runs beside it
    with pytest.raises(ValueError, match=r"another config \(train.epochs: 1 -> 2\)"):
        run_open_set(make_cfg(tmp_path / "b", indices=(0,), epochs=2))
    monkeypatch.setattr(open_set, "run_split", real)
    [var] = run_open_set(make_cfg(tmp_path / "b", indices=(0,), epochs=2, variant="e2"))
    assert var.path.parent.name == "clip_arpl~e2" and var.timing["epochs"] == 2
    assert (tmp_path / "b" / "work" / "synth11" / "clip_arpl~e2").is_dir()
    assert sorted(openset_table(again + [var], "auroc").rows) == ["clip_arpl", "clip_arpl [e2]"]


@pytest.mark.parametrize("selection", ["best_on_val", "best_on_test"])
def test_selection_options_are_labelled(tmp_path, make_cfg, selection):
    cfg = make_cfg(tmp_path, selection=selection, epochs=2)
    [res] = run_open_set(cfg)
    assert res.selection == selection
    assert selection.replace("_", " ") in res.method_label
    assert res.timing["selected_epoch"] in (1.0, 2.0)
