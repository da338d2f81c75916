"""VideoClipDataset: labels, sampling, skipping, seeding, collate (SPEC §2.1–§2.5)."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ovfer.data.dataset import NoReadableClipError, VideoClipDataset, collate
from ovfer.data.records import VideoRecord
from ovfer.data.sampling import SamplerConfig
from ovfer.data.transforms import build_transform

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLASSES = ["anger", "happiness", "sadness"]


def rec(i: int, label: tuple[str, ...], n: int | None = None) -> VideoRecord:
    return VideoRecord(video=f"/fake/{i}.mp4", label=label, dataset="t", split="test", id=f"c{i}",
                       caption=f"cap {i}" if i % 2 else None, num_frames=n)


@pytest.fixture
def records():
    return [rec(0, ("happiness",)), rec(1, ("anger",)), rec(2, ("fear",)), rec(3, ("sadness",)),
            rec(4, ("anger", "disgust"))]


@pytest.fixture
def videos(fake_videos):
    return fake_videos({f"/fake/{i}.mp4": 20 + 10 * i for i in range(5)})


def frame_ids(sample) -> list[int]:
    """Frame i of a fake video is filled with i / 255 (no transform)."""
    return [round(float(v) * 255) for v in sample["video"][:, 0, 0, 0]]


def test_sample_fields_and_labels(records, videos):
    ds = VideoClipDataset(records, CLASSES, num_frames=4, sampler="tsn", transform=None, train=False, seed=0)
    s = ds[0]
    assert set(s) == {"video", "label", "index", "id", "caption"}
    assert s["video"].shape == (4, 3, 12, 16) and s["video"].dtype == torch.float32
    assert [ds[i]["label"] for i in range(5)] == [1, 0, -1, 2, -1]  # fear and the compound are not known
    assert ds.targets == [1, 0, -1, 2, -1]
    assert ds[1]["caption"] == "cap 1" and ds[0]["caption"] == ""
    assert ds[3]["id"] == "c3" and ds[3]["index"] == 3
    assert frame_ids(s) == [int(20 / 4 / 2 + k * 20 / 4) for k in range(4)]  # TSN centres


def test_compound_class_names_match(records, videos):
    ds = VideoClipDataset(records, ["anger_disgust"], num_frames=2, transform=None)
    assert [ds[i]["label"] for i in range(5)] == [-1, -1, -1, -1, 0]


def test_preset_transform_and_collate(records, videos):
    ds = VideoClipDataset(records, CLASSES, 8, "tsn", "hesp_train", train=True, seed=1, image_size=32)
    batch = collate([ds[i] for i in range(3)])
    assert batch["video"].shape == (3, 8, 3, 32, 32)
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [1, 0, -1]
    assert batch["id"] == ["c0", "c1", "c2"] and batch["caption"] == ["", "cap 1", ""]
    assert 0 <= batch["video"].min() and batch["video"].max() <= 1


def test_unreadable_clip_is_skipped_and_counted(records, fake_videos, caplog):
    fake_videos({f"/fake/{i}.mp4": 30 for i in range(5)}, broken=("/fake/1.mp4",))
    ds = VideoClipDataset(records, CLASSES, 4, transform=None)
    with caplog.at_level(logging.WARNING):
        s = ds[1]
    assert s["id"] == "c2" and s["index"] == 2  # the next readable record, deterministically
    assert ds.num_skipped == 1 and list(ds.skipped) == ["c1"]
    assert "skipping clip 'c1'" in caplog.text and "/fake/1.mp4" in caplog.text
    assert ds[1]["id"] == "c2" and ds.num_skipped == 1  # counted once
    assert "1 skipped" in ds.summary()


def test_last_record_wraps_and_all_broken_raises(fake_videos):
    recs = [rec(0, ("anger",)), rec(1, ("anger",))]
    fake_videos({"/fake/0.mp4": 30, "/fake/1.mp4": 30}, broken=("/fake/1.mp4",))
    ds = VideoClipDataset(recs, CLASSES, 4, transform=None)
    assert ds[1]["id"] == "c0"
    fake_videos({}, broken=("/fake/0.mp4", "/fake/1.mp4"))
    ds = VideoClipDataset(recs, CLASSES, 4, transform=None)
    with pytest.raises(NoReadableClipError, match="none of the 2"):
        ds[0]


def test_min_frames_skip(fake_videos):
    recs = [rec(0, ("anger",)), rec(1, ("anger",))]
    fake_videos({"/fake/0.mp4": 2, "/fake/1.mp4": 40})
    ds = VideoClipDataset(recs, CLASSES, None, SamplerConfig(name="dk_clip", num_frames=16, min_frames=3), None)
    assert ds[0]["id"] == "c1" and "fewer than" in ds.skipped["c0"]


def test_annotation_frame_count(fake_videos):
    fake_videos({"/fake/0.mp4": 64})
    r = rec(0, ("anger",), n=32)
    by_file = VideoClipDataset([r], CLASSES, 4, "dfer_clip", None)
    by_ann = VideoClipDataset([r], CLASSES, 4, "dfer_clip", None, frame_count="annotation")
    assert frame_ids(by_file[0]) == [8, 24, 40, 56]
    assert frame_ids(by_ann[0]) == [4, 12, 20, 28]


def test_seeding_by_seed_epoch_index(records, videos):
    ds = VideoClipDataset(records, CLASSES, 4, "tsn", None, train=True, seed=3)
    a = [frame_ids(ds[i]) for i in range(5)]
    assert a == [frame_ids(ds[i]) for i in range(5)]  # same epoch -> same clips
    ds.set_epoch(1)
    assert ds.epoch == 1
    assert a != [frame_ids(ds[i]) for i in range(5)]
    ds.set_epoch(0)
    assert a == [frame_ids(ds[i]) for i in range(5)]
    other = VideoClipDataset(records, CLASSES, 4, "tsn", None, train=True, seed=4)
    assert a != [frame_ids(other[i]) for i in range(5)]
    test = VideoClipDataset(records, CLASSES, 4, "window", None, train=False, seed=3)
    w0 = [frame_ids(test[i]) for i in range(5)]
    test.set_epoch(5)
    assert w0 == [frame_ids(test[i]) for i in range(5)]  # test windows fixed per (seed, sample)


def test_workers_reproduce_and_share_counts(records, fake_videos):
    fake_videos({f"/fake/{i}.mp4": 40 for i in range(5)}, broken=("/fake/3.mp4",))
    ds = VideoClipDataset(records, CLASSES, 4, "tsn", None, train=True, seed=0)
    ds.set_epoch(2)

    def ids(loader):
        return [b["video"][:, :, 0, 0, 0].mul(255).round().int().tolist() for b in loader]

    single = ids(DataLoader(ds, batch_size=2, collate_fn=collate, num_workers=0))
    fresh = VideoClipDataset(records, CLASSES, 4, "tsn", None, train=True, seed=0)
    fresh.set_epoch(2)
    multi = ids(DataLoader(fresh, batch_size=2, collate_fn=collate, num_workers=2,
                           multiprocessing_context="fork"))
    assert single == multi
    assert fresh.num_skipped == 1 and list(fresh.skipped) == ["c3"]  # seen in a worker, counted here


def test_real_frame_folder_and_cache(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from ovfer.data.cache import ClipCache

    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(12):  # frame_2 before frame_10: numeric order
        cv2.imwrite(str(folder / f"frame_{i}.png"), np.full((10, 14, 3), i * 10, np.uint8))
    r = VideoRecord(video=str(folder), label=("sadness",), dataset="t", split="test", id="x")
    ds = VideoClipDataset([r], CLASSES, 4, "tsn", None)
    vals = [round(float(v) * 255) for v in ds[0]["video"][:, 0, 0, 0]]
    assert vals == [10 * int(12 / 8 + k * 12 / 4) for k in range(4)]
    cache = ClipCache(tmp_path / "cache")
    cached = VideoClipDataset([r], CLASSES, 4, "tsn", build_transform("hesp_test", 16), cache=cache)
    first = cached[0]["video"]
    assert len(cache.keys()) == 1
    assert torch.equal(first, cached[0]["video"]) and first.shape == (4, 3, 16, 16)
    from ovfer.data.video import write_video

    write_video(tmp_path / "v.mp4", np.zeros((10, 16, 16, 3), np.uint8) + 128)
    v = VideoRecord(video=str(tmp_path / "v.mp4"), label=("anger",), dataset="t", split="test", id="v")
    sample = VideoClipDataset([v], CLASSES, 4, "tsn", None)[0]
    assert sample["video"].shape == (4, 3, 16, 16) and sample["label"] == 0
    faces = VideoClipDataset([r, r], CLASSES, 4, "tsn", None, cache=cache, cache_settings={"face": 1})
    with pytest.raises(NoReadableClipError):
        faces[0]  # face clips are never built from raw frames
    assert faces.num_skipped == 2 and "not in the clip cache" in faces.skipped["x"]


def test_plain_pickle_and_deepcopy(records, videos):
    import copy
    import pickle

    ds = VideoClipDataset(records, CLASSES, 4, "tsn", "hesp_train", train=True, seed=2, image_size=16)
    ds.set_epoch(3)
    for clone in (pickle.loads(pickle.dumps(ds)), copy.deepcopy(ds)):
        assert clone.epoch == 3
        assert torch.equal(clone[1]["video"], ds[1]["video"])
