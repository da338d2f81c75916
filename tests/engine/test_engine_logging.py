"""ovfer.engine.logging: CSV/JSONL/TensorBoard sinks, purge on resume, logging setup."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from ovfer.engine.logging import MetricLogger, setup_logging


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_sinks_grow_header_and_purge(tmp_path: Path) -> None:
    with MetricLogger(tmp_path) as ml:
        ml.log({"train/loss": 1.0}, step=1, epoch=0)
        ml.log({"train/loss": 0.5, "eval/uar": 0.3}, step=2, epoch=1)  # a new column appears
        ml.log({"train/loss": 0.25}, step=3, epoch=1)
    rows = _csv(tmp_path / "metrics.csv")
    assert [r["train/loss"] for r in rows] == ["1.0", "0.5", "0.25"] and rows[1]["eval/uar"] == "0.3"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    with MetricLogger(tmp_path, tensorboard=False, purge_step=2) as ml:  # resumed at step 2
        ml.log({"train/loss": 0.2}, step=3, epoch=1)
    assert [r["step"] for r in _csv(tmp_path / "metrics.csv")] == ["1", "2", "3"]
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3] and lines[-1]["train/loss"] == 0.2


def test_disabled_logger_writes_nothing(tmp_path: Path) -> None:
    MetricLogger(tmp_path / "r1", enabled=False).log({"a": 1.0}, step=0)
    assert not (tmp_path / "r1").exists()


def test_setup_logging_is_idempotent(tmp_path: Path) -> None:
    logger = setup_logging("DEBUG", tmp_path / "run.log")
    n = len(logger.handlers)
    setup_logging("INFO", tmp_path / "run.log")
    assert len(logger.handlers) == n and logger.level == logging.INFO
    logging.getLogger("ovfer.engine.test").info("hello")
    for h in logger.handlers:
        h.flush()
    assert "hello" in (tmp_path / "run.log").read_text()
    for h in list(logger.handlers):  # leave the global logger as found
        if getattr(h, "_ovfer", None):
            logger.removeHandler(h)
            h.close()
    logger.setLevel(logging.NOTSET)
