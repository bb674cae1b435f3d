"""The parts of a programme: a stored recording, or a window of an upper-level station's live stream.

The one definition of a segment and its limits. The schedule model (``schedules.model``), the
controller's API and the agent's window all use these models and types, so a programme the controller
accepts is one every agent accepts, and the one relay-URL check (:func:`relay_url_error`) guards every
URL an agent hands to its player (relays, live sessions) and every camera address.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
import urllib.parse
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

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


def ipv6_pattern(zone: str = "%/") -> str:
    """IPv6 text as :func:`ipaddress.ip_address` reads it: eight hextets, or fewer around one ``::``, the last
    two optionally a dotted IPv4 address, then optionally ``%`` and a zone (scope) id, none of whose characters
    are in the class body ``zone``."""
    octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # no leading zero, as ipaddress requires
    hextet, v4 = "[0-9A-Fa-f]{1,4}", rf"{octet}(\.{octet}){{3}}"
    forms = [f"({hextet}:){{7}}{hextet}", f"({hextet}:){{6}}{v4}"]
    for left in range(8):  # hextets before "::"; "::" stands for at least one
        head = f"({hextet}:){{{left - 1}}}{hextet}" if left else ""
        tails = [f"({hextet}(:{hextet}){{0,{6 - left}}})?" if left < 7 else ""]
        if left <= 5:
            tails.append(f"({hextet}:){{0,{5 - left}}}{v4}")
        forms += [f"{head}::{tail}" for tail in tails]
    return f"({'|'.join(forms)})(%[^{zone}]+)?"


def url_pattern(schemes: tuple[str, ...], refused: str, *, userinfo: bool = True) -> str:
    """A JSON schema pattern for an absolute URL as :func:`urllib.parse.urlsplit` reads it: one of ``schemes``
    (any case), a host, a port in range if any, and none of the characters in the class body ``refused``;
    with ``userinfo`` false, no ``user@`` either.

    It ends with ``(?![\\s\\S])``, not ``$``, which in Python also matches before a final newline.
    """
    scheme = "(" + "|".join("".join(f"[{c.upper()}{c}]" for c in name) for name in schemes) + ")"
    port = "(:0*([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])?)?"
    in_brackets = ipv6_pattern(r"%/?#@[\]" + refused)
    bracketed = rf"({in_brackets}|v[0-9A-Fa-f]+\.[^/?#@\]{refused}]+)"
    host = rf"(\[{bracketed}\]|[^/?#@:\[\]{refused}]+)"
    user = rf"([^/?#\[\]{refused}]*@)?" if userinfo else ""
    return rf"^{scheme}://{user}{host}{port}([/?#][^{refused}]*)?(?![\s\S])"


def _class_body(refused: Callable[[str], bool]) -> str:
    """The characters ``refused`` says yes to, as a regular expression's class body of escaped ranges."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if refused(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    def esc(code: int) -> str:
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else chr(code)
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


@functools.cache
def relay_url_pattern() -> str:
    """:func:`relay_url_error` as a JSON schema pattern (built once, when a schema first asks: walking every
    code point for the refused characters is no work for an agent's start-up)."""
    refused = _class_body(lambda ch: ch.isspace() or unicodedata.category(ch) in _INVISIBLE)
    return url_pattern(("http", "https"), refused)


def _relay_url_schema(schema: dict[str, Any]) -> None:
    schema.update(maxLength=MAX_URL_CHARS, pattern=relay_url_pattern())

#: A URL checked by :func:`relay_url_error` (the length too, so every refusal names the rule).
RelayUrl = Annotated[str, AfterValidator(_check_relay_url), Field(json_schema_extra=_relay_url_schema)]


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
