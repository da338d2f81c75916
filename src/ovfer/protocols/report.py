"""Result files → tables in the papers' layout (SPEC §5.3, §10) and figures (``ovfer report``).

The result-file schema lives in :mod:`ovfer.protocols.results`; its names are re-exported here.
"""
from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ovfer.protocols.results import Kind, Selection, SplitResult, fold_stem, load_results, result_path, save_result

log = logging.getLogger(__name__)

FigureChoice = Literal["first", "all", "none"]
OpenMetric = Literal["auroc", "oscr", "oscr_textbook", "fpr95", "closed_acc"]
ClosedMetric = Literal["uar", "war", "macro_f1"]

__all__ = [
    "Cell", "Kind", "Selection", "SplitResult", "Table", "closed_table", "load_results", "openset_table",
    "result_path", "save_result", "summary_table", "to_csv", "to_latex", "to_markdown", "write_report",
]


LOWER_IS_BETTER = frozenset({"fpr95"})
METRIC_TITLES = {"auroc": "AUROC", "oscr": "OSCR", "oscr_textbook": "OSCR (textbook area)",
                 "fpr95": "FPR at 95% TPR", "closed_acc": "Closed-set accuracy (known test clips)",
                 "uar": "UAR", "war": "WAR", "macro_f1": "macro-F1"}


@dataclass
class Cell:
    """A mean over ``n`` of ``expected`` splits (folds, or opennesses in a mean column)."""

    value: float | None
    n: int = 0
    expected: int = 0

    @property
    def partial(self) -> bool:
        return self.value is not None and self.n < self.expected


@dataclass
class Table:
    """Rows = methods, columns = opennesses/folds/tasks; renderers need nothing else."""

    title: str
    metric: str
    columns: list[str]
    rows: list[str]
    cells: list[list[Cell]]
    subheaders: list[str] | None = None  # e.g. openness values under the O(K:U) tags
    higher_is_better: bool = True
    notes: list[str] = field(default_factory=list)
    """Footnote lines printed under the table (where each column's numbers come from)."""

    def value(self, row: str, column: str) -> float | None:
        return self.cells[self.rows.index(row)][self.columns.index(column)].value

    def best(self, j: int) -> float | None:
        vals = [r[j].value for r in self.cells if r[j].value is not None]
        if not vals:
            return None
        return max(vals) if self.higher_is_better else min(vals)


def _metric(r: SplitResult, metric: str) -> float | None:
    v = r.metrics.get(metric)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _mean_over(groups: Mapping[Any, list[float]]) -> float | None:
    """Mean over groups of the per-group mean (repeated runs of one split are averaged first)."""
    means = [float(np.mean(v)) for v in groups.values() if v]
    return float(np.mean(means)) if means else None


def _expected_splits(task: str, observed: Mapping[str, int]) -> dict[str, int]:
    try:
        from ..data.splits import get_task

        counts: dict[str, int] = defaultdict(int)
        for s in get_task(task).splits():
            counts[s.openness_tag] += 1
    except KeyError:  # not a registered task: trust the data
        counts = defaultdict(int)
    return {t: max(counts.get(t, 0), n) for t, n in observed.items()}


def openset_table(results: Sequence[SplitResult], metric: OpenMetric | str = "auroc", task: str | None = None) -> Table:
    """HESP-style table: rows = methods, columns = opennesses (ascending) + mean (SPEC §5.3).

    A cell is the mean over the splits of one openness; the mean column is the mean of the
    openness means, as the paper tables. Cells with fewer splits than the task defines show
    the count when rendered.
    """
    rs = [r for r in results if r.kind == "open_set" and (task is None or r.task == task)]
    tasks = sorted({r.task or "" for r in rs})
    if len(tasks) != 1:
        raise ValueError(f"openset_table needs the results of exactly one task, got {tasks or 'none'}; pass task=")
    tag_openness = {r.openness_tag: r.openness if r.openness is not None else 0.0 for r in rs if r.openness_tag}
    tags = sorted(tag_openness, key=lambda t: (tag_openness[t], t))
    methods = sorted({r.method_label for r in rs})
    groups: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rs:
        v = _metric(r, metric)
        if v is not None and r.openness_tag:
            groups[(r.method_label, r.openness_tag)][r.split_index or 0].append(v)
    observed = {t: max((len(groups[(m, t)]) for m in methods), default=0) for t in tags}
    expected = _expected_splits(tasks[0], observed)
    cells = []
    for m in methods:
        row = [Cell(_mean_over(groups[(m, t)]), len(groups[(m, t)]), expected[t]) for t in tags]
        present = [c.value for c in row if c.value is not None]
        row.append(Cell(float(np.mean(present)) if present else None, len(present), len(tags)))
        cells.append(row)
    return Table(f"{tasks[0]}: {METRIC_TITLES.get(metric, metric)}", metric, tags + ["mean"], methods, cells,
                 [f"{tag_openness[t]:.4f}" for t in tags] + [""], metric not in LOWER_IS_BETTER)


def closed_table(results: Sequence[SplitResult], metric: ClosedMetric | str = "uar") -> Table:
    """Closed-set/zero-shot table of one (protocol, dataset): rows = methods, columns = folds + mean."""
    rs = [r for r in results if r.kind != "open_set"]
    keys = sorted({f"{r.protocol or r.kind}/{r.dataset}" for r in rs})
    if len(keys) != 1:
        raise ValueError(f"closed_table needs the results of one protocol and dataset, got {keys or 'none'}")
    folds = sorted({r.fold if r.fold is not None else 0 for r in rs})
    methods = sorted({r.method_label for r in rs})
    cells = []
    for m in methods:
        by_fold: dict[int, list[float]] = defaultdict(list)
        for r in rs:
            v = _metric(r, metric)
            if r.method_label == m and v is not None:
                by_fold[r.fold if r.fold is not None else 0].append(v)  # seeds of a fold: averaged first
        row = [Cell(_mean_over({f: by_fold[f]}), 1 if by_fold[f] else 0, 1) for f in folds]
        row.append(Cell(_mean_over(by_fold), len(by_fold), len(folds)))
        cells.append(row)
    names = ["test" if f == 0 and any(r.fold is None for r in rs) else f"fold {f}" for f in folds]
    return Table(f"{keys[0]}: {METRIC_TITLES.get(metric, metric)}", metric, names + ["mean"],
                 methods, cells, None, metric not in LOWER_IS_BETTER)


def summary_table(results: Sequence[SplitResult], open_metric: OpenMetric | str = "auroc",
                  closed_metric: ClosedMetric | str = "uar") -> Table:
    """One row per method, one column per open-set task or closed-set protocol/dataset (SPEC §10)."""
    columns: list[tuple[str, Table]] = []
    for task in sorted({r.task for r in results if r.kind == "open_set" and r.task}):
        columns.append((task, openset_table(results, open_metric, task=task)))
    closed = [r for r in results if r.kind != "open_set"]
    for key in sorted({(r.protocol or r.kind, r.dataset) for r in closed}):
        sub = [r for r in closed if (r.protocol or r.kind, r.dataset) == key]
        columns.append((f"{key[0]}/{key[1]}", closed_table(sub, closed_metric)))
    methods = sorted({r.method_label for r in results})
    cells = []
    for m in methods:
        row = []
        for _, t in columns:
            row.append(t.cells[t.rows.index(m)][-1] if m in t.rows else Cell(None))
        cells.append(row)
    subheaders = [METRIC_TITLES.get(t.metric, t.metric) for _, t in columns]
    title = (f"Summary: open-set {METRIC_TITLES.get(open_metric, open_metric)} (mean over opennesses), "
             f"closed-set/zero-shot {METRIC_TITLES.get(closed_metric, closed_metric)} (mean over folds)")
    return Table(title, f"{open_metric}|{closed_metric}", [c for c, _ in columns], methods, cells, subheaders)


# ---- renderers --------------------------------------------------------------------------------

def _cell_text(table: Table, i: int, j: int, bold: tuple[str, str], partial: tuple[str, str]) -> str:
    c = table.cells[i][j]
    if c.value is None:
        return "–"
    text = f"{c.value:.2f}"
    best = table.best(j)
    if best is not None and round(c.value, 2) == round(best, 2) and len(table.rows) > 1:
        text = bold[0] + text + bold[1]
    if c.partial:
        text += f"{partial[0]}{c.n}/{c.expected}{partial[1]}"
    return text


def to_markdown(tables: Sequence[Table]) -> str:
    """GitHub Markdown, one section per table; best per column in bold, partial cells show n/expected."""
    parts = []
    for t in tables:
        head = ["method"] + [f"{c} ({s})" if s else c for c, s in zip(t.columns, t.subheaders or [""] * len(t.columns))]
        lines = [f"### {t.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, m in enumerate(t.rows):
            row = [_cell_text(t, i, j, ("**", "**"), (" (", ")")) for j in range(len(t.columns))]
            lines.append("| " + " | ".join([m] + row) + " |")
        if any(c.partial for row in t.cells for c in row):
            lines += ["", "(n/m): mean over n of the m splits (or opennesses/folds, in a mean column)."]
        if t.notes:
            lines += [""] + [f"{note}  " for note in t.notes]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def to_csv(tables: Sequence[Table]) -> str:
    """Long format, one line per cell: table, metric, method, column, value, n, expected.

    Footnotes follow as lines with metric "note", the column they explain and the text as value.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "metric", "method", "column", "value", "n", "expected"])
    for t in tables:
        for i, m in enumerate(t.rows):
            for j, col in enumerate(t.columns):
                c = t.cells[i][j]
                w.writerow([t.title, t.metric, m, col, "" if c.value is None else f"{c.value:.4f}", c.n, c.expected])
        for note in t.notes:
            col = next((c for c in t.columns if note.startswith(c)), "")
            w.writerow([t.title, "note", "", col, note, "", ""])
    return buf.getvalue()


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(s: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in s)


def to_latex(tables: Sequence[Table]) -> str:
    """booktabs tabular(s); tables sharing columns are stacked as blocks (the papers' AUROC/OSCR layout)."""
    out, i = [], 0
    while i < len(tables):
        group = [tables[i]]
        while i + len(group) < len(tables) and tables[i + len(group)].columns == tables[i].columns:
            group.append(tables[i + len(group)])
        i += len(group)
        t0, ncol = group[0], len(group[0].columns) + 1
        lines = [f"% {_tex(' / '.join(t.title for t in group))}", r"\begin{tabular}{l" + "c" * (ncol - 1) + "}",
                 r"\toprule", " & ".join(["Method"] + [_tex(c.capitalize() if c == "mean" else c)
                                                       for c in t0.columns]) + r" \\"]
        if t0.subheaders and any(t0.subheaders):
            lines.append(" & ".join([""] + [_tex(s) for s in t0.subheaders]) + r" \\")
        for t in group:
            block = _tex(METRIC_TITLES.get(t.metric, t.metric))
            lines += [r"\midrule", rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{{block}}}}} \\"]
            for r_i, m in enumerate(t.rows):
                row = [_cell_text(t, r_i, j, (r"\textbf{", "}"), (r"\,{\scriptsize(", ")}"))
                       for j in range(len(t.columns))]
                lines.append(" & ".join([_tex(m)] + [x.replace("–", "--") for x in row]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        notes = [n for t in group for n in t.notes]
        if notes:
            lines.append(r"\par\smallskip{\footnotesize " + r" \\ ".join(_tex(n) for n in notes) + "}")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _write_tables(tables: Sequence[Table], stem: Path) -> list[Path]:
    paths = []
    for suffix, render in ((".md", to_markdown), (".csv", to_csv), (".tex", to_latex)):
        p = stem.with_suffix(suffix)
        p.write_text(render(tables), encoding="utf-8")
        paths.append(p)
    return paths


def _figure_targets(results: Sequence[SplitResult], figures: FigureChoice) -> list[SplitResult]:
    with_scores = [r for r in results if r.scores_file]
    if figures == "none":
        return []
    if figures == "all":
        return with_scores
    first: dict[tuple, SplitResult] = {}
    for r in sorted(with_scores, key=lambda r: (r.split_index or 0, r.fold or 0)):
        key = (r.kind, r.task or r.protocol, r.dataset, r.method_dir, r.openness_tag)
        first.setdefault(key, r)
    return list(first.values())


def _render_figures(r: SplitResult, out_dir: Path) -> list[Path]:
    from . import plots  # matplotlib only when figures are asked for

    scores = r.load_scores()
    if scores is None:
        return []
    where = out_dir / "figures" / (r.task or f"{r.protocol}_{r.dataset}") / r.method_dir
    if r.kind == "open_set":
        stem = f"{r.openness_tag}_{r.split_index}"
        title = f"{r.task} · {r.method_label} · {stem}"
        return plots.render_open_set_figures(scores, r.known, where / stem, title)
    title = f"{r.protocol}/{r.dataset} · {r.method_label} · {fold_stem(r.fold, r.seed).replace('_', ' ')}"
    return plots.render_closed_set_figures(scores, r.classes, where / fold_stem(r.fold, r.seed), title)


def write_report(results_dir: str | Path, out_dir: str | Path, figures: FigureChoice = "first",
                 cross: bool = False, cross_openness: Sequence[str] | None = None) -> list[Path]:
    """Tables (Markdown, CSV, LaTeX) for every task and protocol, a summary table and figures.

    ``figures``: "first" renders the first split of each (task, method, openness) that has a
    scores file, "all" every one, "none" skips plotting. ``cross``: also the methods ×
    protocols tables (one per dataset, :func:`ovfer.protocols.cross.cross_tables`) as
    ``cross.md/.csv/.tex``; ``cross_openness`` limits its open-set columns to those tags.
    """
    results = load_results(results_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    open_set = [r for r in results if r.kind == "open_set"]
    for task in sorted({r.task for r in open_set if r.task}):
        rs = [r for r in open_set if r.task == task]
        blocks = [openset_table(rs, "auroc"), openset_table(rs, "oscr")]
        extra = [m for m in ("oscr_textbook", "fpr95", "closed_acc") if any(m in r.metrics for r in rs)]
        written += _write_tables(blocks + [openset_table(rs, m) for m in extra], out / f"{task}_openset")
    closed = [r for r in results if r.kind != "open_set"]
    for key in sorted({(r.kind, r.protocol or r.kind, r.dataset) for r in closed}):
        rs = [r for r in closed if (r.kind, r.protocol or r.kind, r.dataset) == key]
        blocks = [closed_table(rs, m) for m in ("uar", "war", "macro_f1") if any(m in r.metrics for r in rs)]
        if blocks:
            written += _write_tables(blocks, out / f"{key[1]}_{key[2]}")
    if results:
        written += _write_tables([summary_table(results)], out / "summary")
    if cross and results:
        from ovfer.protocols.cross import cross_tables

        tables = cross_tables(results, openness=cross_openness)
        if tables:
            written += _write_tables(tables, out / "cross")
    for r in _figure_targets(results, figures):
        try:
            written += _render_figures(r, out)
        except (KeyError, ValueError) as e:
            log.warning("no figures for %s: %s", r.path, e)
    log.info("report: %d files in %s", len(written), out)
    return written
