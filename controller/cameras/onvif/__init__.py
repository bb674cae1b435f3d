"""ONVIF client for the controller: read a camera's identity, profiles and URIs, fetch snapshots, drive PTZ.

Built on onvif-zeep-async (async SOAP with WS-Security UsernameToken digest, the WSDLs it ships).
Every failure becomes a :class:`CameraError` whose ``reason`` is one of ``unreachable``, ``auth``,
``fault``, ``malformed``, ``no_h264``, ``bad_uri`` and whose message says what went wrong in words a
technician can act on. Credentials never appear in those messages (nor in our logs): anything a camera
or a library says is scrubbed of the username, the password and URL user-info before it is kept.

ONVIF runs here, in the controller, and not on the agents: camera passwords stay on the controller and a
Pi agent only finds cameras (WS-Discovery, ``devices/camera/discovery.py``).

Import from here; the modules are ``soap`` (the library, imported quietly), ``errors`` (``CameraError``,
the console's sentences, scrubbing credentials), ``session`` (opening and closing a session with one
camera), ``describe`` (device information and H.264 profiles, for registration), ``snapshot`` (an HTTP
snapshot), ``ptz`` (moves and presets) and ``cli`` (``python -m controller.cameras.onvif``).
"""

from __future__ import annotations

from controller.cameras.onvif.cli import main
from controller.cameras.onvif.describe import MAX_PROFILES, CameraDescription, DeviceInfo, MediaProfile, describe
from controller.cameras.onvif.errors import REASON_TEXT, CameraError, Reason, reason_text, redact_uri
from controller.cameras.onvif.ptz import PtzControl, PtzPreset
from controller.cameras.onvif.session import MEDIA_NS, PTZ_NS
from controller.cameras.onvif.snapshot import MAX_SNAPSHOT_BYTES, SNAPSHOT_TYPES, fetch_snapshot

__all__ = [
    "MAX_PROFILES",
    "MAX_SNAPSHOT_BYTES",
    "MEDIA_NS",
    "PTZ_NS",
    "REASON_TEXT",
    "SNAPSHOT_TYPES",
    "CameraDescription",
    "CameraError",
    "DeviceInfo",
    "MediaProfile",
    "PtzControl",
    "PtzPreset",
    "Reason",
    "describe",
    "fetch_snapshot",
    "main",
    "reason_text",
    "redact_uri",
]
