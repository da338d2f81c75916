"""What the fold-based protocols (closed-set, zero-shot) share: which folds a data source
has, the records of one fold, one method per run, model selection and resuming.

Folds: DFEW and MAFW have 5 official folds, and their adapters read one fold at a time
(``fold`` option), so a protocol loops over folds by overriding ``data.options.fold``.
Every other source (AFEW, FERV39k, a folder) is one official train/test split: one run,
filed as fold ``None`` (``all.json``).
"""
from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping, Sequence

from ovfer.backbones.clip import BackboneConfig, ClipBackbone
from ovfer.config import config_diff, describe_diff, to_dict
from ovfer.data.labels import LabelError, canonical_classes
from ovfer.data.records import VideoRecord
from ovfer.engine.seed import seed_everything
from ovfer.methods.base import Method, MethodConfig, build_config, create_method
from ovfer.metrics.classification import closed_set_report
from ovfer.protocols.common import EvalOutputs, LoaderConfig, evaluate, stratified_holdout
from ovfer.protocols.data_source import DataSource
from ovfer.protocols.results import Selection, SplitResult, load_results

log = logging.getLogger(__name__)

FOLDED_DATASETS: dict[str, int] = {"mafw": 5, "dfew": 5}
"""Adapters with official folds (SPEC §2.2) and how many."""

EvalFn = Callable[[Method, int], dict[str, float]]


def plan_folds(data: DataSource, folds: Sequence[int] | None) -> list[int | None]:
    """``folds`` as given, else all official folds of the adapter, else ``[None]`` (one split)."""
    if folds is not None:
        if not folds:
            raise ValueError("folds is an empty list; give fold numbers, or null for all of the dataset's folds")
        return [int(f) for f in folds]
    n = FOLDED_DATASETS.get(data.adapter.lower())
    return list(range(1, n + 1)) if n else [None]


def fold_records(data: DataSource, fold: int | None, records: Sequence[VideoRecord] | None = None
                 ) -> list[VideoRecord]:
    """The records of one fold: loaded with ``options.fold = fold``, or picked from ``records``
    (which then hold several folds, each clip once per fold, as the adapters write them)."""
    if records is None:
        source = data if fold is None else replace(data, options={**data.options, "fold": fold})
        return source.load()
    if fold is None:
        return list(records)
    out = [r for r in records if r.fold == fold]
    if not out:
        present = sorted({r.fold for r in records}, key=lambda f: (f is None, f or 0))
        raise ValueError(f"no record of fold {fold} among the {len(records)} given records; folds present: {present}")
    return out


def dataset_label(data: DataSource, records: Sequence[VideoRecord]) -> str:
    """``data.name``, else the records' dataset name(s), else the adapter name."""
    if data.name:
        return data.name
    names = sorted({r.dataset for r in records})
    return "+".join(names) if names else data.adapter


def default_classes(data: DataSource, records: Sequence[VideoRecord]) -> list[str]:
    """The canonical class order of the data's dataset (``ovfer.data.labels``); for sources
    without one (a folder), the single-label classes present, sorted by name."""
    candidates = [n for n in (data.name, *sorted({r.dataset for r in records}), data.adapter) if n]
    for name in candidates:
        try:
            return list(canonical_classes(name))
        except (LabelError, KeyError):
            continue
    present = sorted({r.class_name for r in records if not r.is_compound})
    if not present:
        raise ValueError(f"no single-label clip in the data of '{data.adapter}' to take classes from")
    return present


def keep_classes(records: Sequence[VideoRecord], classes: Sequence[str], what: str) -> list[VideoRecord]:
    """Records whose class is in ``classes``; the others are counted in the log, never silently dropped."""
    names = set(classes)
    kept = [r for r in records if r.class_name in names]
    dropped = len(records) - len(kept)
    if dropped:
        other = sorted({r.class_name for r in records if r.class_name not in names})
        log.info("%s: %d clips of classes outside the class list left out (%s%s)", what, dropped,
                 ", ".join(other[:6]), ", ..." if len(other) > 6 else "")
    return kept


def split_of(records: Sequence[VideoRecord], split: str) -> list[VideoRecord]:
    return [r for r in records if r.split == split]


def copy_backbone(backbone: ClipBackbone | None) -> ClipBackbone | None:
    """A deep copy for one run (methods may fine-tune it); the stateless BPE tokenizer is shared,
    since copying its vocabulary tables costs more than copying a small CLIP."""
    if backbone is None:
        return None
    tok = getattr(backbone, "tokenizer", None)
    return copy.deepcopy(backbone, {id(tok): tok} if tok is not None else {})


def build_method(name: str, classes: Sequence[str], backbone_cfg: BackboneConfig, overrides: Sequence[str],
                 backbone: ClipBackbone | None, seed: int) -> tuple[Method, MethodConfig]:
    """A fresh method per run: the shared backbone deep-copied, construction seeded, so a run
    never depends on the runs before it."""
    mcfg = build_config(name, {"backbone": to_dict(backbone_cfg)}, overrides)
    bb = copy_backbone(backbone)
    seed_everything(seed)
    return create_method(name, list(classes), mcfg, backbone=bb), mcfg


def finished(results_dir: str, kind: str, protocol: str) -> dict[tuple[Any, ...], SplitResult]:
    """Existing results keyed by (dataset, method, variant, selection, fold, seed): these runs are never redone."""
    try:
        results = load_results(results_dir)
    except FileNotFoundError:
        return {}
    return {(r.dataset, r.method, r.variant, r.selection, r.fold, r.seed or 0): r for r in results
            if r.kind == kind and r.protocol == protocol}


RUN_SCOPE: tuple[str, ...] = (
    "results_dir", "work_dir", "folds", "seeds", "indices", "openness", "save_scores", "method_overrides",
    "backbone.cache_dir", "method_config.backbone.cache_dir", "train.device", "train.progress",
    "train.log_every", "train.checkpoint_every", "train.keep_last", "loader.eval_batch_size", "loader.workers")
"""Config keys that say which runs to do, where files go or how progress shows - not what a
run computes; a finished result is reused whatever they hold. ``method_overrides`` is compared
through the method config it resolves to (order and spelling of the overrides do not count)."""

TRAIN_SCOPE: tuple[str, ...] = ("train", "selection", "val_fraction", "loader.batch_size", "loader.drop_last")
"""Also ignored when the finished run trained nothing (zero-shot direct runs, frozen methods)."""


def run_config(cfg: Any) -> dict[str, Any]:
    """What a result file stores as its ``config``: the run's config and the method config it resolves to."""
    mcfg = build_config(cfg.method, {"backbone": to_dict(cfg.backbone)}, cfg.method_overrides)
    return to_dict(cfg) | {"method_config": to_dict(mcfg)}


def check_same_config(stored: Mapping[str, Any], cfg: Any, what: str, trained: bool = True) -> None:
    """Raise when ``stored`` (a finished run's config) differs from ``cfg`` in what a run computes."""
    diff = config_diff(stored, run_config(cfg), RUN_SCOPE + (() if trained else TRAIN_SCOPE), paths=True)
    if diff:
        raise ValueError(f"{what} was made with another config ({describe_diff(diff)}). Give this run a "
                         "`variant: <label>` (its results and checkpoints then get their own folders), "
                         "another results_dir, or delete that file to redo the run.")


def reuse_finished(done: Mapping[tuple[Any, ...], SplitResult], key: tuple[Any, ...], cfg: Any) -> SplitResult | None:
    """The finished result for ``key`` if its run had this config, None if there is none.

    A finished file made with another config is an error: skipping it would report its
    numbers as this run's (e.g. an option variant written into the plain run's folder)."""
    r = done.get(key)
    if r is None:
        return None
    trained = bool(r.timing.get("epochs")) or bool(r.timing.get("train_s"))
    check_same_config(r.config, cfg, f"{r.path}, a finished run of '{r.method_dir}',", trained)
    log.info("skip finished run %s", r.path)
    return r


@contextlib.contextmanager
def using_classes(method: Method, classes: Sequence[str] | None) -> Iterator[Method]:
    """Temporarily score ``classes`` (zero-shot methods only change their text side)."""
    if classes is None or tuple(classes) == tuple(method.classnames):
        yield method
        return
    old = tuple(method.classnames)
    method.set_classes(list(classes))
    try:
        yield method
    finally:
        method.set_classes(list(old))


def class_metrics(out: EvalOutputs, num_classes: int) -> dict[str, Any]:
    """SPEC §5.1 metrics of the pooled test split, and the same for every extra head."""
    metrics = closed_set_report(out.logits, out.labels, num_classes)
    if out.extras:
        metrics["heads"] = {h: closed_set_report(v, out.labels, num_classes) for h, v in out.extras.items()}
    return metrics


def score_arrays(out: EvalOutputs) -> dict[str, Any]:
    """What goes into the scores ``.npz`` beside a closed-set/zero-shot result."""
    return {"pred": out.logits, "labels": out.labels, **{f"pred_{h}": v for h, v in out.extras.items()}}


def selection_plan(selection: Selection, method: Method, train: Sequence[VideoRecord],
                   test: Sequence[VideoRecord], *, test_classes: Sequence[str] | None, val_fraction: float,
                   seed: int, loader: LoaderConfig, precision: str, device: str
                   ) -> tuple[list[VideoRecord], EvalFn | None, str | None]:
    """(training records, per-epoch eval function, best key) for a model-selection rule.

    ``best_on_val``: a stratified part of the training clips is held out and the epoch with
    the best WAR on it (under the training classes) is kept. ``best_on_test``: the official
    codes' rule (METHODS §0): test after every epoch under ``test_classes`` and keep the
    epoch with the best test WAR; its results are labelled as such by ``SplitResult``.
    """
    if selection == "last" or not method.trainable:
        return list(train), None, None
    if selection == "best_on_val":
        kept, val = stratified_holdout(train, val_fraction, seed)
        val = [r for r in val if r.class_name in set(method.classnames)]
        if not val:
            raise ValueError("best_on_val: no validation clip of the training classes could be held out; "
                             "raise val_fraction or use selection 'last'")

        def eval_val(m: Method, epoch: int) -> dict[str, float]:
            out = evaluate(m, val, loader, precision, device, keep_features=False)
            m.train()
            return {"val_war": closed_set_report(out.logits, out.labels, len(m.classnames))["war"]}

        return kept, eval_val, "val_war"
    if selection != "best_on_test":
        raise ValueError(f"selection must be one of ['last', 'best_on_val', 'best_on_test'], got {selection!r}")

    def eval_test(m: Method, epoch: int) -> dict[str, float]:
        with using_classes(m, test_classes):
            out = evaluate(m, test, loader, precision, device, keep_features=False)
            k = len(m.classnames)
        m.train()
        rep = closed_set_report(out.logits, out.labels, k)
        return {"test_war": rep["war"], "test_uar": rep["uar"], "test_macro_f1": rep["macro_f1"]}

    return list(train), eval_test, "test_war"


def last_epoch_metrics(history: Sequence[Mapping[str, float]]) -> dict[str, float] | None:
    """The last epoch's test metrics from the per-epoch history (recorded beside a
    ``best_on_test`` result, so the effect of test-set selection stays visible)."""
    if not history or "eval/test_war" not in history[-1]:
        return None
    h = history[-1]
    return {"epoch": int(h.get("epoch", len(history))), "war": h["eval/test_war"], "uar": h["eval/test_uar"],
            "macro_f1": h["eval/test_macro_f1"]}
