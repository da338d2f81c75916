"""Result files → tables in the papers' layout (SPEC §5.3, §10). Shared by the runners and ``ovfer report``.

Result-file schema (one JSON object per file, written by :func:`save_result`)
-----------------------------------------------------------------------------
Open-set (``kind = "open_set"``): one file per (task, method, split) at
``<results_dir>/<task>/<method_dir>/<openness_tag>_<split_index>.json``, e.g.
``results/mafw11/hesp/O(8:3)_0.json``. ``method_dir`` is the method name, with
``@best_on_val`` / ``@best_on_test`` appended when that selection rule was used, so runs of
one method under two rules never overwrite each other.

Closed-set / zero-shot (``kind = "closed_set" | "zero_shot"``): one file per fold at
``<results_dir>/<protocol>/<dataset>/<method_dir>/fold_<fold>.json``.

Keys (``null``/absent where they do not apply to the kind):

=================  ================================================================================
``kind``           "open_set" | "closed_set" | "zero_shot" (inferred when absent: open-set iff
                   ``openness_tag`` is present)
``task``           open-set task name (``ovfer.data.splits.TASKS``), e.g. "mafw11"
``protocol``       closed-set/zero-shot protocol name, e.g. "closed_set", "zero_shot", "loco"
``method``         registered method name; ``dataset`` dataset name
``openness_tag``   "O(K:U)"; ``K``, ``U``, ``openness`` (4 decimals); ``split_index`` (0–4 within
                   its openness); ``run_index`` (official run order)
``fold``           fold number (closed-set/zero-shot)
``known``          known class names in label order; ``unknown`` unknown class names
``classes``        class names of a closed-set result (confusion rows/columns)
``metrics``        open-set: auroc, oscr, oscr_textbook, fpr95, closed_acc, uar, war, macro_f1, ...
                   (``ovfer.metrics.open_set_report``); closed-set: war, uar, macro_f1,
                   per_class_recall, confusion (``ovfer.metrics.closed_set_report``); ×100
``selection``      "last" | "best_on_val" | "best_on_test" (SPEC §5.3 model selection)
``seed``           int; ``config`` the run's config as a dict; ``timing`` dict of seconds
``created``        ISO-8601 time of writing
``scores_file``    optional ``.npz`` name beside the JSON with ``pred_known`` (N, K),
                   ``pred_unknown`` (M, K), ``labels`` (N,), ``score_known`` (N,),
                   ``score_unknown`` (M,), optionally ``features_known`` (N, D),
                   ``features_unknown`` (M, D) (closed-set: ``pred``, ``labels``)
=================  ================================================================================

Unknown keys are kept in ``SplitResult.extra`` and written back, so newer files survive a
round trip through older code.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

Kind = Literal["open_set", "closed_set", "zero_shot"]
Selection = Literal["last", "best_on_val", "best_on_test"]
FigureChoice = Literal["first", "all", "none"]

__all__ = [
    "SplitResult", "Table", "closed_table", "load_results", "openset_table", "result_path", "save_result",
    "summary_table", "to_csv", "to_latex", "to_markdown", "write_report",
]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class SplitResult:
    """One result file (see the module docstring for the schema)."""

    method: str
    dataset: str
    metrics: dict[str, Any]
    kind: Kind = "open_set"
    task: str | None = None
    protocol: str | None = None
    openness_tag: str | None = None
    K: int | None = None
    U: int | None = None
    openness: float | None = None
    split_index: int | None = None
    run_index: int | None = None
    fold: int | None = None
    known: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    selection: Selection = "last"
    seed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    scores_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False, repr=False)  # where it was loaded from

    @classmethod
    def from_split(cls, split: Any, method: str, metrics: Mapping[str, Any], **kw: Any) -> "SplitResult":
        """An open-set result for an :class:`~ovfer.data.splits.OpenSetSplit`."""
        return cls(method=method, dataset=split.dataset, metrics=dict(metrics), kind="open_set", task=split.task,
                   openness_tag=split.openness_tag, K=split.K, U=split.U, openness=split.openness,
                   split_index=split.index, run_index=split.run_index, known=list(split.known),
                   unknown=list(split.unknown), **kw)

    @property
    def method_dir(self) -> str:
        return self.method if self.selection == "last" else f"{self.method}@{self.selection}"

    @property
    def method_label(self) -> str:
        """Name shown in tables; test-set selection is labelled as such (SPEC §5.3)."""
        labels = {"last": "", "best_on_val": " (best on val)", "best_on_test": " (best on test)"}
        return self.method + labels.get(self.selection, f" ({self.selection})")

    def relpath(self) -> Path:
        """Path of this result below a results directory."""
        if self.kind == "open_set":
            if self.task is None or self.openness_tag is None or self.split_index is None:
                raise ValueError("an open-set result needs task, openness_tag and split_index for its path")
            return Path(self.task) / self.method_dir / f"{self.openness_tag}_{self.split_index}.json"
        if self.protocol is None or self.fold is None:
            raise ValueError(f"a {self.kind} result needs protocol and fold for its path")
        return Path(self.protocol) / self.dataset / self.method_dir / f"fold_{self.fold}.json"

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "path")}
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any], path: Path | None = None) -> "SplitResult":
        names = {f.name for f in fields(cls)} - {"extra", "path"}
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        missing = [k for k in ("method", "dataset", "metrics") if k not in known]
        if missing:
            raise ValueError(f"{path or 'result'}: missing keys {missing}")
        known.setdefault("kind", "open_set" if d.get("openness_tag") else "closed_set")
        if known["kind"] not in ("open_set", "closed_set", "zero_shot"):
            raise ValueError(f"{path or 'result'}: kind '{known['kind']}' is not open_set, closed_set or zero_shot")
        return cls(**known, extra=extra, path=path)

    def load_scores(self) -> dict[str, np.ndarray] | None:
        """Arrays of the scores file, or None when there is none."""
        if not self.scores_file or self.path is None:
            return None
        p = self.path.parent / self.scores_file
        if not p.is_file():
            log.warning("%s names scores file %s, which does not exist", self.path, p)
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def result_path(results_dir: str | Path, result: SplitResult) -> Path:
    return Path(results_dir) / result.relpath()


def save_result(result: SplitResult, results_dir: str | Path, scores: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write the JSON (and the scores ``.npz`` beside it) atomically; returns the JSON path."""
    path = result_path(results_dir, result)
    if scores is not None:
        npz = path.with_suffix(".npz")
        arrays = {k: np.asarray(v) for k, v in scores.items() if v is not None}
        _atomic_write(npz, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))
        result.scores_file = npz.name
    text = json.dumps(result.to_json(), indent=1, allow_nan=False)
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    result.path = path
    return path


def load_results(results_dir: str | Path) -> list[SplitResult]:
    """Every result JSON below ``results_dir`` (files that are not results are skipped with a warning)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    out = []
    for p in sorted(root.rglob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            out.append(SplitResult.from_json(data, path=p))
        except (ValueError, TypeError) as e:
            log.warning("skipping %s: %s", p, e)
    log.info("loaded %d results from %s", len(out), root)
    return out


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
    title = f"{r.protocol}/{r.dataset} · {r.method_label} · fold {r.fold}"
    return plots.render_closed_set_figures(scores, r.classes, where / f"fold_{r.fold}", title)


def write_report(results_dir: str | Path, out_dir: str | Path, figures: FigureChoice = "first") -> list[Path]:
    """Tables (Markdown, CSV, LaTeX) for every task and protocol, a summary table and figures.

    ``figures``: "first" renders the first split of each (task, method, openness) that has a
    scores file, "all" every one, "none" skips plotting.
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
    for r in _figure_targets(results, figures):
        try:
            written += _render_figures(r, out)
        except (KeyError, ValueError) as e:
            log.warning("no figures for %s: %s", r.path, e)
    log.info("report: %d files in %s", len(written), out)
    return written
