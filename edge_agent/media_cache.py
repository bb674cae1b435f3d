"""Content-addressed media cache: download from the controller, check the hash, keep by hash."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from devices.protocol import valid_sha256

log = logging.getLogger(__name__)


class MediaError(RuntimeError):
    """A download failed; ``code`` is ``hash_mismatch``, ``too_large``, ``http_error``, ``io_error`` or ``bad_hash``.

    ``retryable`` is True when trying again later may work: the controller was unreachable, answered
    5xx/408/425/429, or the answer broke off. A 4xx or a file over the limit will not get better by asking
    again; nor will a complete answer with the wrong bytes (the controller's copy is damaged), though
    another replica may have a good one.
    """

    def __init__(self, code: str, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


#: HTTP answers that say "not now" rather than "never".
_RETRYABLE_HTTP = frozenset({408, 425, 429})


class MediaCache:
    """Files live at ``{root}/{sha256}``; a file is only ever renamed into place after its hash matched.

    ``base_urls`` are controller replicas that all serve the same media. A download starts at the one that
    answered last and moves on to the next on a connection error, a 5xx or wrong bytes.
    """

    def __init__(self, root: Path, base_urls: str | Sequence[str], token: str, max_bytes: int,
                 timeout_s: float = 30.0, capacity_bytes: int = 1024 * 1024 * 1024,
                 in_use: Callable[[], set[str]] = set) -> None:
        self.root = root
        self._capacity = capacity_bytes
        self._in_use = in_use
        bases = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not bases:
            raise ValueError("at least one controller URL is needed")
        for base in bases:
            if not base.startswith(("http://", "https://")):
                raise ValueError(f"controller_url must be http(s): {base!r}")
        self._bases = [b.rstrip("/") for b in bases]
        #: Index of the replica that answered last: the next download starts there.
        self._preferred = 0
        self._token = token
        self._max = max_bytes
        self._timeout = timeout_s
        root.mkdir(parents=True, exist_ok=True)

    @property
    def base_urls(self) -> list[str]:
        """The controller addresses downloads use, in configured order."""
        return list(self._bases)

    def path(self, sha256: str) -> Path:
        """Where the file for ``sha256`` lives (whether or not it is there yet)."""
        if not valid_sha256(sha256):
            raise MediaError("bad_hash", f"not a sha256: {sha256!r}")
        return self.root / sha256

    def fetch(self, sha256: str, expected_size: int | None = None) -> Path:
        """Returns the cached file, downloading it first if needed. Blocks; run in a thread.

        Each replica is tried once per call; the caller decides whether and when to call again
        (``MediaError.retryable``).
        """
        target = self.path(sha256)
        if target.exists():
            os.utime(target)  # recently used: last to be evicted
            return target
        first = self._preferred
        errors: list[MediaError] = []
        for step in range(len(self._bases)):
            index = (first + step) % len(self._bases)
            try:
                self._download(self._bases[index], sha256, target, expected_size)
            except MediaError as exc:
                if not exc.retryable and exc.code != "hash_mismatch":
                    raise
                errors.append(exc)
                if len(self._bases) > 1:
                    log.info("media %s: %s; trying the next controller", sha256[:12], exc)
                continue
            self._preferred = index
            return target
        last = errors[-1]
        message = "; ".join(str(e) for e in errors) if len(errors) > 1 else str(last)
        raise MediaError(last.code, message[:2000], retryable=any(e.retryable for e in errors))

    def _download(self, base: str, sha256: str, target: Path, expected_size: int | None) -> None:
        limit = self._max if expected_size is None else min(self._max, expected_size)
        url = f"{base}/media/{sha256}"
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
            retry = exc.code >= 500 or exc.code in _RETRYABLE_HTTP
            raise MediaError("http_error", f"GET {url}: HTTP {exc.code}", retryable=retry) from None
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
            # HTTPException: the controller died mid-answer (IncompleteRead, a broken status line).
            tmp.unlink(missing_ok=True)
            raise MediaError("io_error", f"GET {url}: {str(exc) or repr(exc)}", retryable=True) from None
        except MediaError:
            tmp.unlink(missing_ok=True)
            raise
        got = digest.hexdigest()
        if got != sha256:
            tmp.unlink(missing_ok=True)
            # A whole answer with the wrong bytes: that replica's copy is bad (a transfer cut short is an
            # io_error), so asking it again will not help; another replica may have a good copy.
            raise MediaError("hash_mismatch", f"{url}: content hashes to {got}")
        tmp.replace(target)
        log.info("cached media %s (%d bytes) from %s", sha256[:12], size, base)
        self.evict(keep={sha256})

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
