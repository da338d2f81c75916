"""Tests for ovfer.data.cache.ClipCache: keys, memory-mapped loading, atomic writes and
detection of damaged entries (SPEC §2.5)."""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from ovfer.data import cache as C
from ovfer.data.cache import ClipCache


def clip(t: int = 6, s: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, s, s, 3), dtype=np.uint8)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    p = tmp_path / "video.mp4"
    p.write_bytes(b"\x00" * 100)
    return p


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_roundtrip_is_memory_mapped(tmp_path: Path, source: Path) -> None:
    cache = ClipCache(tmp_path / "cache")
    key = cache.key_for(source, {"size": 32})
    assert not cache.has(key) and cache.get(key) is None and cache.meta(key) is None
    data = clip()
    cache.put(key, data, {"boxes": [[1, 2, 3, 4]], "note": "x"})
    out = cache.get(key)
    assert isinstance(out, np.memmap) and not out.flags.writeable
    assert np.array_equal(out, data)
    assert cache.has(key) and cache.has(key, deep=True)
    assert cache.meta(key) == {"boxes": [[1, 2, 3, 4]], "note": "x"}
    assert key in cache.keys()
    cache.delete(key)
    assert not cache.has(key) and files_under(cache.root) == []


def test_key_depends_on_source_state_and_settings(tmp_path: Path, source: Path) -> None:
    k = ClipCache.key_for(source, {"a": 1, "size": 224})
    assert k == ClipCache.key_for(str(source), {"size": 224, "a": 1})  # order-free, str or Path
    assert k != ClipCache.key_for(source, {"a": 1, "size": 112})
    other = tmp_path / "other.mp4"
    other.write_bytes(source.read_bytes())
    assert k != ClipCache.key_for(other, {"a": 1, "size": 224})
    source.write_bytes(b"\x00" * 101)  # edited source
    assert k != ClipCache.key_for(source, {"a": 1, "size": 224})
    with pytest.raises(FileNotFoundError):
        ClipCache.key_for(tmp_path / "missing.mp4", {})


def test_key_for_folder_tracks_its_frames(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "1.jpg").write_bytes(b"a")
    k1 = ClipCache.key_for(folder, {})
    (folder / "2.jpg").write_bytes(b"b")
    assert ClipCache.key_for(folder, {}) != k1


def test_meta_only_entry(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    cache.put_meta("abc123", {"status": "no_face"})
    assert cache.meta("abc123") == {"status": "no_face"}
    assert not cache.has("abc123") and cache.get("abc123") is None


def test_put_rejects_non_uint8_and_bad_keys(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        cache.put("abc123", clip().astype(np.float32))
    with pytest.raises(ValueError, match="invalid cache key"):
        cache.put("../evil", clip())


def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ClipCache(tmp_path)
    real = np.lib.format.write_array

    def crash_half_way(fh, arr, **kw):  # write some bytes, then die like a killed process
        fh.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        cache.put("abc123", clip())
    assert files_under(tmp_path) == []  # neither a final name nor a temp file remains
    assert not cache.has("abc123")
    monkeypatch.setattr(np.lib.format, "write_array", real)
    cache.put("abc123", clip())
    assert cache.has("abc123")


def test_writer_never_exposes_a_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the array is being written, nothing exists under the final names."""
    cache = ClipCache(tmp_path)
    npy, js = cache._paths("abc123")
    seen: list[tuple[bool, bool]] = []
    real = np.lib.format.write_array

    def spy(fh, arr, **kw):
        real(fh, arr, **kw)
        seen.append((npy.exists(), js.exists()))

    monkeypatch.setattr(np.lib.format, "write_array", spy)
    cache.put("abc123", clip())
    assert seen == [(False, False)]


def test_replacing_an_entry_is_atomic(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    cache.put("abc123", clip(seed=1), {"v": 1})
    cache.put("abc123", clip(t=3, seed=2), {"v": 2})
    assert cache.get("abc123").shape[0] == 3 and cache.meta("abc123") == {"v": 2}


@pytest.mark.parametrize("damage", ["truncate", "append", "bad_header", "sidecar_missing", "npy_missing"])
def test_damaged_entry_is_detected_and_rebuilt(tmp_path: Path, damage: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    cache = ClipCache(tmp_path)
    data = clip()
    cache.put("abc123", data, {"v": 1})
    npy, js = cache._paths("abc123")
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:-500])
    elif damage == "append":
        with npy.open("ab") as fh:
            fh.write(b"xx")
    elif damage == "bad_header":
        npy.write_bytes(b"garbage" + npy.read_bytes()[7:])
    elif damage == "sidecar_missing":
        js.unlink()
    else:
        npy.unlink()
    with caplog.at_level(logging.WARNING, logger="ovfer.data.cache"):
        assert cache.get("abc123") is None
    if damage != "sidecar_missing":  # a missing sidecar is simply "not cached"
        assert "damaged" in caplog.text
    assert not cache.has("abc123") and not js.exists()
    cache.put("abc123", data, {"v": 2})  # the caller rebuilds
    assert np.array_equal(cache.get("abc123"), data)


def test_bit_flip_caught_by_checksum(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    cache.put("abc123", clip())
    npy, _ = cache._paths("abc123")
    raw = bytearray(npy.read_bytes())
    raw[-10] ^= 0xFF  # same size, one byte of pixel data flipped
    npy.write_bytes(bytes(raw))
    assert cache.get("abc123") is not None  # the fast size check cannot see this...
    assert not cache.has("abc123", deep=True)  # ...the checksum can, and drops the entry
    cache.put("abc123", clip())
    npy.write_bytes(bytes(raw))
    assert ClipCache(tmp_path, verify="checksum").get("abc123") is None


def test_header_disagreeing_with_sidecar(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    cache.put("abc123", clip(t=6))
    npy, js = cache._paths("abc123")
    side = json.loads(js.read_text())
    side["shape"] = [3, 64, 32, 3]  # same byte count, different shape
    js.write_text(json.dumps(side))
    assert not cache.has("abc123", deep=True)  # the deep check compares with the sidecar
    assert cache.get("abc123") is None


def test_garbage_sidecar_is_detected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ClipCache(tmp_path)
    cache.put("abc123", clip())
    _, js = cache._paths("abc123")
    js.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="ovfer.data.cache"):
        assert cache.meta("abc123") is None  # parsing the sidecar finds the damage...
    assert "damaged" in caplog.text
    assert cache.get("abc123") is None  # ...and the entry is gone


def test_get_without_mmap(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    data = clip()
    cache.put("abc123", data)
    out = cache.get("abc123", mmap=False)
    assert type(out) is np.ndarray and np.array_equal(out, data)


def test_fast_get_does_not_parse_the_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ClipCache(tmp_path)
    cache.put("abc123", clip(), {"boxes": [[0.0] * 4] * 1000})
    monkeypatch.setattr(json, "load", lambda *a, **k: pytest.fail("sidecar parsed on the fast path"))
    assert cache.get("abc123") is not None and cache.has("abc123")


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    (tmp_path / "ab").mkdir()
    old, new = tmp_path / "ab" / ".tmp-old.npy", tmp_path / "ab" / ".tmp-new.npy"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert cache.remove_stale_temp() == 1
    assert not old.exists() and new.exists()


def test_key_and_meta_survive_new_instance(tmp_path: Path) -> None:
    ClipCache(tmp_path).put("abc123", clip(), {"x": [1.5, None]})
    assert ClipCache(tmp_path).meta("abc123") == {"x": [1.5, None]}


def test_checksum_helper_matches_zlib() -> None:
    import zlib

    a = clip()
    assert C._crc32(a) == zlib.crc32(a.tobytes())


def test_get_frames_reads_only_requested_frames(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    data = clip(t=10)
    cache.put("abc123", data)
    out = cache.get_frames("abc123", [9, 0, 9, 4])
    assert type(out) is np.ndarray and np.array_equal(out, data[[9, 0, 9, 4]])
    with pytest.raises(IndexError):
        cache.get_frames("abc123", [10])
    assert cache.get_frames("missing1", [0]) is None
    assert np.array_equal(ClipCache(tmp_path, verify="checksum").get_frames("abc123", [1]), data[[1]])
    npy, _ = cache._paths("abc123")
    npy.write_bytes(npy.read_bytes()[:-1])
    assert cache.get_frames("abc123", [0]) is None and not cache.has("abc123")
