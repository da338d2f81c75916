"""``ovfer`` command line: a thin layer over the Python API (one module per verb).

Each verb module exposes ``add_parser(subparsers)`` and ``run(args) -> int``. Verbs whose
module is not present yet say so and exit non-zero — never pretend.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: verb -> (module under ovfer.cli, one-line help), SPEC §10.
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the main job on embedded data: SynthFER -> small CLIP -> HESP + baselines -> report"),
    "synth": ("synth", "generate SynthFER synthetic expression videos and official-format annotations"),
    "pretrain-clip": ("pretrain_clip", "pretrain a small CLIP on SynthFER clips"),
    "preprocess": ("preprocess", "raw videos -> aligned face clips (MTCNN, tracking, cache)"),
    "train": ("train", "train a method on a dataset / split"),
    "eval": ("evaluate", "evaluate a trained checkpoint"),
    "predict": ("predict", "classify new videos: a known emotion or 'unknown'"),
    "protocol": ("protocol", "run a whole protocol table (splits x opennesses x methods), resumable"),
    "report": ("report", "tables (Markdown/CSV/LaTeX) and figures from result files"),
}


class _NotImplementedVerb:
    def __init__(self, verb: str) -> None:
        self.verb = verb

    def add_parser(self, sub: argparse._SubParsersAction) -> None:
        p = sub.add_parser(self.verb, help=VERBS[self.verb][1] + " (not implemented yet)")
        p.add_argument("rest", nargs=argparse.REMAINDER)

    def run(self, args: argparse.Namespace) -> int:
        print(f"ovfer {self.verb}: not implemented yet in this version of ovfer", file=sys.stderr)
        return 2


def _load(verb: str):
    module = VERBS[verb][0]
    try:
        return importlib.import_module(f"ovfer.cli.{module}")
    except ModuleNotFoundError as e:
        if e.name == f"ovfer.cli.{module}":
            return _NotImplementedVerb(verb)
        raise


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="ovfer", description="Open-set video facial expression recognition with vision-language models.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    modules = {}
    for verb in VERBS:
        mod = _load(verb)
        mod.add_parser(sub)
        modules[verb] = mod
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    # third-party loggers (open_clip logs to root at INFO) stay at WARNING; ovfer's own progress
    # messages show by default, except for predict, whose output is the answer itself
    logging.basicConfig(level=logging.DEBUG if args.verbose >= 2 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    quiet = args.verb == "predict" and not args.verbose
    logging.getLogger("ovfer").setLevel(logging.WARNING if quiet else
                                        logging.DEBUG if args.verbose >= 2 else logging.INFO)
    if not args.verb:
        parser.print_help()
        return 2
    try:
        return int(modules[args.verb].run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        # Known error types carry messages meant for users: print them, not a trace.
        logging.getLogger("ovfer").debug("error", exc_info=True)
        print(f"ovfer {args.verb}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
