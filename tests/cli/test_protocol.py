"""``ovfer protocol``: protocol choice, --fold/--seed/--text-bank, one zero-shot run end to end."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import pytest
import yaml

from ovfer.cli import protocol as cli_protocol
from ovfer.cli.__main__ import main
from ovfer.cli._common import text_bank_override
from ovfer.methods.base import register_method
from ovfer.methods.clip_zeroshot import ClipZeroShot, ClipZeroShotConfig


@dataclass
class BankedConfig(ClipZeroShotConfig):
    text_bank: str | None = None


@register_method("test_banked")
class Banked(ClipZeroShot):
    config_cls = BankedConfig


def test_protocol_is_inferred_from_config_keys():
    infer = cli_protocol.infer_protocol
    assert infer({"mode", "data"}) == "zero_shot"
    assert infer({"task", "openness"}) == "open_set"
    assert infer({"folds", "seeds", "data"}) == "closed_set"
    assert infer({"method"}) == "open_set"


def test_text_bank_becomes_a_method_override(tmp_path):
    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps({"descriptions": {"anger": "brows down"}}))
    assert text_bank_override("test_banked", bank) == f'text_bank="{bank}"'
    with pytest.raises(ValueError, match=r"'clip_zeroshot' has no text_bank option.*test_banked"):
        text_bank_override("clip_zeroshot", bank)
    args = argparse.Namespace(config=None, overrides=[], method="test_banked", task=None, mode="direct",
                              results=None, openness=None, fold=[2, 3], seed=[0, 1], text_bank=bank)
    cfg = cli_protocol._config("zero_shot", args)
    assert cfg.folds == [2, 3] and cfg.seeds == [0, 1] and cfg.method_overrides[-1].startswith("text_bank=")
    args.mode = None
    with pytest.raises(ValueError, match="--fold applies to protocol closed_set / zero_shot, not open_set"):
        cli_protocol._config("open_set", args)


def test_zero_shot_run_from_the_command_line(tmp_path, tiny_synthfer, tiny_clip_file, capsys):
    config = {"method": "clip_zeroshot", "mode": "direct", "method_overrides": ["num_frames=2"],
              "backbone": {"arch": "ovfer-tiny-112", "pretrained": str(tiny_clip_file)},
              "data": {"adapter": "mafw", "name": "synthfer",
                       "options": {"annotation": str(tiny_synthfer / "mafw"),
                                   "video_root": str(tiny_synthfer / "videos"), "task": "single"}},
              "train": {"device": "cpu", "progress": False}, "loader": {"eval_batch_size": 32},
              "results_dir": str(tmp_path / "results"), "work_dir": str(tmp_path / "work")}
    path = tmp_path / "zs.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["protocol", "--config", str(path), "--fold", "3"]) == 0
    out = capsys.readouterr().out
    assert "zero_shot/synthfer fold_3: WAR" in out
    assert (tmp_path / "results" / "zero_shot" / "synthfer" / "clip_zeroshot" / "fold_3.json").is_file()
    assert main(["protocol", "--config", str(path), "--text-bank", str(path)]) == 1
    assert "has no text_bank option" in capsys.readouterr().err
