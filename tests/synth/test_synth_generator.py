"""generate(): determinism, official annotation formats, videos that decode as stated."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ovfer.data.labels import MAFW11
from ovfer.synth import GENERATOR_VERSION, read_mp4

DFEW_ORDER = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")


def _annotation_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix in (".txt", ".csv", ".json"))


def _manifest(root: Path) -> dict:
    return json.loads((root / "synthfer.json").read_text(encoding="utf-8"))


def test_same_seed_gives_identical_files_and_frames(tiny_sets):
    a, b, _ = tiny_sets  # a: process pool, b: in-process
    files = _annotation_files(a)
    assert files == _annotation_files(b) and len(files) > 40
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    for clip in _manifest(a)["clips"]:
        np.testing.assert_array_equal(read_mp4(a / clip["video"]), read_mp4(b / clip["video"]))


def test_different_seed_differs(tiny_sets):
    a, _, c = tiny_sets
    assert (a / "mafw/compound/with_caption/set_1/test.txt").read_bytes() != \
        (c / "mafw/compound/with_caption/set_1/test.txt").read_bytes()
    assert not np.array_equal(read_mp4(a / "videos/00001.mp4"), read_mp4(c / "videos/00001.mp4"))


def _mafw_lines(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("gbk")  # must be GBK
    assert text.endswith("\n") or text == ""
    return [line.split("\t") for line in text.splitlines()]


@pytest.mark.parametrize("task", ["single", "compound"])
def test_mafw_files_parse_and_partition(tiny_sets, tiny_cfg, task):
    root = tiny_sets[0]
    man = {c["id"]: c for c in _manifest(root)["clips"]}
    expected = {i for i, c in man.items() if task == "compound" or "_" not in c["label"]}
    seen_test: Counter = Counter()
    for k in range(1, 6):
        test_ids = set()
        for split in ("test", "train"):
            rows4 = _mafw_lines(root / f"mafw/{task}/with_caption/set_{k}/{split}.txt")
            rows2 = _mafw_lines(root / f"mafw/{task}/no_caption/set_{k}/{split}.txt")
            assert [r[:2] for r in rows4] == rows2
            assert all(len(r) == 4 for r in rows4) and all(len(r) == 2 for r in rows2)
            ids = set()
            for name, label, zh, en in rows4:
                cid = name.removesuffix(".mp4")
                assert name.endswith(".mp4") and (root / "videos" / name).is_file()
                assert label == man[cid]["label"]
                parts = label.split("_")
                assert all(p in MAFW11 for p in parts) and parts == sorted(parts, key=MAFW11.index)
                assert task == "compound" or len(parts) == 1
                assert zh and not zh.isascii() and en.isascii() and len(en) > 10
                ids.add(cid)
            if split == "test":
                test_ids = ids
                seen_test.update(ids)
                per_class = Counter(man[i]["label"] for i in ids)
                assert set(per_class.values()) == {1}  # 5 clips per class, 5 folds: stratified
            else:
                assert ids.isdisjoint(test_ids) and ids | test_ids == expected
    assert set(seen_test) == expected and set(seen_test.values()) == {1}  # one test fold per clip


def test_dfew_files_parse(tiny_sets, tiny_cfg):
    root = tiny_sets[0]
    man = {c["id"]: c for c in _manifest(root)["clips"]}
    basic = {i for i, c in man.items() if c["label"] in DFEW_ORDER}
    for k in range(1, 6):
        for split in ("train", "test"):
            with open(root / f"dfew/{split}(single-labeled)/set_{k}.csv", newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            assert rows[0] == ["video_name", "label"]
            csv_ids = set()
            for name, label in rows[1:]:
                assert DFEW_ORDER[int(label) - 1] == man[name]["label"]
                assert (man[name]["fold"] == k) == (split == "test")
                csv_ids.add(name)
            lines = (root / f"dfew/lists/set_{k}_{split}.txt").read_text(encoding="utf-8").splitlines()
            list_ids = set()
            for line in lines:
                path, n, label0 = line.split(" ")
                cid = Path(path).stem
                assert (root / path).is_file() and int(n) == tiny_cfg.video.frames
                assert DFEW_ORDER[int(label0)] == man[cid]["label"]
                list_ids.add(cid)
            assert csv_ids == list_ids
            if split == "test":
                assert csv_ids <= basic


def test_every_video_decodes_as_stated(tiny_sets, tiny_cfg):
    root = tiny_sets[0]
    m = _manifest(root)
    assert m["generator"] == GENERATOR_VERSION and m["seed"] == 3 and m["config"]["seed"] == 3
    assert m["num_clips"] == len(m["clips"]) == 8 * 5 + 2 * 5
    for clip in m["clips"]:
        frames = read_mp4(root / clip["video"])
        assert frames.shape == (clip["frames"], tiny_cfg.video.height, tiny_cfg.video.width, 3)
        assert 0 <= clip["apex_frame"] < clip["frames"] and 1 <= clip["fold"] <= 5
        assert clip["caption"] and isinstance(clip["apex_aus"], dict)


def test_every_annotation_file_reads_back_through_the_adapters(tiny_sets, tiny_cfg):
    """All folds, splits, tasks and caption variants, via the registered dataset adapters."""
    from pathlib import Path

    from ovfer.data.adapters import create_dataset_records

    root = tiny_sets[0]
    n_single = len(tiny_cfg.classes) * tiny_cfg.clips_per_class
    n_compound = n_single + len(tiny_cfg.compound_classes) * tiny_cfg.clips_per_compound
    for task, total in (("single", n_single), ("compound", n_compound)):
        for captions in ("with", "no"):
            seen = []
            for fold in range(1, tiny_cfg.folds + 1):
                for split in ("train", "test"):
                    recs = create_dataset_records("mafw", annotation=str(root / "mafw"), video_root=str(root / "videos"),
                                                  fold=fold, split=split, task=task, captions=captions, strict=True)
                    assert all(Path(r.video).is_file() for r in recs)
                    assert all(bool(r.caption) == (captions == "with") for r in recs)
                    if split == "test":
                        seen += [r.id for r in recs]
            assert sorted(seen) == sorted(set(seen)) and len(seen) == total  # each clip tested exactly once
    compound = create_dataset_records("mafw", annotation=str(root / "mafw"), video_root=str(root / "videos"),
                                      fold=1, split="train", task="compound", strict=True)
    assert any(r.is_compound for r in compound)
    for fmt in ("csv", "list"):
        recs = create_dataset_records("dfew", annotation=str(root / "dfew"), video_root=str(root / "videos" if fmt == "csv" else root),
                                      fold=1, split="train", format=fmt, strict=True)
        assert recs and all(r.label[0] in tiny_cfg.classes[:7] or r.label[0] in tiny_cfg.classes for r in recs)
        assert all(Path(r.video).exists() for r in recs)


def test_encoding_does_not_depend_on_the_float_environment(tiny_cfg, tmp_path):
    """x264's mbtree gave different bytes after torch changed the FP state; write_mp4 must not."""
    import torch

    from ovfer.synth import write_mp4
    from ovfer.synth.generator import make_clip, plan_clips

    plan = plan_clips(tiny_cfg, 3)
    clips = [make_clip(tiny_cfg, 3, i, label, cid).frames for i, (cid, label) in enumerate(plan[:12])]
    before = [write_mp4(tmp_path / f"a{i}.mp4", f).read_bytes() for i, f in enumerate(clips)]
    old = torch.set_flush_denormal(True)
    try:
        after = [write_mp4(tmp_path / f"b{i}.mp4", f).read_bytes() for i, f in enumerate(clips)]
    finally:
        torch.set_flush_denormal(False)
    assert old and before == after
