"""systemd's notify protocol, written out: one datagram to the unix socket named by ``$NOTIFY_SOCKET``.

``Type=notify`` units wait for ``READY=1``; with ``WatchdogSec=`` systemd kills and restarts a service
that stops sending ``WATCHDOG=1``. No python-systemd dependency: the protocol is a single ``sendto``.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends notify messages if the process runs under a ``Type=notify`` unit (or a test's socket)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written "@name"; its address starts with a NUL byte.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval_s = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self._sock is not None

    def notify(self, state: str) -> bool:
        """Sends ``state`` (e.g. ``READY=1``); False if not under systemd or the send failed (logged)."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto(state.encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify %r failed: %s", state.split("=", 1)[0], exc)
            return False
        return True

    def close(self) -> None:
        """Closes the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_interval(env: dict[str, str]) -> float | None:
    """Half the watchdog timeout systemd gave this process (as sd_watchdog_enabled advises), or None."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # meant for another process (e.g. a wrapper's child)
    return int(usec) / 1_000_000 / 2
