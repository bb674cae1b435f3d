"""WS-Discovery for real, inside network namespaces: ipycam and our emulator answer, the agent reports.

Multicast happens only inside the namespaces tests/netns.py creates; the main namespace never probes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from controller.tools.local_stack import register_agent, write_agent_config
from devices.protocol import CameraDiscover, Topics
from tests.conftest import ControllerHandle
from tests.mqtt_tools import client_for, controller_signer, publish
from tests.netns import Lan, lan, netns_unavailable, start_agent_in_namespace
from tests.onvif_emulator import BAD_REPLIES
from tests.onvif_fixtures import REPO, IpycamHandle, ipycam_available, start_emulator_process, start_ipycam

_REASON = netns_unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"network namespaces unavailable: {_REASON}")

EMU_ENDPOINT = f"urn:uuid:{uuid.uuid4()}"
_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def net() -> Iterator[Lan]:
    """Agent and camera namespaces on one veth segment; deleted in teardown."""
    with lan() as segment:
        yield segment


@pytest.fixture
def cameras(net: Lan, tmp_path: Path) -> Iterator[tuple[IpycamHandle | None, int]]:
    """ipycam (if installed) and the emulator (sending malformed answers first) in the camera namespace."""
    emu, emu_port = start_emulator_process(tmp_path, net.camera_ip, prefix=net.prefix(net.camera_ns),
                                           endpoint=EMU_ENDPOINT, bad_replies=True)
    cam: IpycamHandle | None = None
    try:
        if ipycam_available() is None:
            cam = start_ipycam(tmp_path / "ipycam", host=net.camera_ip, prefix=net.prefix(net.camera_ns),
                               discovery=True)
        yield cam, emu_port
    finally:
        if cam is not None:
            cam.stop()
        emu.stop()


def _probe_cmd(net: Lan, timeout_ms: int) -> list[str]:
    """The technician's probe command (``python -m edge_agent.camera_finder``), run in the agent namespace."""
    return [*net.prefix(net.agent_ns), sys.executable, "-m", "edge_agent.camera_finder", "--timeout-ms",
            str(timeout_ms)]


def test_probe_in_namespace_finds_ipycam_and_emulator(net: Lan, cameras: tuple[IpycamHandle | None, int]) -> None:
    cam, emu_port = cameras
    done = subprocess.run(_probe_cmd(net, 2500), capture_output=True, text=True, timeout=30, env=_ENV, cwd=REPO,
                          check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    by_endpoint = {c["endpoint"]: c for c in found["cameras"]}
    emu = by_endpoint.pop(EMU_ENDPOINT)
    assert emu["xaddrs"] == [f"http://{net.camera_ip}:{emu_port}/onvif/device_service"]
    assert emu["host"] == net.camera_ip and "dn:NetworkVideoTransmitter" in emu["types"]
    # Each probe goes out twice (SOAP-over-UDP repeats), so each malformed answer arrives twice.
    assert len(found["skipped"]) == 2 * len(BAD_REPLIES)
    assert all(s.startswith(f"{net.camera_ip}: ") for s in found["skipped"])
    if cam is None:
        pytest.skip("ipycam not installed: only the emulator was looked for")
    (ipycam,) = by_endpoint.values()
    assert ipycam["xaddrs"] == [cam.device_url]
    assert "onvif://www.onvif.org/name/Cong-UBND" in ipycam["scopes"]


class _Events:
    """Collects one agent's events and replies from the broker (in the main namespace)."""

    def __init__(self, port: int, agent_id: str) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = client_for(port)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.subscribe(Topics.event(agent_id, "camera.discovered"), qos=1)
        self.client.subscribe(Topics.event(agent_id, "error"), qos=1)
        self.client.subscribe(Topics.reply(agent_id), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.items.append((msg.topic, json.loads(msg.payload)))

    def wait(self, pred: Any, timeout: float, what: str, log: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for topic, body in self.items:
                    if pred(topic, body):
                        return body
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout}s; got {self.items}\nagent log:\n{log[-4000:]}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_agent_reports_discovered_cameras_over_mqtt(net: Lan, cameras: tuple[IpycamHandle | None, int],
                                                    controller: ControllerHandle, tmp_path: Path) -> None:
    cam, emu_port = cameras
    agent_id = "loa-cam-1"
    registered = register_agent(controller.api, controller.token, agent_id, ["khu-pho-1"])
    files = write_agent_config(tmp_path / "agent", registered, ["khu-pho-1"],
                               extra="\n[cameras]\ndiscover_interval_s = 60\nprobe_timeout_ms = 2000\n")
    events = _Events(controller.mqtt_port, agent_id)
    # The agent lives in its namespace; its broker connection crosses into the main one through socat.
    agent = start_agent_in_namespace(net, files, tmp_path, controller.mqtt_port)
    try:
        controller.wait_for(lambda: controller.device(agent_id)["online"] or not agent.proc.alive, 30,
                            "agent online")
        assert agent.proc.alive, agent.log()
        # The periodic probe (interval set): a first look shortly after start, not tied to a command.
        periodic = events.wait(lambda t, b: t.endswith("camera.discovered") and b["data"]["ref"] is None, 30,
                               "periodic camera.discovered", agent.log())
        assert EMU_ENDPOINT in {c["endpoint"] for c in periodic["data"]["cameras"]}
        # On command: a signed camera.discover, answered ok, then an event that names it.
        cmd = controller_signer(controller.data_dir).command("camera.discover", CameraDiscover(timeout_ms=1500),
                                                             to=agent_id, ttl_ms=60_000)
        publish(controller.mqtt_port, Topics.command(agent_id, "camera.discover"), cmd.to_bytes())
        events.wait(lambda t, b: t.endswith("/reply") and b["id"] == cmd.id and b["status"] == "ok", 15,
                    "ok reply", agent.log())
        found = events.wait(lambda t, b: t.endswith("camera.discovered") and b["data"]["ref"] == cmd.id, 30,
                            "camera.discovered for the command", agent.log())
        data = found["data"]
        assert found["from"] == agent_id and (data["part"], data["parts"]) == (1, 1)
        by_endpoint = {c["endpoint"]: c for c in data["cameras"]}
        assert by_endpoint[EMU_ENDPOINT]["xaddrs"] == [f"http://{net.camera_ip}:{emu_port}/onvif/device_service"]
        assert data["skipped"] == 2 * len(BAD_REPLIES)
        if cam is not None:
            assert any(c["xaddrs"] == [cam.device_url] for c in data["cameras"])
        assert "discovery answer skipped" in agent.log()
    finally:
        agent.stop()
        events.close()


async def test_discovered_address_is_read_over_onvif(net: Lan, tmp_path: Path) -> None:
    """Discovery → ONVIF: the probe (in a namespace) finds an address the controller then reads (main namespace)."""
    import asyncio
    import urllib.parse

    from controller.cameras.onvif import describe
    from tests.onvif_emulator import OnvifEmulator

    with OnvifEmulator() as camera:  # on 127.0.0.1, where the controller reaches it
        responder, _ = start_emulator_process(tmp_path, net.camera_ip, prefix=net.prefix(net.camera_ns),
                                              endpoint=camera.endpoint, advertise=camera.device_url)
        try:
            done = await asyncio.to_thread(
                subprocess.run, _probe_cmd(net, 1500), capture_output=True, text=True, timeout=30, env=_ENV, cwd=REPO,
                check=False)
        finally:
            responder.stop()
        assert done.returncode == 0, done.stderr
        (found,) = json.loads(done.stdout)["cameras"]
        assert found["endpoint"] == camera.endpoint
        url = urllib.parse.urlsplit(found["xaddrs"][0])
        assert url.hostname and url.port
        desc = await describe(url.hostname, url.port, camera.username, camera.password, timeout_s=10)
        assert desc.info.serial == camera.serial and desc.profiles


_FAILING_ROUND = """
import asyncio, json
from edge_agent.camera_finder import CameraFinder
from edge_agent.config import CamerasSection

async def main():
    events = []
    async def emit(kind, data):
        events.append((kind, data.model_dump()))
    finder = CameraFinder(CamerasSection(), emit)
    await finder.discover(500, "lenh-42")
    finder.close()
    print(json.dumps(events))

asyncio.run(main())
"""


def test_probe_without_a_network_reports_an_error_event() -> None:
    from tests.netns import bare_namespace

    with bare_namespace() as ns:
        done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _FAILING_ROUND], capture_output=True,
                              text=True, timeout=30, env=_ENV, cwd=REPO, check=False)
        cli = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "edge_agent.camera_finder"],
                             capture_output=True, text=True, timeout=30, env=_ENV, cwd=REPO, check=False)
    assert cli.returncode == 2 and json.loads(cli.stdout)["error"] == "camera_discovery"
    assert done.returncode == 0, done.stderr
    ((kind, data),) = json.loads(done.stdout.strip().splitlines()[-1])
    assert kind == "error" and data["code"] == "camera_discovery" and data["ref"] == "lenh-42"
    assert "WS-Discovery probe" in data["message"]


def test_real_discovery_to_registration(net: Lan, controller: ControllerHandle, tmp_path: Path) -> None:
    """The whole chain with nothing staged: the controller asks (signed camera.discover), the agent probes
    inside its namespace, the answer crosses real Mosquitto, the controller stores the discovery and
    registers the camera from it over ONVIF."""
    from tests.onvif_emulator import OnvifEmulator

    agent_id = "loa-cam-2"
    registered = register_agent(controller.api, controller.token, agent_id, ["khu-pho-2"])
    files = write_agent_config(tmp_path / "agent2", registered, ["khu-pho-2"], extra="\n[cameras]\n")
    with OnvifEmulator() as camera:  # reachable by the controller on 127.0.0.1
        responder, _ = start_emulator_process(tmp_path, net.camera_ip, prefix=net.prefix(net.camera_ns),
                                              endpoint=camera.endpoint, advertise=camera.device_url)
        agent = start_agent_in_namespace(net, files, tmp_path, controller.mqtt_port)
        try:
            controller.wait_for(lambda: controller.device(agent_id)["online"] or not agent.proc.alive, 30,
                                "agent online")
            assert agent.proc.alive, agent.log()
            status, sent = controller.post("/api/v1/cameras/discover", {"agent_id": agent_id, "timeout_ms": 1500})
            assert status == 202, sent

            def found() -> list[dict[str, Any]]:
                rows = controller.get(f"/api/v1/camera-discoveries?agent_id={agent_id}")[1]
                return [r for r in rows if r["endpoint"] == camera.endpoint]

            (row,) = controller.wait_for(found, 30, "the discovery stored by the controller")
            assert row["xaddrs"] == [camera.device_url] and row["host"] == net.camera_ip
            status, cam = controller.post(f"/api/v1/camera-discoveries/{row['id']}/register",
                                          {"id": "cong-cho", "name": "Cổng chợ", "zone": "khu-pho-2",
                                           "agent_id": agent_id, "username": camera.username,
                                           "password": camera.password})
            assert status == 201, cam
            assert (cam["serial"], cam["discovery_endpoint"], cam["agent_id"]) == (camera.serial, camera.endpoint,
                                                                                   agent_id)
            assert camera.operations("GetProfiles")
        finally:
            agent.stop()
            responder.stop()


def test_lan_addresses_in_namespaces(net: Lan) -> None:
    """The probe leaves by LAN interfaces (here the veth), never loopback."""
    from tests.netns import bare_namespace

    code = "from edge_agent.camera_finder import lan_addresses; print(lan_addresses())"
    inside = subprocess.run([*net.prefix(net.agent_ns), sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, env=_ENV, cwd=REPO, check=True)
    assert inside.stdout.strip() == f"['{net.agent_ip}']"
    with bare_namespace() as ns:
        bare = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=30, env=_ENV, cwd=REPO, check=True)
    assert bare.stdout.strip() == "[]"
