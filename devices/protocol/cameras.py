"""ONVIF cameras on an agent's LAN: the ``camera.discover`` command and the ``camera.discovered`` event."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Final

from pydantic import AfterValidator, Field, field_validator

from devices.protocol.fields import Strict
from devices.protocol.segments import ipv6_pattern, valid_relay_url


class CameraDiscover(Strict):
    """``camera.discover``: probe the agent's LAN for ONVIF cameras now (WS-Discovery) and report them."""

    timeout_ms: int = Field(default=3000, ge=200, le=30_000, description="how long to collect answers")


MAX_CAMERAS_PER_EVENT: Final = 32
MAX_XADDRS: Final = 4
MAX_SCOPES: Final = 16
MAX_TYPES: Final = 8
XAddr = Annotated[str, Field(min_length=8, max_length=256)]
Scope = Annotated[str, Field(min_length=1, max_length=200)]
QNameText = Annotated[str, Field(min_length=1, max_length=128)]


def valid_xaddr(url: str) -> bool:
    """True for an ONVIF service address: an absolute http(s) URL with a host, no spaces or controls."""
    return len(url) <= 256 and valid_relay_url(url)


def valid_host(host: str) -> bool:
    """True for an IP address or a DNS host name (what a camera is reached at)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME_RE.match(host))


_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# \Z, not $: a host name followed by a newline is no host name.
_HOSTNAME_RE: Final = re.compile(rf"^(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\Z")


def _checked_host(value: str) -> str:
    if not valid_host(value):
        raise ValueError("host must be an IP address or a host name")
    return value


#: :func:`valid_host` as a JSON schema pattern, so the API's document refuses what the validator refuses: a
#: host name (which covers dotted IPv4) or IPv6 text.
HOST_PATTERN: Final = rf"^({_LABEL}(\.{_LABEL})*|{ipv6_pattern()})(?![\s\S])"

#: Where a camera is reached: an IP address or a DNS host name (the agent's reports and the controller's API).
#: The pattern is the document's only (valid_host checks): pydantic's own regex engine has no lookahead.
CameraHost = Annotated[str, Field(max_length=253, json_schema_extra={"pattern": HOST_PATTERN}),
                       AfterValidator(_checked_host)]


class DiscoveredCamera(Strict):
    """One ONVIF device that answered a WS-Discovery probe on the agent's LAN."""

    endpoint: str = Field(min_length=1, max_length=256, description="WS-Addressing endpoint, e.g. urn:uuid:…")
    xaddrs: list[XAddr] = Field(min_length=1, max_length=MAX_XADDRS)
    scopes: list[Scope] = Field(default_factory=list, max_length=MAX_SCOPES)
    types: list[QNameText] = Field(default_factory=list, max_length=MAX_TYPES)
    host: CameraHost = Field(description="address the answer came from")

    @field_validator("xaddrs")
    @classmethod
    def _http_xaddrs(cls, value: list[str]) -> list[str]:
        for url in value:
            if not valid_xaddr(url):
                raise ValueError("xaddrs must be absolute http(s) URLs with a host")
        return value


class CameraDiscovered(Strict):
    """``camera.discovered``: the ONVIF cameras one WS-Discovery round found (possibly none).

    ``ref`` is the ``camera.discover`` command id it answers, or null for a periodic probe;
    ``part``/``parts`` number the events of one round when it found more than one event holds;
    ``skipped`` counts answers that were dropped as malformed.
    """

    cameras: list[DiscoveredCamera] = Field(default_factory=list, max_length=MAX_CAMERAS_PER_EVENT)
    ref: str | None = Field(default=None, max_length=64)
    part: int = Field(default=1, ge=1, le=100)
    parts: int = Field(default=1, ge=1, le=100)
    skipped: int = Field(default=0, ge=0)
