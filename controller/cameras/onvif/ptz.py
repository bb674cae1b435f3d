"""Pan, tilt and zoom: continuous moves, stop, and stored presets, over one ONVIF session per use."""

from __future__ import annotations

import math
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from controller.cameras.onvif.errors import CameraError, Scrubber, guarded, mapped
from controller.cameras.onvif.session import (
    PTZ_NS,
    check_port,
    close_camera,
    field_text,
    host_label,
    new_camera,
    read_services,
    service_where,
)
from controller.cameras.onvif.soap import ONVIFCamera

_T = TypeVar("_T")


@dataclass(frozen=True)
class PtzPreset:
    """A stored PTZ position."""

    token: str
    name: str


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
        self._where = host_label(host, port)
        self._secrets = Scrubber(username, password)
        self._cam: ONVIFCamera | None = None
        self._ptz: Any = None

    async def __aenter__(self) -> PtzControl:
        check_port(self._host, self._port)
        cam = new_camera(self._host, self._port, self._username, self._password)
        self._cam = cam
        try:
            await read_services(cam, self._where, self._secrets, self._timeout_s)
            if PTZ_NS not in cam.xaddrs:
                raise CameraError("fault", f"{self._where} offers no ONVIF PTZ service")
            self._where = service_where(cam.xaddrs[PTZ_NS], self._where)
            self._ptz = await self._call(cam.create_ptz_service(), "opening the PTZ service")
        except BaseException:
            await close_camera(cam)
            self._cam = None
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._cam is not None:
            await close_camera(self._cam)
            self._cam = None
            self._ptz = None

    def _service(self) -> Any:
        if self._ptz is None:
            raise RuntimeError("PtzControl used outside 'async with'")
        return self._ptz

    async def _call(self, coro: Awaitable[_T], what: str) -> _T:
        return await guarded(coro, what, self._where, self._secrets, self._timeout_s)

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
        with mapped("GetPresets", self._where, self._secrets):
            out = [PtzPreset(token=field_text(p.token, 64), name=field_text(p.Name, 64))
                   for p in (raw or [])[:1000]]
        return [p for p in out if p.token]

    async def goto_preset(self, profile_token: str, preset_token: str) -> None:
        """Moves to a stored preset."""
        await self._call(self._service().GotoPreset({"ProfileToken": profile_token, "PresetToken": preset_token}),
                         "GotoPreset")

    async def set_preset(self, profile_token: str, name: str) -> str:
        """Stores the current position as a new preset named ``name``; returns its token."""
        raw = await self._call(self._service().SetPreset({"ProfileToken": profile_token, "PresetName": name}),
                               "SetPreset")
        with mapped("SetPreset", self._where, self._secrets):
            token = field_text(raw if isinstance(raw, str) else getattr(raw, "PresetToken", raw), 64)
        if not token:
            raise CameraError("malformed", f"SetPreset: {self._where} returned no preset token")
        return token
