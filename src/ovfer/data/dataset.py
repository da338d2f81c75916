"""``VideoClipDataset``: records -> sampled, transformed clips as dict samples (SPEC §2.1–§2.5).

Order of work (STYLE pattern 7): record -> frame count -> sampler indices -> frames
(clip cache or ``ovfer.data.video``) -> clip transform -> ``{"video", "label", "index",
"id", "caption"}``. Pixels stay in [0, 1]; methods normalise.

Reproducibility: each sample's randomness comes from ``SeedSequence((seed, epoch,
index))``, split into one generator for the sampler and one for the transform, so a run
gives the same clips whatever the number of DataLoader workers. Test mode uses epoch 0,
so random test samplers (EmoCLIP's window) are seeded per (seed, sample) and fixed.

Unreadable clips (SPEC §2.2): the record is logged with its path and reason, marked, and
counted; the dataset serves the next readable record instead (a deterministic choice),
and raises :class:`NoReadableClipError` only if no record is readable. Marks and the
epoch live in shared memory, so counts made in DataLoader workers are visible in the
main process and ``set_epoch`` reaches persistent workers.
"""
from __future__ import annotations

import inspect
import logging
import multiprocessing as mp
from dataclasses import replace
from multiprocessing import context as mp_context
from types import SimpleNamespace
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ovfer.data.records import VideoRecord
from ovfer.data.sampling import Sampler, SamplerConfig, build_sampler
from ovfer.data.transforms import ClipTransform, build_transform, to_float_clip

log = logging.getLogger(__name__)

ClipFn = Callable[..., torch.Tensor]


class NoReadableClipError(RuntimeError):
    """Every record of a dataset failed to load."""


class _Unreadable(Exception):
    """Internal: a record's frames cannot be used (the message is the reason)."""


def _accepts_rng(fn: Callable[..., Any]) -> bool:
    """Pass the per-sample generator to ovfer clip ops and to callables with an ``rng`` parameter;
    anything else (e.g. a torchvision transform) is called with the clip alone."""
    if isinstance(fn, ClipTransform):
        return True
    try:
        return "rng" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class VideoClipDataset(Dataset):
    """Clips of ``records`` labelled by position in ``class_names`` (-1 if absent: open-set unknowns).

    Args:
        records: from a dataset adapter.
        class_names: this task's class list; a record's label id is the index of
            ``record.class_name`` (compound labels joined by '_'), or -1.
        num_frames: T; overrides the sampler's own ``num_frames`` when given.
        sampler: a :class:`Sampler`, a :class:`SamplerConfig` or a registered name.
        transform: a clip op ``transform(clip, rng)`` (any callable with an ``rng`` parameter
            gets the per-sample generator; others are called as ``transform(clip)``) on a
            (T, 3, H, W) float clip, a preset name (built at ``image_size``), or None.
        train: train-mode sampling/augmentation and per-epoch randomness.
        seed: base seed of every per-sample generator.
        cache: an ``ovfer.data.cache.ClipCache`` (face clips from ``preprocess`` or decoded clips).
        cache_settings: the key settings; None keys plain decoded clips (``{"kind": "decoded"}``).
        on_cache_miss: ``fill`` decodes the source and stores it, ``decode`` reads the source
            without storing, ``skip`` treats the clip as unreadable. Default: ``fill`` for
            decoded clips, ``skip`` when ``cache_settings`` are given (face clips must come
            from ``preprocess``, never from raw frames).
        frame_count: ``file`` counts decodable frames; ``annotation`` uses the record's
            ``num_frames`` when given (DFER-CLIP's n, METHODS §1).
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        class_names: Sequence[str],
        num_frames: int | None = None,
        sampler: Sampler | SamplerConfig | str = "tsn",
        transform: ClipFn | str | None = None,
        train: bool = False,
        seed: int = 0,
        cache: Any | None = None,
        *,
        cache_settings: Mapping[str, Any] | None = None,
        on_cache_miss: Literal["fill", "decode", "skip"] | None = None,
        frame_count: Literal["file", "annotation"] = "file",
        image_size: int = 224,
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if frame_count not in ("file", "annotation"):
            raise ValueError(f"frame_count must be 'file' or 'annotation', got {frame_count!r}")
        self.records = list(records)
        self.class_names = list(class_names)
        self._class_index = {c: i for i, c in enumerate(self.class_names)}
        self.sampler = self._make_sampler(sampler, num_frames)
        self.transform = build_transform(transform, image_size) if isinstance(transform, str) else transform
        self._transform_rng = self.transform is not None and _accepts_rng(self.transform)
        self.train = bool(train)
        self.seed = int(seed)
        self.cache = cache
        self.cache_settings = dict(cache_settings) if cache_settings is not None else {"kind": "decoded"}
        miss = on_cache_miss or ("skip" if cache_settings is not None else "fill")
        if miss not in ("fill", "decode", "skip"):
            raise ValueError(f"on_cache_miss must be one of ['fill', 'decode', 'skip'], got {miss!r}")
        self.on_cache_miss = miss
        self.frame_count = frame_count
        self._epoch = mp.RawValue("l", 0)
        self._failed = mp.RawArray("b", max(1, len(self.records)))
        self._reasons: dict[int, str] = {}
        self._counts: dict[int, int] = {}
        self._keys: dict[int, str] = {}

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    def _make_sampler(sampler: Sampler | SamplerConfig | str, num_frames: int | None) -> Sampler:
        if isinstance(sampler, Sampler):
            if num_frames is None or num_frames == sampler.num_frames:
                return sampler
            return Sampler(replace(sampler.config, num_frames=num_frames), sampler.fn)
        extra = {} if num_frames is None else {"num_frames": num_frames}
        return build_sampler(sampler, **extra)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_reasons"], state["_counts"], state["_keys"] = {}, {}, {}
        if mp_context.get_spawning_popen() is None:
            # Ordinary pickling/deepcopy (not a worker start): shared ctypes cannot travel,
            # so the copy gets private snapshots.
            state["_epoch"] = SimpleNamespace(value=self._epoch.value)
            state["_failed"] = bytearray(bytes(self._failed))
        return state

    # ------------------------------------------------------------------ public API
    def __len__(self) -> int:
        return len(self.records)

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that enters every training sample's seed (shared with workers)."""
        self._epoch.value = int(epoch)

    def label_of(self, record: VideoRecord) -> int:
        """Index of the record's class in ``class_names``, or -1 (an unknown class, SPEC §5.3)."""
        return self._class_index.get(record.class_name, -1)

    @property
    def targets(self) -> list[int]:
        """Label ids of all records, in order (for metrics and class-balanced samplers)."""
        return [self.label_of(r) for r in self.records]

    @property
    def num_skipped(self) -> int:
        """Distinct records found unreadable so far (in any worker)."""
        return bytes(self._failed)[: len(self.records)].count(1)

    @property
    def skipped(self) -> dict[str, str]:
        """``id -> reason`` of unreadable records (reasons found in a worker are logged there)."""
        return {
            self.records[i].id: self._reasons.get(i, "unreadable (reported in a DataLoader worker's log)")
            for i in range(len(self.records)) if self._failed[i]
        }

    def summary(self) -> str:
        """One line for the run summary (SPEC §2.2: skipped clips are counted, never silent)."""
        return f"{len(self)} clips, {self.num_skipped} skipped as unreadable"

    def rng_for(self, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        """(sampler rng, transform rng) of sample ``index`` in the current epoch."""
        epoch = self.epoch if self.train else 0
        ss = np.random.SeedSequence([self.seed, epoch, int(index)])
        a, b = ss.spawn(2)
        return np.random.default_rng(a), np.random.default_rng(b)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} clips")
        index %= n
        for step in range(n):
            j = (index + step) % n
            if self._failed[j]:
                continue
            try:
                return self._load(j, index)
            except _Unreadable as e:
                self._mark(j, str(e))
        raise NoReadableClipError(f"none of the {n} clips could be read; e.g. {next(iter(self.skipped.items()), '')}")

    # ------------------------------------------------------------------ loading
    def _mark(self, j: int, reason: str) -> None:
        rec = self.records[j]
        self._failed[j] = 1
        self._reasons[j] = reason
        log.warning("skipping clip '%s' (%s): %s", rec.id, rec.video, reason)

    def _load(self, j: int, index: int) -> dict[str, Any]:
        """Record ``j`` with the randomness of the requested ``index`` (a substitute for an
        unreadable clip thus differs from the original draw of record ``j``)."""
        rec = self.records[j]
        s_rng, t_rng = self.rng_for(index)
        frames = self._frames(j, rec, s_rng)  # (T, H, W, 3) uint8
        clip = to_float_clip(frames)  # (T, 3, H, W)
        if self.transform is not None:
            clip = self.transform(clip, t_rng) if self._transform_rng else self.transform(clip)
        return {"video": clip, "label": self.label_of(rec), "index": j, "id": rec.id, "caption": rec.caption or ""}

    def _indices(self, n: int, rec: VideoRecord, rng: np.random.Generator) -> np.ndarray:
        if n < self.sampler.min_frames:
            raise _Unreadable(f"{n} frames, fewer than the sampler's minimum {self.sampler.min_frames}")
        return self.sampler(n, self.train, rng)

    def _frames(self, j: int, rec: VideoRecord, rng: np.random.Generator) -> np.ndarray:
        if self.cache is not None:
            arr = self._from_cache(j, rec)
            if arr is not None:
                n = len(arr)
                if self.frame_count == "annotation" and rec.num_frames:
                    n = rec.num_frames
                idx = np.minimum(self._indices(n, rec, rng), len(arr) - 1)
                return np.asarray(arr[idx])
        try:
            from ovfer.data import video

            n = self._count(j, rec, video)
            idx = self._indices(n, rec, rng)
            return video.read_frames(rec.video, idx)
        except _Unreadable:
            raise
        except Exception as e:  # any failure *while reading* makes the clip unreadable
            raise _Unreadable(f"{type(e).__name__}: {e}") from e

    def _count(self, j: int, rec: VideoRecord, video: Any) -> int:
        if self.frame_count == "annotation" and rec.num_frames:
            return int(rec.num_frames)
        if j not in self._counts:
            self._counts[j] = int(video.count_frames(rec.video))
        return self._counts[j]

    def _from_cache(self, j: int, rec: VideoRecord) -> np.ndarray | None:
        try:
            if j not in self._keys:
                self._keys[j] = self.cache.key_for(rec.video, self.cache_settings)
            key = self._keys[j]
            arr = self.cache.get(key)
        except Exception as e:
            raise _Unreadable(f"clip cache: {type(e).__name__}: {e}") from e
        if arr is not None and len(arr) > 0:
            return arr
        if self.on_cache_miss == "skip":
            raise _Unreadable("not in the clip cache (no face found, or not preprocessed with these settings)")
        if self.on_cache_miss == "decode":
            return None
        try:
            from ovfer.data import video

            full = video.read_video(rec.video)
            self.cache.put(key, full, {"source": rec.video})
        except Exception as e:
            raise _Unreadable(f"{type(e).__name__}: {e}") from e
        return full


def collate(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack samples: video (B, T, 3, S, S), label/index LongTensor (B,), id/caption lists."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    return {
        "video": torch.stack([b["video"] for b in batch]),
        "label": torch.tensor([int(b["label"]) for b in batch], dtype=torch.long),
        "index": torch.tensor([int(b["index"]) for b in batch], dtype=torch.long),
        "id": [b["id"] for b in batch],
        "caption": [b["caption"] for b in batch],
    }
