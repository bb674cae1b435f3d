"""What the camera service refuses with: an unknown camera, a clash, a camera that cannot be used, no broker."""

from __future__ import annotations

from controller.cameras.onvif import CameraError


class CameraNotFound(LookupError):
    """No camera (or discovery, or agent) with that id."""


class CameraConflict(Exception):
    """The request clashes with what exists (an id taken, a camera without PTZ asked to move)."""


class RegistrationError(Exception):
    """A camera could not be used as given; ``reason`` is a short code, the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    @classmethod
    def from_camera(cls, exc: CameraError) -> RegistrationError:
        """The same failure as the ONVIF client reported it (already free of credentials)."""
        return cls(exc.reason, exc.message)


class LinkDown(Exception):
    """The broker is unreachable, so a command cannot be sent now."""
