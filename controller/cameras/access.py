"""What it takes to reach a camera: its address and decrypted credentials (:class:`CameraAccess`), read from
its row in a short session off the event loop, and whether anything answers at an address.

The password is decrypted only into a :class:`CameraAccess` that lives in memory for one operation and
is never logged or returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from controller.cameras.errors import RegistrationError
from controller.cameras.motion import MotionSettings
from controller.cameras.onvif import PtzControl
from controller.cameras.secrets import SecretBox
from controller.storage.engine import Database
from controller.storage.models import Camera

_T = TypeVar("_T")
RTSP_DEFAULT_PORT = 554


def with_credentials(uri: str, username: str, password: str) -> str:
    """``uri`` with URL-quoted user-info (what OpenCV needs); never log the result."""
    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if username:
        netloc = f"{urllib.parse.quote(username, safe='')}:{urllib.parse.quote(password, safe='')}@{netloc}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class CameraAccess:
    """What it takes to reach one camera, password decrypted (in memory only, for one operation)."""

    id: str
    agent_id: str | None
    zone: str | None
    host: str
    port: int
    username: str
    password: str
    onvif: bool
    stream_uri: str
    snapshot_uri: str | None
    profile_token: str | None
    ptz: bool
    motion: MotionSettings

    def stream_url(self) -> str:
        """The stream address with credentials, for OpenCV only."""
        return with_credentials(self.stream_uri, self.username, self.password)

    def probe_address(self) -> tuple[str, int]:
        """Where a health check knocks: the ONVIF port, or the RTSP port of a stream-only camera."""
        if self.onvif:
            return self.host, self.port
        parts = urllib.parse.urlsplit(self.stream_uri)
        return parts.hostname or self.host, parts.port or RTSP_DEFAULT_PORT

    def ptz_control(self) -> PtzControl:
        """An ONVIF PTZ session for this camera."""
        return PtzControl(self.host, self.port, self.username, self.password)


def load_access(camera: Camera, secrets: SecretBox, *, tolerate_lost_secret: bool = False) -> CameraAccess:
    """The camera's access from its row; RegistrationError if its password cannot be decrypted (unless
    ``tolerate_lost_secret``, which gives an empty password instead)."""
    try:
        password = secrets.decrypt(camera.password_enc)
    except ValueError:
        # The key file was replaced or lost: this camera needs its password again (PATCH), nothing else breaks.
        if not tolerate_lost_secret:
            raise RegistrationError("secret_lost", f"the stored password of camera {camera.id} cannot be "
                                    "decrypted with this controller's camera-secrets.key; give it again "
                                    "(PATCH password)") from None
        password = ""
    return CameraAccess(
        id=camera.id, agent_id=camera.agent_id, zone=camera.zone, host=camera.host, port=camera.port,
        username=camera.username, password=password, onvif=camera.onvif,
        stream_uri=camera.stream_uri, snapshot_uri=camera.snapshot_uri, profile_token=camera.profile_token,
        ptz=camera.ptz, motion=MotionSettings.model_validate(camera.motion or {}))


async def run_in_session(db: Database, fn: Callable[[Session], _T]) -> _T:
    """``fn`` in a session of its own (committed if it returns), in a worker thread."""
    def run() -> _T:
        with db.session() as session:
            return fn(session)
    return await asyncio.to_thread(run)


async def tcp_answers(host: str, port: int, timeout_s: float) -> bool:
    """True if something accepts a TCP connection at ``host:port`` within the timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(host, port, family=socket.AF_UNSPEC)
    except (OSError, TimeoutError, UnicodeError):  # UnicodeError: a host name IDNA cannot encode reaches nothing
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
