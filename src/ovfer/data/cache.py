"""On-disk cache of uint8 face clips (SPEC §2.5).

Layout: ``root/<key[:2]>/<key>.npy`` (a plain ``.npy`` array ``(T, H, W, 3)``, opened as a
read-only memory map, or read frame by frame with :meth:`ClipCache.get_frames`, so a
loader that samples 16 frames reads 16 frames) plus ``<key>.json``, the sidecar with the array's shape, dtype, file size, CRC-32 and the
caller's metadata (for preprocessed clips: boxes, landmarks, scores, frames without a
face, settings; SPEC §2.3 step 4).

Writes are atomic: each file is written to a temporary name in the same folder, flushed,
fsync'ed and renamed, array first and sidecar last, so the sidecar is the commit marker
and no half-written file ever sits under a final name. A damaged entry (missing or
unparsable sidecar, a file size that disagrees with the ``.npy`` header, or with
``verify="checksum"`` a shape or CRC mismatch with the sidecar) makes
:meth:`ClipCache.get` log a warning, delete the entry and return ``None``, so the caller
rebuilds it.

Entries without a clip (:meth:`ClipCache.put_meta`) record outcomes such as "no face in
this video", so a resumed preprocessing run skips those videos too.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import time
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Callable, Literal, Mapping, Sequence, Union

import numpy as np

from ovfer.data.video import list_frame_files
from ovfer.fsutil import atomic_write

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"


def source_fingerprint(source: PathLike) -> dict[str, Any]:
    """Absolute path plus size/mtime of a video file, or of every frame image of a folder,
    so an edited source gets a new cache key."""
    p = Path(source).resolve()
    if p.is_dir():
        files = list_frame_files(p)
        stats = [f.stat() for f in files]
        return {"path": str(p), "files": len(files), "size": sum(s.st_size for s in stats),
                "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _crc32(arr: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(arr)).cast("B")) & 0xFFFFFFFF


_KEY = re.compile(r"[A-Za-z0-9_-]{3,}")


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"invalid cache key {key!r}: use 3+ letters, digits, '-' or '_'")


_Reader = Callable[[BinaryIO, tuple, np.dtype, int], np.ndarray]


@functools.lru_cache(maxsize=65536)
def _npy_header(path: str, size: int, mtime_ns: int, inode: int) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a C-order ``.npy`` file whose size matches its
    header; memoised per file version (parsing the header costs more than reading a
    small clip)."""
    del mtime_ns, inode  # memo key only
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fh)
        offset = fh.tell()
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if size != expected or fortran or dtype.hasobject:
        raise ValueError(f"{size} bytes on disk, header implies {expected}")
    return tuple(shape), dtype, offset


def _read_mmap(fh: BinaryIO, shape: tuple, dtype: np.dtype, offset: int) -> np.ndarray:
    return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape)


def _read_all(fh: BinaryIO, shape: tuple, dtype: np.dtype, offset: int) -> np.ndarray:
    arr = np.empty(shape, dtype)
    fh.seek(offset)
    if fh.readinto(memoryview(arr).cast("B")) != arr.nbytes:
        raise ValueError("short read")
    return arr


def _write_atomic(path: Path, write: Any) -> None:
    """Atomic write with the cache's temp prefix (so stale temps can be found and removed)."""
    atomic_write(path, write, prefix=_TMP_PREFIX)


class ClipCache:
    """Face clips keyed by (source fingerprint, pipeline settings); see the module docstring.

    ``verify="size"`` (default) checks on every :meth:`get` that the sidecar exists and
    that the file size matches the ``.npy`` header (microseconds; loading stays lazy);
    ``"checksum"`` also parses the sidecar and verifies the CRC-32 of the whole array.
    """

    def __init__(self, root: PathLike, verify: Literal["size", "checksum"] = "size") -> None:
        if verify not in ("size", "checksum"):
            raise ValueError(f"verify must be 'size' or 'checksum', got {verify!r}")
        self.root = Path(root)
        self._root_s = str(self.root)
        self.verify = verify
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ keys and paths
    @staticmethod
    def key_for(source: PathLike, settings: Mapping[str, Any]) -> str:
        """Key of ``source`` processed with ``settings`` (anything that changes the output,
        output size included). Raises ``FileNotFoundError`` if the source is missing."""
        payload = {"source": source_fingerprint(source), "settings": dict(settings)}
        blob = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:32]

    def _paths(self, key: str) -> tuple[Path, Path]:
        _check_key(key)
        folder = self.root / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def clip_path(self, key: str) -> Path:
        return self._paths(key)[0]

    # ------------------------------------------------------------------ reading
    def _sidecar(self, key: str) -> dict[str, Any] | None:
        _, js = self._paths(key)
        try:
            with js.open("r", encoding="utf-8") as fh:
                side = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            self._discard(key, f"unreadable sidecar ({e})")
            return None
        if not isinstance(side, dict) or side.get("format") != FORMAT_VERSION or "kind" not in side:
            self._discard(key, "sidecar has an unknown layout")
            return None
        return side

    def meta(self, key: str) -> dict[str, Any] | None:
        """The metadata stored with ``key`` (also for clip-less entries), or ``None``."""
        side = self._sidecar(key)
        return None if side is None else side.get("meta", {})

    def has(self, key: str, deep: bool = False) -> bool:
        """True if a valid clip is stored (``deep`` adds the checksum test)."""
        return self._load(key, "checksum" if deep else self.verify, _read_mmap) is not None

    def get(self, key: str, mmap: bool = True) -> np.ndarray | None:
        """The clip ``(T, H, W, 3)``, or ``None`` if absent or damaged (damaged entries are
        logged and deleted so the caller rebuilds them).

        ``mmap=True`` returns a read-only memory map (lazy: only touched frames are read);
        ``mmap=False`` reads the whole array with one system call, which avoids page
        faults when all of it is needed anyway.
        """
        return self._load(key, self.verify, _read_mmap if mmap else _read_all)

    def get_frames(self, key: str, indices: Sequence[int]) -> np.ndarray | None:
        """Frames ``indices`` of the clip as a new array ``(len(indices), H, W, 3)``, read
        with one positioned read per frame (the loader's fast path for sampled frames);
        ``None`` if absent or damaged, ``IndexError`` for an index outside the clip."""
        idx = [int(i) for i in indices]

        def read(fh: BinaryIO, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> np.ndarray:
            bad = [i for i in idx if not 0 <= i < shape[0]]
            if bad:
                raise IndexError(f"frame {bad[0]} outside clip {key} of {shape[0]} frames")
            out = np.empty((len(idx), *shape[1:]), dtype)
            step = out[0].nbytes if len(idx) else 0
            for j, i in enumerate(idx):
                if os.preadv(fh.fileno(), [memoryview(out[j]).cast("B")], offset + i * step) != step:
                    raise ValueError("short read")
            return out

        if self.verify == "checksum":  # checking the CRC reads everything anyway
            arr = self._load(key, "checksum", _read_all)
            return None if arr is None else arr[idx]
        return self._load(key, "size", read)

    def _load(self, key: str, verify: str, read: _Reader) -> np.ndarray | None:
        # The fast path never parses the sidecar (it can hold per-frame metadata of tens
        # of kB): the sidecar must exist (commit marker) and the .npy header must account
        # for the exact file size, which catches truncated and overlong files.
        _check_key(key)
        folder = os.path.join(self._root_s, key[:2])
        npy, js = os.path.join(folder, key + ".npy"), os.path.join(folder, key + ".json")
        if not os.path.exists(js):
            return None  # not cached, or a writer has not committed yet
        try:
            with open(npy, "rb", buffering=0) as fh:
                st = os.fstat(fh.fileno())
                shape, dtype, offset = _npy_header(npy, st.st_size, st.st_mtime_ns, st.st_ino)
                arr = read(fh, shape, dtype, offset)
        except FileNotFoundError:
            side = self._sidecar(key)
            if side is not None and side["kind"] == "clip":
                self._discard(key, "clip file missing")
            return None
        except (OSError, ValueError) as e:
            self._discard(key, f"unreadable clip file ({e})")
            return None
        if verify == "checksum":
            side = self._sidecar(key)
            if side is None or list(arr.shape) != side.get("shape") or _crc32(arr) != side.get("crc32"):
                del arr
                self._discard(key, "shape or checksum disagrees with the sidecar")
                return None
        return arr

    # ------------------------------------------------------------------ writing
    def put(self, key: str, clip: np.ndarray, meta: Mapping[str, Any] | None = None) -> Path:
        """Store ``clip`` (uint8, e.g. ``(T, H, W, 3)``) and ``meta`` (JSON-serialisable)
        atomically; returns the clip path."""
        arr = np.ascontiguousarray(clip)
        if arr.dtype != np.uint8:
            raise ValueError(f"clips are stored as uint8, got {arr.dtype}")
        npy, js = self._paths(key)
        npy.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(npy, lambda fh: np.lib.format.write_array(fh, arr, allow_pickle=False))
        side = {"format": FORMAT_VERSION, "kind": "clip", "key": key, "shape": list(arr.shape),
                "dtype": str(arr.dtype), "file_size": npy.stat().st_size, "crc32": _crc32(arr),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "meta": dict(meta or {})}
        self._write_sidecar(js, side)
        return npy

    def put_meta(self, key: str, meta: Mapping[str, Any]) -> None:
        """Store an entry without a clip (e.g. "no face found"); ``has`` stays False."""
        npy, js = self._paths(key)
        js.parent.mkdir(parents=True, exist_ok=True)
        npy.unlink(missing_ok=True)
        side = {"format": FORMAT_VERSION, "kind": "meta", "key": key,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "meta": dict(meta)}
        self._write_sidecar(js, side)

    @staticmethod
    def _write_sidecar(js: Path, side: dict[str, Any]) -> None:
        data = json.dumps(side, separators=(",", ":"), allow_nan=False).encode("utf-8")
        _write_atomic(js, lambda fh: fh.write(data))

    def delete(self, key: str) -> None:
        npy, js = self._paths(key)
        js.unlink(missing_ok=True)  # sidecar first: the entry stops being valid at once
        npy.unlink(missing_ok=True)

    def _discard(self, key: str, reason: str) -> None:
        log.warning("clip cache %s: entry %s is damaged (%s); it will be rebuilt", self.root, key, reason)
        self.delete(key)

    def keys(self) -> list[str]:
        """Keys of all entries (clips and clip-less), in no particular order."""
        return [p.stem for p in self.root.glob("??/*.json") if not p.name.startswith(_TMP_PREFIX)]

    def remove_stale_temp(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files left by killed writers (only old ones: others may be live)."""
        now, n = time.time(), 0
        for p in self.root.glob(f"??/{_TMP_PREFIX}*"):
            try:
                if now - p.stat().st_mtime > older_than_s:
                    p.unlink()
                    n += 1
            except FileNotFoundError:
                pass
        return n
