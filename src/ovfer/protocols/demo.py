"""The main job on embedded data (README's first command), each stage resumable:

SynthFER -> small CLIP pretrained on a separate SynthFER seed -> Baseline 1, Baseline 2 and
HESP over the splits of ``synth11`` at one openness -> report tables and figures -> a
deployable HESP checkpoint for ``ovfer predict``. Sizes are chosen to finish in about
15 minutes on 2 CPU cores; every knob is a field here.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ovfer.backbones.clip import BackboneConfig
from ovfer.backbones.pretrain import PretrainConfig
from ovfer.engine.optim import OptimConfig, SchedulerConfig
from ovfer.engine.trainer import TrainConfig
from ovfer.protocols.common import LoaderConfig
from ovfer.protocols.data_source import DataSource

log = logging.getLogger(__name__)


def _demo_train() -> TrainConfig:
    # HESP's recipe (SGD 0.01, momentum 0.9, wd 1e-4, x0.1 steps) on a short schedule.
    return TrainConfig(epochs=12, optim=OptimConfig(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4),
                       scheduler=SchedulerConfig(name="step", step_size=8, gamma=0.1), device="cpu",
                       progress=False, log_every=5)


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    synth_config: str | None = None
    synth_overrides: list[str] = field(default_factory=list)
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(time_budget_s=240.0))
    methods: list[str] = field(default_factory=lambda: ["clip_zeroshot", "clip_arpl", "hesp"])
    task: str = "synth11"
    openness: str = "O(6:5)"
    indices: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    fold: int = 1
    num_frames: int = 4
    """Frames per video for every method in the demo (the paper uses 8; CPU time)."""
    train: TrainConfig = field(default_factory=_demo_train)
    loader: LoaderConfig = field(default_factory=lambda: LoaderConfig(batch_size=32, eval_batch_size=32))
    export_hesp: bool = True


def run_demo(cfg: DemoConfig) -> dict:
    """Run every stage that has not finished yet; returns a summary (also written as JSON)."""
    from ovfer.backbones.pretrain import pretrain_clip
    from ovfer.protocols.deploy import TrainJobConfig, train_and_export
    from ovfer.protocols.open_set import OpenSetConfig, run_open_set
    from ovfer.protocols.report import write_report
    from ovfer.synth import generate, load_synth_config

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}
    t = time.perf_counter()
    synth_dir = out / "synthfer"
    if not (synth_dir / "synthfer.json").exists():
        generate(load_synth_config(cfg.synth_config, cfg.synth_overrides), synth_dir)
    timing["synth_s"] = time.perf_counter() - t
    t = time.perf_counter()
    clip_path = out / "clip" / "clip.safetensors"
    if not clip_path.exists():
        pretrain_clip(cfg.pretrain, out / "clip")
    timing["pretrain_s"] = time.perf_counter() - t
    backbone = BackboneConfig(arch=cfg.pretrain.arch, pretrained=str(clip_path.resolve()))
    data = DataSource("mafw", {"annotation": str(synth_dir / "mafw"), "video_root": str(synth_dir / "videos"),
                               "fold": cfg.fold, "task": "single"})
    records = data.load()
    results = {}
    for method in cfg.methods:
        t = time.perf_counter()
        ocfg = OpenSetConfig(method=method, method_overrides=[f"num_frames={cfg.num_frames}"], backbone=backbone,
                             task=cfg.task, openness=[cfg.openness], indices=list(cfg.indices), data=data,
                             train=cfg.train, loader=cfg.loader, results_dir=str(out / "results"),
                             work_dir=str(out / "work"))
        res = run_open_set(ocfg, records)
        timing[f"{method}_s"] = time.perf_counter() - t
        results[method] = {k: sum(r.metrics[k] for r in res) / len(res) for k in ("auroc", "oscr", "closed_acc")}
    t = time.perf_counter()
    written = write_report(out / "results", out / "report")
    timing["report_s"] = time.perf_counter() - t
    summary = {"results": results, "timing": timing, "report": str(out / "report"),
               "tables": [str(p) for p in written if p.suffix == ".md"]}
    if cfg.export_hesp and "hesp" in cfg.methods:
        t = time.perf_counter()
        model = out / "hesp.pt"
        if not model.exists():
            job = TrainJobConfig(method="hesp", method_overrides=[f"num_frames={cfg.num_frames}"], backbone=backbone,
                                 data=data, task=cfg.task, split=f"{cfg.openness}_{cfg.indices[0]}",
                                 train=replace(cfg.train), loader=cfg.loader,
                                 work_dir=str(out / "work" / cfg.task / "hesp" / f"{cfg.openness}_{cfg.indices[0]}"),
                                 output=str(model))
            # same work folder as the protocol's run of this split: its finished last.pt is
            # resumed (no epoch left to train), so only calibration and export run here
            train_and_export(job, records)
        summary["model"] = str(model)
        timing["export_s"] = time.perf_counter() - t
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
