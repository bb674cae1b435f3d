"""The parts of a programme: a stored recording, or a window of an upper-level station's live stream.

The one definition of a segment and its limits. The schedule model (``schedules.model``), the
controller's API and the agent's window all use these models and types, so a programme the controller
accepts is one every agent accepts, and the one relay-URL check (:func:`relay_url_error`) guards every
URL an agent hands to its player (relays, live sessions) and every camera address.
"""

from __future__ import annotations

import unicodedata
import urllib.parse
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field

from devices.protocol.fields import Sha256Hex, Strict

#: Longest single media or relay segment (a relay window of a whole day).
MAX_SEGMENT_MS: Final = 24 * 3600 * 1000
#: Most segments one programme plays back to back.
MAX_SEGMENTS: Final = 50
#: Largest recording a segment may name.
MAX_MEDIA_BYTES: Final = 512 * 1024 * 1024
#: Longest relay URL; the agent hands it to its player whole.
MAX_URL_CHARS: Final = 2000
MAX_MIME_CHARS: Final = 64
MAX_TITLE_CHARS: Final = 200

DurationMs = Annotated[int, Field(gt=0, le=MAX_SEGMENT_MS)]
MediaSize = Annotated[int, Field(gt=0, le=MAX_MEDIA_BYTES)]
Mime = Annotated[str, Field(min_length=1, max_length=MAX_MIME_CHARS)]
Title = Annotated[str, Field(max_length=MAX_TITLE_CHARS)]

#: Unicode categories refused anywhere in a URL: controls, invisible format characters and separators.
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs"})


def relay_url_error(url: str) -> str | None:
    """Why ``url`` may not be played, or None for an absolute http(s) URL with a host.

    The agent hands this URL to its player, so anything but a plain http(s) address is refused: file:,
    javascript:, data:, an option-like string, whitespace or invisible characters that could smuggle a
    second argument, a port that is not a number in range.
    """
    bad = "relay url must be http(s)"
    if len(url) > MAX_URL_CHARS:
        return f"{bad} and at most {MAX_URL_CHARS} characters"
    if any(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in url):
        return f"{bad} without spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        return f"{bad}: {exc}"
    if parts.scheme not in ("http", "https"):  # urlsplit lower-cases the scheme
        return f"{bad}, not {parts.scheme or 'a scheme-less address'}"
    if not parts.hostname:
        return f"{bad} with a host name"
    return None


def valid_relay_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host and nothing that could smuggle a second argument."""
    return relay_url_error(url) is None


def _check_relay_url(url: str) -> str:
    error = relay_url_error(url)
    if error is not None:
        raise ValueError(error)
    return url


#: A URL checked by :func:`relay_url_error` (the length too, so every refusal names the rule).
RelayUrl = Annotated[str, AfterValidator(_check_relay_url), Field(json_schema_extra={"maxLength": MAX_URL_CHARS})]


class MediaSegment(Strict):
    """A stored recording or rendered speech, fetched from ``/media/{sha256}``, played whole."""

    kind: Literal["media"] = "media"
    sha256: Sha256Hex
    size: MediaSize
    duration_ms: DurationMs
    mime: Mime = "audio/ogg"
    title: Title = ""


class RelaySegment(Strict):
    """A window of a live upstream stream (tiếp sóng) played for ``duration_ms``; reconnected if it drops."""

    kind: Literal["relay"] = "relay"
    url: RelayUrl
    duration_ms: DurationMs
    title: Title = ""


Segment = Annotated[MediaSegment | RelaySegment, Field(discriminator="kind")]
