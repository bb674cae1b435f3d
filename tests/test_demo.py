"""``loaphuong demo`` starts the whole system, prints how to use it, and stops cleanly."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from controller.tools.local_stack import free_port


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    var = tmp_path / "var"
    http_port, mqtt_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "loaphuong.cli", "demo", "--var", str(var), "--http-port", str(http_port),
           "--mqtt-port", str(mqtt_port), "--run-for", "3"]
    for run in range(2):  # the second run reuses the admin, the agents and the database
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"http://127.0.0.1:{http_port}/" in proc.stdout
        assert "admin /" in proc.stdout and "curl" in proc.stdout
        token = var / "admin.token"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        for agent in ("loa-01", "loa-02", "loa-03"):
            log = (var / "logs" / f"{agent}.log").read_text()
            assert log.count("mqtt connected") == run + 1, log
            assert log.count("stopping") == run + 1
        assert "Traceback" not in (var / "logs" / "controller.log").read_text()
