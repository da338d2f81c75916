"""``ovfer report``: paper-layout tables (Markdown/CSV/LaTeX) and figures from result files."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables and figures from result files")
    p.add_argument("results", type=Path, help="results directory written by 'ovfer protocol'")
    p.add_argument("--out", type=Path, help="output directory (default: RESULTS/report)")
    p.add_argument("--figures", choices=["first", "all", "none"], default="first")
    p.add_argument("--cross", action="store_true",
                   help="also the methods x protocols table (closed-set, zero-shot, open-set per dataset) "
                        "as cross.md/.csv/.tex")
    p.add_argument("--openness", action="append", metavar="TAG",
                   help="with --cross: open-set columns at this openness only, e.g. 'O(6:5)' (repeatable)")


def run(args: argparse.Namespace) -> int:
    from ovfer.protocols.report import write_report

    if not args.results.is_dir():
        raise FileNotFoundError(f"results directory not found: {args.results}")
    out = args.out or args.results / "report"
    written = write_report(args.results, out, args.figures, cross=args.cross, cross_openness=args.openness)
    if not written:
        raise ValueError(f"no result files under {args.results}")
    for p in written:
        print(p)
    return 0
