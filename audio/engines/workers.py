"""The parent side of the engine workers (``worker.py``, the child): starting them, talking to them, stopping them.

* :class:`ServedWorker`: one long-lived child answering JSON-line requests (a Piper voice loaded, or
  pyttsx3 initialised).
* :class:`OneRequestWorkers`: children that answer one request each, the next started ahead of need (espeak-ng).
* The registries of both, shared by every engine object of the process, and :func:`shutdown_workers`
  (also run at interpreter exit).
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from audio.engines.base import EngineFailed

__all__ = ["OneRequestWorkers", "ServedWorker", "decode_reply", "piper_worker", "request_pool", "shutdown_workers",
           "worker_command"]

#: Workers are started by path: ``-m audio.engines.worker`` would import this package (pydantic, ~0.3 s).
_WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")


def worker_command(*args: str) -> list[str]:
    """The command line that starts ``worker.py`` with ``args`` under this interpreter."""
    return [sys.executable, str(_WORKER_SCRIPT), *args]


def decode_reply(raw: bytes, what: str) -> dict[str, Any]:
    """The last JSON line a worker wrote; :class:`EngineFailed` naming ``what`` when there is none readable."""
    lines = [ln for ln in raw.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    if not lines:
        raise EngineFailed(f"{what}: the worker gave no answer")
    try:
        reply = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise EngineFailed(f"{what}: unreadable worker answer {lines[-1][:200]!r}") from None
    if not isinstance(reply, dict):
        raise EngineFailed(f"{what}: unreadable worker answer")
    return reply


class ServedWorker:
    """One long-lived child process answering JSON-line requests (pyttsx3 initialised, or a Piper voice loaded)."""

    def __init__(self, kind: str, command: list[str], start_what: str) -> None:
        self.kind = kind
        self.command = command
        self.start_what = start_what
        #: Serialises callers of a shared worker (Piper's); a pooled worker has one caller at a time anyway.
        self.lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buffer = b""
        self._ready = False

    def alive(self) -> bool:
        """True while the child runs (it may still be starting)."""
        return self._proc is not None and self._proc.poll() is None

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-300:]

    def stop(self) -> None:
        """Kills the child (if any) and forgets it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._buffer = b""
        self._ready = False

    def _read_line(self, limit_s: float, what: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        deadline = time.monotonic() + limit_s
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise EngineFailed(f"{self.kind}: {what} timed out; worker killed after {limit_s:g}s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EngineFailed(f"{self.kind}: worker exited during {what}: {self._stderr_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return decode_reply(line, self.kind)

    def spawn(self) -> None:
        """Starts the child without waiting for it to get ready (a no-op while one runs)."""
        if self.alive():
            return
        self.stop()
        # Kept open for the worker's life (closed in stop()); a file, so a chatty child never blocks on a pipe.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, bufsize=0)
        except OSError as exc:
            self.stop()
            raise EngineFailed(f"{self.kind}: cannot start worker: {exc}") from None

    def _await_ready(self, load_timeout_s: float) -> None:
        ready = self._read_line(load_timeout_s, self.start_what)
        if not ready.get("ok"):
            raise EngineFailed(f"{self.kind}: {ready.get('error', 'the worker failed to start')}")
        self._ready = True

    def wait_ready(self, timeout_s: float) -> bool:
        """Waits up to ``timeout_s`` for a started child to say it is ready; True once it has.

        For callers that want a worker started ahead to be ready before they need it (tests, warm-up).
        A child that fails to get ready is stopped, so the next request starts a clean one.
        """
        if self._ready and self.alive():
            return True
        if not self.alive():
            return False
        with self.lock:
            try:
                self._await_ready(timeout_s)
            except EngineFailed:
                self.stop()
                return False
        return True

    def speak(self, request: dict[str, Any], timeout_s: float, load_timeout_s: float) -> tuple[dict[str, Any], float]:
        """Sends one request: the reply, and the seconds spent starting the child (0 when it was running).

        On any failure the child is killed so the next call starts clean.
        """
        # A caller queued behind a long synthesis gives up after its own timeout, so the chain can move on.
        if not self.lock.acquire(timeout=timeout_s):
            raise EngineFailed(f"{self.kind}: voice busy for {timeout_s:g}s")
        try:
            start_s = 0.0
            try:
                if not (self._ready and self.alive()):
                    # Not started, died, or started ahead and perhaps still getting ready.
                    started = time.monotonic()
                    self.spawn()
                    self._await_ready(load_timeout_s)
                    start_s = time.monotonic() - started
                proc = self._proc
                assert proc is not None and proc.stdin is not None
                proc.stdin.write((json.dumps(request) + "\n").encode())
                return self._read_line(timeout_s, "synthesis"), start_s
            except EngineFailed:
                self.stop()
                raise
            except OSError as exc:  # broken pipe: the child died between requests
                self.stop()
                raise EngineFailed(f"{self.kind}: worker failed: {exc}") from None
        finally:
            self.lock.release()


class OneRequestWorkers:
    """Workers that answer one request each, with the next one started ahead of need (espeak-ng)."""

    def __init__(self, kind: str, command: list[str], start_what: str) -> None:
        self.kind = kind
        self.command = command
        self.start_what = start_what
        self._next: ServedWorker | None = None
        self._lock = threading.Lock()
        self._closed = False

    def speak(self, request: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], float]:
        """One request on a fresh worker; the reply and the seconds spent waiting for the worker to be ready."""
        with self._lock:
            worker, self._next = self._next, None
        worker = worker or ServedWorker(self.kind, self.command, self.start_what)
        try:
            return worker.speak(request, timeout_s, timeout_s)  # the ready wait counts against the timeout too
        finally:
            worker.stop()
            self._start_next()

    def _start_next(self) -> None:
        with self._lock:
            if self._closed or self._next is not None:
                return
            worker = self._next = ServedWorker(self.kind, self.command, self.start_what)
        try:
            worker.spawn()
        except EngineFailed:  # the next request starts one itself, and reports why that fails
            with self._lock:
                if self._next is worker:
                    self._next = None

    def close(self) -> None:
        """Stops the worker started ahead; none is started after this."""
        with self._lock:
            self._closed = True
            worker, self._next = self._next, None
        if worker is not None:
            worker.stop()


_pools: dict[tuple[str, ...], OneRequestWorkers] = {}
_piper_workers: dict[tuple[Path, Path], ServedWorker] = {}
_workers_lock = threading.Lock()


def request_pool(kind: str, command: list[str], start_what: str) -> OneRequestWorkers:
    """The process's one-request workers for ``command`` (created on first use)."""
    with _workers_lock:
        pool = _pools.get(tuple(command))
        if pool is None:
            pool = _pools[tuple(command)] = OneRequestWorkers(kind, command, start_what)
        return pool


def piper_worker(model: Path, config: Path) -> ServedWorker:
    """The process's one long-lived worker for this voice file (created on first use, started on first request)."""
    key = (model, config)
    with _workers_lock:
        worker = _piper_workers.get(key)
        if worker is None:
            worker = _piper_workers[key] = ServedWorker("piper", worker_command("piper", str(model), str(config)),
                                                        "loading the voice")
        return worker


def shutdown_workers() -> None:
    """Stops every long-lived engine worker (they restart on demand)."""
    with _workers_lock:
        pools = list(_pools.values())
        workers = list(_piper_workers.values())
        _pools.clear()
        _piper_workers.clear()
    for pool in pools:
        pool.close()
    for worker in workers:
        with worker.lock:
            worker.stop()


atexit.register(shutdown_workers)
