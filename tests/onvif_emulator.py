"""An ONVIF device emulator for tests, built from the WSDLs that onvif-zeep-async ships.

Requests are parsed, and answers serialised, by zeep from ``devicemgmt.wsdl``, ``media.wsdl`` and
``ptz.wsdl``, so what goes over the wire has the schema's shape; only the values come from here. It
answers what ipycam cannot be made to do: WS-Security UsernameToken digest checking with a
``ter:NotAuthorized`` fault, SOAP faults on demand, a malformed-XML mode, profiles without H.264,
non-RTSP stream URIs, PTZ (ContinuousMove, Stop, GetPresets, GotoPreset, SetPreset) recorded for the
test to assert on, and a snapshot behind HTTP digest auth.

Use in-process (``with OnvifEmulator(...) as emu:``; a thread serves HTTP on 127.0.0.1) or as a
subprocess inside a test network namespace, with a WS-Discovery responder:
``python -m tests.onvif_emulator --host 10.x.y.z --port N --discovery``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.server
import os
import secrets
import signal
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import zeep.helpers
from lxml import etree
from zeep.settings import Settings
from zeep.transports import Transport
from zeep.wsdl import Document

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TER = "http://www.onvif.org/ver10/error"
DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"
MAX_REQUEST = 64 * 1024
#: Operations a device answers without credentials (ONVIF Core, "pre-auth").
PRE_AUTH = frozenset({"GetSystemDateAndTime"})
REALM = "onvif-emulator"

#: path → (wsdl file, binding)
SERVICES: dict[str, tuple[str, str]] = {
    "/onvif/device_service": ("devicemgmt.wsdl", f"{{{DEVICE_NS}}}DeviceBinding"),
    "/onvif/media_service": ("media.wsdl", f"{{{MEDIA_NS}}}MediaBinding"),
    "/onvif/ptz_service": ("ptz.wsdl", f"{{{PTZ_NS}}}PTZBinding"),
}


def wsdl_dir() -> Path:
    """The WSDL folder inside the installed onvif-zeep-async."""
    import onvif

    return Path(onvif.__file__).parent / "wsdl"


class _Wsdls:
    """zeep documents of the three services, loaded once per process (about a second each)."""

    _lock = threading.Lock()
    _docs: ClassVar[dict[str, Document]] = {}

    @classmethod
    def binding(cls, path: str) -> tuple[Document, Any]:
        wsdl, binding = SERVICES[path]
        with cls._lock:
            doc = cls._docs.get(wsdl)
            if doc is None:
                doc = Document(str(wsdl_dir() / wsdl), Transport(), settings=Settings())
                cls._docs[wsdl] = doc
        return doc, doc.bindings[binding]


@dataclass
class Received:
    """One operation the emulator was asked to do, with its parameters as plain data."""

    service: str
    operation: str
    params: dict[str, Any]


class SoapFault(Exception):
    """Answered as a SOAP 1.2 fault."""

    def __init__(self, subcode: str, reason: str, status: int = 400, code: str = "env:Sender") -> None:
        super().__init__(reason)
        self.subcode, self.reason, self.status, self.code = subcode, reason, status, code


@dataclass
class OnvifEmulator:
    """An ONVIF camera on ``host:port`` (0 = a free port) whose answers the test controls."""

    host: str = "127.0.0.1"
    port: int = 0
    username: str = "admin"
    password: str = "Mat-khau-emu-7"
    manufacturer: str = "EmuCam"
    model: str = "PTZ-Emu-2"
    firmware: str = "2.4.1"
    serial: str = "EMU-0042"
    hardware_id: str = "HW-EMU"
    #: False: every profile is JPEG/MPEG4, as on old cameras (describe() must say ``no_h264``).
    h264: bool = True
    #: Base of the stream URIs handed out; e.g. ``rtsp://127.0.0.1:8554`` of a real RTSP server.
    stream_base: str = ""
    #: Scheme of the stream URI: ``rtsp`` normally, ``http`` to test ``bad_uri``.
    stream_scheme: str = "rtsp"
    ptz: bool = True
    #: Operation name → (ter: subcode, reason): answered with that SOAP fault.
    faults: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Answer every SOAP request with broken XML.
    malformed: bool = False
    #: HTTP status of an authentication fault (ONVIF says 400; many cameras send 401).
    auth_status: int = 400
    #: Content type and body of the snapshot (defaults to a small JPEG).
    #: The camera's clock is this far off; tokens are checked against it (±5 min), as cameras do.
    clock_offset_s: float = 0.0
    snapshot_type: str = "image/jpeg"
    snapshot_body: bytes = b""
    received: list[Received] = field(default_factory=list)
    presets: dict[str, str] = field(default_factory=lambda: {"1": "Cong chinh", "2": "San truoc"})
    endpoint: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._nonces: set[str] = set()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if not self.snapshot_body:
            self.snapshot_body = _tiny_jpeg()

    # lifecycle --------------------------------------------------------------------------------------

    def start(self) -> OnvifEmulator:
        """Loads the WSDLs and serves HTTP on a thread."""
        for path in SERVICES:
            _Wsdls.binding(path)
        emulator = self

        class Handler(_Handler):
            emu = emulator

        self._server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="onvif-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OnvifEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def device_url(self) -> str:
        return f"{self.base}/onvif/device_service"

    def operations(self, name: str) -> list[Received]:
        """What was received for operation ``name``."""
        with self._lock:
            return [r for r in self.received if r.operation == name]

    # SOAP -------------------------------------------------------------------------------------------

    def handle_soap(self, path: str, raw: bytes) -> tuple[int, bytes]:
        """One SOAP request → (HTTP status, response body)."""
        if self.malformed:
            return 200, b'<?xml version="1.0"?><env:Envelope xmlns:env="' + SOAP12.encode() + b'"><env:Body><tds:'
        if path not in SERVICES or (path == "/onvif/ptz_service" and not self.ptz):
            return 404, b""
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
            envelope = etree.fromstring(raw, parser)
        except etree.XMLSyntaxError:
            return _fault(SoapFault("ter:WellFormed", "request is not well-formed XML"))
        body = envelope.find(f"{{{SOAP12}}}Body")
        if body is None or len(body) == 0:
            return _fault(SoapFault("ter:InvalidArgs", "no SOAP body"))
        request = body[0]
        doc, binding = _Wsdls.binding(path)
        operation = next((op for op in binding._operations.values() if op.input.body.qname == request.tag), None)
        if operation is None:
            return _fault(SoapFault("ter:ActionNotSupported", f"{etree.QName(request).localname} is not supported"))
        name = operation.name
        try:
            if name not in PRE_AUTH:
                self._check_token(envelope)
            params = zeep.helpers.serialize_object(operation.input.body.parse(request, doc.types), dict) or {}
            with self._lock:
                self.received.append(Received(path.rsplit("/", 1)[-1], name, params))
            if name in self.faults:
                subcode, reason = self.faults[name]
                raise SoapFault(subcode, reason)
            handler = getattr(self, f"_op_{name}", None)
            if handler is None:
                raise SoapFault("ter:ActionNotSupported", f"{name} is not implemented by the emulator")
            values = handler(params)
        except SoapFault as exc:
            return _fault(exc)
        message = operation.output.serialize(**values)
        return 200, etree.tostring(message.content, xml_declaration=True, encoding="utf-8")

    def _check_token(self, envelope: Any) -> None:
        """WS-Security UsernameToken with PasswordDigest = base64(SHA-1(nonce + created + password))."""
        token = envelope.find(f"{{{SOAP12}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        denied = SoapFault("ter:NotAuthorized", "Sender not authorized", status=self.auth_status)
        if token is None:
            raise denied
        user = token.findtext(f"{{{WSSE}}}Username") or ""
        pw_el = token.find(f"{{{WSSE}}}Password")
        nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
        created = token.findtext(f"{{{WSU}}}Created") or ""
        if pw_el is None or not pw_el.get("Type", "").endswith("#PasswordDigest") or not nonce or not created:
            raise denied
        try:
            nonce_raw = base64.b64decode(nonce, validate=True)
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            raise denied from None
        expected = base64.b64encode(hashlib.sha1(nonce_raw + created.encode() + self.password.encode()).digest())
        if user != self.username or not secrets.compare_digest(expected.decode(), (pw_el.text or "").strip()):
            raise denied
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if abs((self._now() - when).total_seconds()) > 300:
            raise denied
        with self._lock:
            if nonce in self._nonces:
                raise denied  # a replayed token
            self._nonces.add(nonce)

    # device service ---------------------------------------------------------------------------------

    def _now(self) -> datetime:
        """The camera's clock: wall time plus ``clock_offset_s`` (cameras without NTP drift by hours)."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)

    def _op_GetSystemDateAndTime(self, params: dict[str, Any]) -> dict[str, Any]:
        now = self._now()
        return {"SystemDateAndTime": {
            "DateTimeType": "NTP", "DaylightSavings": False, "TimeZone": {"TZ": "ICT-7"},
            "UTCDateTime": {"Date": {"Year": now.year, "Month": now.month, "Day": now.day},
                            "Time": {"Hour": now.hour, "Minute": now.minute, "Second": now.second}}}}

    def _op_GetDeviceInformation(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Manufacturer": self.manufacturer, "Model": self.model, "FirmwareVersion": self.firmware,
                "SerialNumber": self.serial, "HardwareId": self.hardware_id}

    def _op_GetServices(self, params: dict[str, Any]) -> dict[str, Any]:
        services = [(DEVICE_NS, "/onvif/device_service"), (MEDIA_NS, "/onvif/media_service")]
        if self.ptz:
            services.append((PTZ_NS, "/onvif/ptz_service"))
        return {"Service": [{"Namespace": ns, "XAddr": self.base + path, "Version": {"Major": 2, "Minor": 60}}
                            for ns, path in services]}

    def _op_GetCapabilities(self, params: dict[str, Any]) -> dict[str, Any]:
        caps: dict[str, Any] = {
            "Device": {"XAddr": self.device_url},
            "Media": {"XAddr": f"{self.base}/onvif/media_service",
                      "StreamingCapabilities": {"RTPMulticast": False, "RTP_TCP": True, "RTP_RTSP_TCP": True}},
        }
        if self.ptz:
            caps["PTZ"] = {"XAddr": f"{self.base}/onvif/ptz_service"}
        return {"Capabilities": caps}

    # media service ----------------------------------------------------------------------------------

    def _profile_list(self) -> list[dict[str, Any]]:
        encodings = ["H264", "H264"] if self.h264 else ["JPEG", "MPEG4"]
        sizes = [(1280, 720, 25), (640, 360, 15)]
        out = []
        for i, (enc, (w, h, fps)) in enumerate(zip(encodings, sizes, strict=True)):
            profile: dict[str, Any] = {
                "token": f"prof{i}", "fixed": True, "Name": ["Chinh", "Phu"][i],
                "VideoEncoderConfiguration": {
                    "token": f"venc{i}", "Name": f"venc{i}", "UseCount": 1, "Encoding": enc,
                    "Resolution": {"Width": w, "Height": h}, "Quality": 5.0,
                    "RateControl": {"FrameRateLimit": fps, "EncodingInterval": 1, "BitrateLimit": 2048},
                    "Multicast": {"Address": {"Type": "IPv4", "IPv4Address": "0.0.0.0"}, "Port": 0, "TTL": 1,
                                  "AutoStart": False},
                    "SessionTimeout": "PT60S"},
            }
            if self.ptz:
                profile["PTZConfiguration"] = {"token": "ptz0", "Name": "ptz0", "UseCount": 2, "NodeToken": "node0"}
            out.append(profile)
        return out

    def _op_GetProfiles(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Profiles": self._profile_list()}

    def _known_profile(self, token: Any) -> str:
        if token not in {p["token"] for p in self._profile_list()}:
            raise SoapFault("ter:NoProfile", f"no profile {token!r}")
        return str(token)

    def _op_GetStreamUri(self, params: dict[str, Any]) -> dict[str, Any]:
        token = self._known_profile(params.get("ProfileToken"))
        base = self.stream_base or f"{self.stream_scheme}://{self.host}:8554"
        if self.stream_scheme != "rtsp":
            base = f"{self.stream_scheme}://{self.host}:{self.port}"
        return {"MediaUri": {"Uri": f"{base}/{token}", "InvalidAfterConnect": False, "InvalidAfterReboot": False,
                             "Timeout": "PT0S"}}

    def _op_GetSnapshotUri(self, params: dict[str, Any]) -> dict[str, Any]:
        token = self._known_profile(params.get("ProfileToken"))
        return {"MediaUri": {"Uri": f"{self.base}/snapshot/{token}.jpg", "InvalidAfterConnect": False,
                             "InvalidAfterReboot": False, "Timeout": "PT0S"}}

    # PTZ service ------------------------------------------------------------------------------------

    def _op_ContinuousMove(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known_profile(params.get("ProfileToken"))
        return {}

    def _op_Stop(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known_profile(params.get("ProfileToken"))
        return {}

    def _op_GetPresets(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known_profile(params.get("ProfileToken"))
        with self._lock:
            return {"Preset": [{"token": t, "Name": n} for t, n in self.presets.items()]}

    def _op_GotoPreset(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known_profile(params.get("ProfileToken"))
        if params.get("PresetToken") not in self.presets:
            raise SoapFault("ter:NoToken", f"no preset {params.get('PresetToken')!r}")
        return {}

    def _op_SetPreset(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known_profile(params.get("ProfileToken"))
        with self._lock:
            token = str(max((int(t) for t in self.presets if t.isdigit()), default=0) + 1)
            self.presets[token] = str(params.get("PresetName") or f"Preset {token}")
        return {"PresetToken": token}

    # snapshot ---------------------------------------------------------------------------------------

    def check_digest(self, method: str, header: str) -> bool:
        """HTTP digest (RFC 7616, MD5, qop=auth) against the emulator's credentials."""
        if not header.lower().startswith("digest "):
            return False
        fields: dict[str, str] = {}
        for part in _split_digest(header[7:]):
            key, _, value = part.partition("=")
            fields[key.strip().lower()] = value.strip().strip('"')
        need = ("username", "realm", "nonce", "uri", "response", "nc", "cnonce", "qop")
        if any(k not in fields for k in need) or fields["username"] != self.username or fields["realm"] != REALM:
            return False
        ha1 = hashlib.md5(f"{self.username}:{REALM}:{self.password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{fields['uri']}".encode()).hexdigest()
        want = hashlib.md5(":".join([ha1, fields["nonce"], fields["nc"], fields["cnonce"], fields["qop"],
                                     ha2]).encode()).hexdigest()
        return secrets.compare_digest(want, fields["response"])


def _split_digest(text: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def _fault(exc: SoapFault) -> tuple[int, bytes]:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12, "ter": TER})
    body = etree.SubElement(env, f"{{{SOAP12}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP12}}}Fault")
    code = etree.SubElement(fault, f"{{{SOAP12}}}Code")
    etree.SubElement(code, f"{{{SOAP12}}}Value").text = exc.code
    sub = etree.SubElement(code, f"{{{SOAP12}}}Subcode")
    etree.SubElement(sub, f"{{{SOAP12}}}Value").text = exc.subcode
    reason = etree.SubElement(fault, f"{{{SOAP12}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = exc.reason
    return exc.status, etree.tostring(env, xml_declaration=True, encoding="utf-8")


def _tiny_jpeg() -> bytes:
    import cv2
    import numpy as np

    img = np.zeros((48, 64, 3), dtype=np.uint8)
    img[:, :32] = (0, 0, 255)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf.tobytes())


class _Handler(http.server.BaseHTTPRequestHandler):
    emu: ClassVar[OnvifEmulator]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/soap+xml; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST:
            self._send(413, b"")
            return
        raw = self.rfile.read(length)
        status, body = self.emu.handle_soap(self.path.split("?", 1)[0], raw)
        self._send(status, body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if not path.startswith("/snapshot/"):
            self._send(404, b"", "text/plain")
            return
        if not self.emu.check_digest("GET", self.headers.get("Authorization", "")):
            nonce = secrets.token_hex(16)
            challenge = f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'
            self._send(401, b"unauthorized", "text/plain", {"WWW-Authenticate": challenge})
            return
        self._send(200, self.emu.snapshot_body, self.emu.snapshot_type)


# ------------------------------------------------------------------------------------------ discovery


def probe_match(emu: OnvifEmulator, relates_to: str, *, action: str = "ProbeMatches", xaddr: str = "") -> bytes:
    """A WS-Discovery ProbeMatches answer for ``emu`` (``action`` may be ipycam's ``ProbeMatch``).

    ``xaddr`` replaces the advertised device-service address (e.g. a camera the controller can reach).
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        '<env:Header>'
        f'<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>'
        f'<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>'
        '<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>'
        f'<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/{action}</wsa:Action>'
        '</env:Header><env:Body><d:ProbeMatches><d:ProbeMatch>'
        f'<wsa:EndpointReference><wsa:Address>{emu.endpoint}</wsa:Address></wsa:EndpointReference>'
        '<d:Types>dn:NetworkVideoTransmitter</d:Types>'
        '<d:Scopes>onvif://www.onvif.org/type/ptz onvif://www.onvif.org/name/EmuCam '
        'onvif://www.onvif.org/hardware/PTZ-Emu-2 onvif://www.onvif.org/location/khu-pho-1</d:Scopes>'
        f'<d:XAddrs>{xaddr or emu.device_url}</d:XAddrs>'
        '<d:MetadataVersion>1</d:MetadataVersion>'
        '</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>'
    ).encode()


def serve_discovery(emu: OnvifEmulator, stop: threading.Event, *, extra_replies: list[bytes] | None = None,
                    advertise: str = "") -> None:
    """Answers WS-Discovery probes on 239.255.255.250:3702 (only ever run inside a test namespace).

    ``extra_replies`` are sent before the real answer (garbage, for the client's robustness tests).
    """
    import re

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", 3702))
    mreq = struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton(emu.host))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.settimeout(0.5)
    try:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except TimeoutError:
                continue
            text = data.decode("utf-8", "replace")
            if "ProbeMatch" in text or not re.search(r"<(?:[\w.-]+:)?Probe[\s/>]", text):
                continue
            found = re.search(r"MessageID>\s*([^<\s]+)\s*<", text)
            relates = found.group(1) if found else f"urn:uuid:{uuid.uuid4()}"
            for junk in extra_replies or []:
                sock.sendto(junk, addr)
            sock.sendto(probe_match(emu, relates, xaddr=advertise), addr)
    finally:
        sock.close()


#: Answers a namespace test sends before the real one; the finder must skip each and keep the good one.
BAD_REPLIES: list[bytes] = [
    b"this is not xml at all",
    b'<?xml version="1.0"?><env:Envelope xmlns:env="' + SOAP12.encode() + b'"><env:Body>',  # cut short
    (b'<env:Envelope xmlns:env="' + SOAP12.encode() + b'" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">'
     b'<env:Body><d:ProbeMatches><d:ProbeMatch><d:XAddrs>ftp://10.9.9.9/x</d:XAddrs>'
     b'</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>'),  # no endpoint, no http address
    (b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
     b'<env:Envelope xmlns:env="' + SOAP12.encode() + b'"><env:Body>&b;</env:Body></env:Envelope>'),  # entities
]


def main(argv: list[str] | None = None) -> int:
    """Runs the emulator as a process (inside a test namespace) until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.onvif_emulator")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="Mat-khau-emu-7")
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--discovery", action="store_true")
    parser.add_argument("--bad-replies", action="store_true", help="send malformed answers before the real one")
    parser.add_argument("--advertise", default="", help="device-service URL to announce instead of this emulator's")
    parser.add_argument("--max-seconds", type=float, default=900, help="exit after this long whatever happens")
    args = parser.parse_args(argv)
    emu = OnvifEmulator(host=args.host, port=args.port, username=args.username, password=args.password)
    if args.endpoint:
        emu.endpoint = args.endpoint
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emu.start()
    threads = []
    if args.discovery:
        extra = BAD_REPLIES if args.bad_replies else None
        t = threading.Thread(target=serve_discovery, args=(emu, stop),
                             kwargs={"extra_replies": extra, "advertise": args.advertise}, daemon=True)
        t.start()
        threads.append(t)
    print(f"onvif emulator on {emu.base} endpoint {emu.endpoint} pid {os.getpid()}", flush=True)
    deadline = time.monotonic() + args.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    emu.stop()
    for t in threads:
        t.join(2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
