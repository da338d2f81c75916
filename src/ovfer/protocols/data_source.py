"""Which records a protocol runs on: a dataset adapter and its options (SPEC §2.2)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ovfer.data.records import VideoRecord


@dataclass
class DataSource:
    """``adapter`` names a registered dataset; ``options`` go to it (annotation, video_root, task...).

    ``splits`` lists the record splits to read (the adapter is called once per split).
    """

    adapter: str = "mafw"
    options: dict[str, Any] = field(default_factory=dict)
    splits: tuple[str, ...] = ("train", "test")
    more: list[dict[str, Any]] = field(default_factory=list)
    """Further sources ``{"adapter": ..., "options": {...}}`` merged in (the AFEW+MAFW fusion task)."""
    name: str | None = None
    """Dataset name written into result files (default: the records' ``dataset``); e.g.
    "synthfer" for SynthFER read through the MAFW adapter, so its results are not filed as MAFW."""

    def load(self) -> list[VideoRecord]:
        from ovfer.data.adapters import create_dataset_records

        out: list[VideoRecord] = []
        for adapter, options in [(self.adapter, self.options)] + [(m["adapter"], m.get("options", {})) for m in self.more]:
            for split in self.splits:
                out.extend(create_dataset_records(adapter, split=split, **options))
        if not out:
            raise ValueError(f"dataset '{self.adapter}' with {self.options} produced no records")
        return out
