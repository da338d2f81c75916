"""The README's main job, end to end at toy size (same code path, tiny numbers)."""
import json
import subprocess
import sys

from ovfer.backbones.pretrain import PretrainConfig
from ovfer.protocols.demo import DemoConfig, run_demo


def test_demo_end_to_end_then_predict(tmp_path, quick_train):
    from tests_support import TINY_SYNTH

    pre = PretrainConfig(arch="ovfer-tiny-112", num_clips=44, epochs=1, batch_size=22, eval_clips=44,
                         time_budget_s=None, workers=1, synth_overrides=["video.frames=3", "video.width=64",
                                                                         "video.height=64", "video.supersample=2"])
    cfg = DemoConfig(out=str(tmp_path / "demo"), synth_overrides=list(TINY_SYNTH), pretrain=pre, indices=[0],
                     openness="O(8:3)", num_frames=2, train=quick_train(1))
    summary = run_demo(cfg)
    out = tmp_path / "demo"
    assert set(summary["results"]) == {"clip_zeroshot", "clip_arpl", "hesp"}
    for m in summary["results"].values():
        assert 0 <= m["auroc"] <= 100 and 0 <= m["oscr"] <= 100
    table = (out / "report" / "synth11_openset.md").read_text()
    assert "hesp" in table and "clip_arpl" in table and "O(8:3)" in table
    pngs = list((out / "report").rglob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    report = json.loads((out / "clip" / "pretrain_report.json").read_text())
    assert "linear_probe_uar_7" in report["eval"]
    video = sorted((out / "synthfer" / "videos").glob("*.mp4"))[0]
    r = subprocess.run([sys.executable, "-m", "ovfer.cli", "predict", "--aligned", "--checkpoint",
                        summary["model"], str(video)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "threshold" in r.stdout
    from ovfer.protocols.data_source import DataSource
    from ovfer.protocols.deploy import EvalJobConfig, evaluate_checkpoint

    src = DataSource("mafw", {"annotation": str(out / "synthfer" / "mafw"), "video_root": str(out / "synthfer" / "videos"),
                              "fold": 1, "task": "single"}, splits=("test",))
    res = evaluate_checkpoint(EvalJobConfig(checkpoint=summary["model"], data=src, device="cpu"))
    assert res["num_unknown"] > 0 and 0 <= res["open_set"]["auroc"] <= 100
    assert 0 <= res["unknown_rejected"] <= 1 and len(res["classes"]) == 8
    # a second run finds every stage finished and redoes nothing expensive
    again = run_demo(cfg)
    assert again["timing"]["pretrain_s"] < 1.0 and again["timing"]["hesp_s"] < 10.0
