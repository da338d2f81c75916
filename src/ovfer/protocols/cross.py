"""The methods × protocols table (SPEC §1, §10): every method's closed-set, zero-shot and
open-set numbers side by side, built only from result files.

Per dataset six columns: closed-set UAR and WAR (protocol ``closed_set``), zero-shot UAR
and WAR (the first of ``zero_shot_protocols`` a method has results for; "–" for methods
without), open-set AUROC and OSCR (one open-set task of that dataset; mean over its
opennesses of the per-openness split means, as the HESP tables). A cell is a mean over
folds (seeds of one fold averaged first) or splits, and is marked partial when a method
has fewer folds/splits than the most complete method in that column. One footnote per
column says which protocol/task and dataset it comes from.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence


from ovfer.protocols.report import Cell, Table, _mean_over, _metric, openset_table
from ovfer.protocols.results import SplitResult, run_label

#: Row order and names (SPEC §1); other methods follow in name order.
DISPLAY_NAMES: dict[str, str] = {"hesp": "HESP", "clip_zeroshot": "Baseline 1", "clip_arpl": "Baseline 2",
                                 "dfer_clip": "DFER-CLIP", "dk_clip": "DK-CLIP", "emoclip": "EmoCLIP"}
ZERO_SHOT_PROTOCOLS: tuple[str, ...] = ("zero_shot", "zero_shot_captions")
"""Zero-shot result protocols a cell may use, in order of preference (direct first)."""
OPEN_TASKS: dict[str, str] = {"afew": "afew7", "mafw": "mafw11", "dfew": "dfew7", "synthfer": "synth11"}
"""The open-set task shown for a dataset when its results hold several (the single-label one)."""
_SELECTION_ORDER = {"last": 0, "best_on_val": 1, "best_on_test": 2}
_COLUMNS = (("closed-set UAR", "closed", "uar"), ("closed-set WAR", "closed", "war"),
            ("zero-shot UAR", "zero", "uar"), ("zero-shot WAR", "zero", "war"),
            ("open-set AUROC", "open", "auroc"), ("open-set OSCR", "open", "oscr"))

Row = tuple[str, str, str]  # (method, variant, selection)


def _row(r: SplitResult) -> Row:
    return (r.method, r.variant, r.selection)


def _row_label(row: Row) -> str:
    return run_label(DISPLAY_NAMES.get(row[0], row[0]), row[1], row[2])


def _row_key(row: Row) -> tuple[int, str, str, int]:
    """Paper order of methods; a method's variants right after its plain run."""
    order = list(DISPLAY_NAMES)
    return (order.index(row[0]) if row[0] in order else len(order), row[0], row[1],
            _SELECTION_ORDER.get(row[2], 9))


def _fold_cells(rs: Sequence[SplitResult], rows: Sequence[Row], metric: str) -> dict[Row, Cell]:
    """Mean over folds of the per-fold seed means, per row; expected = folds of the most complete row."""
    by_row: dict[Row, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rs:
        v = _metric(r, metric)
        if v is not None:
            by_row[_row(r)][r.fold if r.fold is not None else 0].append(v)
    expected = max((len(f) for f in by_row.values()), default=0)
    return {row: Cell(_mean_over(by_row[row]), len(by_row[row]), expected) for row in rows if by_row.get(row)}


def _open_cells(rs: Sequence[SplitResult], rows: Sequence[Row], metric: str) -> dict[Row, Cell]:
    """Mean column of the HESP-style table; n/expected count splits over all opennesses."""
    table = openset_table(rs, metric)
    out = {}
    for row in rows:
        label = run_label(*row)
        if label in table.rows:
            cells = table.cells[table.rows.index(label)]
            out[row] = Cell(cells[-1].value, sum(c.n for c in cells[:-1]), sum(c.expected for c in cells[:-1]))
    return out


def _open_task(results: Sequence[SplitResult], dataset: str, task: str | None) -> str | None:
    tasks = sorted({r.task for r in results if r.kind == "open_set" and r.dataset == dataset and r.task})
    if task is not None:
        return task if task in tasks else None
    if OPEN_TASKS.get(dataset) in tasks:
        return OPEN_TASKS[dataset]
    return tasks[0] if tasks else None


def _folds_text(rs: Sequence[SplitResult]) -> str:
    folds = sorted({r.fold for r in rs if r.fold is not None})
    seeds = sorted({r.seed or 0 for r in rs})
    text = (f"fold{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))}" if folds
            else "the official train/test split")
    return text + (f", seeds {', '.join(map(str, seeds))} (seed means per fold first)" if len(seeds) > 1 else "")


def cross_table(results: Sequence[SplitResult], dataset: str | None = None, task: str | None = None,
                zero_shot_protocols: Sequence[str] = ZERO_SHOT_PROTOCOLS,
                openness: Sequence[str] | None = None) -> Table:
    """Rows = methods (HESP, Baseline 1, Baseline 2, DFER-CLIP, DK-CLIP, EmoCLIP, then others;
    one row per selection rule used), columns = the six protocol metrics of each dataset.

    ``dataset`` restricts the table to one dataset (e.g. "mafw"); without it every dataset
    gets a column group ("mafw: closed-set UAR", ...). ``task`` picks the open-set task when
    a dataset has several (default: :data:`OPEN_TASKS`, else the first by name). ``openness``
    keeps only those openness tags (e.g. ``["O(6:5)"]``), so methods run at one openness are
    compared with the others at that openness only. The table's ``metric`` holds the dataset
    name(s) (the LaTeX block title).
    """
    zs = tuple(zero_shot_protocols)
    picked = [r for r in results
              if (r.kind == "closed_set" and r.protocol == "closed_set")
              or (r.kind == "zero_shot" and r.protocol in zs) or r.kind == "open_set"]
    if task is not None:
        owners = sorted({r.dataset for r in picked if r.kind == "open_set" and r.task == task})
        if not owners:
            raise ValueError(f"no open-set result of task '{task}'")
        dataset = dataset or owners[0]
    datasets = [dataset] if dataset else sorted({r.dataset for r in picked})
    picked = [r for r in picked if r.dataset in datasets]
    if not picked:
        raise ValueError(f"no closed-set, zero-shot ({', '.join(zs)}) or open-set result"
                         + (f" for dataset '{dataset}'" if dataset else ""))
    rows = sorted({_row(r) for r in picked}, key=_row_key)
    columns: list[str] = []
    grid: list[dict[Row, Cell]] = []
    notes: list[str] = []
    for ds in datasets:
        here = [r for r in picked if r.dataset == ds]
        closed = [r for r in here if r.kind == "closed_set"]
        zero_of: dict[Row, str] = {}
        for row in rows:
            for p in zs:
                if any(_row(r) == row and r.protocol == p for r in here if r.kind == "zero_shot"):
                    zero_of[row] = p
                    break
        zero = [r for r in here if r.kind == "zero_shot" and zero_of.get(_row(r)) == r.protocol]
        otask = _open_task(here, ds, task)
        opened = [r for r in here if r.kind == "open_set" and r.task == otask
                  and (not openness or r.openness_tag in openness)]
        prefix = f"{ds}: " if len(datasets) > 1 else ""
        for title, part, metric in _COLUMNS:
            name = prefix + title
            columns.append(name)
            if part == "closed":
                grid.append(_fold_cells(closed, rows, metric))
                src = f"protocol closed_set on {ds}, {_folds_text(closed)}" if closed else f"no result on {ds}"
            elif part == "zero":
                cells: dict[Row, Cell] = {}
                for p in zs:
                    cells.update(_fold_cells([r for r in zero if r.protocol == p], rows, metric))
                most = max((c.n for c in cells.values()), default=0)  # one column: one yardstick
                grid.append({row: Cell(c.value, c.n, most) for row, c in cells.items()})
                used = sorted({(zero_of[row], _row_label(row)) for row in rows if row in zero_of})
                by_p = {p: [lbl for q, lbl in used if q == p] for p in zs}
                src = ("; ".join(f"protocol {p} ({', '.join(lbls)})" for p, lbls in by_p.items() if lbls)
                       + f" on {ds}, {_folds_text(zero)}") if zero else f"no result on {ds}"
            else:
                grid.append(_open_cells(opened, rows, metric) if opened else {})
                which = f"at {', '.join(openness)}" if openness else "mean over opennesses"
                src = (f"open-set task {otask} on {ds}, {which} of the per-openness split means"
                       if opened else f"no result on {ds}")
            notes.append(f"{name}: {src}.")
    cells = [[grid[j].get(row, Cell(None)) for j in range(len(columns))] for row in rows]
    present = [m for m in ("clip_zeroshot", "clip_arpl") if any(row[0] == m for row in rows)]
    if present:
        notes.append("; ".join(f"{DISPLAY_NAMES[m]} = {m}" for m in present)
                     + ". –: no result; (n/m): n of the m folds/splits of the most complete method.")
    title = f"Methods × protocols ({', '.join(datasets)})"
    return Table(title, " + ".join(datasets), columns, [_row_label(r) for r in rows], cells, None, True, notes)


def cross_tables(results: Sequence[SplitResult], zero_shot_protocols: Sequence[str] = ZERO_SHOT_PROTOCOLS,
                 openness: Sequence[str] | None = None) -> list[Table]:
    """One :func:`cross_table` per dataset (what ``ovfer report --cross`` writes): narrow tables
    whose footnotes each speak of one dataset."""
    zs = set(zero_shot_protocols)
    datasets = sorted({r.dataset for r in results
                       if r.kind == "open_set" or (r.kind == "closed_set" and r.protocol == "closed_set")
                       or (r.kind == "zero_shot" and r.protocol in zs)})
    return [cross_table(results, dataset=d, zero_shot_protocols=zero_shot_protocols, openness=openness)
            for d in datasets]
