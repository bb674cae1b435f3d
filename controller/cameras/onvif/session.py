"""An ONVIF session with one camera: opening it (clock, service addresses), naming where it is, closing it.

Also the small checks every conversation shares: a host and port that can be tried, a URI of an allowed
scheme, a reply's text field cut to size.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, Final

from controller.cameras.onvif.errors import CameraError, Scrubber, guarded
from controller.cameras.onvif.soap import ONVIFCamera

log = logging.getLogger(__name__)

MEDIA_NS: Final = "http://www.onvif.org/ver10/media/wsdl"
PTZ_NS: Final = "http://www.onvif.org/ver20/ptz/wsdl"


def field_text(value: Any, limit: int = 200) -> str:
    """A reply's field as one line of at most ``limit`` characters ("" for a missing one)."""
    if value is None:
        return ""
    return " ".join(str(value).split())[:limit]


def valid_scheme(uri: str, schemes: tuple[str, ...]) -> bool:
    """True if ``uri`` is a sane URL with a host and one of ``schemes``."""
    if len(uri) > 2000 or any(ch.isspace() or ord(ch) < 32 for ch in uri):
        return False
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme.lower() in schemes and bool(parts.hostname)


def host_label(host: str, port: int) -> str:
    """``host:port`` as people write it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port(host: str, port: int) -> None:
    """Refuses a host or port that cannot be tried, before any connection."""
    if not host or len(host) > 253 or any(ch.isspace() or ch in "/@?#" for ch in host):
        raise CameraError("unreachable", f"{host!r} is not a host name or address")
    if not 1 <= port <= 65535:
        raise CameraError("unreachable", f"port {port} is outside 1–65535")


def new_camera(host: str, port: int, username: str, password: str) -> ONVIFCamera:
    """An ONVIF client for one camera (nothing is sent yet)."""
    # no_cache: the WSDLs are local files; zeep's SQLite cache would only write into $HOME.
    # adjust_time: cameras on a ward LAN often have no NTP and clocks hours off, and they refuse WS-Security
    # tokens outside a few minutes of their own time; the camera's clock is asked first (unauthenticated).
    return ONVIFCamera(host, port, username or None, password or None, no_cache=True, adjust_time=True)


def service_where(xaddr: str, device_where: str) -> str:
    """``device_where``, or ``device_where (service at host:port)`` when a service's address differs."""
    try:
        parts = urllib.parse.urlsplit(xaddr)
        netloc = host_label(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError:
        return device_where
    return device_where if netloc == device_where else f"{device_where} (service at {netloc})"


async def read_services(cam: ONVIFCamera, where: str, secrets: Scrubber, timeout_s: float | None) -> None:
    """The camera's clock, then its service addresses; a camera that fails the clock step is read without it."""
    try:
        await guarded(cam.update_xaddrs(), "reading the service list", where, secrets, timeout_s)
    except CameraError as exc:
        if exc.reason not in ("fault", "malformed") or not cam.adjust_time:
            raise
        # Some cameras fault on GetSystemDateAndTime or answer it without a UTC time; such a camera is
        # read with tokens dated by our clock, which works when its clock is right.
        log.info("camera %s: reading its clock failed (%s); going on without it", where, exc.reason)
        cam.adjust_time = False
        await guarded(cam.update_xaddrs(), "reading the service list", where, secrets, timeout_s)


async def close_camera(cam: ONVIFCamera) -> None:
    """Closes the session; a failure here is logged, never raised (it must not hide the real outcome)."""
    try:
        await cam.close()
    except Exception as exc:
        log.debug("closing an ONVIF session failed: %s", type(exc).__name__)
