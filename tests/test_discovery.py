"""WS-Discovery protocol (devices/camera/discovery.py): Probe building and robust ProbeMatch reading."""

from __future__ import annotations

import re

import pytest

from devices.camera.discovery import (
    MAX_REPLY_BYTES,
    ProbeResult,
    SkippedReply,
    build_probe,
    new_message_id,
    parse_probe_matches,
    scope_value,
)
from devices.protocol import CameraDiscovered, DiscoveredCamera, parse_model
from tests.onvif_emulator import BAD_REPLIES, OnvifEmulator, probe_match

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


def _emu(port: int = 8080) -> OnvifEmulator:
    return OnvifEmulator(host="10.20.0.2", port=port, endpoint="urn:uuid:11111111-2222-3333-4444-555555555555")


def test_probe_is_what_cameras_recognise() -> None:
    mid = new_message_id()
    probe = build_probe(mid).decode()
    assert f"<a:MessageID>{mid}</a:MessageID>" in probe
    assert "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe<" in probe
    assert "dn:NetworkVideoTransmitter" in probe
    # ipycam's own test for "is this a probe" (its discovery server): the action URI or a <Probe> element.
    assert "ProbeMatch" not in probe and re.search(r"<(?:[\w.-]+:)?Probe[\s/>]", probe)
    with pytest.raises(ValueError):
        build_probe("not-a-urn")
    with pytest.raises(ValueError):
        build_probe(mid, types="<evil/>")


def test_probe_matches_standard_action() -> None:
    mid = new_message_id()
    cams = parse_probe_matches(probe_match(_emu(), mid), "10.20.0.2", mid)
    assert len(cams) == 1
    cam = cams[0]
    assert cam.endpoint == "urn:uuid:11111111-2222-3333-4444-555555555555"
    assert cam.xaddrs == ["http://10.20.0.2:8080/onvif/device_service"]
    assert cam.types == ["dn:NetworkVideoTransmitter"]
    assert cam.host == "10.20.0.2"
    assert scope_value(cam, "name") == "EmuCam" and scope_value(cam, "hardware") == "PTZ-Emu-2"
    assert scope_value(cam, "location") == "khu-pho-1" and scope_value(cam, "nothing") is None


def test_ipycam_singular_action_accepted() -> None:
    """ipycam answers with …/ProbeMatch (singular); its own template is the sample."""
    pytest.importorskip("ipycam")
    from ipycam.config import CameraConfig
    from ipycam.onvif import ONVIFService
    from ipycam.ptz import PTZController

    config = CameraConfig(local_ip="10.20.0.3", onvif_port=8080, name="Cong UBND")
    service = ONVIFService(config, PTZController(output_width=640, output_height=360))
    mid = new_message_id()
    reply = service.create_probe_match(mid).encode()
    assert b"discovery/ProbeMatch<" in reply
    cams = parse_probe_matches(reply, "10.20.0.3", mid)
    assert cams[0].xaddrs == ["http://10.20.0.3:8080/onvif/device_service"]
    assert cams[0].endpoint.startswith("urn:uuid:")


def test_singular_action_from_emulator_and_missing_relates_to() -> None:
    emu = _emu()
    reply = probe_match(emu, "urn:uuid:x", action="ProbeMatch").replace(b"<wsa:RelatesTo>urn:uuid:x</wsa:RelatesTo>",
                                                                        b"")
    assert parse_probe_matches(reply, "10.20.0.2", new_message_id())[0].endpoint == emu.endpoint


@pytest.mark.parametrize(("reply", "reason"), [
    (BAD_REPLIES[0], "bad_xml"),
    (BAD_REPLIES[1], "bad_xml"),
    (BAD_REPLIES[2], "no_usable_match"),
    (BAD_REPLIES[3], "dtd_refused"),
    (b"<a/>", "not_soap"),
    ("<?xml version='1.0' encoding='UTF-16'?><x/>".encode("utf-16"), "not_utf8"),
    (b"x" * (MAX_REPLY_BYTES + 1), "too_large"),
    (f'<e:Envelope xmlns:e="{SOAP12}"><e:Header/></e:Envelope>'.encode(), "no_body"),
    (f'<e:Envelope xmlns:e="{SOAP12}"><e:Body><Hello/></e:Body></e:Envelope>'.encode(), "no_probe_matches"),
])
def test_bad_replies_are_skipped_with_a_reason(reply: bytes, reason: str) -> None:
    with pytest.raises(SkippedReply) as err:
        parse_probe_matches(reply, "10.20.0.9", new_message_id())
    assert err.value.reason == reason


def test_other_actions_and_other_probes_are_skipped() -> None:
    emu, mid = _emu(), new_message_id()
    hello = probe_match(emu, mid).replace(b"discovery/ProbeMatches<", b"discovery/Hello<")
    with pytest.raises(SkippedReply) as err:
        parse_probe_matches(hello, "10.20.0.2", mid)
    assert err.value.reason == "not_probe_match"
    with pytest.raises(SkippedReply) as err:
        parse_probe_matches(probe_match(emu, new_message_id()), "10.20.0.2", mid)
    assert err.value.reason == "unrelated"
    with pytest.raises(SkippedReply) as err:
        parse_probe_matches(probe_match(emu, mid), "not a host!", mid)
    assert err.value.reason == "bad_source"


def test_only_http_xaddrs_survive_and_lists_are_bounded() -> None:
    emu, mid = _emu(), new_message_id()
    many_scopes = " ".join(f"onvif://www.onvif.org/x/{i}" for i in range(100)) + " " + "s" * 500
    xaddrs = ("ftp://10.20.0.2/x javascript:alert(1) http://10.20.0.2:8080/onvif/device_service "
              "https://10.20.0.2/onvif/device_service http://[::1 http://10.20.0.2:81/a http://10.20.0.2:82/b "
              "http://10.20.0.2:83/c")
    reply = (probe_match(emu, mid)
             .replace(b"http://10.20.0.2:8080/onvif/device_service</d:XAddrs>", xaddrs.encode() + b"</d:XAddrs>")
             .replace(b"onvif://www.onvif.org/type/ptz", many_scopes.encode()))
    cam = parse_probe_matches(reply, "10.20.0.2", mid)[0]
    assert cam.xaddrs == ["http://10.20.0.2:8080/onvif/device_service", "https://10.20.0.2/onvif/device_service",
                          "http://10.20.0.2:81/a", "http://10.20.0.2:82/b"]
    assert len(cam.scopes) == 16 and all(len(s) <= 200 for s in cam.scopes)


def test_result_dedupes_and_counts_skips() -> None:
    emu, mid = _emu(), new_message_id()
    result = ProbeResult()
    result.add_reply(probe_match(emu, mid), "10.20.0.2", mid)
    result.add_reply(probe_match(emu, mid), "10.20.0.2", mid)  # the second copy of a repeated probe
    for junk in BAD_REPLIES:
        result.add_reply(junk, "10.20.0.7", mid)
    assert list(result.cameras) == [emu.endpoint]
    assert len(result.skipped) == len(BAD_REPLIES)
    assert all(s.startswith("10.20.0.7: ") for s in result.skipped)


def test_event_model_bounds() -> None:
    cam = DiscoveredCamera(endpoint="urn:uuid:1", xaddrs=["http://10.0.0.2/onvif/device_service"], host="10.0.0.2")
    event = parse_model(CameraDiscovered, {"cameras": [cam.model_dump()], "ref": None})
    assert event.cameras == [cam]
    from devices.protocol import ProtocolError

    for bad in ({"endpoint": "", "xaddrs": ["http://a/b/c/d"], "host": "10.0.0.2"},
                {"endpoint": "urn:x", "xaddrs": ["rtsp://10.0.0.2/x"], "host": "10.0.0.2"},
                {"endpoint": "urn:x", "xaddrs": ["http://10.0.0.2/x"], "host": "10.0.0.2/evil"},
                {"endpoint": "urn:x", "xaddrs": ["http://10.0.0.2/x"] * 5, "host": "10.0.0.2"}):
        with pytest.raises(ProtocolError):
            parse_model(CameraDiscovered, {"cameras": [bad]})
    with pytest.raises(ProtocolError):
        parse_model(CameraDiscovered, {"cameras": [cam.model_dump()] * 33})


def test_agent_camera_finder_stays_light() -> None:
    """The Pi side of cameras is WS-Discovery only: no ONVIF/SOAP/OpenCV stack comes with the agent."""
    import subprocess
    import sys

    code = ("import sys, edge_agent.agent, edge_agent.camera_finder, devices.camera.discovery; "
            "bad = [m for m in ('onvif', 'zeep', 'lxml', 'aiohttp', 'cv2', 'numpy', 'controller') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_a_big_round_is_split_into_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast layer beside the namespace tests: the finder's chunking, with the probe's result given."""
    from pydantic import BaseModel

    import edge_agent.camera_finder as finder_mod
    from devices.protocol import make_event
    from edge_agent.config import CamerasSection

    result = ProbeResult()
    for i in range(70):
        cam = DiscoveredCamera(endpoint=f"urn:uuid:{i:08d}-0000-0000-0000-000000000000",
                               xaddrs=[f"http://10.0.{i // 200}.{i % 200 + 2}/onvif/device_service"],
                               host=f"10.0.{i // 200}.{i % 200 + 2}")
        result.cameras[cam.endpoint] = cam
    result.skipped.append("10.0.0.99: bad_xml")
    monkeypatch.setattr(finder_mod, "probe_lan", lambda *a, **k: result)
    sent: list[BaseModel] = []

    async def emit(kind: str, data: BaseModel) -> None:
        make_event("loa-01", kind, data)  # each must make a valid event
        sent.append(data)

    finder = finder_mod.CameraFinder(CamerasSection(), emit)
    try:
        await finder.discover(1000, "lenh-1")
    finally:
        finder.close()
    parts = [p for p in sent if isinstance(p, CameraDiscovered)]
    assert [(p.part, p.parts, len(p.cameras), p.ref, p.skipped) for p in parts] == [
        (1, 3, 32, "lenh-1", 1), (2, 3, 32, "lenh-1", 1), (3, 3, 6, "lenh-1", 1)]
    assert len({c.endpoint for p in parts for c in p.cameras}) == 70


def test_cameras_config_section() -> None:
    from pydantic import ValidationError

    from edge_agent.config import CamerasSection

    assert CamerasSection().discover_interval_s is None
    assert CamerasSection(interface="192.168.1.20", discover_interval_s=3600).interface == "192.168.1.20"
    for bad in ({"interface": "999.1.1.1"}, {"discover_interval_s": 5}, {"ttl": 0}, {"probe_timeout_ms": 50},
                {"intervall": 60}):
        with pytest.raises(ValidationError):
            CamerasSection.model_validate(bad)
