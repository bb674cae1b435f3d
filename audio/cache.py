"""Content-keyed store of rendered speech, safe across threads and processes, bounded by LRU eviction.

Layout under ``root``::

    entries/<k[:2]>/<key>/speech.ogg, speech.mp3, meta.json   one finished render
    locks/<k[:2]>.lock                                        flock stripes (256 at most; never deleted)
    tmp/                                                      renders in progress, evictions in flight
    chimes/                                                   generated and loudness-matched chimes

An entry appears by renaming a finished directory into place (atomic), so readers never see half an
entry. A file made later for an existing entry (the MP3 a caller asks for) is renamed in first and the
metadata that lists it is replaced atomically after, under the same locks as a render. Rendering a key
holds a per-key thread lock and an exclusive ``flock`` on the key's stripe, so
the same text is rendered once however many threads or processes ask for it at the same time; the
others wait and then read the stored entry. Lock files are striped by key prefix rather than one per
key because a lock file can never be deleted safely while another process may be waiting on it.

Files handed out belong to the cache: copy or hard-link them (:meth:`CachedSpeech.link_into`), never
move them. Eviction deletes the least recently used entries (a hit refreshes the entry's mtime); a
caller that must keep a file past the next render should link it out first.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio.profile import note, stage

__all__ = ["CacheEntry", "SpeechCache"]

_META = "meta.json"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A stored render: its directory and the metadata saved with it."""

    key: str
    directory: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        """A file of the entry by name (``speech.ogg``, ``speech.mp3``)."""
        return self.directory / name


class SpeechCache:
    """A bounded, process-safe store of renders keyed by a hex digest."""

    def __init__(self, root: Path, max_bytes: int = 1 << 30, max_entries: int | None = None) -> None:
        if max_bytes <= 0 or (max_entries is not None and max_entries <= 0):
            raise ValueError("cache bounds must be positive")
        self.root = root
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.entries_dir = root / "entries"
        self.locks_dir = root / "locks"
        self.tmp_dir = root / "tmp"
        self.chime_dir = root / "chimes"
        for d in (self.entries_dir, self.locks_dir, self.tmp_dir, self.chime_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}
        self._key_locks_guard = threading.Lock()

    def _entry_dir(self, key: str) -> Path:
        return self.entries_dir / key[:2] / key

    @staticmethod
    def _check_key(key: str) -> None:
        if len(key) < 16 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a hex cache key: {key!r}")

    def get(self, key: str) -> CacheEntry | None:
        """The stored entry for ``key`` (its use refreshes its LRU position), or None."""
        self._check_key(key)
        directory = self._entry_dir(key)
        try:
            meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        files = meta.get("files", [])
        if not isinstance(files, list) or not all((directory / str(f)).is_file() for f in files):
            return None
        try:
            os.utime(directory)
        except OSError:  # evicted between the read and now: the caller has the metadata, files may be gone
            return None
        return CacheEntry(key=key, directory=directory, meta=meta)

    @contextmanager
    def _thread_lock(self, key: str) -> Iterator[None]:
        # A lock per key, dropped when nobody holds or waits on it, so the dict does not grow without bound.
        with self._key_locks_guard:
            lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._key_locks_guard:
                lock, users = self._key_locks[key]
                if users == 1:
                    del self._key_locks[key]
                else:
                    self._key_locks[key] = (lock, users - 1)

    @contextmanager
    def _process_lock(self, key: str) -> Iterator[None]:
        # flock locks belong to the open file description, so they also exclude other threads of this process.
        with (self.locks_dir / f"{key[:2]}.lock").open("a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def get_or_create(self, key: str, produce: Callable[[Path], dict[str, Any]]) -> tuple[CacheEntry, bool]:
        """The entry for ``key``, rendering it once with ``produce`` when absent; also says whether it was a hit.

        ``produce(directory)`` writes the entry's files into an empty directory and returns JSON-able
        metadata; the cache adds ``files`` (every file it wrote) and ``key``. An exception from
        ``produce`` leaves no entry behind.
        """
        self._check_key(key)
        with stage("cache lookup"):
            hit = self.get(key)
        if hit is not None:
            return hit, True
        with self._thread_lock(key), self._process_lock(key):
            hit = self.get(key)  # rendered by whoever held the lock before us
            if hit is not None:
                return hit, True
            staging = self.tmp_dir / f"render-{uuid.uuid4().hex}"
            staging.mkdir()
            try:
                meta = dict(produce(staging))
                started = time.perf_counter()
                meta["key"] = key
                meta["files"] = sorted(p.name for p in staging.iterdir() if p.is_file())
                (staging / _META).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
                target = self._entry_dir(key)
                target.parent.mkdir(exist_ok=True)
                if target.exists():  # a stale, unreadable entry: move it aside before taking its place
                    self._discard(target)
                os.rename(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        self.evict(keep=key)
        note("cache: write the entry + evict", time.perf_counter() - started)
        entry = self.get(key)
        if entry is None:  # only if the bounds are smaller than this one entry and someone else evicted it
            raise RuntimeError(f"cache entry {key} vanished right after it was written")
        return entry, False

    def add_file(self, key: str, name: str,
                 produce: Callable[[CacheEntry, Path], dict[str, Any]]) -> CacheEntry | None:
        """The entry for ``key`` with the file ``name``, made once by ``produce`` when missing.

        ``produce(entry, path)`` writes ``path`` (outside the entry) and returns metadata to add; the file is
        then moved in and ``meta.json`` replaced. None when there is no such entry (never rendered, or
        evicted meanwhile). An exception from ``produce`` leaves the entry as it was.
        """
        self._check_key(key)
        if name == _META or "/" in name or name.startswith("."):
            raise ValueError(f"not a file name for an entry: {name!r}")
        with self._thread_lock(key), self._process_lock(key):
            entry = self.get(key)
            if entry is None or name in entry.meta.get("files", []):
                return entry
            staging = self.tmp_dir / f"add-{uuid.uuid4().hex}"
            staging.mkdir()
            try:
                extra = produce(entry, staging / name)
                meta = {**entry.meta, **extra, "files": sorted({*entry.meta.get("files", []), name})}
                (staging / _META).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
                os.replace(staging / name, entry.directory / name)
                os.replace(staging / _META, entry.directory / _META)
            except Exception:
                if not entry.directory.is_dir():  # evicted while the file was being made
                    return None
                raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        self.evict(keep=key)
        return self.get(key)

    def _discard(self, directory: Path) -> None:
        # Renaming out of entries/ first makes the removal atomic for readers.
        doomed = self.tmp_dir / f"evict-{uuid.uuid4().hex}"
        try:
            os.rename(directory, doomed)
        except OSError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def _scan(self) -> list[tuple[float, int, Path]]:
        found: list[tuple[float, int, Path]] = []
        for shard in self.entries_dir.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.iterdir():
                try:
                    mtime = entry.stat().st_mtime
                    size = sum(f.stat().st_size for f in entry.iterdir())
                except OSError:
                    continue
                found.append((mtime, size, entry))
        return found

    def usage(self) -> tuple[int, int]:
        """(entries, bytes) currently stored."""
        found = self._scan()
        return len(found), sum(size for _, size, _ in found)

    def evict(self, keep: str | None = None) -> int:
        """Deletes least recently used entries until both bounds hold; returns how many went."""
        found = sorted(self._scan(), key=lambda item: item[0])
        total = sum(size for _, size, _ in found)
        count = len(found)
        removed = 0
        for _, size, entry in found:
            if total <= self.max_bytes and (self.max_entries is None or count <= self.max_entries):
                break
            if entry.name == keep:
                continue
            self._discard(entry)
            total -= size
            count -= 1
            removed += 1
        return removed

    def clear(self) -> None:
        """Deletes every entry (chimes stay)."""
        for _, _, entry in self._scan():
            self._discard(entry)
