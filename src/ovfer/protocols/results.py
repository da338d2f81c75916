"""Result files: one JSON per split or fold, shared by the protocol runners and ``ovfer report``.

Result-file schema (one JSON object per file, written by :func:`save_result`)
-----------------------------------------------------------------------------
Open-set (``kind = "open_set"``): one file per (task, method, split) at
``<results_dir>/<task>/<method_dir>/<openness_tag>_<split_index>[_seed<s>].json`` (the suffix only
for a seed other than 0), e.g.
``results/mafw11/hesp/O(8:3)_0.json`` (the ':' of the tag is not allowed in Windows file
names; POSIX only for now). ``method_dir`` is the method name, with
``~<variant>`` appended for a named option variant (``emoclip~frame_mean``) and
``@best_on_val`` / ``@best_on_test`` when that selection rule was used, so runs of one
method under two settings never overwrite each other.

Closed-set / zero-shot (``kind = "closed_set" | "zero_shot"``): one file per (fold, seed) at
``<results_dir>/<protocol>/<dataset>/<method_dir>/<stem>.json`` with ``stem`` =
``fold_<fold>`` for seed 0 (or no seed), ``fold_<fold>_seed<seed>`` for other seeds, and
``all`` / ``all_seed<seed>`` for a source without folds (AFEW, FERV39k, a folder). Protocol
names (``protocol`` key):

=======================  ==============================================================
``closed_set``           train on train, test on test, all classes (SPEC §5.1)
``zero_shot``            no training on the target: class names/descriptions only, optionally
                         from a checkpoint trained elsewhere (CLIP zero-shot; EmoCLIP
                         cross-dataset from its caption model) (SPEC §5.2)
``zero_shot_captions``   trained on the fold's training captions, tested on the same fold's
                         test split by class name (EmoCLIP "MAFW zero-shot", METHODS §3)
``zero_shot_cross``      trained on captions of a source fold, tested on another dataset by
                         class name; ``dataset`` = the target, ``fold`` = the *source* fold,
                         metrics = mean over the target's test folds (``source`` key)
``loco``                 leave-one-class-out: per class k, trained without k, tested on
                         class-k clips against all classes; UAR = mean recall_k, WAR pooled
``compound``             basic + compound classes (MAFW compound split); adds one-vs-rest
                         ROC-AUC on softmax scores (METHODS §3 [recon])
=======================  ==============================================================

Keys (``null``/absent where they do not apply to the kind):

=================  ================================================================================
``kind``           "open_set" | "closed_set" | "zero_shot" (inferred when absent: open-set iff
                   ``openness_tag`` is present)
``task``           open-set task name (``ovfer.data.splits.TASKS``), e.g. "mafw11"
``protocol``       closed-set/zero-shot protocol name, e.g. "closed_set", "zero_shot", "loco"
``method``         registered method name; ``dataset`` dataset name
``variant``        label of an option variant of the method ("" = the config's defaults run)
``openness_tag``   "O(K:U)"; ``K``, ``U``, ``openness`` (4 decimals); ``split_index`` (0–4 within
                   its openness); ``run_index`` (official run order)
``fold``           fold number (closed-set/zero-shot), null for a source without folds
``known``          known class names in label order; ``unknown`` unknown class names
``classes``        class names of a closed-set result (confusion rows/columns)
``metrics``        open-set: auroc, oscr, oscr_textbook, fpr95, closed_acc, uar, war, macro_f1, ...
                   (``ovfer.metrics.open_set_report``); closed-set/zero-shot: war, uar, macro_f1,
                   per_class_recall, confusion (``ovfer.metrics.closed_set_report``); ×100.
                   Also ``heads`` {head: same metrics} for methods with extra heads (DK-CLIP),
                   ``last_epoch`` {epoch, war, uar, macro_f1} under ``best_on_test``, ``loco``
                   {class: {n, correct, recall}} for LOCO, ``ovr_auc`` (softmax) for compound
``selection``      "last" | "best_on_val" | "best_on_test" (SPEC §5.3 model selection)
``seed``           int; ``config`` the run's config as a dict; ``timing`` dict of seconds
``created``        ISO-8601 time of writing
``scores_file``    optional ``.npz`` name beside the JSON with ``pred_known`` (N, K),
                   ``pred_unknown`` (M, K), ``labels`` (N,), ``score_known`` (N,),
                   ``score_unknown`` (M,), optionally ``features_known`` (N, D),
                   ``features_unknown`` (M, D) (closed-set/zero-shot: ``pred``, ``labels``,
                   ``pred_<head>`` per extra head)
=================  ================================================================================

Unknown keys are kept in ``SplitResult.extra`` and written back, so newer files survive a
round trip through older code.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from ovfer.fsutil import atomic_write

log = logging.getLogger(__name__)

Kind = Literal["open_set", "closed_set", "zero_shot"]
Selection = Literal["last", "best_on_val", "best_on_test"]

__all__ = ["Kind", "Selection", "SplitResult", "check_variant", "fold_stem", "jsonable", "load_results",
           "method_dir", "result_path", "run_label", "save_result"]


def method_dir(method: str, selection: str = "last", variant: str = "") -> str:
    """Folder of a method's results: a variant or another selection rule never overwrites
    the plain run (``emoclip``, ``emoclip~frame_mean``, ``emoclip~frame_mean@best_on_val``)."""
    name = f"{method}~{variant}" if variant else method
    return name if selection == "last" else f"{name}@{selection}"


_SELECTION_LABELS = {"last": "", "best_on_val": " (best on val)", "best_on_test": " (best on test)"}


def run_label(name: str, variant: str = "", selection: str = "last") -> str:
    """Name shown in tables: ``emoclip [frame_mean] (best on test)``; test-set selection is
    always labelled as such (SPEC §5.3)."""
    return name + (f" [{variant}]" if variant else "") + _SELECTION_LABELS.get(selection, f" ({selection})")


def check_variant(variant: str) -> str:
    """A variant label is part of folder names: letters, digits and ``_ - . +`` only."""
    if variant and not re.fullmatch(r"[A-Za-z0-9_.+-]+", variant):
        raise ValueError(f"variant '{variant}' may only hold letters, digits and _ - . + (it names folders)")
    return variant


def fold_stem(fold: int | None, seed: int | None = None) -> str:
    """``fold_3``, ``fold_3_seed1``, ``all`` (no folds); seed 0 keeps the pre-seed file name."""
    stem = "all" if fold is None else f"fold_{fold}"
    return stem if not seed else f"{stem}_seed{seed}"


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
    variant: str = ""
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
        return method_dir(self.method, self.selection, self.variant)

    @property
    def method_label(self) -> str:
        return run_label(self.method, self.variant, self.selection)

    def relpath(self) -> Path:
        """Path of this result below a results directory."""
        if self.kind == "open_set":
            if self.task is None or self.openness_tag is None or self.split_index is None:
                raise ValueError("an open-set result needs task, openness_tag and split_index for its path")
            seed = f"_seed{self.seed}" if self.seed else ""  # seed 0 keeps the pre-seed file name
            return Path(self.task) / self.method_dir / f"{self.openness_tag}_{self.split_index}{seed}.json"
        if self.protocol is None:
            raise ValueError(f"a {self.kind} result needs a protocol for its path")
        return Path(self.protocol) / self.dataset / self.method_dir / f"{fold_stem(self.fold, self.seed)}.json"

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


def result_path(results_dir: str | Path, result: SplitResult) -> Path:
    return Path(results_dir) / result.relpath()


def jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, NaN/inf to null (strict JSON has neither)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _save_npz(fh: Any, arrays: Mapping[str, np.ndarray]) -> None:
    np.savez_compressed(fh, **arrays)


def save_result(result: SplitResult, results_dir: str | Path, scores: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write the JSON (and the scores ``.npz`` beside it) atomically; returns the JSON path."""
    path = result_path(results_dir, result)
    if scores is not None:
        npz = path.with_suffix(".npz")
        arrays = {k: np.asarray(v) for k, v in scores.items() if v is not None}
        atomic_write(npz, lambda fh: _save_npz(fh, arrays))
        result.scores_file = npz.name
    text = json.dumps(jsonable(result.to_json()), indent=1, allow_nan=False)
    atomic_write(path, lambda fh: fh.write((text + "\n").encode("utf-8")))
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


# ---- tables ---------------------------------------------------------------------------------

OpenMetric = Literal["auroc", "oscr", "oscr_textbook", "fpr95", "closed_acc", "uar", "war", "macro_f1"]
ClosedMetric = Literal["uar", "war", "macro_f1"]
