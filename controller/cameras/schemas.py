"""Request and response bodies of the camera API; no response ever carries a camera's password."""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.cameras.feed import FeedStatus
from controller.cameras.motion import MotionSettings
from devices.geo import Latitude, LocationChange, LocationPair, Longitude, change_json_schema, pair_json_schema
from devices.protocol import ID_PATTERN
from devices.protocol.cameras import CameraHost
from devices.protocol.segments import url_pattern

IdStr = Annotated[str, Field(pattern=ID_PATTERN)]
#: Schemes a camera stream may use: the gateway reads RTSP only (plain or over TLS).
STREAM_SCHEMES = ("rtsp", "rtsps")


def stream_uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not a usable camera stream address (None when it is)."""
    try:
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return "the stream URI is not a valid URL"
    if parts.scheme.lower() not in STREAM_SCHEMES:
        return f"the stream URI must be rtsp:// or rtsps://, not {parts.scheme or 'a relative address'}"
    if not parts.hostname:
        return "the stream URI has no host"
    if any(c.isspace() or ord(c) < 32 for c in uri):
        return "the stream URI contains spaces or control characters"
    return None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Placement(_In, LocationPair):
    model_config = ConfigDict(extra="forbid", json_schema_extra=pair_json_schema)

    id: IdStr = Field(description="slug, e.g. cong-uy-ban")
    name: str = Field(default="", max_length=200)
    agent_id: IdStr | None = Field(default=None, description="the agent whose LAN the camera is on")
    zone: IdStr | None = None
    username: str = Field(default="", max_length=128)
    password: str = Field(default="", max_length=256)
    profile_token: str | None = Field(default=None, max_length=64, description="absent: the camera's first profile")
    ward: IdStr | None = Field(default=None, description="the ward it belongs to (its agent must be of that "
                                                          "ward); needed only by staff of several wards")
    #: Where it is mounted (both or neither).
    lat: Latitude | None = None
    lon: Longitude | None = None


#: What stream_uri_problem accepts with no credentials in it: rtsp(s), a host, a port in range, no white space or
#: control characters, no user info.
STREAM_URI_PATTERN = url_pattern(("rtsp", "rtsps"), r"\s\x00-\x1f", userinfo=False)


def _register_schema(schema: dict[str, Any]) -> None:
    # _stream's rule, in the document: ONVIF and no stream_uri, or onvif=false with a stream_uri.
    pair_json_schema(schema)
    schema["anyOf"] = [
        {"properties": {"onvif": {"const": True}, "stream_uri": {"type": "null"}}},
        {"required": ["onvif", "stream_uri"],
         "properties": {"onvif": {"const": False}, "stream_uri": {"type": "string", "pattern": STREAM_URI_PATTERN}}}]


class CameraRegister(_Placement):
    """Register a camera by address: ONVIF (described over the network) or a plain RTSP stream."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_register_schema)

    host: CameraHost
    port: int = Field(default=80, ge=1, le=65535, description="the ONVIF (HTTP) port")
    onvif: bool = Field(default=True, description="false: an RTSP-only camera, give stream_uri")
    stream_uri: str | None = Field(default=None, max_length=1000, description="RTSP-only cameras: rtsp://…")

    @model_validator(mode="after")
    def _stream(self) -> CameraRegister:
        if self.onvif and self.stream_uri is not None:
            raise ValueError("stream_uri is read from the camera over ONVIF; give it only with onvif=false")
        if not self.onvif:
            if not self.stream_uri:
                raise ValueError("an RTSP-only camera (onvif=false) needs stream_uri")
            problem = stream_uri_problem(self.stream_uri)
            if problem:
                raise ValueError(problem)
            if urllib.parse.urlsplit(self.stream_uri).username is not None:
                raise ValueError("put the credentials in username/password, not in the stream URI")
        return self


class CameraFromDiscovery(_Placement):
    """Register a camera an agent discovered (its ONVIF address comes from the discovery)."""


class CameraUpdate(_In, LocationChange):
    """Change where a camera belongs or how it is reached; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=change_json_schema)

    name: str | None = Field(default=None, max_length=200)
    agent_id: IdStr | None = None
    zone: IdStr | None = None
    username: str | None = Field(default=None, max_length=128)
    password: str | None = Field(default=None, max_length=256)
    profile_token: str | None = Field(default=None, max_length=64)
    #: A new location (both given), or none (both null).
    lat: Latitude | None = None
    lon: Longitude | None = None


class ProfilePublic(BaseModel):
    """One media profile of a camera."""

    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float | None
    rtsp_uri: str
    snapshot_uri: str | None
    ptz: bool


class CameraPublic(BaseModel):
    """A camera as the API shows it: no password, only whether one is set."""

    id: str
    ward: str
    name: str
    agent_id: str | None
    zone: str | None
    host: str
    port: int
    username: str
    has_password: bool
    onvif: bool
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    profiles: list[ProfilePublic]
    profile_token: str | None
    stream_uri: str
    has_snapshot_uri: bool
    ptz: bool
    motion: MotionSettings
    status: str
    fault: str | None
    status_changed_at: datetime | None
    last_ok_at: datetime | None
    discovery_endpoint: str | None
    created_at: datetime
    updated_at: datetime
    #: Where it is mounted (WGS 84 degrees); null: no location yet.
    lat: float | None = None
    lon: float | None = None


class CameraStatusPublic(BaseModel):
    """Health as the registry knows it plus the live reader's figures."""

    id: str
    status: str
    fault: str | None
    status_changed_at: datetime | None
    last_ok_at: datetime | None
    online: bool
    #: The gateway's reader for the camera (absent when nobody watches it).
    reader: FeedStatus | None


class PtzMove(_In):
    """Continuous move: velocities −1…1; the camera stops by itself after ``timeout_s`` if given."""

    pan: float = Field(default=0.0, ge=-1.0, le=1.0)
    tilt: float = Field(default=0.0, ge=-1.0, le=1.0)
    zoom: float = Field(default=0.0, ge=-1.0, le=1.0)
    timeout_s: float | None = Field(default=None, gt=0, le=60)


class PresetCreate(_In):
    """Store the current position as a preset."""

    name: str = Field(min_length=1, max_length=64)


class PresetPublic(BaseModel):
    """A stored PTZ position."""

    token: str
    name: str


class DiscoverRequest(_In):
    """Ask an agent to probe its LAN (WS-Discovery) now."""

    agent_id: IdStr
    timeout_ms: int = Field(default=3000, ge=200, le=30_000)


class DiscoverSent(BaseModel):
    """The signed command that went out; the answer arrives as discoveries."""

    command_id: str
    agent_id: str


class DiscoveryPublic(BaseModel):
    """An ONVIF device an agent found, and the camera registered from it (if any)."""

    id: int
    #: The finding agent's ward.
    ward: str
    agent_id: str
    endpoint: str
    host: str
    xaddrs: list[str]
    scopes: list[str]
    types: list[str]
    first_seen_at: datetime
    last_seen_at: datetime
    camera_id: str | None
