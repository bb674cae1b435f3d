"""systemd: the agent's notify/watchdog datagrams, the units as installed, ``loaphuong install``."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from controller.tools.install import ROLES
from controller.tools.local_stack import AgentFiles, free_port, start_agent, write_agent_config
from edge_agent.sd_notify import Notifier

VENV = Path(sys.prefix)


def _agent_files(tmp_path: Path) -> AgentFiles:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # No broker on this port: the agent runs (and keeps retrying the link) without one.
    registered = {"device": {"id": "loa-sd"}, "token": "t" * 32, "controller_url": "http://127.0.0.1:9/",
                  "controller_public_key": base64.b64encode(key).decode(), "mqtt_host": "127.0.0.1",
                  "mqtt_port": free_port()}
    return write_agent_config(tmp_path / "agent", registered, ["khu-pho-1"])


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    try:
        yield sock, path
    finally:
        sock.close()


def _receive(sock: socket.socket, within_s: float, done: Callable[[list[str]], bool]) -> list[str]:
    """Datagrams until ``done`` says so, or for at most ``within_s``."""
    got: list[str] = []
    until = time.monotonic() + within_s
    while time.monotonic() < until and not done(got):
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        got.append(data.decode())
    return got


def _pings_after_ready(states: list[str]) -> int:
    return states[states.index("READY=1"):].count("WATCHDOG=1") if "READY=1" in states else 0


def test_agent_notifies_ready_and_pings_watchdog(tmp_path: Path,
                                                 notify_socket: tuple[socket.socket, Path]) -> None:
    sock, path = notify_socket
    files = _agent_files(tmp_path)
    # WATCHDOG_USEC=600 ms: the agent pings every 300 ms (half, as systemd advises: the interval it chooses is
    # checked in test_notifier_is_quiet_without_systemd; how steady the pings are under load is not a test's job).
    proc = start_agent(files, tmp_path / "agent.log", env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "600000"})
    try:
        states = _receive(sock, 30, lambda got: _pings_after_ready(got) >= 5)
        assert "READY=1" in states, (states, proc.log_text()[-2000:])
        assert _pings_after_ready(states) >= 5, (states, proc.log_text()[-2000:])
        proc.signal(15)
        stopping = _receive(sock, 10, lambda got: "STOPPING=1" in got)
        assert "STOPPING=1" in stopping
        assert proc.proc.wait(10) == 0
    finally:
        proc.stop()


def test_notifier_outside_systemd_and_foreign_watchdog() -> None:
    quiet = Notifier({})
    assert not quiet.enabled and not quiet.notify("READY=1") and quiet.watchdog_interval_s is None
    # WATCHDOG_PID names another process: the watchdog is not ours to feed
    other = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval_s is None
    ours = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())})
    assert ours.watchdog_interval_s == 0.5
    # a socket that went away: logged, not raised
    gone = Notifier({"NOTIFY_SOCKET": "/nonexistent/notify.sock"})
    assert gone.enabled and not gone.notify("WATCHDOG=1")
    gone.close()


def _install(root: Path, role: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loaphuong.cli", "install", role, "--root", str(root),
                           "--venv", str(VENV), *extra], capture_output=True, text=True, timeout=60, check=False)


def test_install_places_units_and_configs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for role in ROLES:
        out = _install(root, role)
        assert out.returncode == 0, out.stderr
        assert "Các bước tiếp theo" in out.stdout and "systemctl daemon-reload" in out.stdout
    unit_dir = root / "etc/systemd/system"
    agent_unit = (unit_dir / "loaphuong-agent.service").read_text()
    assert f"ExecStart={VENV}/bin/loaphuong agent --config /etc/loaphuong/agent.toml" in agent_unit
    for line in ("Type=notify", "WatchdogSec=", "Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "ReadWritePaths=/var/lib/loaphuong-agent",
                 "SupplementaryGroups=audio dialout gpio"):
        assert line in agent_unit, line
    assert (unit_dir / "loaphuong-controller.service").exists()
    assert (unit_dir / "mosquitto.service.d/loaphuong.conf").exists()
    etc = root / "etc/loaphuong"
    assert {p.name for p in etc.iterdir()} == {"controller.env", "agent.toml.example", "mosquitto.conf"}
    assert oct((etc / "controller.env").stat().st_mode & 0o777) == "0o640"
    assert "allow_anonymous false" in (etc / "mosquitto.conf").read_text()
    # an existing config is kept; the unit is replaced
    (etc / "controller.env").write_text("LP_HTTP_PORT=9999\n")
    out = _install(root, "controller", "--lang", "en")
    assert out.returncode == 0 and "Kept" in out.stdout and "Next steps" in out.stdout, out.stdout
    assert (etc / "controller.env").read_text() == "LP_HTTP_PORT=9999\n"
    # a venv that is not there is a clear error
    bad = subprocess.run([sys.executable, "-m", "loaphuong.cli", "install", "agent", "--root", str(root),
                          "--venv", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for role in ROLES:
        assert _install(root, role).returncode == 0
    unit_dir = root / "etc/systemd/system"
    units = [unit_dir / "loaphuong-agent.service", unit_dir / "loaphuong-controller.service"]
    debian_mosquitto = Path("/lib/systemd/system/mosquitto.service")
    if debian_mosquitto.exists():
        # Debian's unit with our drop-in applied (SYSTEMD_UNIT_PATH makes verify read the drop-in dir)
        shutil.copy(debian_mosquitto, unit_dir / "mosquitto.service")
        units.append(unit_dir / "mosquitto.service")
    out = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True,
                         timeout=60, check=False, env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:"})
    assert out.returncode == 0, out.stderr
    # verify only warns (exit 0) about unknown keys, bad values or missing binaries: any line fails the test
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert not lines, lines
