"""default.yaml documents exactly the dataclass defaults; presets and validation."""
from __future__ import annotations

from importlib import resources

import pytest
import yaml

from ovfer.config import ConfigError, to_dict
from ovfer.synth import SynthConfig, load_synth_config, plan_clips


def test_default_yaml_equals_dataclass_defaults():
    with resources.files("ovfer.synth").joinpath("default.yaml").open("r", encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert to_dict(load_synth_config()) == to_dict(SynthConfig())
    assert set(data) == set(to_dict(SynthConfig()))  # every top-level field is written out
    for section, values in data.items():
        if isinstance(values, dict) and section != "hair_styles":
            assert set(values) == set(to_dict(SynthConfig())[section]), section


def test_presets_and_overrides():
    hard = load_synth_config("hard")
    default = load_synth_config()
    assert hard.expression.apex_intensity[1] < default.expression.apex_intensity[1]
    assert hard.pose.yaw_sd > default.pose.yaw_sd
    scene = load_synth_config("scene", ["video.frames=4"])
    assert scene.framing.mode == "scene" and scene.video.frames == 4


@pytest.mark.parametrize("bad", [["classes=[anger,joy]"], ["compound_classes=[surprise_fear]"],
                                 ["classes=[anger_disgust]"], ["video.width=113"], ["nope=1"]])
def test_invalid_configs_raise(bad):
    with pytest.raises(ConfigError):
        load_synth_config(None, bad)


def test_missing_file_raises():
    with pytest.raises(ConfigError):
        load_synth_config("/no/such/synth.yaml")


def test_default_set_size_and_plan():
    cfg = load_synth_config()
    plan = plan_clips(cfg, 0)
    assert len(plan) == 11 * 24 + 9 * 8 == 336
    assert plan == plan_clips(cfg, 0) and plan != plan_clips(cfg, 1)
    assert [cid for cid, _ in plan][:2] == ["00001", "00002"]
