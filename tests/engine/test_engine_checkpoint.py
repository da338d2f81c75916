"""ovfer.engine.checkpoint: atomic writes, weights_only loads, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ovfer.engine import checkpoint as ck
from ovfer.engine.checkpoint import (CheckpointError, CheckpointManager, load_checkpoint, load_safetensors,
                                     save_checkpoint, save_safetensors)
from ovfer.engine.seed import capture_rng_state

CLASSES = ["anger", "happiness", "sadness", "surprise", "fear", "disgust", "neutral"]


class Arbitrary:
    """A class a weights_only load must refuse to unpickle."""

    def __init__(self) -> None:
        self.payload = "anything"


def _state(**kw: object) -> dict:
    base = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "global_step": 30,
            "config": {"train": {"epochs": 5, "optim": {"lr": 0.01}}, "method": {"num_frames": 8}},
            "classnames": CLASSES, "method": "hesp", "arch": "ViT-B-32",
            "rng": [capture_rng_state({"loader": torch.Generator().manual_seed(1)})],
            "extra": {"threshold": 0.42}}
    base.update(kw)
    return base


def test_roundtrip_restores_everything(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a.pt", _state())
    st = load_checkpoint(path, expected_method="hesp", expected_classes=CLASSES, expected_arch="ViT-B-32")
    assert torch.equal(st["model"]["w"], torch.arange(6.0).reshape(2, 3))
    assert st["config"]["train"]["optim"]["lr"] == 0.01  # JSON string parsed back
    assert st["classnames"] == CLASSES and st["extra"] == {"threshold": 0.42}
    assert st["format"] == "ovfer-checkpoint" and "ovfer_version" in st
    assert isinstance(torch.load(path, weights_only=True)["config"], str)  # stored as JSON


@pytest.mark.parametrize("keep", [10, 0.5, 0.98])
def test_truncated_file_raises_clear_error(tmp_path: Path, keep: float) -> None:
    path = save_checkpoint(tmp_path / "t.pt", _state())
    data = path.read_bytes()
    path.write_bytes(data[: int(keep) if keep >= 1 else int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    assert "Traceback" not in str(err.value)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_pickled_object_is_refused_as_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"x": Arbitrary(), "format": "ovfer-checkpoint"}, path)
    with pytest.raises(CheckpointError, match="unsafe") as err:
        load_checkpoint(path)
    assert "Arbitrary" in str(err.value) and str(path) in str(err.value)


def test_non_ovfer_file_is_rejected(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not an ovfer checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_class_count_mismatch_names_both_counts(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", _state())
    with pytest.raises(CheckpointError, match=r"has 7 classes.*expected 5 classes"):
        load_checkpoint(path, expected_classes=CLASSES[:5])


def test_class_name_method_and_arch_mismatch(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", _state())
    swapped = [CLASSES[1], CLASSES[0], *CLASSES[2:]]
    with pytest.raises(CheckpointError, match=r"'anger' vs 'happiness'"):
        load_checkpoint(path, expected_classes=swapped)
    with pytest.raises(CheckpointError, match=r"backbone architecture is 'ViT-B-32', expected 'ViT-L-14'"):
        load_checkpoint(path, expected_arch="ViT-L-14")
    with pytest.raises(CheckpointError, match=r"method 'hesp', expected 'dk_clip'"):
        load_checkpoint(path, expected_method="dk_clip")


def test_unsafe_value_is_refused_at_save_time(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"state\['extra'\]\['obj'\].*Arbitrary"):
        save_checkpoint(tmp_path / "x.pt", _state(extra={"obj": Arbitrary()}))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_never_leaves_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "last.pt"
    save_checkpoint(target, _state(epoch=1))
    good = target.read_bytes()

    def failing_save(obj: object, fh: object) -> None:
        fh.write(b"PK\x03\x04 half a checkpoint")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, _state(epoch=2))
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "new.pt", _state(epoch=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp files, no new.pt
    assert target.read_bytes() == good
    monkeypatch.undo()
    assert load_checkpoint(target)["epoch"] == 1


def test_safetensors_roundtrip_and_corruption(tmp_path: Path) -> None:
    w = {"ctx": torch.randn(3, 4), "patch": torch.zeros(2, 2)[:, :1]}  # non-contiguous view
    path = save_safetensors(tmp_path / "w.safetensors", w, {"method": "hesp", "classnames": CLASSES})
    tensors, meta = load_safetensors(path)
    assert torch.equal(tensors["ctx"], w["ctx"]) and tensors["patch"].shape == (2, 1)
    assert meta["method"] == "hesp" and json.loads(meta["classnames"]) == CLASSES
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="w.safetensors"):
        load_safetensors(path)


def test_manager_keeps_last_n_and_best(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=2)
    for epoch in range(1, 5):
        mgr.save(_state(epoch=epoch), epoch, is_best=epoch == 2)
    assert [p.name for p in mgr.epoch_paths()] == ["epoch_0003.pt", "epoch_0004.pt"]
    assert load_checkpoint(mgr.last_path)["epoch"] == 4
    assert load_checkpoint(mgr.best_path)["epoch"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_manager_drops_stale_files_of_an_abandoned_run(tmp_path: Path) -> None:
    old = CheckpointManager(tmp_path, keep_last=2)
    for epoch in (9, 10):
        old.save(_state(epoch=epoch), epoch)
    CheckpointManager(tmp_path, keep_last=2).save(_state(epoch=1), 1)  # a fresh run in the same dir
    assert [p.name for p in old.epoch_paths()] == ["epoch_0001.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
