"""``ovfer protocol``: one method through a whole protocol, resumable (finished runs are skipped)."""
from __future__ import annotations

import argparse
from typing import Any

from ovfer.cli._common import add_config_args, add_text_bank_arg, config_keys, load_config, text_bank_override

PROTOCOLS = ("open_set", "closed_set", "zero_shot")

_EPILOG = """\
protocols:
  open_set    OV-FER splits x opennesses of a task (SPEC 5.3): OpenSetConfig
  closed_set  train/test over a dataset's folds x seeds (SPEC 5.1): ClosedSetConfig
  zero_shot   a zero-shot mode (direct, captions, loco, compound) over folds x seeds (SPEC 5.2): ZeroShotConfig

Without --protocol the config's keys (and --mode/--task/--openness/--fold) decide:
'mode' -> zero_shot; 'task', 'openness' or 'indices' -> open_set; 'folds', 'seeds' or
'classes' -> closed_set; none of these -> open_set.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protocol", help="run a method through a protocol (open-set, closed-set, zero-shot), resumable",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--protocol", choices=PROTOCOLS, help="protocol to run (default: inferred from the config)")
    p.add_argument("--method", help="method name (overrides the config)")
    p.add_argument("--mode", choices=["direct", "captions", "loco", "compound"], help="zero-shot mode")
    p.add_argument("--task", help="open-set task name, e.g. synth11, mafw11, afew7")
    p.add_argument("--openness", action="append", help="open-set openness tag such as 'O(8:3)' (repeatable)")
    p.add_argument("--fold", type=int, action="append", help="closed-set/zero-shot fold to run (repeatable)")
    p.add_argument("--seed", type=int, action="append",
                   help="seed (repeatable for closed-set/zero-shot; one value for open-set)")
    add_text_bank_arg(p)
    p.add_argument("--results", help="results directory")


def infer_protocol(keys: set[str]) -> str:
    """The protocol a config's keys belong to (see the epilog)."""
    if "mode" in keys:
        return "zero_shot"
    if keys & {"task", "openness", "indices"}:
        return "open_set"
    if keys & {"folds", "seeds", "classes"}:
        return "closed_set"
    return "open_set"


def _config(protocol: str, args: argparse.Namespace) -> Any:
    from ovfer.protocols.closed_set import ClosedSetConfig
    from ovfer.protocols.open_set import OpenSetConfig
    from ovfer.protocols.zero_shot import ZeroShotConfig

    cls = {"open_set": OpenSetConfig, "closed_set": ClosedSetConfig, "zero_shot": ZeroShotConfig}[protocol]
    only = {"task": ("open_set",), "openness": ("open_set",), "mode": ("zero_shot",),
            "fold": ("closed_set", "zero_shot")}
    for opt, allowed in only.items():
        if getattr(args, opt) and protocol not in allowed:
            raise ValueError(f"--{opt} applies to protocol {' / '.join(allowed)}, not {protocol}")
    extra = [f"{k}={v}" for k, v in (("method", args.method), ("task", args.task), ("mode", args.mode),
                                     ("results_dir", args.results)) if v]
    cfg = load_config(cls, args, extra)
    if args.openness:
        cfg.openness = list(args.openness)
    if args.fold:
        cfg.folds = list(args.fold)
    if args.seed:
        if protocol == "open_set":
            if len(args.seed) > 1:
                raise ValueError("open_set takes one --seed")
            cfg.seed = args.seed[0]
        else:
            cfg.seeds = list(args.seed)
    if args.text_bank:
        cfg.method_overrides = list(cfg.method_overrides) + [text_bank_override(cfg.method, args.text_bank)]
    return cfg


def run(args: argparse.Namespace) -> int:
    keys = config_keys(args.config)
    keys |= {k for k, given in (("mode", args.mode), ("task", args.task or args.openness), ("folds", args.fold))
             if given}
    protocol = args.protocol or infer_protocol(keys)
    cfg = _config(protocol, args)
    if protocol == "open_set":
        from ovfer.protocols.open_set import run_open_set

        for r in run_open_set(cfg):
            print(f"{r.method_label:24s} {r.task}/{r.openness_tag}_{r.split_index}: AUROC {r.metrics['auroc']:6.2f}  "
                  f"OSCR {r.metrics['oscr']:6.2f}  closed acc {r.metrics['closed_acc']:6.2f}")
    else:
        from ovfer.protocols.closed_set import run_closed_set
        from ovfer.protocols.results import fold_stem
        from ovfer.protocols.zero_shot import run_zero_shot

        results = run_closed_set(cfg) if protocol == "closed_set" else run_zero_shot(cfg)
        for r in results:
            print(f"{r.method_label:24s} {r.protocol}/{r.dataset} {fold_stem(r.fold, r.seed)}: "
                  f"WAR {r.metrics['war']:6.2f}  UAR {r.metrics['uar']:6.2f}")
    print(f"results in {cfg.results_dir}")
    return 0
