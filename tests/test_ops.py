"""Remote operations end to end: real Mosquitto, the controller under uvicorn, an agent subprocess.

Each ``POST /api/v1/devices/{id}/ops/{op}`` goes out as a signed command and comes back as the
agent's reply; the effects are checked where they happen (the file sink, the fake sysfs GPIO dir,
the agent's data dir, its exit code).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.tools.local_stack import register_agent, start_agent, write_agent_config
from devices.protocol import RESTART_EXIT_CODE, OpsRestart, Topics
from tests.conftest import ControllerHandle, RunningAgent
from tests.mqtt_tools import controller_signer, forged_signer, publish, wait_for_text

PIN = 17
WARM_UP_MS = 700
IDLE_OFF_S = 1.0


@dataclass
class OpsAgent:
    """An agent with an amplifier relay on a fake sysfs GPIO dir."""

    agent: RunningAgent
    gpio: Path
    tmp: Path

    @property
    def value_file(self) -> Path:
        return self.gpio / f"gpio{PIN}" / "value"

    def restart(self) -> None:
        self.agent.proc = start_agent(self.agent.files, self.tmp / f"{self.agent.agent_id}-2.log")


def _fake_sysfs(root: Path) -> Path:
    # A pin already exported: what /sys/class/gpio looks like after `echo 17 > export`.
    pin = root / f"gpio{PIN}"
    pin.mkdir(parents=True)
    (pin / "direction").write_text("in\n")
    (pin / "value").write_text("0\n")
    (root / "export").write_text("")
    return root


@pytest.fixture
def ops_agent(tmp_path: Path, controller: ControllerHandle) -> Iterator[OpsAgent]:
    gpio = _fake_sysfs(tmp_path / "gpio")
    registered = register_agent(controller.api, controller.token, "loa-ops", ["khu-pho-1"])
    extra = (f'volume = 80\n\n[amplifier]\ngpio_pin = {PIN}\nwarm_up_ms = {WARM_UP_MS}\n'
             f'idle_off_s = {IDLE_OFF_S}\ndriver = "sysfs"\ngpio_root = "{gpio}"\n')
    files = write_agent_config(tmp_path / "agents" / "loa-ops", registered, ["khu-pho-1"], extra=extra)
    handle = OpsAgent(RunningAgent(files, start_agent(files, tmp_path / "loa-ops.log"), registered), gpio, tmp_path)
    try:
        controller.wait_for(lambda: controller.device("loa-ops")["online"] or not handle.agent.proc.alive, 20,
                            "loa-ops online")
        assert handle.agent.proc.alive, handle.agent.log()
        yield handle
    finally:
        handle.agent.proc.stop()


def op(controller: ControllerHandle, op_name: str, body: dict[str, Any] | None = None,
       device: str = "loa-ops") -> tuple[int, Any]:
    return controller.post(f"/api/v1/devices/{device}/ops/{op_name}", body or {})


def ok(controller: ControllerHandle, op_name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, reply = op(controller, op_name, body)
    assert status == 200, reply
    assert reply["status"] == "ok", reply
    data: dict[str, Any] = reply["data"]
    return data


def test_volume_tone_amp_logs_reload(controller: ControllerHandle, ops_agent: OpsAgent) -> None:
    agent = ops_agent.agent
    # volume: applied, in the state, and saved in the agent's data dir for the next start
    assert ok(controller, "volume", {"volume": 35}) == {"volume": 35}
    controller.wait_for(lambda: (controller.device("loa-ops")["state"] or {}).get("volume") == 35, 10,
                        "state volume 35")
    assert json.loads((agent.files.data_dir / "ops.json").read_text())["volume"] == 35

    # tone: a real play through the file sink at that volume, after the amplifier warmed up
    assert ops_agent.value_file.read_text().strip() == "0"
    data = ok(controller, "tone", {"frequency_hz": 880, "duration_ms": 600})
    play_id = data["play_id"]
    line = controller.wait_for(lambda: next((x for x in agent.sink_lines() if x["play_id"] == play_id), None),
                               10, "tone in the sink")
    assert line["volume"] == 35
    assert ops_agent.value_file.read_text().strip() == "1"
    assert (ops_agent.gpio / f"gpio{PIN}" / "direction").read_text().strip() == "out"
    on_ms = ops_agent.value_file.stat().st_mtime_ns // 1_000_000
    assert line["actual_start"] - on_ms >= WARM_UP_MS - 20, (line, on_ms)
    wav = agent.files.sink_dir / line["file"]
    controller.wait_for(lambda: wav.exists() and wav.stat().st_size > 48_000, 5, "tone samples written")
    # proof of play like any play
    controller.wait_for(lambda: any(p["play_id"] == play_id and p["outcome"] == "completed"
                                    for p in controller.get("/api/v1/plays?agent_id=loa-ops")[1]), 10,
                        "tone's proof of play")
    # the amplifier switches off after the idle delay, not before
    controller.wait_for(lambda: ops_agent.value_file.read_text().strip() == "0", 10, "amp off when idle")
    off_ms = ops_agent.value_file.stat().st_mtime_ns // 1_000_000
    assert off_ms - (line["actual_start"] + 600) >= IDLE_OFF_S * 1000 - 50

    # amp by hand: on stays on past the idle delay, off switches off
    assert ok(controller, "amp", {"on": True}) == {"on": True}
    assert ops_agent.value_file.read_text().strip() == "1"
    time.sleep(IDLE_OFF_S + 0.3)
    assert ops_agent.value_file.read_text().strip() == "1"
    assert ok(controller, "amp", {"on": False}) == {"on": False}
    assert ops_agent.value_file.read_text().strip() == "0"

    # logs tail: bounded by lines and by size, and it is the agent's own log
    tail = ok(controller, "logs", {"lines": 5})
    assert 1 <= len(tail["lines"]) <= 5
    big = ok(controller, "logs", {"lines": 500})
    assert any("volume set to 35" in x for x in big["lines"]), big["lines"][-20:]
    assert len(json.dumps(big).encode()) <= 64 * 1024
    status, body = op(controller, "logs", {"lines": 100_000})
    assert status == 422 and "lines" in body["detail"], body

    # reload: a broken file is refused with a clear error, the agent keeps its running config
    config = agent.files.config
    good = config.read_text()
    config.write_text(good + "\nno_such_setting = 1\n")
    status, reply = op(controller, "reload")
    assert status == 200 and reply["status"] == "error", reply
    assert reply["error"].startswith("config_invalid:") and "no_such_setting" in reply["error"], reply
    assert agent.proc.alive
    assert ok(controller, "volume", {"volume": 36}) == {"volume": 36}
    # a good file: what can change live is applied, the rest is reported
    config.write_text(good.replace("volume = 80", "volume = 60").replace('port =', 'keepalive = 45\nport ='))
    applied = ok(controller, "reload")
    assert applied["applied"] == ["volume"] and applied["restart_needed"] == ["mqtt"], applied
    controller.wait_for(lambda: (controller.device("loa-ops")["state"] or {}).get("volume") == 60, 10,
                        "state volume 60")

    # bad requests never reach the agent
    assert op(controller, "volume", {"volume": 101})[0] == 422
    assert op(controller, "explode")[0] == 404
    assert op(controller, "volume", {"volume": 1}, device="no-such")[0] == 404
    status, _ = controller.post("/api/v1/devices/loa-ops/ops/volume", {"volume": 1}, token="wrong")
    assert status == 401


def test_restart_exits_with_restart_code_and_volume_survives(tmp_path: Path, controller: ControllerHandle,
                                                             ops_agent: OpsAgent) -> None:
    agent = ops_agent.agent
    assert ok(controller, "volume", {"volume": 42}) == {"volume": 42}
    assert ok(controller, "restart", {"reason": "test"}) == {"exit_code": RESTART_EXIT_CODE}
    deadline = time.monotonic() + 15
    while agent.proc.alive and time.monotonic() < deadline:
        time.sleep(0.1)
    assert agent.proc.returncode == RESTART_EXIT_CODE, agent.log()[-3000:]
    assert "restart requested by remote operation: test" in agent.log()
    # what systemd's Restart=always does: start it again; the volume set remotely is still there
    ops_agent.restart()
    controller.wait_for(lambda: controller.device("loa-ops")["online"]
                        and (controller.device("loa-ops")["state"] or {}).get("volume") == 42, 20,
                        "restarted agent online with volume 42")
    assert ok(controller, "logs", {"lines": 3})["lines"]


def test_unsigned_or_forged_ops_are_ignored(controller: ControllerHandle, ops_agent: OpsAgent) -> None:
    agent = ops_agent.agent
    topic = Topics.command("loa-ops", "ops.restart")
    forged = forged_signer().command("ops.restart", OpsRestart(), to="loa-ops", ttl_ms=30_000)
    publish(controller.mqtt_port, topic, forged.to_bytes())
    unsigned = controller_signer(controller.data_dir).command("ops.restart", OpsRestart(), to="loa-ops",
                                                               ttl_ms=30_000).model_copy(update={"sig": None})
    publish(controller.mqtt_port, topic, unsigned.to_bytes())
    # one signed for another agent, replayed onto this agent's topic
    other = controller_signer(controller.data_dir).command("ops.restart", OpsRestart(), to="loa-other",
                                                            ttl_ms=30_000)
    publish(controller.mqtt_port, topic, other.to_bytes())
    wait_for_text(agent.log, "wrong_target")
    assert "bad_signature" in agent.log() and "unsigned" in agent.log()
    time.sleep(0.5)
    assert agent.proc.alive
    # and it still obeys the real controller
    assert ok(controller, "volume", {"volume": 50}) == {"volume": 50}


def test_agent_offline_times_out(controller: ControllerHandle, ops_agent: OpsAgent) -> None:
    ops_agent.agent.proc.stop()
    # The HTTP client gives up after 10 s, so a route that ignored wait_s fails here rather than hanging.
    status, body = controller.post("/api/v1/devices/loa-ops/ops/volume?wait_s=1", {"volume": 10})
    assert status == 504 and "did not answer" in body["detail"], body
