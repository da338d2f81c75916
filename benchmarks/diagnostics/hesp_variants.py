"""HESP variants on synth11 O(6:5) splits with the demo's data, CLIP and recipe (results under /tmp/hdiag).

Usage (repository root): python benchmarks/diagnostics/hesp_variants.py 0 "default:" "step0.2:prompt_step=0.196" "novp:visual_prompt=false"
(first argument: split indices; then name:override;override pairs)
"""
import sys, time, logging
from ovfer.config import load_yaml
from ovfer.protocols.open_set import OpenSetConfig, run_open_set
from ovfer.config import override
logging.basicConfig(level=logging.WARNING)
variants = [v.split(":") for v in sys.argv[2:]]
idx = [int(i) for i in sys.argv[1].split(",")]
for name, ov in variants:
    cfg = load_yaml(OpenSetConfig, "configs/demo/synth11_all_openness.yaml")
    cfg = override(cfg, ["method=hesp", f"results_dir=/tmp/hdiag/{name}", f"work_dir=/tmp/hdiag/work_{name}"])
    cfg.openness = ["O(6:5)"]; cfg.indices = idx
    cfg.method_overrides = ["num_frames=4"] + [o for o in ov.split(";") if o]
    t = time.time()
    rs = run_open_set(cfg)
    for r in rs:
        print(f"{name:10s} split {r.split_index}: AUROC {r.metrics['auroc']:.1f} OSCR {r.metrics['oscr']:.1f} acc {r.metrics['closed_acc']:.1f} ({time.time()-t:.0f}s)", flush=True)
