"""Every shipped protocol YAML loads into a valid config and builds its method's config."""
from pathlib import Path

import pytest
import yaml

from ovfer.config import load_yaml
from ovfer.data.splits import get_task
from ovfer.methods.base import build_config
from ovfer.protocols.closed_set import ClosedSetConfig
from ovfer.protocols.open_set import OpenSetConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_paper_row_configs():
    names = {p.stem for p in CONFIGS}
    assert {"baseline1", "baseline1_hesp", "baseline2", "baseline2_tp", "hesp"} <= names
    assert len(CONFIGS) >= 25


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_config_is_valid(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "mode" in raw:  # zero-shot layout (EmoCLIP captions, cross-dataset, LOCO, compound)
        from ovfer.protocols.zero_shot import ZeroShotConfig

        cfg = load_yaml(ZeroShotConfig, path)
        build_config(cfg.method, None, cfg.method_overrides)
        return
    if "task" not in raw:  # closed-set layout
        cfg = load_yaml(ClosedSetConfig, path)
        build_config(cfg.method, None, cfg.method_overrides)
        return
    cfg = load_yaml(OpenSetConfig, path)
    build_config(cfg.method, None, cfg.method_overrides)
    assert get_task(cfg.task).splits()
