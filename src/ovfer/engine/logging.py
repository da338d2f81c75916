"""Metric logs (SPEC §4: TensorBoard and CSV/JSON logs) and the library's ``logging`` setup.

:class:`MetricLogger` writes the same scalars to three sinks in ``out_dir``:
``tensorboard/`` (event files), ``metrics.csv`` (one row per call, one column per metric
name; the header grows when a new name appears) and ``metrics.jsonl`` (one JSON object per
call). It is inert on ranks other than 0. On resume, rows logged after the checkpoint's
step are dropped (``purge_step``) so the logs read like those of an uninterrupted run.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import torch

log = logging.getLogger(__name__)

_FIXED = ["step", "epoch", "time"]


def setup_logging(level: int | str = "INFO", file: str | Path | None = None) -> logging.Logger:
    """Send the ``ovfer`` loggers to stderr (and to ``file``); idempotent."""
    root = logging.getLogger("ovfer")
    root.setLevel(level if isinstance(level, int) else level.upper())
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    if not any(getattr(h, "_ovfer", "") == "stream" for h in root.handlers):
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        sh._ovfer = "stream"  # type: ignore[attr-defined]
        root.addHandler(sh)
    if file is not None:
        path = str(Path(file).resolve())
        if not any(getattr(h, "_ovfer", "") == path for h in root.handlers):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(path, encoding="utf-8")
            fh.setFormatter(fmt)
            fh._ovfer = path  # type: ignore[attr-defined]
            root.addHandler(fh)
    return root


def _scalar(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().float().item() if v.numel() == 1 else None
    if isinstance(v, (bool, int, float, str)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class MetricLogger:
    """TensorBoard + ``metrics.csv`` + ``metrics.jsonl``; rank 0 only (``enabled``)."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = True,
                 purge_step: int | None = None) -> None:
        self.dir = Path(out_dir)
        self.enabled = enabled
        self.csv_path = self.dir / "metrics.csv"
        self.jsonl_path = self.dir / "metrics.jsonl"
        self._writer = None
        self._columns: list[str] = list(_FIXED)
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._prepare_files(purge_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tb_purge = None if purge_step is None else max(purge_step + 1, 0)
            self._writer = SummaryWriter(log_dir=str(self.dir / "tensorboard"), purge_step=tb_purge)

    def _prepare_files(self, purge_step: int | None) -> None:
        rows: list[dict[str, str]] = []
        if self.csv_path.exists():
            with self.csv_path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self._columns = list(reader.fieldnames or _FIXED)
                rows = list(reader)
        if purge_step is None:
            return
        keep = [r for r in rows if _step_of(r.get("step")) <= purge_step]
        self._rewrite_csv(keep)
        if self.jsonl_path.exists():
            lines = self.jsonl_path.read_text(encoding="utf-8").splitlines()
            kept = [ln for ln in lines if ln.strip() and _step_of(_json_step(ln)) <= purge_step]
            self.jsonl_path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")

    def _rewrite_csv(self, rows: list[Mapping[str, Any]]) -> None:
        with self.csv_path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=self._columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    def log(self, metrics: Mapping[str, Any], step: int, epoch: int | None = None) -> None:
        """Write ``metrics`` (name -> number) at ``step``; tensors become floats."""
        if not self.enabled:
            return
        values = {k: _scalar(v) for k, v in metrics.items()}
        values = {k: v for k, v in values.items() if v is not None}
        record = {"step": int(step), "epoch": epoch, "time": round(time.time(), 3), **values}
        if self._writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self._writer.add_scalar(k, v, int(step))
        with self.jsonl_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, allow_nan=True) + "\n")
        self._append_csv(record)

    def _append_csv(self, record: Mapping[str, Any]) -> None:
        new = [k for k in record if k not in self._columns]
        if new or not self.csv_path.exists():
            rows: list[dict[str, str]] = []
            if self.csv_path.exists():
                with self.csv_path.open(newline="", encoding="utf-8") as fh:
                    rows = list(csv.DictReader(fh))
            self._columns += new
            self._rewrite_csv(rows)
        with self.csv_path.open("a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=self._columns, extrasaction="ignore").writerow(record)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _step_of(v: Any) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return -1


def _json_step(line: str) -> Any:
    try:
        return json.loads(line).get("step")
    except (json.JSONDecodeError, AttributeError):
        return None
