"""The controller side the end-to-end benches stand on: Mosquitto and the controller on free ports.

Each bench used to start the pair, read the admin token and stop its processes in its own copy of the same
lines; :func:`controller_stack` does it once, and stops whatever the bench added to ``procs`` (agents) with
them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from controller.processes import LOOPBACK, ManagedProcess
from controller.tools.local_stack import free_port, start_controller, start_mosquitto

#: The controller's log level in the benches: its INFO lines would cost time the benches measure.
QUIET = {"LP_LOG_LEVEL": "WARNING"}


@dataclass
class ControllerStack:
    """A running broker and controller; ``procs`` is stopped newest first when the stack ends."""

    root: Path
    mqtt_port: int
    api: str
    token: str
    procs: list[ManagedProcess] = field(default_factory=list)

    @property
    def data(self) -> Path:
        """The controller's data directory."""
        return self.root / "controller"


@contextmanager
def controller_stack(root: Path, env: Mapping[str, str] = QUIET) -> Iterator[ControllerStack]:
    """Mosquitto and the controller (data in ``root / "controller"``, logs beside it) on 127.0.0.1.

    The data directory may already hold a database the bench built. Every process is stopped on the way
    out, also when the bench fails.
    """
    procs: list[ManagedProcess] = []
    try:
        mqtt_port, http_port = free_port(), free_port()
        procs.append(start_mosquitto(root / "mosquitto", mqtt_port))
        data = root / "controller"
        procs.append(start_controller(data, http_port, mqtt_port, root / "controller.log", dict(env)))
        token = (data / "admin.token").read_text(encoding="utf-8").strip()
        yield ControllerStack(root, mqtt_port, f"http://{LOOPBACK}:{http_port}", token, procs)
    finally:
        for proc in reversed(procs):
            proc.stop()
