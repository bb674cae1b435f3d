"""Reading a camera for registration: its device information, its H.264 profiles with their RTSP and snapshot
URIs, and whether it can pan, tilt and zoom.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Final

from controller.cameras.onvif.errors import CameraError, Scrubber, classify, guarded, mapped, redact_uri
from controller.cameras.onvif.session import (
    MEDIA_NS,
    PTZ_NS,
    check_port,
    close_camera,
    field_text,
    host_label,
    new_camera,
    read_services,
    service_where,
    valid_scheme,
)
from controller.cameras.onvif.soap import ONVIFCamera, ONVIFError, zeep_errors

log = logging.getLogger(__name__)

#: Profiles read from one camera (real cameras have 2–6; a bound keeps a broken one from flooding us).
MAX_PROFILES: Final = 32


@dataclass(frozen=True)
class DeviceInfo:
    """What GetDeviceInformation says about the camera."""

    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str


@dataclass(frozen=True)
class MediaProfile:
    """One H.264 media profile with its RTSP stream URI (and snapshot URI when the camera has one)."""

    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float | None
    rtsp_uri: str
    snapshot_uri: str | None
    ptz: bool


@dataclass(frozen=True)
class CameraDescription:
    """Everything registration needs to know about a camera."""

    info: DeviceInfo
    profiles: list[MediaProfile]
    ptz: bool


async def describe(host: str, port: int, username: str, password: str, *, timeout_s: float = 10) -> CameraDescription:
    """Reads device information, the H.264 profiles with their RTSP and snapshot URIs, and PTZ support.

    Profiles that are not H.264, or whose stream URI is not ``rtsp://``, are left out; if none is left the
    error says why (``no_h264`` or ``bad_uri``). ``timeout_s`` bounds the whole conversation.
    """
    check_port(host, port)
    where = host_label(host, port)
    secrets = Scrubber(username, password)
    cam = new_camera(host, port, username, password)
    try:
        async with asyncio.timeout(timeout_s):
            return await _describe(cam, where, secrets)
    except CameraError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the overall timeout, or anything the steps did not map
        raise classify(exc, "reading the camera", where, secrets) from None
    finally:
        await close_camera(cam)


async def _describe(cam: ONVIFCamera, where: str, secrets: Scrubber) -> CameraDescription:
    step_timeout = None  # describe()'s overall timeout bounds every step
    await read_services(cam, where, secrets, step_timeout)
    devicemgmt = await guarded(cam.create_devicemgmt_service(), "opening the device service", where, secrets,
                               step_timeout)
    raw_info = await guarded(devicemgmt.GetDeviceInformation(), "GetDeviceInformation", where, secrets,
                             step_timeout)
    with mapped("GetDeviceInformation", where, secrets):
        info = DeviceInfo(manufacturer=field_text(raw_info.Manufacturer), model=field_text(raw_info.Model),
                          firmware=field_text(raw_info.FirmwareVersion), serial=field_text(raw_info.SerialNumber),
                          hardware_id=field_text(raw_info.HardwareId))
    if MEDIA_NS not in cam.xaddrs:
        raise CameraError("fault", f"{where} offers no ONVIF media service, so it has no video profiles")
    has_ptz_service = PTZ_NS in cam.xaddrs
    # The media service may live at another address than the device service (a camera behind NAT
    # advertising its LAN address): errors name the address actually tried.
    where = service_where(cam.xaddrs[MEDIA_NS], where)
    media = await guarded(cam.create_media_service(), "opening the media service", where, secrets, step_timeout)
    raw_profiles = await guarded(media.GetProfiles(), "GetProfiles", where, secrets, step_timeout)
    with mapped("GetProfiles", where, secrets):
        candidates = [p for p in (raw_profiles or [])[:MAX_PROFILES]]
    profiles: list[MediaProfile] = []
    encodings: list[str] = []
    bad_uris: list[str] = []
    for raw in candidates:
        with mapped("GetProfiles", where, secrets):
            enc = raw.VideoEncoderConfiguration
            if enc is None:
                continue  # audio or metadata only
            encoding = field_text(enc.Encoding, 32)
            encodings.append(encoding or "?")
            if encoding.upper().replace(".", "") != "H264":
                continue
            token = field_text(raw.token, 64)
            if not token:
                raise ValueError("a profile without a token")
            resolution = enc.Resolution
            width, height = int(resolution.Width), int(resolution.Height)
            rate = enc.RateControl
            fps = float(rate.FrameRateLimit) if rate is not None and rate.FrameRateLimit else None
            ptz = has_ptz_service and getattr(raw, "PTZConfiguration", None) is not None
            name = field_text(raw.Name, 64)
        stream = await guarded(
            media.GetStreamUri({"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                                "ProfileToken": token}), f"GetStreamUri for profile {token}", where, secrets,
            step_timeout)
        with mapped(f"GetStreamUri for profile {token}", where, secrets):
            uri = field_text(stream.Uri, 2000)
        if not valid_scheme(uri, ("rtsp", "rtsps")):
            bad_uris.append(f"{token}: {secrets.scrub(uri, 120) or '(empty)'}")
            log.warning("camera %s profile %s: stream URI is not rtsp:// (%s); profile skipped", where, token,
                        secrets.scrub(uri, 120))
            continue
        snapshot = await _snapshot_uri(media, token, where, secrets)
        # User-info some cameras embed in URIs is dropped: credentials live only in the encrypted store.
        profiles.append(MediaProfile(token=token, name=name, encoding="H264", width=width, height=height, fps=fps,
                                     rtsp_uri=redact_uri(uri), snapshot_uri=snapshot and redact_uri(snapshot),
                                     ptz=ptz))
    if not profiles:
        if bad_uris:
            raise CameraError("bad_uri", f"{where}: no H.264 profile has an rtsp:// stream URI "
                                         f"({'; '.join(bad_uris)[:300]})")
        found = ", ".join(sorted(set(encodings))) or "no video profile at all"
        raise CameraError("no_h264", f"{where} has no H.264 profile (found: {found}); the gateway needs H.264")
    return CameraDescription(info=info, profiles=profiles, ptz=any(p.ptz for p in profiles))


async def _snapshot_uri(media: Any, token: str, where: str, secrets: Scrubber) -> str | None:
    """The profile's snapshot URI, or None if the camera has none (a fault here is not fatal)."""
    try:
        result = await media.GetSnapshotUri({"ProfileToken": token})
        uri = field_text(result.Uri, 2000)
    except (zeep_errors.Fault, ONVIFError, AttributeError) as exc:
        log.info("camera %s profile %s: no snapshot URI (%s)", where, token, secrets.scrub(str(exc), 120))
        return None
    if not valid_scheme(uri, ("http", "https")):
        if uri:
            log.info("camera %s profile %s: snapshot URI is not http(s); ignored", where, token)
        return None
    return uri
