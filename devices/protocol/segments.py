"""The parts of a programme: a stored recording, or a window of an upper-level station's live stream."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator

from devices.protocol.fields import Sha256Hex, Strict

#: Longest single media or relay segment (a relay window of a whole day).
MAX_SEGMENT_MS: Final = 24 * 3600 * 1000


def valid_relay_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host and nothing that could smuggle a second argument."""
    if len(url) > 2000 or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class MediaSegment(Strict):
    """A stored recording or rendered speech, fetched from ``/media/{sha256}``."""

    kind: Literal["media"] = "media"
    sha256: Sha256Hex
    size: int = Field(gt=0, le=512 * 1024 * 1024)
    duration_ms: int = Field(gt=0, le=MAX_SEGMENT_MS)
    mime: str = Field(default="audio/ogg", max_length=64)
    title: str = Field(default="", max_length=200)


class RelaySegment(Strict):
    """A live upstream stream (tiếp sóng) played for ``duration_ms``; reconnected if it drops."""

    kind: Literal["relay"] = "relay"
    url: str = Field(max_length=2000)
    duration_ms: int = Field(gt=0, le=MAX_SEGMENT_MS)
    title: str = Field(default="", max_length=200)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not valid_relay_url(value):
            raise ValueError("relay url must be an absolute http(s) URL with a host")
        return value


Segment = Annotated[MediaSegment | RelaySegment, Field(discriminator="kind")]
