"""Reading a camera for registration: an ONVIF camera described and its profile chosen, an RTSP-only camera
checked for video; each yields the fields of its row. Also the public view of a row.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from controller.cameras.access import RTSP_DEFAULT_PORT, tcp_answers, with_credentials
from controller.cameras.errors import RegistrationError
from controller.cameras.motion import MotionSettings
from controller.cameras.onvif import CameraError, MediaProfile, describe, redact_uri
from controller.cameras.schemas import CameraPublic, ProfilePublic, stream_uri_problem
from controller.cameras.stream import probe_stream
from controller.storage.models import Camera


def camera_public(camera: Camera) -> CameraPublic:
    """The public view of a camera (never its password)."""
    return CameraPublic(
        id=camera.id, ward=camera.ward_id, name=camera.name, agent_id=camera.agent_id, zone=camera.zone,
        host=camera.host,
        port=camera.port, username=camera.username, has_password=bool(camera.password_enc), onvif=camera.onvif,
        manufacturer=camera.manufacturer, model=camera.model, firmware=camera.firmware, serial=camera.serial,
        hardware_id=camera.hardware_id, profiles=[ProfilePublic.model_validate(p) for p in camera.profiles],
        profile_token=camera.profile_token, stream_uri=camera.stream_uri,
        has_snapshot_uri=camera.snapshot_uri is not None, ptz=camera.ptz,
        motion=MotionSettings.model_validate(camera.motion or {}), status=camera.status, fault=camera.fault,
        status_changed_at=camera.status_changed_at, last_ok_at=camera.last_ok_at,
        discovery_endpoint=camera.discovery_endpoint, created_at=camera.created_at, updated_at=camera.updated_at,
        lat=camera.lat, lon=camera.lon)


def profile_fields(p: MediaProfile) -> dict[str, Any]:
    """A profile as the row keeps it."""
    return {"token": p.token, "name": p.name, "encoding": p.encoding, "width": p.width, "height": p.height,
            "fps": p.fps, "rtsp_uri": p.rtsp_uri, "snapshot_uri": p.snapshot_uri, "ptz": p.ptz}


async def read_onvif_camera(host: str, port: int, username: str, password: str,
                           profile_token: str | None) -> dict[str, Any]:
    """Reads the camera over ONVIF and picks the profile; the row fields it yields."""
    try:
        desc = await describe(host, port, username, password)
    except CameraError as exc:
        raise RegistrationError.from_camera(exc) from None
    if not desc.profiles:
        raise RegistrationError("no_h264", "the camera has no H.264 media profile")
    chosen = desc.profiles[0]
    if profile_token is not None:
        found = [p for p in desc.profiles if p.token == profile_token]
        if not found:
            tokens = ", ".join(p.token for p in desc.profiles)
            raise RegistrationError("no_profile", f"the camera has no profile {profile_token!r} (it has {tokens})")
        chosen = found[0]
    problem = stream_uri_problem(chosen.rtsp_uri)
    if problem:
        raise RegistrationError("bad_uri", f"profile {chosen.token!r}: {problem}")
    return {"manufacturer": desc.info.manufacturer, "model": desc.info.model, "firmware": desc.info.firmware,
            "serial": desc.info.serial, "hardware_id": desc.info.hardware_id,
            "profiles": [profile_fields(p) for p in desc.profiles], "profile_token": chosen.token,
            "stream_uri": redact_uri(chosen.rtsp_uri), "snapshot_uri": chosen.snapshot_uri,
            "ptz": desc.ptz and chosen.ptz}


async def probe_rtsp_camera(stream_uri: str, username: str, password: str) -> dict[str, Any]:
    """Checks an RTSP-only camera answers with video; the row fields it yields."""
    parts = urllib.parse.urlsplit(stream_uri)
    host, port = parts.hostname or "", parts.port or RTSP_DEFAULT_PORT
    if not await tcp_answers(host, port, 5.0):
        raise RegistrationError("unreachable", f"nothing answers at {host}:{port}")
    size = await asyncio.to_thread(probe_stream, with_credentials(stream_uri, username, password), 8.0)
    if size is None:
        raise RegistrationError("no_video", f"{host}:{port} answers but the stream gives no video "
                                            "(wrong path or wrong credentials?)")
    width, height = size
    profile = {"token": "rtsp", "name": "RTSP", "encoding": "H264", "width": width, "height": height,
               "fps": None, "rtsp_uri": stream_uri, "snapshot_uri": None, "ptz": False}
    return {"profiles": [profile], "profile_token": "rtsp", "stream_uri": stream_uri, "snapshot_uri": None,
            "ptz": False}
