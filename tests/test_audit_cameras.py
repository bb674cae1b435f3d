"""Camera views are in the audit log: a controller under uvicorn, Mosquitto and a real RTSP camera."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ControllerHandle
from tests.rtsp_server import RtspServer
from tests.test_camera_api import MjpegClient, cam_controller, register_rtsp, rtsp, tokens
from tests.test_camera_gateway import _gst_available

pytest.importorskip("cv2")
pytestmark = pytest.mark.skipif(_gst_available() is not None, reason=str(_gst_available()))
__all__ = ["cam_controller", "rtsp", "tokens"]  # fixtures used by name below


def test_live_view_and_refused_move_in_audit(cam_controller: ControllerHandle, tokens: dict[str, str],
                                             rtsp: RtspServer) -> None:
    ctl = cam_controller
    assert register_rtsp(ctl, tokens["technician"], rtsp)[0] == 201
    viewer = MjpegClient(ctl.api, "/api/v1/cameras/cong-phuong/live.mjpeg", tokens["security"])
    try:
        assert viewer.status == 200
        viewer.frame()
    finally:
        viewer.close()
    # no PTZ on this camera: the refused move is not recorded as a move
    assert ctl.post("/api/v1/cameras/cong-phuong/ptz/move", {"pan": 0.5}, token=tokens["security"])[0] == 409
    status, rows = ctl.get("/api/v1/audit?action=camera")
    assert status == 200
    seen: list[tuple[Any, Any, Any]] = [(r["action"], r["username"], r["subject"]) for r in rows]
    assert seen == [("camera.register", "u-technician", "cong-phuong"), ("camera.view", "u-security", "cong-phuong")]
    assert ctl.get("/api/v1/audit/verify")[1]["ok"] is True
