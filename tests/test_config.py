"""ovfer.config.config_diff: what makes two runs' configs differ."""
from __future__ import annotations

from ovfer.config import config_diff


def test_diff_names_dotted_keys_with_both_values():
    old = {"method": "emoclip", "train": {"epochs": 12, "optim": {"lr": 1e-3}}, "method_overrides": ["a=1"]}
    new = {"method": "emoclip", "train": {"epochs": 30, "optim": {"lr": 1e-3}}, "method_overrides": ["a=2"]}
    assert config_diff(old, new) == {"method_overrides": (["a=1"], ["a=2"]), "train.epochs": (12, 30)}


def test_tuples_equal_lists_and_one_sided_keys_are_not_compared():
    # a file written before an option existed still matches a config that leaves it at its default
    old = {"folds": (1, 2), "train": {"epochs": 12}}
    new = {"folds": [1, 2], "train": {"epochs": 12, "new_option": True}, "variant": ""}
    assert config_diff(old, new) == {}


def test_ignored_keys_and_prefixes():
    old = {"results_dir": "a", "train": {"device": "cpu", "progress": True, "epochs": 1}, "loader": {"workers": 0}}
    new = {"results_dir": "b", "train": {"device": "cuda", "progress": False, "epochs": 2}, "loader": {"workers": 4}}
    assert config_diff(old, new, ("results_dir", "train.device", "train.progress", "loader")) == {"train.epochs": (1, 2)}
    # a prefix matches whole path components only
    assert config_diff({"trainer": 1}, {"trainer": 2}, ("train",)) == {"trainer": (1, 2)}


def test_a_mapping_against_a_value_is_a_difference():
    assert config_diff({"a": {"b": 1}}, {"a": None}) == {"a": ({"b": 1}, None)}


def test_paths_compare_by_the_file_they_name(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "clip.safetensors").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    old = {"backbone": {"pretrained": str(tmp_path / "runs" / "clip.safetensors")}}
    assert config_diff(old, {"backbone": {"pretrained": "runs/./clip.safetensors"}}, paths=True) == {}
    assert config_diff(old, {"backbone": {"pretrained": "runs/clip.safetensors"}}) != {}  # off by default
    other = {"backbone": {"pretrained": "runs/other.safetensors"}}  # another (missing) file stays different
    assert list(config_diff(old, other, paths=True)) == ["backbone.pretrained"]
