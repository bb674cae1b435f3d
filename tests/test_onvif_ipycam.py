"""controller.cameras.onvif against ipycam, a third-party virtual ONVIF camera run as a real process."""

from __future__ import annotations

import pytest

from controller.cameras.onvif import CameraError, describe, fetch_snapshot
from controller.tools.local_stack import free_port
from tests.onvif_fixtures import (
    IPYCAM_MAKER,
    IPYCAM_MODEL,
    IPYCAM_SERIAL,
    IpycamHandle,
    ipycam_camera,  # noqa: F401 - fixture
)


async def test_describe_reads_ipycam(ipycam_camera: IpycamHandle) -> None:  # noqa: F811
    cam = ipycam_camera
    desc = await describe(cam.host, cam.onvif_port, cam.username, cam.password, timeout_s=15)
    assert (desc.info.manufacturer, desc.info.model, desc.info.serial) == (IPYCAM_MAKER, IPYCAM_MODEL, IPYCAM_SERIAL)
    assert desc.info.firmware
    by_size = {(p.width, p.height): p for p in desc.profiles}
    assert set(by_size) == {(640, 360), (320, 180)}
    main = by_size[(640, 360)]
    assert main.encoding == "H264"
    assert main.fps == 10
    assert main.rtsp_uri == f"rtsp://127.0.0.1:{cam.rtsp_port}/video_main"
    assert main.snapshot_uri == f"http://127.0.0.1:{cam.onvif_port}/snapshot.jpg"
    assert by_size[(320, 180)].rtsp_uri.endswith("/video_sub")


async def test_wrong_password_is_auth_error_without_the_password(ipycam_camera: IpycamHandle) -> None:  # noqa: F811
    cam = ipycam_camera
    with pytest.raises(CameraError) as err:
        await describe(cam.host, cam.onvif_port, cam.username, "sai-mat-khau-9", timeout_s=15)
    assert err.value.reason == "auth"
    assert "sai-mat-khau-9" not in str(err.value)


async def test_snapshot_from_ipycam_with_basic_auth(ipycam_camera: IpycamHandle) -> None:  # noqa: F811
    cam = ipycam_camera
    desc = await describe(cam.host, cam.onvif_port, cam.username, cam.password, timeout_s=15)
    uri = desc.profiles[0].snapshot_uri
    assert uri
    # ipycam sends a frame once one exists; give its frame loop a moment on a busy machine.
    jpeg = await fetch_snapshot(uri, cam.username, cam.password, timeout_s=10)
    assert jpeg[:2] == b"\xff\xd8"
    with pytest.raises(CameraError) as err:
        await fetch_snapshot(uri, cam.username, "sai-mat-khau-9", timeout_s=10)
    assert err.value.reason == "auth"
    assert "sai-mat-khau-9" not in str(err.value)


async def test_unreachable_port() -> None:
    with pytest.raises(CameraError) as err:
        await describe("127.0.0.1", free_port(), "admin", "x", timeout_s=5)
    assert err.value.reason == "unreachable"
