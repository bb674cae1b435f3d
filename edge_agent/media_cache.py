"""Content-addressed media cache: download from the controller, check the hash, keep by hash."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from pathlib import Path

from devices.protocol import valid_sha256

log = logging.getLogger(__name__)


class MediaError(RuntimeError):
    """A download failed; ``code`` is ``hash_mismatch``, ``too_large``, ``http_error`` or ``io_error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MediaCache:
    """Files live at ``{root}/{sha256}``; a file is only ever renamed into place after its hash matched."""

    def __init__(self, root: Path, base_url: str, token: str, max_bytes: int, timeout_s: float = 30.0,
                 capacity_bytes: int = 1024 * 1024 * 1024,
                 in_use: Callable[[], set[str]] = set) -> None:
        self.root = root
        self._capacity = capacity_bytes
        self._in_use = in_use
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"controller_url must be http(s): {base_url!r}")
        self._base = base_url.rstrip("/")
        self._token = token
        self._max = max_bytes
        self._timeout = timeout_s
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the file for ``sha256`` lives (whether or not it is there yet)."""
        if not valid_sha256(sha256):
            raise MediaError("bad_hash", f"not a sha256: {sha256!r}")
        return self.root / sha256

    def fetch(self, sha256: str, expected_size: int | None = None) -> Path:
        """Returns the cached file, downloading it first if needed. Blocks; run in a thread."""
        target = self.path(sha256)
        if target.exists():
            os.utime(target)  # recently used: last to be evicted
            return target
        limit = self._max if expected_size is None else min(self._max, expected_size)
        url = f"{self._base}/media/{sha256}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})  # noqa: S310
        # The prefetcher and a play about to start may fetch the same file at once: never share a temp file.
        tmp = target.with_name(f".{sha256}.{os.getpid()}.{threading.get_ident()}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp, tmp.open("wb") as out:  # noqa: S310 — URL is our controller's, from config
                while chunk := resp.read(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise MediaError("too_large", f"{url} exceeds {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            raise MediaError("http_error", f"GET {url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            tmp.unlink(missing_ok=True)
            raise MediaError("io_error", f"GET {url}: {exc}") from None
        except MediaError:
            tmp.unlink(missing_ok=True)
            raise
        got = digest.hexdigest()
        if got != sha256:
            tmp.unlink(missing_ok=True)
            raise MediaError("hash_mismatch", f"{url}: content hashes to {got}")
        tmp.replace(target)
        log.info("cached media %s (%d bytes)", sha256[:12], size)
        self.evict(keep={sha256})
        return target

    def put(self, sha256: str, data: bytes) -> Path:
        """Stores media that came with its command, after checking it hashes to ``sha256``. Blocks."""
        target = self.path(sha256)
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise MediaError("hash_mismatch", f"attached media hashes to {got}, not {sha256}")
        if len(data) > self._max:
            raise MediaError("too_large", f"attached media of {len(data)} bytes exceeds {self._max}")
        if target.exists():
            os.utime(target)
            return target
        tmp = target.with_name(f".{sha256}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise MediaError("io_error", f"storing attached media {sha256[:12]}: {exc}") from None
        log.info("media %s (%d bytes) arrived with its command", sha256[:12], len(data))
        self.evict(keep={sha256})
        return target

    def evict(self, keep: Collection[str] = ()) -> int:
        """Deletes least recently used files until the cache fits its capacity; never one in use."""
        entries = []
        for path in self.root.iterdir():
            if path.is_file() and valid_sha256(path.name):
                st = path.stat()
                entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        if total <= self._capacity:
            return 0
        protected = set(keep) | self._in_use()
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self._capacity:
                break
            if path.name in protected:
                continue
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        if removed:
            log.info("evicted %d cached media file(s); cache now %d bytes", removed, total)
        return removed
