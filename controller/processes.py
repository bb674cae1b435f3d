"""Child processes the controller and its tools start, and waiting for one to listen.

The controller runs Icecast for live broadcasts; ``loaphuong demo``, the tests and the benchmarks run
Mosquitto, the controller and agents (controller/tools/local_stack.py). Both start them the same way: output in
a log file, a session of their own, and :meth:`ManagedProcess.stop` always ends them (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

LOOPBACK = "127.0.0.1"


def poll_until(ready: Callable[[], bool], timeout: float, what: str, proc: ManagedProcess | None,
               interval: float) -> None:
    """Polls ``ready`` until it is true; raises TimeoutError, or RuntimeError as soon as ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive:
            raise RuntimeError(f"{proc.name} exited with {proc.returncode}:\n{proc.log_text()[-3000:]}")
        if ready():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} after {timeout}s")


def wait_for_tcp(port: int, timeout: float, proc: ManagedProcess | None = None) -> None:
    """Waits until 127.0.0.1:``port`` accepts connections."""
    def accepts() -> bool:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return True
        except OSError:
            return False

    poll_until(accepts, timeout, f"nothing listening on {LOOPBACK}:{port}", proc, 0.05)


class ManagedProcess:
    """A child process with its output in a log file; :meth:`stop` always ends it."""

    def __init__(self, name: str, cmd: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("ab")
        # A session of its own: the terminal's Ctrl-C reaches only the parent, which stops
        # children in order (agents, controller, broker).
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=dict(env) if env is not None else None,
                                     cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """True while the child runs."""
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code, once it has exited."""
        return self.proc.returncode

    def signal(self, sig: int) -> None:
        """Sends a signal if the child still runs."""
        if self.alive:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def log_text(self) -> str:
        """Everything the child has printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")
