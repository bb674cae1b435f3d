"""ONVIF cameras through the controller: discovery → registration → live view → motion → PTZ, and bad cameras.

The camera is our ONVIF emulator (digest-checked WS-Security, SOAP faults, PTZ) whose stream URI points
at a real H.264 RTSP stream from GStreamer; the controller and Mosquitto run as real processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.tools.local_stack import free_port, http_json, register_agent
from devices.protocol import CameraDiscovered, DiscoveredCamera, Topics, make_event
from tests.conftest import Broker, ControllerHandle
from tests.mqtt_tools import publish
from tests.onvif_emulator import OnvifEmulator
from tests.rtsp_server import RtspServer
from tests.test_camera_api import MjpegClient, decode, get_bytes, role_tokens, start_cam_controller
from tests.test_camera_gateway import _gst_available

pytestmark = pytest.mark.skipif(_gst_available() is not None, reason=str(_gst_available()))


@pytest.fixture
def cam_controller(controller_factory: Any, broker: Broker) -> ControllerHandle:
    """A controller with short camera timings."""
    return start_cam_controller(controller_factory, broker)


@pytest.fixture
def tokens(cam_controller: ControllerHandle) -> dict[str, str]:
    return role_tokens(cam_controller)


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[RtspServer]:
    """The emulator's first profile (``prof0``) as a real RTSP stream."""
    with RtspServer(free_port(), tmp_path / "rtsp.log", path="prof0") as server:
        yield server


@pytest.fixture
def emu(stream: RtspServer) -> Iterator[OnvifEmulator]:
    """An ONVIF PTZ camera on a free port whose stream is ``stream``; stopped in teardown."""
    camera = OnvifEmulator(stream_base=f"rtsp://127.0.0.1:{stream.port}")
    camera.start()
    try:
        yield camera
    finally:
        camera.stop()


def register(ctl: ControllerHandle, token: str, emu: OnvifEmulator, **extra: object) -> tuple[int, dict[str, object]]:
    body = {"id": "nga-tu", "name": "Ngã tư chợ", "zone": "khu-pho-2", "host": emu.host, "port": emu.port,
            "username": emu.username, "password": emu.password, **extra}
    status, answer = ctl.post("/api/v1/cameras", body, token=token)
    return status, answer


def test_discovery_registration_live_motion_ptz(
        cam_controller: ControllerHandle, tokens: dict[str, str], emu: OnvifEmulator, stream: RtspServer,
        broker: Broker) -> None:
    ctl, tech, guard = cam_controller, tokens["technician"], tokens["security"]
    register_agent(ctl.api, ctl.token, "loa-cho", ["khu-pho-2"])
    # The agent's finder reports the camera (as it does after a WS-Discovery probe on its LAN).
    found = DiscoveredCamera(endpoint=emu.endpoint, xaddrs=[emu.device_url], host=emu.host,
                             types=["dn:NetworkVideoTransmitter"])
    publish(broker.port, Topics.event("loa-cho", "camera.discovered"),
            make_event("loa-cho", "camera.discovered", CameraDiscovered(cameras=[found])).to_bytes())
    rows = ctl.wait_for(lambda: ctl.get("/api/v1/camera-discoveries", token=tech)[1], 10, "the discovery")
    status, cam = ctl.post(f"/api/v1/camera-discoveries/{rows[0]['id']}/register",
                           {"id": "nga-tu", "name": "Ngã tư chợ", "zone": "khu-pho-2", "username": emu.username,
                            "password": emu.password}, token=tech)
    assert status == 201, cam
    assert (cam["manufacturer"], cam["model"], cam["firmware"], cam["serial"]) == \
        (emu.manufacturer, emu.model, emu.firmware, emu.serial)
    assert cam["agent_id"] == "loa-cho" and cam["ptz"] and cam["profile_token"] == "prof0"
    assert cam["stream_uri"] == f"{stream.url}" and cam["discovery_endpoint"] == emu.endpoint
    assert [p["token"] for p in cam["profiles"]] == ["prof0", "prof1"]
    assert emu.password not in json.dumps(cam)
    assert ctl.get("/api/v1/camera-discoveries", token=tech)[1][0]["camera_id"] == "nga-tu"

    # Nobody watches: the snapshot is the camera's own ONVIF snapshot.
    status, jpeg, ctype = get_bytes(ctl, "/api/v1/cameras/nga-tu/snapshot.jpg", guard)
    assert status == 200 and ctype == "image/jpeg" and jpeg == emu.snapshot_body

    viewer = MjpegClient(ctl.api, "/api/v1/cameras/nga-tu/live.mjpeg", guard)
    try:
        for _ in range(3):
            assert decode(viewer.frame()[1]).shape == (360, 640, 3)
        # While a reader runs, the snapshot is its newest frame (a real 640x360 picture, not the tiny one).
        status, jpeg, _ = get_bytes(ctl, "/api/v1/cameras/nga-tu/snapshot.jpg", guard)
        assert status == 200 and decode(jpeg).shape == (360, 640, 3)
    finally:
        viewer.close()

    status, _ = http_json("PUT", ctl.api + "/api/v1/cameras/nga-tu/motion", guard,
                          {"enabled": True, "sensitivity": 0.6, "min_frames": 2, "cooldown_s": 60})
    assert status == 200
    ctl.wait_for(lambda: (ctl.get("/api/v1/cameras/nga-tu/status")[1]["reader"] or {}).get("online"), 15,
                 "the motion reader")
    time.sleep(3)
    stream.set_pattern("ball")
    events = ctl.wait_for(lambda: ctl.get("/api/v1/camera-events?camera_id=nga-tu&type=camera.motion",
                                          token=guard)[1], 15, "a motion event")
    assert events[0]["agent_id"] == "loa-cho" and events[0]["zone"] == "khu-pho-2"

    assert ctl.post("/api/v1/cameras/nga-tu/ptz/move", {"pan": 0.5, "tilt": -0.25, "timeout_s": 2},
                    token=guard)[0] == 204
    assert ctl.post("/api/v1/cameras/nga-tu/ptz/stop", {}, token=guard)[0] == 204
    status, presets = ctl.get("/api/v1/cameras/nga-tu/ptz/presets", token=guard)
    assert status == 200 and [p["name"] for p in presets] == ["Cong chinh", "San truoc"]
    assert ctl.post("/api/v1/cameras/nga-tu/ptz/presets/2/goto", {}, token=guard)[0] == 204
    status, preset = ctl.post("/api/v1/cameras/nga-tu/ptz/presets", {"name": "Nga tu"}, token=guard)
    assert status == 201 and preset["token"] == "3"
    status, body = ctl.post("/api/v1/cameras/nga-tu/ptz/presets/99/goto", {}, token=guard)
    assert status == 502 and body["detail"]["reason"] == "fault", body
    move = emu.operations("ContinuousMove")[0].params
    assert move["ProfileToken"] == "prof0"
    assert (move["Velocity"]["PanTilt"]["x"], move["Velocity"]["PanTilt"]["y"]) == (0.5, -0.25)
    assert emu.operations("Stop") and emu.operations("GotoPreset")[0].params["PresetToken"] == "2"
    assert ctl.post("/api/v1/cameras/nga-tu/ptz/stop", {}, token=tokens["officer"])[0] == 403
    assert emu.password not in ctl.proc.log_text()


def test_bad_onvif_cameras_get_clear_errors(
        cam_controller: ControllerHandle, tokens: dict[str, str], emu: OnvifEmulator) -> None:
    ctl, tech = cam_controller, tokens["technician"]
    status, body = register(ctl, tech, emu, password="mat-khau-sai-3")
    assert status == 422 and body["detail"]["reason"] == "auth", body  # type: ignore[index]
    assert "mat-khau-sai-3" not in json.dumps(body)
    emu.auth_status = 401
    status, body = register(ctl, tech, emu, password="mat-khau-sai-3")
    assert status == 422 and body["detail"]["reason"] == "auth", body  # type: ignore[index]
    emu.auth_status = 400
    emu.faults["GetProfiles"] = ("ter:Action", "media subsystem busy")
    status, body = register(ctl, tech, emu)
    assert status == 422 and body["detail"]["reason"] == "fault", body  # type: ignore[index]
    emu.faults.clear()
    emu.malformed = True
    status, body = register(ctl, tech, emu)
    assert status == 422 and body["detail"]["reason"] == "malformed", body  # type: ignore[index]
    emu.malformed = False
    emu.h264 = False
    status, body = register(ctl, tech, emu)
    assert status == 422 and body["detail"]["reason"] == "no_h264", body  # type: ignore[index]
    emu.h264 = True
    emu.stream_scheme = "http"
    status, body = register(ctl, tech, emu)
    assert status == 422 and body["detail"]["reason"] == "bad_uri", body  # type: ignore[index]
    emu.stream_scheme = "rtsp"
    status, body = register(ctl, tech, emu, profile_token="khong-co")
    assert status == 422 and body["detail"]["reason"] == "no_profile", body  # type: ignore[index]
    assert ctl.get("/api/v1/cameras", token=tech)[1] == [], "nothing is stored from a failed registration"
    # The same camera, told right, registers; a wrong new password is refused and the old one kept.
    status, body = register(ctl, tech, emu, profile_token="prof1")
    assert status == 201 and body["profile_token"] == "prof1", body
    status, body = http_json("PATCH", ctl.api + "/api/v1/cameras/nga-tu", tech, {"password": "sai-roi-4"})
    assert status == 422 and body["detail"]["reason"] == "auth", body
    status, body = http_json("PATCH", ctl.api + "/api/v1/cameras/nga-tu", tech, {"zone": "khu-pho-3", "name": "X"})
    assert status == 200 and body["zone"] == "khu-pho-3", body
    assert get_bytes(ctl, "/api/v1/cameras/nga-tu/snapshot.jpg", tokens["security"])[0] == 200
    for secret in (emu.password, "mat-khau-sai-3", "sai-roi-4"):
        assert secret not in ctl.proc.log_text()
