"""controller.cameras.onvif against our ONVIF emulator: auth, faults, malformed XML, bad profiles, PTZ, snapshots."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from controller.cameras.onvif import CameraError, PtzControl, describe, fetch_snapshot
from tests.onvif_emulator import OnvifEmulator


@pytest.fixture
def emu() -> Iterator[OnvifEmulator]:
    """The emulator on 127.0.0.1, a free port; stopped in teardown."""
    with OnvifEmulator(stream_base="rtsp://127.0.0.1:8554/live") as e:
        yield e


async def _describe(emu: OnvifEmulator, password: str | None = None) -> object:
    return await describe(emu.host, emu.port, emu.username, emu.password if password is None else password,
                          timeout_s=10)


async def test_describe_reads_emulator(emu: OnvifEmulator) -> None:
    desc = await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert desc.info.manufacturer == "EmuCam" and desc.info.model == "PTZ-Emu-2"
    assert (desc.info.firmware, desc.info.serial, desc.info.hardware_id) == ("2.4.1", "EMU-0042", "HW-EMU")
    assert [(p.token, p.width, p.height, p.fps) for p in desc.profiles] == [("prof0", 1280, 720, 25.0),
                                                                         ("prof1", 640, 360, 15.0)]
    assert desc.profiles[0].rtsp_uri == "rtsp://127.0.0.1:8554/live/prof0"
    assert desc.profiles[0].snapshot_uri == f"{emu.base}/snapshot/prof0.jpg"
    assert desc.ptz and all(p.ptz for p in desc.profiles)
    # Every authenticated request carried a valid digest token (the emulator checks each).
    assert emu.operations("GetDeviceInformation")


async def test_wrong_password_not_authorized_fault(emu: OnvifEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CameraError) as err:
        await describe(emu.host, emu.port, emu.username, "mat-khau-sai-3", timeout_s=10)
    assert err.value.reason == "auth"
    assert "mat-khau-sai-3" not in str(err.value) and "mat-khau-sai-3" not in caplog.text
    assert emu.password not in caplog.text


async def test_wrong_password_http_401(emu: OnvifEmulator) -> None:
    emu.auth_status = 401
    with pytest.raises(CameraError) as err:
        await describe(emu.host, emu.port, "khong-co", "mat-khau-sai-3", timeout_s=10)
    assert err.value.reason == "auth"


async def test_soap_fault_is_reported(emu: OnvifEmulator) -> None:
    emu.faults["GetProfiles"] = ("ter:Action", "media subsystem busy")
    with pytest.raises(CameraError) as err:
        await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert err.value.reason == "fault"
    assert "media subsystem busy" in str(err.value)


async def test_malformed_xml(emu: OnvifEmulator) -> None:
    emu.malformed = True
    with pytest.raises(CameraError) as err:
        await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert err.value.reason == "malformed"


async def test_no_h264(emu: OnvifEmulator) -> None:
    emu.h264 = False
    with pytest.raises(CameraError) as err:
        await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert err.value.reason == "no_h264"
    assert "JPEG" in str(err.value) and "MPEG4" in str(err.value)


async def test_stream_uri_not_rtsp(emu: OnvifEmulator) -> None:
    emu.stream_scheme = "http"
    with pytest.raises(CameraError) as err:
        await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert err.value.reason == "bad_uri"


async def test_ptz_commands_reach_the_camera(emu: OnvifEmulator) -> None:
    async with PtzControl(emu.host, emu.port, emu.username, emu.password) as ptz:
        await ptz.continuous_move("prof0", 0.5, -0.25, 0.0, 2.0)
        await ptz.continuous_move("prof0", 0.0, 0.0, -1.0, None)
        await ptz.stop("prof0")
        presets = await ptz.presets("prof0")
        assert [(p.token, p.name) for p in presets] == [("1", "Cong chinh"), ("2", "San truoc")]
        await ptz.goto_preset("prof0", "2")
        token = await ptz.set_preset("prof0", "Nga tu")
        assert token == "3" and emu.presets["3"] == "Nga tu"
        with pytest.raises(CameraError) as err:
            await ptz.goto_preset("prof0", "99")
        assert err.value.reason == "fault"
        with pytest.raises(ValueError):
            await ptz.continuous_move("prof0", 2.0, 0, 0, None)
    move = emu.operations("ContinuousMove")[0].params
    assert move["ProfileToken"] == "prof0"
    assert (move["Velocity"]["PanTilt"]["x"], move["Velocity"]["PanTilt"]["y"]) == (0.5, -0.25)
    assert move["Velocity"]["Zoom"] is None  # at rest: left out for cameras without zoom
    assert move["Timeout"].total_seconds() == 2.0
    zoom = emu.operations("ContinuousMove")[1].params
    assert zoom["Velocity"]["PanTilt"] is None and zoom["Velocity"]["Zoom"]["x"] == -1.0 and zoom["Timeout"] is None
    stop = emu.operations("Stop")[0].params
    assert (stop["ProfileToken"], stop["PanTilt"], stop["Zoom"]) == ("prof0", True, True)
    assert emu.operations("GotoPreset")[0].params["PresetToken"] == "2"
    assert emu.operations("SetPreset")[0].params["PresetName"] == "Nga tu"


async def test_ptz_wrong_password(emu: OnvifEmulator) -> None:
    with pytest.raises(CameraError) as err:
        async with PtzControl(emu.host, emu.port, emu.username, "sai") as ptz:
            await ptz.stop("prof0")
    assert err.value.reason == "auth"


async def test_ptz_absent(emu: OnvifEmulator) -> None:
    emu.ptz = False
    desc = await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert not desc.ptz and not any(p.ptz for p in desc.profiles)
    with pytest.raises(CameraError) as err:
        async with PtzControl(emu.host, emu.port, emu.username, emu.password):
            pass
    assert err.value.reason == "fault" and "PTZ" in str(err.value)


async def test_snapshot_digest_auth(emu: OnvifEmulator) -> None:
    uri = f"{emu.base}/snapshot/prof0.jpg"
    jpeg = await fetch_snapshot(uri, emu.username, emu.password)
    assert jpeg == emu.snapshot_body and jpeg[:2] == b"\xff\xd8"
    with pytest.raises(CameraError) as err:
        await fetch_snapshot(uri, emu.username, "sai-mat-khau")
    assert err.value.reason == "auth" and "sai-mat-khau" not in str(err.value)


async def test_snapshot_checks_type_and_size(emu: OnvifEmulator) -> None:
    uri = f"{emu.base}/snapshot/prof0.jpg"
    emu.snapshot_type = "text/html"
    with pytest.raises(CameraError) as err:
        await fetch_snapshot(uri, emu.username, emu.password)
    assert err.value.reason == "malformed" and "text/html" in str(err.value)
    emu.snapshot_type = "image/jpeg"
    emu.snapshot_body = b"\xff\xd8" + b"\0" * 300_000
    with pytest.raises(CameraError) as err:
        await fetch_snapshot(uri, emu.username, emu.password, max_bytes=100_000)
    assert err.value.reason == "malformed"
    with pytest.raises(CameraError) as err:
        await fetch_snapshot("ftp://127.0.0.1/x.jpg", emu.username, emu.password)
    assert err.value.reason == "bad_uri"


async def test_snapshot_credentials_in_uri_are_not_shown(emu: OnvifEmulator) -> None:
    with pytest.raises(CameraError) as err:
        await fetch_snapshot(f"http://admin:bi-mat-9@{emu.host}:{emu.port}/snapshot/prof0.jpg", "", "")
    assert err.value.reason == "auth" and "bi-mat-9" not in str(err.value)
    jpeg = await fetch_snapshot(f"http://{emu.username}:{emu.password}@{emu.host}:{emu.port}/snapshot/prof0.jpg",
                                "", "")
    assert jpeg == emu.snapshot_body


async def test_unreachable_and_timeout() -> None:
    import socket

    # A listener that never answers: the timeout, not a refused connection.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(CameraError) as err:
            await describe("127.0.0.1", port, "a", "b", timeout_s=1.5)
        assert err.value.reason == "unreachable"
    with pytest.raises(CameraError) as err:
        await describe("bad host/name", 80, "a", "b")
    assert err.value.reason == "unreachable"


async def test_debug_logging_carries_no_credentials(emu: OnvifEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emu.username = "ky-thuat-vien"
    await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    async with PtzControl(emu.host, emu.port, emu.username, emu.password) as ptz:
        await ptz.stop("prof0")
    assert "ky-thuat-vien" not in caplog.text and emu.password not in caplog.text
    assert "PasswordDigest" not in caplog.text


async def test_userinfo_in_camera_uris_is_dropped(emu: OnvifEmulator) -> None:
    emu.stream_base = "rtsp://admin:lo-mat-khau@127.0.0.1:8554/live"
    desc = await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert desc.profiles[0].rtsp_uri == "rtsp://127.0.0.1:8554/live/prof0"


async def test_a_web_page_instead_of_onvif_is_malformed() -> None:
    """A port that answers HTTP but not ONVIF (a camera's web UI, a router page)."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b"<html><body><h1>404 Not Found</h1><br></body>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(CameraError) as err:
            await describe("127.0.0.1", server.server_address[1], "admin", "x", timeout_s=5)
        assert err.value.reason == "malformed" and "not a SOAP message" in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


async def test_media_service_elsewhere_is_named_in_errors(emu: OnvifEmulator) -> None:
    """A camera advertising a media address the controller cannot reach (behind NAT): the error says where."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    real = emu._op_GetServices

    def services(params: dict[str, object]) -> dict[str, object]:
        out = real(params)
        for svc in out["Service"]:
            svc["XAddr"] = svc["XAddr"].replace(f":{emu.port}/onvif/media", f":{dead}/onvif/media")
        return out

    emu._op_GetServices = services  # type: ignore[method-assign]
    with pytest.raises(CameraError) as err:
        await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=5)
    assert err.value.reason == "unreachable" and f"service at 127.0.0.1:{dead}" in str(err.value)


async def test_camera_clock_hours_off(emu: OnvifEmulator) -> None:
    """A camera without NTP: its clock is checked first (unauthenticated), tokens carry its time."""
    emu.clock_offset_s = -3 * 3600 - 17
    desc = await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert desc.profiles
    async with PtzControl(emu.host, emu.port, emu.username, emu.password) as ptz:
        await ptz.stop("prof0")
    assert emu.operations("Stop")


async def test_older_camera_without_get_services(emu: OnvifEmulator) -> None:
    """Cameras that predate GetServices answer ActionNotSupported; GetCapabilities gives the addresses."""
    emu.faults["GetServices"] = ("ter:ActionNotSupported", "GetServices is not supported")
    desc = await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert desc.ptz and len(desc.profiles) == 2
    assert emu.operations("GetCapabilities")


def _soap_with_token(user: str, password: str, nonce: bytes, created: str, *, digest: bool = True) -> bytes:
    import base64
    import hashlib

    if digest:
        pw = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
        pw_type = "PasswordDigest"
    else:
        pw, pw_type = password, "PasswordText"
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    return (
        f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="{wsse}" xmlns:wsu="{wsu}">'
        f"<s:Header><wsse:Security><wsse:UsernameToken><wsse:Username>{user}</wsse:Username>"
        f'<wsse:Password Type="{wsse.replace("secext", "username-token-profile")}#{pw_type}">{pw}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security></s:Header>"
        '<s:Body><GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
    ).encode()


def test_emulator_checks_tokens_like_a_camera(emu: OnvifEmulator) -> None:
    """The emulator's WS-Security check itself: digest only, fresh, never twice."""
    import os
    from datetime import UTC, datetime, timedelta

    import httpx

    def post(body: bytes) -> httpx.Response:
        return httpx.post(emu.device_url, content=body, headers={"Content-Type": "application/soap+xml"}, timeout=5)

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = os.urandom(16)
    good = _soap_with_token(emu.username, emu.password, nonce, now)
    assert post(good).status_code == 200
    again = post(good)  # the same nonce again: a replay
    assert again.status_code == 400 and b"NotAuthorized" in again.content
    assert post(_soap_with_token(emu.username, emu.password, os.urandom(16), now, digest=False)).status_code == 400
    stale = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert post(_soap_with_token(emu.username, emu.password, os.urandom(16), stale)).status_code == 400
    assert post(_soap_with_token("khac", emu.password, os.urandom(16), now)).status_code == 400
    assert post(b"<not-xml").status_code == 400
    assert [r.operation for r in emu.received] == ["GetDeviceInformation"]


def test_command_line_reads_a_camera(emu: OnvifEmulator) -> None:
    """``python -m controller.cameras.onvif``: the technician's check, password from the environment."""
    import json
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "controller.cameras.onvif", emu.host, str(emu.port), "--username", emu.username]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                        env={**os.environ, "LOAPHUONG_CAMERA_PASSWORD": emu.password})
    assert ok.returncode == 0, ok.stderr
    desc = json.loads(ok.stdout)
    assert desc["info"]["serial"] == emu.serial and [p["token"] for p in desc["profiles"]] == ["prof0", "prof1"]
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "LOAPHUONG_CAMERA_PASSWORD": "sai-roi-1"})
    assert bad.returncode == 2 and json.loads(bad.stderr)["error"] == "auth"
    assert "sai-roi-1" not in bad.stderr + bad.stdout


async def test_camera_that_faults_on_its_clock(emu: OnvifEmulator) -> None:
    emu.faults["GetSystemDateAndTime"] = ("ter:ActionNotSupported", "no clock here")
    desc = await describe(emu.host, emu.port, emu.username, emu.password, timeout_s=10)
    assert desc.info.serial == emu.serial
    async with PtzControl(emu.host, emu.port, emu.username, emu.password) as ptz:
        await ptz.stop("prof0")


def test_every_reason_has_console_text() -> None:
    from typing import get_args

    from controller.cameras.onvif import REASON_TEXT, Reason, reason_text

    for lang in ("vi", "en"):
        assert set(REASON_TEXT[lang]) == set(get_args(Reason))
    assert reason_text("auth") == "Camera từ chối tên đăng nhập hoặc mật khẩu."
    assert reason_text("auth", "en").startswith("The camera refused")
    assert reason_text("auth", "fr") == reason_text("auth")
