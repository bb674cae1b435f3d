"""ONVIF client for the controller: read a camera's identity, profiles and URIs, fetch snapshots, drive PTZ.

Built on onvif-zeep-async (async SOAP with WS-Security UsernameToken digest, the WSDLs it ships).
Every failure becomes a :class:`CameraError` whose ``reason`` is one of ``unreachable``, ``auth``,
``fault``, ``malformed``, ``no_h264``, ``bad_uri`` and whose message says what went wrong in words a
technician can act on. Credentials never appear in those messages (nor in our logs): anything a camera
or a library says is scrubbed of the username, the password and URL user-info before it is kept.

ONVIF runs here, in the controller, and not on the agents: camera passwords stay on the controller and a
Pi agent only finds cameras (WS-Discovery, ``devices/camera/discovery.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import urllib.parse
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Literal, TypeVar

import aiohttp

# onvif.client calls logging.basicConfig() at import time, which would give the controller's root
# logger a handler and INFO level behind its back. basicConfig() does nothing when the root already has a
# handler, so a throwaway one is held there for the duration of the import.
_root_logger = logging.getLogger()
_import_guard = logging.NullHandler() if not _root_logger.handlers else None
if _import_guard is not None:
    _root_logger.addHandler(_import_guard)
try:
    import zeep.exceptions
    from onvif import ONVIFCamera
    from onvif.exceptions import ONVIFError
finally:
    if _import_guard is not None:
        _root_logger.removeHandler(_import_guard)

log = logging.getLogger(__name__)
# zeep's transports log every request envelope at DEBUG, WS-Security header (username, password digest,
# nonce) included; a controller running at DEBUG must still not write those.
for _chatty in ("zeep.transports", "onvif.zeep_aiohttp"):
    logging.getLogger(_chatty).setLevel(logging.INFO)

Reason = Literal["unreachable", "auth", "fault", "malformed", "no_h264", "bad_uri"]
MEDIA_NS: Final = "http://www.onvif.org/ver10/media/wsdl"
PTZ_NS: Final = "http://www.onvif.org/ver20/ptz/wsdl"
#: Largest snapshot accepted; a camera that sends more is refused rather than buffered.
MAX_SNAPSHOT_BYTES: Final = 8 * 1024 * 1024
SNAPSHOT_TYPES: Final = ("image/jpeg", "image/jpg", "image/png")
#: Profiles read from one camera (real cameras have 2–6; a bound keeps a broken one from flooding us).
MAX_PROFILES: Final = 32
_AUTH_CODES: Final = frozenset({"notauthorized", "failedauthentication", "invalidsecuritytoken",
                                "failedcheck", "securitytokenunavailable", "messageexpired"})
_AUTH_TEXT: Final = re.compile(r"not\s*authori[sz]ed|unauthori[sz]ed|authenticat|sender not auth|password",
                               re.IGNORECASE)


class CameraError(Exception):
    """A camera operation failed; ``reason`` is a short machine-readable cause, the message is for people."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


#: One sentence per reason for the console (Vietnamese by default, English available); the error's own
#: message adds the detail.
REASON_TEXT: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "unreachable": "Không kết nối được tới camera (sai địa chỉ hoặc cổng, camera tắt, hoặc mạng không thông).",
        "auth": "Camera từ chối tên đăng nhập hoặc mật khẩu.",
        "fault": "Camera báo lỗi khi xử lý yêu cầu ONVIF.",
        "malformed": "Camera trả lời không đúng định dạng ONVIF.",
        "no_h264": "Camera không có luồng video H.264 nào.",
        "bad_uri": "Địa chỉ luồng video của camera không phải RTSP.",
    },
    "en": {
        "unreachable": "Cannot reach the camera (wrong address or port, camera off, or no network path).",
        "auth": "The camera refused the username or password.",
        "fault": "The camera reported an error handling the ONVIF request.",
        "malformed": "The camera's answer is not valid ONVIF.",
        "no_h264": "The camera has no H.264 video stream.",
        "bad_uri": "The camera's video stream address is not RTSP.",
    },
}


def reason_text(reason: str, lang: str = "vi") -> str:
    """The console's sentence for a :class:`CameraError` reason (``vi`` or ``en``)."""
    return REASON_TEXT.get(lang, REASON_TEXT["vi"]).get(reason, reason)


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
class PtzPreset:
    """A stored PTZ position."""

    token: str
    name: str


@dataclass(frozen=True)
class CameraDescription:
    """Everything registration needs to know about a camera."""

    info: DeviceInfo
    profiles: list[MediaProfile]
    ptz: bool


# ------------------------------------------------------------------------------------------ errors


class _Secrets:
    """Scrubs the credentials in play from any text before it goes into a message."""

    def __init__(self, *secrets: str) -> None:
        # Longest first, so a password containing the username is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 2}, key=len, reverse=True)

    def scrub(self, text: str, limit: int = 300) -> str:
        text = _strip_userinfo(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 1] + "…"


def _strip_userinfo(text: str) -> str:
    """Removes ``user:pass@`` from every URL in ``text``."""
    return re.sub(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@", r"\1", text)


def redact_uri(uri: str) -> str:
    """``uri`` without user-info, fit for a log line or an error message."""
    return _strip_userinfo(uri)


def _fault_is_auth(fault: zeep.exceptions.Fault) -> bool:
    codes: list[str] = []
    for code in [fault.code, *(fault.subcodes or [])]:
        if code is None:
            continue
        text = getattr(code, "localname", None) or str(code)
        codes.append(text.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower())
    return any(c in _AUTH_CODES for c in codes) or bool(_AUTH_TEXT.search(str(fault.message or "")))


def _classify(exc: BaseException, what: str, where: str, secrets: _Secrets) -> CameraError:
    """Turns whatever the SOAP stack raised into a CameraError with a clear, credential-free message."""
    # ONVIFError wraps the real cause; look through it.
    seen: set[int] = set()
    cur: BaseException | None = exc
    while isinstance(cur, ONVIFError) and cur.__cause__ is not None and id(cur) not in seen:
        seen.add(id(cur))
        cur = cur.__cause__
    err: BaseException = cur or exc
    if isinstance(err, CameraError):
        return err
    if isinstance(err, TimeoutError):
        return CameraError("unreachable", f"{what}: {where} did not answer in time")
    if isinstance(err, zeep.exceptions.Fault):
        if err.code is None and str(err.message) == "Unknown fault occured":
            # zeep's words (sic) for an error status whose body holds no SOAP fault: a web page, not ONVIF.
            return CameraError("malformed", f"{what}: {where} answered an HTTP error with something that is not "
                                            "a SOAP message: not an ONVIF port, or a camera that wants HTTP "
                                            "authentication instead of WS-Security")
        if _fault_is_auth(err):
            return CameraError("auth", f"{what}: {where} refused the username or password")
        return CameraError("fault", f"{what}: {where} answered with a SOAP fault: {secrets.scrub(str(err.message))}")
    if isinstance(err, zeep.exceptions.TransportError):
        if err.status_code in (401, 403):
            return CameraError("auth", f"{what}: {where} refused the username or password (HTTP {err.status_code})")
        if "invalid XML" in str(err.message):  # zeep's wording when a reply does not parse
            return CameraError("malformed", f"{what}: {where} sent a reply that is not well-formed XML "
                                            f"(HTTP {err.status_code}; is this an ONVIF port?)")
        return CameraError("fault", f"{what}: {where} answered HTTP {err.status_code}")
    if isinstance(err, zeep.exceptions.XMLSyntaxError | SyntaxError):
        return CameraError("malformed", f"{what}: {where} sent a reply that is not well-formed XML")
    if isinstance(err, zeep.exceptions.Error | AttributeError | KeyError | TypeError | ValueError):
        return CameraError("malformed", f"{what}: {where} sent a reply that does not follow the ONVIF schema "
                                        f"({type(err).__name__}: {secrets.scrub(str(err), 160)})")
    if isinstance(err, aiohttp.ClientResponseError):
        if err.status in (401, 403):
            return CameraError("auth", f"{what}: {where} refused the username or password (HTTP {err.status})")
        return CameraError("fault", f"{what}: {where} answered HTTP {err.status}")
    if isinstance(err, aiohttp.ClientError | OSError):
        detail = secrets.scrub(str(err) or type(err).__name__, 160)
        return CameraError("unreachable", f"{what}: cannot reach {where} ({detail})")
    if isinstance(err, ONVIFError):
        return CameraError("fault", f"{what}: {where}: {secrets.scrub(str(err))}")
    return CameraError("fault", f"{what}: {where}: unexpected {type(err).__name__}: {secrets.scrub(str(err), 160)}")


_T = TypeVar("_T")


async def _guarded(coro: Awaitable[_T], what: str, where: str, secrets: _Secrets, timeout_s: float | None) -> _T:
    """Awaits ``coro`` within ``timeout_s`` (None: the caller's own timeout bounds it), failures mapped."""
    try:
        async with asyncio.timeout(timeout_s):
            return await coro
    except CameraError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise _classify(exc, what, where, secrets) from None


@contextmanager
def _mapped(what: str, where: str, secrets: _Secrets) -> Iterator[None]:
    """Maps exceptions raised while reading a reply's fields (the reply did not match the schema)."""
    try:
        yield
    except CameraError:
        raise
    except Exception as exc:
        raise _classify(exc, what, where, secrets) from None


# ------------------------------------------------------------------------------------------ values


def _text(value: Any, limit: int = 200) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())[:limit]


def _valid_scheme(uri: str, schemes: tuple[str, ...]) -> bool:
    if len(uri) > 2000 or any(ch.isspace() or ord(ch) < 32 for ch in uri):
        return False
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme.lower() in schemes and bool(parts.hostname)


def _host_label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_port(host: str, port: int) -> None:
    if not host or len(host) > 253 or any(ch.isspace() or ch in "/@?#" for ch in host):
        raise CameraError("unreachable", f"{host!r} is not a host name or address")
    if not 1 <= port <= 65535:
        raise CameraError("unreachable", f"port {port} is outside 1–65535")


def _new_camera(host: str, port: int, username: str, password: str) -> ONVIFCamera:
    # no_cache: the WSDLs are local files; zeep's SQLite cache would only write into $HOME.
    # adjust_time: cameras on a ward LAN often have no NTP and clocks hours off, and they refuse WS-Security
    # tokens outside a few minutes of their own time; the camera's clock is asked first (unauthenticated).
    return ONVIFCamera(host, port, username or None, password or None, no_cache=True, adjust_time=True)


# ------------------------------------------------------------------------------------------ describe


async def describe(host: str, port: int, username: str, password: str, *, timeout_s: float = 10) -> CameraDescription:
    """Reads device information, the H.264 profiles with their RTSP and snapshot URIs, and PTZ support.

    Profiles that are not H.264, or whose stream URI is not ``rtsp://``, are left out; if none is left the
    error says why (``no_h264`` or ``bad_uri``). ``timeout_s`` bounds the whole conversation.
    """
    _check_port(host, port)
    where = _host_label(host, port)
    secrets = _Secrets(username, password)
    cam = _new_camera(host, port, username, password)
    try:
        async with asyncio.timeout(timeout_s):
            return await _describe(cam, where, secrets)
    except CameraError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the overall timeout, or anything the steps did not map
        raise _classify(exc, "reading the camera", where, secrets) from None
    finally:
        await _close(cam)


async def _describe(cam: ONVIFCamera, where: str, secrets: _Secrets) -> CameraDescription:
    step_timeout = None  # describe()'s overall timeout bounds every step
    await _read_services(cam, where, secrets, step_timeout)
    devicemgmt = await _guarded(cam.create_devicemgmt_service(), "opening the device service", where, secrets,
                                step_timeout)
    raw_info = await _guarded(devicemgmt.GetDeviceInformation(), "GetDeviceInformation", where, secrets,
                              step_timeout)
    with _mapped("GetDeviceInformation", where, secrets):
        info = DeviceInfo(manufacturer=_text(raw_info.Manufacturer), model=_text(raw_info.Model),
                          firmware=_text(raw_info.FirmwareVersion), serial=_text(raw_info.SerialNumber),
                          hardware_id=_text(raw_info.HardwareId))
    if MEDIA_NS not in cam.xaddrs:
        raise CameraError("fault", f"{where} offers no ONVIF media service, so it has no video profiles")
    has_ptz_service = PTZ_NS in cam.xaddrs
    # The media service may live at another address than the device service (a camera behind NAT
    # advertising its LAN address): errors name the address actually tried.
    where = _service_where(cam.xaddrs[MEDIA_NS], where)
    media = await _guarded(cam.create_media_service(), "opening the media service", where, secrets, step_timeout)
    raw_profiles = await _guarded(media.GetProfiles(), "GetProfiles", where, secrets, step_timeout)
    with _mapped("GetProfiles", where, secrets):
        candidates = [p for p in (raw_profiles or [])[:MAX_PROFILES]]
    profiles: list[MediaProfile] = []
    encodings: list[str] = []
    bad_uris: list[str] = []
    for raw in candidates:
        with _mapped("GetProfiles", where, secrets):
            enc = raw.VideoEncoderConfiguration
            if enc is None:
                continue  # audio or metadata only
            encoding = _text(enc.Encoding, 32)
            encodings.append(encoding or "?")
            if encoding.upper().replace(".", "") != "H264":
                continue
            token = _text(raw.token, 64)
            if not token:
                raise ValueError("a profile without a token")
            resolution = enc.Resolution
            width, height = int(resolution.Width), int(resolution.Height)
            rate = enc.RateControl
            fps = float(rate.FrameRateLimit) if rate is not None and rate.FrameRateLimit else None
            ptz = has_ptz_service and getattr(raw, "PTZConfiguration", None) is not None
            name = _text(raw.Name, 64)
        stream = await _guarded(
            media.GetStreamUri({"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                                "ProfileToken": token}), f"GetStreamUri for profile {token}", where, secrets,
            step_timeout)
        with _mapped(f"GetStreamUri for profile {token}", where, secrets):
            uri = _text(stream.Uri, 2000)
        if not _valid_scheme(uri, ("rtsp", "rtsps")):
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


def _service_where(xaddr: str, device_where: str) -> str:
    """``device_where``, or ``device_where (service at host:port)`` when a service's address differs."""
    try:
        parts = urllib.parse.urlsplit(xaddr)
        netloc = _host_label(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError:
        return device_where
    return device_where if netloc == device_where else f"{device_where} (service at {netloc})"


async def _snapshot_uri(media: Any, token: str, where: str, secrets: _Secrets) -> str | None:
    """The profile's snapshot URI, or None if the camera has none (a fault here is not fatal)."""
    try:
        result = await media.GetSnapshotUri({"ProfileToken": token})
        uri = _text(result.Uri, 2000)
    except (zeep.exceptions.Fault, ONVIFError, AttributeError) as exc:
        log.info("camera %s profile %s: no snapshot URI (%s)", where, token, secrets.scrub(str(exc), 120))
        return None
    if not _valid_scheme(uri, ("http", "https")):
        if uri:
            log.info("camera %s profile %s: snapshot URI is not http(s); ignored", where, token)
        return None
    return uri


async def _read_services(cam: ONVIFCamera, where: str, secrets: _Secrets, timeout_s: float | None) -> None:
    """The camera's clock, then its service addresses; a camera that fails the clock step is read without it."""
    try:
        await _guarded(cam.update_xaddrs(), "reading the service list", where, secrets, timeout_s)
    except CameraError as exc:
        if exc.reason not in ("fault", "malformed") or not cam.adjust_time:
            raise
        # Some cameras fault on GetSystemDateAndTime or answer it without a UTC time; such a camera is
        # read with tokens dated by our clock, which works when its clock is right.
        log.info("camera %s: reading its clock failed (%s); going on without it", where, exc.reason)
        cam.adjust_time = False
        await _guarded(cam.update_xaddrs(), "reading the service list", where, secrets, timeout_s)


async def _close(cam: ONVIFCamera) -> None:
    try:
        await cam.close()
    except Exception as exc:  # closing must never hide the real outcome
        log.debug("closing an ONVIF session failed: %s", type(exc).__name__)


# ------------------------------------------------------------------------------------------ snapshot


async def fetch_snapshot(uri: str, username: str, password: str, *, timeout_s: float = 5,
                         max_bytes: int = MAX_SNAPSHOT_BYTES) -> bytes:
    """GETs a camera snapshot (HTTP digest auth, or basic when the camera asks for basic).

    The answer must be an image (JPEG or PNG, by Content-Type) no larger than ``max_bytes``.
    """
    secrets = _Secrets(username, password)
    if not _valid_scheme(uri, ("http", "https")):
        raise CameraError("bad_uri", f"snapshot URI {secrets.scrub(uri, 120)!r} is not an http(s) URL")
    shown = secrets.scrub(uri, 200)
    # user-info in the URI is moved into the auth exchange rather than sent as-is.
    parts = urllib.parse.urlsplit(uri)
    user = username or urllib.parse.unquote(parts.username or "")
    pw = password or urllib.parse.unquote(parts.password or "")
    secrets = _Secrets(user, pw)
    clean = _strip_userinfo(uri)
    try:
        async with asyncio.timeout(timeout_s):
            return await _fetch(clean, user, pw, max_bytes, shown)
    except CameraError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise _classify(exc, "fetching a snapshot", shown, secrets) from None


async def _fetch(uri: str, user: str, pw: str, max_bytes: int, shown: str) -> bytes:
    timeout = aiohttp.ClientTimeout(total=None)  # bounded by the caller's asyncio.timeout
    middlewares = (aiohttp.DigestAuthMiddleware(user, pw),) if user else ()
    async with (aiohttp.ClientSession(timeout=timeout, middlewares=middlewares) as session,
                session.get(uri, allow_redirects=False) as resp):
        if not (resp.status == 401 and user
                and resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")):
            return await _read_image(resp, max_bytes, shown)
    # The camera asked for basic auth (it offered no digest): answer that, once.
    headers = {"Authorization": aiohttp.encode_basic_auth(user, pw)}
    async with (aiohttp.ClientSession(timeout=timeout) as basic,
                basic.get(uri, headers=headers, allow_redirects=False) as again):
        return await _read_image(again, max_bytes, shown)


async def _read_image(resp: aiohttp.ClientResponse, max_bytes: int, shown: str) -> bytes:
    if resp.status in (401, 403):
        raise CameraError("auth", f"fetching a snapshot: {shown} refused the username or password "
                                  f"(HTTP {resp.status})")
    if resp.status != 200:
        raise CameraError("fault", f"fetching a snapshot: {shown} answered HTTP {resp.status}")
    ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if ctype not in SNAPSHOT_TYPES:
        raise CameraError("malformed", f"fetching a snapshot: {shown} sent {ctype or 'no content type'}, "
                                       f"not a JPEG or PNG image")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise CameraError("malformed", f"fetching a snapshot: {shown} announced {resp.content_length} bytes, "
                                       f"more than the {max_bytes} allowed")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise CameraError("malformed", f"fetching a snapshot: {shown} sent more than {max_bytes} bytes")
    if not body:
        raise CameraError("malformed", f"fetching a snapshot: {shown} sent an empty image")
    return bytes(body)


# ------------------------------------------------------------------------------------------ PTZ


def _axis(value: float, name: str) -> float:
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"{name} speed must be a number from -1 to 1, not {value!r}")
    return float(value)


class PtzControl:
    """PTZ commands for one camera; use as ``async with PtzControl(...) as ptz:``."""

    def __init__(self, host: str, port: int, username: str, password: str, *, timeout_s: float = 5) -> None:
        self._host, self._port = host, port
        self._username, self._password = username, password
        self._timeout_s = timeout_s
        self._where = _host_label(host, port)
        self._secrets = _Secrets(username, password)
        self._cam: ONVIFCamera | None = None
        self._ptz: Any = None

    async def __aenter__(self) -> PtzControl:
        _check_port(self._host, self._port)
        cam = _new_camera(self._host, self._port, self._username, self._password)
        self._cam = cam
        try:
            await _read_services(cam, self._where, self._secrets, self._timeout_s)
            if PTZ_NS not in cam.xaddrs:
                raise CameraError("fault", f"{self._where} offers no ONVIF PTZ service")
            self._where = _service_where(cam.xaddrs[PTZ_NS], self._where)
            self._ptz = await self._call(cam.create_ptz_service(), "opening the PTZ service")
        except BaseException:
            await _close(cam)
            self._cam = None
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._cam is not None:
            await _close(self._cam)
            self._cam = None
            self._ptz = None

    def _service(self) -> Any:
        if self._ptz is None:
            raise RuntimeError("PtzControl used outside 'async with'")
        return self._ptz

    async def _call(self, coro: Awaitable[_T], what: str) -> _T:
        return await _guarded(coro, what, self._where, self._secrets, self._timeout_s)

    async def continuous_move(self, profile_token: str, pan: float, tilt: float, zoom: float,
                              timeout_s: float | None) -> None:
        """Starts moving at the given speeds (each -1…1); the camera stops by itself after ``timeout_s``."""
        pan, tilt, zoom = _axis(pan, "pan"), _axis(tilt, "tilt"), _axis(zoom, "zoom")
        # An axis group at rest is left out: cameras without zoom (or without pan/tilt) fault on it.
        velocity: dict[str, Any] = {}
        if pan or tilt or not zoom:
            velocity["PanTilt"] = {"x": pan, "y": tilt}
        if zoom:
            velocity["Zoom"] = {"x": zoom}
        request: dict[str, Any] = {"ProfileToken": profile_token, "Velocity": velocity}
        if timeout_s is not None:
            if not math.isfinite(timeout_s) or not 0 < timeout_s <= 3600:
                raise ValueError(f"move timeout must be 0–3600 s, not {timeout_s!r}")
            request["Timeout"] = timedelta(seconds=timeout_s)
        await self._call(self._service().ContinuousMove(request), "ContinuousMove")

    async def stop(self, profile_token: str) -> None:
        """Stops pan, tilt and zoom."""
        await self._call(self._service().Stop({"ProfileToken": profile_token, "PanTilt": True, "Zoom": True}),
                         "PTZ Stop")

    async def presets(self, profile_token: str) -> list[PtzPreset]:
        """The camera's stored presets for the profile."""
        raw = await self._call(self._service().GetPresets({"ProfileToken": profile_token}), "GetPresets")
        with _mapped("GetPresets", self._where, self._secrets):
            out = [PtzPreset(token=_text(p.token, 64), name=_text(p.Name, 64)) for p in (raw or [])[:1000]]
        return [p for p in out if p.token]

    async def goto_preset(self, profile_token: str, preset_token: str) -> None:
        """Moves to a stored preset."""
        await self._call(self._service().GotoPreset({"ProfileToken": profile_token, "PresetToken": preset_token}),
                         "GotoPreset")

    async def set_preset(self, profile_token: str, name: str) -> str:
        """Stores the current position as a new preset named ``name``; returns its token."""
        raw = await self._call(self._service().SetPreset({"ProfileToken": profile_token, "PresetName": name}),
                               "SetPreset")
        with _mapped("SetPreset", self._where, self._secrets):
            token = _text(raw if isinstance(raw, str) else getattr(raw, "PresetToken", raw), 64)
        if not token:
            raise CameraError("malformed", f"SetPreset: {self._where} returned no preset token")
        return token



# ------------------------------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.cameras.onvif HOST [PORT] --username U``: what registration would read, as JSON.

    The password comes from ``LOAPHUONG_CAMERA_PASSWORD`` or a prompt, never the command line (which
    other users can see in the process list).
    """
    import argparse
    import dataclasses
    import getpass
    import json
    import os
    import sys

    parser = argparse.ArgumentParser(prog="python -m controller.cameras.onvif",
                                     description="Read an ONVIF camera as registration would (device information, "
                                                 "H.264 profiles, stream and snapshot URIs, PTZ).")
    parser.add_argument("host")
    parser.add_argument("port", nargs="?", type=int, default=80)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole conversation")
    args = parser.parse_args(argv)
    password = os.environ.get("LOAPHUONG_CAMERA_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password of {args.username} on {args.host}: ")
    try:
        desc = asyncio.run(describe(args.host, args.port, args.username, password, timeout_s=args.timeout))
    except CameraError as exc:
        print(json.dumps({"error": exc.reason, "message": exc.message}, ensure_ascii=False), file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(desc), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
