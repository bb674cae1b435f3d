"""WS-Discovery for ONVIF cameras: build a Probe, read ProbeMatch answers. Pure protocol, no sockets.

A Probe goes to 239.255.255.250:3702 over UDP; cameras answer unicast with a ProbeMatches message
naming their endpoint (a stable ``urn:uuid:…``), their device-service addresses (XAddrs), scopes and
types. Real cameras are sloppy, so the reader is lenient where it costs nothing (ipycam sends the action
``…/ProbeMatch`` instead of ``…/ProbeMatches`` and a bare ``ProbeMatch`` without its ``ProbeMatches``
wrapper; some omit ``RelatesTo``) and strict where it matters:
answers are size-capped, DTDs and entities are refused before parsing, only http(s) XAddrs survive, and
every list and string is bounded. A bad answer is skipped with a reason; it never stops a probe.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Final

from devices.protocol import (
    MAX_SCOPES,
    MAX_TYPES,
    MAX_XADDRS,
    DiscoveredCamera,
    valid_host,
    valid_xaddr,
)

MULTICAST_GROUP: Final = "239.255.255.250"
PORT: Final = 3702
#: Largest answer read; a ProbeMatches of a real camera is 1–3 KiB.
MAX_REPLY_BYTES: Final = 64 * 1024
#: Most ProbeMatch entries taken from one answer.
MAX_MATCHES_PER_REPLY: Final = 8

SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSA10: Final = "http://www.w3.org/2005/08/addressing"
WSD: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSD11: Final = "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01"
PROBE_ACTION: Final = f"{WSD}/Probe"
#: Actions accepted as an answer: the standard one, and the singular ipycam (and some cameras) send.
MATCH_ACTIONS: Final = frozenset({f"{WSD}/ProbeMatches", f"{WSD}/ProbeMatch",
                                  f"{WSD11}/ProbeMatches", f"{WSD11}/ProbeMatch"})
ONVIF_TYPE: Final = "dn:NetworkVideoTransmitter"

_MAX_ENDPOINT: Final = 256
_MAX_SCOPE: Final = 200
_MAX_TYPE: Final = 128


def new_message_id() -> str:
    """A fresh ``urn:uuid:`` message id for a Probe."""
    return f"urn:uuid:{uuid.uuid4()}"


def build_probe(message_id: str, types: str = ONVIF_TYPE) -> bytes:
    """The SOAP 1.2 Probe for ONVIF video transmitters (what ONVIF Device Manager sends)."""
    if not re.fullmatch(r"urn:uuid:[0-9a-fA-F-]{36}", message_id):
        raise ValueError("message_id must be urn:uuid:<uuid>")
    if not re.fullmatch(r"[A-Za-z0-9_:. -]{1,200}", types):
        raise ValueError("types must be a space-separated list of QNames")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:a="{WSA}" xmlns:d="{WSD}" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        "<s:Header>"
        f"<a:Action s:mustUnderstand=\"1\">{PROBE_ACTION}</a:Action>"
        f"<a:MessageID>{message_id}</a:MessageID>"
        "<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"
        "<a:To s:mustUnderstand=\"1\">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        "</s:Header>"
        f"<s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body>"
        "</s:Envelope>"
    ).encode()


class SkippedReply(ValueError):
    """An answer that was not used; ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class ProbeResult:
    """What one probe round gathered: cameras by endpoint, and why other answers were skipped."""

    cameras: dict[str, DiscoveredCamera] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add_reply(self, data: bytes, source_host: str, message_id: str | None) -> None:
        """Reads one datagram into the result; a bad one is counted with its reason, never raised."""
        try:
            found = parse_probe_matches(data, source_host, message_id)
        except SkippedReply as exc:
            self.skipped.append(f"{source_host}: {exc}"[:300])
            return
        for cam in found:
            # The first answer wins; a repeated one (cameras answer on every interface) adds nothing.
            self.cameras.setdefault(cam.endpoint, cam)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _words(text: str | None, limit: int, max_len: int) -> list[str]:
    out: list[str] = []
    for word in (text or "").split():
        if len(word) <= max_len and word not in out:
            out.append(word)
        if len(out) == limit:
            break
    return out


def parse_probe_matches(data: bytes, source_host: str, message_id: str | None = None) -> list[DiscoveredCamera]:
    """The cameras one ProbeMatch(es) answer describes.

    ``source_host`` is the address the datagram came from; ``message_id`` is our Probe's id, and an
    answer that says it relates to another probe is skipped. Raises :class:`SkippedReply` for an
    answer that yields nothing usable.
    """
    if not valid_host(source_host):
        raise SkippedReply("bad_source", source_host[:60])
    if len(data) > MAX_REPLY_BYTES:
        raise SkippedReply("too_large", f"{len(data)} bytes")
    try:
        # Decoded first, so a UTF-16 document cannot hide a DTD from the check below.
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SkippedReply("not_utf8") from None
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        # WS-Discovery never needs a DTD; refusing them rules out entity expansion and external entities.
        raise SkippedReply("dtd_refused")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD can reach the parser (checked above)
    except ET.ParseError as exc:
        raise SkippedReply("bad_xml", str(exc)[:120]) from None
    if _local(root.tag) != "Envelope" or _ns(root.tag) not in (SOAP12, SOAP11):
        raise SkippedReply("not_soap", _local(root.tag)[:40])
    header = next((c for c in root if _local(c.tag) == "Header"), None)
    body = next((c for c in root if _local(c.tag) == "Body"), None)
    if body is None:
        raise SkippedReply("no_body")
    action = relates = ""
    if header is not None:
        for child in header:
            if _ns(child.tag) in (WSA, WSA10):
                if _local(child.tag) == "Action":
                    action = (child.text or "").strip()
                elif _local(child.tag) == "RelatesTo":
                    relates = (child.text or "").strip()
    if action and action not in MATCH_ACTIONS:
        raise SkippedReply("not_probe_match", action[:100])
    if message_id and relates and relates != message_id:
        raise SkippedReply("unrelated", "answers another probe")
    matches: list[ET.Element] = []
    for child in body:
        if _ns(child.tag) not in (WSD, WSD11):
            continue
        if _local(child.tag) == "ProbeMatches":
            matches += [m for m in child if _local(m.tag) == "ProbeMatch"]
        elif _local(child.tag) == "ProbeMatch":  # ipycam puts a bare ProbeMatch in the body
            matches.append(child)
    if not matches:
        raise SkippedReply("no_probe_matches")
    cameras: list[DiscoveredCamera] = []
    reasons: list[str] = []
    for match in matches[:MAX_MATCHES_PER_REPLY]:
        try:
            cameras.append(_camera(match, source_host))
        except SkippedReply as exc:
            reasons.append(str(exc))
    if not cameras:
        raise SkippedReply("no_usable_match", "; ".join(reasons)[:200] or "empty ProbeMatches")
    return cameras


def _camera(match: ET.Element, source_host: str) -> DiscoveredCamera:
    endpoint = ""
    xaddrs_text = scopes_text = types_text = None
    for child in match:
        name = _local(child.tag)
        if name == "EndpointReference":
            address = next((a for a in child if _local(a.tag) == "Address"), None)
            endpoint = (address.text or "").strip() if address is not None else ""
        elif name == "XAddrs":
            xaddrs_text = child.text
        elif name == "Scopes":
            scopes_text = child.text
        elif name == "Types":
            types_text = child.text
    if not endpoint or len(endpoint) > _MAX_ENDPOINT or any(ch.isspace() for ch in endpoint):
        raise SkippedReply("no_endpoint")
    xaddrs = [x for x in _words(xaddrs_text, 32, 256) if valid_xaddr(x)][:MAX_XADDRS]
    if not xaddrs:
        raise SkippedReply("no_http_xaddr", endpoint[:80])
    return DiscoveredCamera(endpoint=endpoint, xaddrs=xaddrs, scopes=_words(scopes_text, MAX_SCOPES, _MAX_SCOPE),
                            types=_words(types_text, MAX_TYPES, _MAX_TYPE), host=source_host)


def scope_value(camera: DiscoveredCamera, kind: str) -> str | None:
    """The value of an ONVIF scope such as ``name`` or ``hardware`` (``onvif://www.onvif.org/name/…``)."""
    import urllib.parse

    prefix = f"onvif://www.onvif.org/{kind}/"
    for scope in camera.scopes:
        if scope.lower().startswith(prefix):
            return urllib.parse.unquote(scope[len(prefix):]) or None
    return None
