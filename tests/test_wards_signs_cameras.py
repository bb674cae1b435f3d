"""Wards as tenants for LED signs and cameras: a controller under uvicorn, Mosquitto and a real RTSP camera
stream; two wards (the first ward and ``ward-b``) with staff of each, of both, and of the city.

A ward's staff see only their ward's boards, sign content, sign items, cameras, camera events and
discoveries; every id of the other ward answers exactly as an unknown id and changes nothing; a sign
item reaches only its own ward's boards, so each agent's sign playlist holds only its ward's items.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from controller.storage.models import (
    FIRST_WARD,
    ROOT_UNIT,
    AgentSignPlaylist,
    AuditEvent,
    Camera,
    CameraDiscovery,
    CameraEvent,
    Device,
    SignContent,
    SignItem,
)
from tests.conftest import Broker, ControllerHandle
from tests.console_support import console_client
from tests.rtsp_server import RtspServer
from tests.test_camera_api import CAMERA_ENV, PASSWORD, get_bytes, rtsp  # noqa: F401 - the RTSP fixture
from tests.test_camera_gateway import _gst_available
from tests.ward_support import PASSWORD as STAFF_PASSWORD
from tests.ward_support import StaffCity, add_ward, database, seed_staff

pytestmark = pytest.mark.skipif(_gst_available() is not None, reason=str(_gst_available()))

A, B = FIRST_WARD, "ward-b"


City = StaffCity


#: Who works where: (role, unit) grants by name.
STAFF: dict[str, list[tuple[str, str]]] = {
    "officer_a": [("officer", A)], "officer_b": [("officer", B)], "approver_a": [("approver", A)],
    "tech_a": [("technician", A)], "tech_b": [("technician", B)],
    "security_a": [("security", A)], "security_b": [("security", B)],
    "city_officer": [("officer", ROOT_UNIT)], "city_security": [("security", ROOT_UNIT)],
    "officer_ab": [("officer", A), ("officer", B)],
    # Sees both wards, but is a technician only in A and a guard only in B.
    "tech_a_guard_b": [("technician", A), ("security", B)],
}


@pytest.fixture
def city(controller_factory: Any, broker: Broker) -> Iterator[City]:
    ctl: ControllerHandle = controller_factory(broker.port, env=CAMERA_ENV)
    ctl.wait_for(lambda: ctl.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    db = database(ctl)
    with db.session() as session:
        add_ward(session, B)
        for agent, ward, zone in (("loa-a", A, "khu-a"), ("loa-b", B, "khu-b")):
            session.add(Device(id=agent, ward_id=ward, zones=[zone], token_hash=agent * 8))
        tokens, names = seed_staff(session, STAFF)
    try:
        yield City(ctl, db, tokens, names)
    finally:
        db.engine.dispose()


def _text_content(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "pages": [{"kind": "text", "lines": [title]}], **extra}


def _item(content_id: str, targets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"content_id": content_id, "targets": targets, "start": "2026-01-01T00:00:00", "rrule": "FREQ=DAILY",
            "duration_ms": 86_400_000, **extra}


def test_signs_belong_to_their_ward(city: City) -> None:
    # Boards belong to their agent's ward: a technician of A cannot name B's agent (worded as an unknown one).
    status, board_a = city.call("POST", "/api/v1/signs", "tech_a", {"agent_id": "loa-a", "name": "bang",
                                                                     "width": 96, "height": 16})
    assert status == 201 and board_a["ward"] == A, board_a
    status, board_b = city.call("POST", "/api/v1/signs", "tech_b", {"agent_id": "loa-b", "name": "bang",
                                                                     "width": 96, "height": 16})
    assert status == 201 and board_b["ward"] == B, board_b
    other = city.call("POST", "/api/v1/signs", "tech_a", {"agent_id": "loa-b", "name": "x", "width": 96,
                                                           "height": 16})
    unknown = city.call("POST", "/api/v1/signs", "tech_a", {"agent_id": "nope", "name": "x", "width": 96,
                                                             "height": 16})
    assert other[0] == unknown[0] == 422
    assert json.dumps(other[1]).replace("loa-b", "?") == json.dumps(unknown[1]).replace("nope", "?")

    # Content: a ward's officer composes in their ward without naming it.
    status, content_a = city.call("POST", "/api/v1/sign-contents", "officer_a", _text_content("Họp tổ dân phố A"))
    assert status == 201 and content_a["ward"] == A, content_a
    status, content_b = city.call("POST", "/api/v1/sign-contents", "officer_b", _text_content("Tiêm chủng B"))
    assert status == 201 and content_b["ward"] == B, content_b
    # Ambiguous (staff of two wards, no ward) → 422; a ward they cannot see → 404; named → that ward.
    status, body = city.call("POST", "/api/v1/sign-contents", "officer_ab", _text_content("?"))
    assert status == 422 and "ward" in body["detail"], body
    status, body = city.call("POST", "/api/v1/sign-contents", "officer_a", _text_content("?", ward=B))
    assert status == 404, body
    status, body = city.call("POST", "/api/v1/sign-contents", "officer_ab", _text_content("AB", ward=B))
    assert status == 201 and body["ward"] == B, body
    status, body = city.call("POST", "/api/v1/sign-contents", "officer_a", _text_content("?", ward="Bad Ward!"))
    assert status == 422, body

    # Lists show only the caller's wards; the city sees both.
    assert [c["id"] for c in city.call("GET", "/api/v1/sign-contents", "officer_a")[1]] == [content_a["id"]]
    assert {c["ward"] for c in city.call("GET", "/api/v1/sign-contents", "city_officer")[1]} == {A, B}
    assert [s["id"] for s in city.call("GET", "/api/v1/signs", "officer_a")[1]] == ["loa-a.bang"]
    assert [s["id"] for s in city.call("GET", "/api/v1/signs", "city_officer")[1]] == ["loa-a.bang", "loa-b.bang"]
    assert [n["sign"]["id"] for n in city.call("GET", "/api/v1/signs/now", "officer_b")[1]] == ["loa-b.bang"]

    # Another ward's ids answer as unknown ones.
    for path in (f"/api/v1/sign-contents/{content_b['id']}", f"/api/v1/sign-contents/{content_b['id']}/preview.png"
                 "?size=96x16", f"/api/v1/signs/loa-b.bang/preview.png?content_id={content_a['id']}"):
        status, body = city.call("GET", path, "officer_a")
        missing = city.call("GET", path.replace(content_b["id"], "0" * 32).replace("loa-b.bang", "loa-x.bang"),
                            "officer_a")
        assert status == missing[0] == 404, (path, body)
    status, body = city.call("PUT", f"/api/v1/sign-contents/{content_b['id']}", "officer_a", _text_content("hijack"))
    assert status == 404 and body["detail"] == f"no sign content {content_b['id']!r}", body
    # A's content is not previewed on B's board even by someone who sees both.
    assert city.call("GET", f"/api/v1/signs/loa-b.bang/preview.png?content_id={content_a['id']}",
                     "city_officer")[0] == 404

    # Items: only boards, agents, zones and content of the item's own ward.
    for targets in ({"signs": ["loa-b.bang"]}, {"agents": ["loa-b"]}, {"zones": ["khu-b"]}):
        status, body = city.call("POST", "/api/v1/sign-items", "officer_a", _item(content_a["id"], targets))
        assert status == 422 and "unknown" in json.dumps(body), (targets, body)
    status, body = city.call("POST", "/api/v1/sign-items", "officer_a", _item(content_b["id"], {"all": True}))
    assert status == 422 and "no sign content" in json.dumps(body), body
    status, item_a = city.call("POST", "/api/v1/sign-items", "officer_a", _item(content_a["id"], {"all": True}))
    assert status == 201 and item_a["ward"] == A, item_a
    status, item_b = city.call("POST", "/api/v1/sign-items", "officer_b", _item(content_b["id"], {"all": True}))
    assert status == 201 and item_b["ward"] == B, item_b
    assert [i["id"] for i in city.call("GET", "/api/v1/sign-items", "officer_a")[1]] == [item_a["id"]]
    assert {i["id"] for i in city.call("GET", "/api/v1/sign-items", "city_officer")[1]} == {item_a["id"],
                                                                                            item_b["id"]}

    # Cancelling, approving or rejecting another ward's item: 404, nothing changed.
    status, body = city.call("DELETE", f"/api/v1/sign-items/{item_b['id']}", "officer_a")
    assert status == 404 and body["detail"] == f"no sign item {item_b['id']!r}", body
    for verb in ("approve", "reject"):
        status, body = city.call("POST", f"/api/v1/sign-items/{item_b['id']}/{verb}", "approver_a", {})
        assert status == 404 and body["detail"] == f"no sign item {item_b['id']!r}", body
    with city.db.session() as session:
        row = session.get(SignItem, item_b["id"])
        assert row is not None and row.status == "active" and row.revision == 0
        content = session.get(SignContent, content_b["id"])
        assert content is not None and content.title == "Tiêm chủng B"

    # "all" is every board of the item's ward: each agent's playlist holds only its own ward's item.
    def playlists() -> dict[str, set[str]] | None:
        with city.db.session() as session:
            rows = {r.agent_id: r.payload for r in session.scalars(select(AgentSignPlaylist))}
        found = {agent: {e["item_id"] for e in json.loads(payload)["data"]["entries"]}
                 for agent, payload in rows.items()}
        return found if found.get("loa-a") and found.get("loa-b") else None
    found = city.ctl.wait_for(playlists, 30, "both agents' sign playlists")
    assert found == {"loa-a": {item_a["id"]}, "loa-b": {item_b["id"]}}, found

    # The audit rows carry the ward each change concerns.
    with city.db.session() as session:
        units = {(e.action, e.subject): e.unit_id for e in session.scalars(select(AuditEvent))}
    assert units[("sign_item.create", item_b["id"])] == B and units[("sign_item.create", item_a["id"])] == A
    assert units[("sign.attach", "loa-b.bang")] == B

    # The console's signs page shows only the user's ward.
    with console_client(city.ctl, city.names["officer_a"], STAFF_PASSWORD) as client:
        page = client.get("/console/signs").text
        assert "Họp tổ dân phố A" in page and "Tiêm chủng B" not in page and "loa-b.bang" not in page
        assert client.post(f"/console/signs/items/{item_b['id']}/approve").status_code == 403  # not an approver
        assert client.delete(f"/console/signs/items/{item_b['id']}").status_code == 404
        assigned = client.post("/console/signs/items", data={"content_id": content_b["id"], "target_all": "1",
                                                             "duration_min": "30"})
        assert assigned.status_code == 422
    # Staff of two wards choose the ward of what they compose.
    with console_client(city.ctl, city.names["officer_ab"], STAFF_PASSWORD) as client:
        assert 'id="sign-ward"' in client.get("/console/signs").text
        composed = client.post("/console/signs/compose", data={"title": "Chọn phường", "lines": "Chọn phường",
                                                               "mode": "static", "colour": "amber", "align": "center",
                                                               "dwell_s": "8", "size": "96x16", "ward": B})
        assert composed.status_code == 200, composed.text[:2000]
    with city.db.session() as session:
        assert session.scalar(select(SignItem.id).where(SignItem.content_id == content_b["id"],
                                                        SignItem.id != item_b["id"])) is None
        assert session.scalar(select(SignContent.ward_id).where(SignContent.title == "Chọn phường")) == B


def _register(city: City, who: str, camera_id: str, agent: str | None, stream: RtspServer,
              **extra: Any) -> tuple[int, Any]:
    body = {"id": camera_id, "name": camera_id, "agent_id": agent, "host": "127.0.0.1", "onvif": False,
            "stream_uri": stream.url, "username": "admin", "password": PASSWORD, **extra}
    return city.call("POST", "/api/v1/cameras", who, body)


def test_cameras_belong_to_their_ward(city: City, rtsp: RtspServer) -> None:  # noqa: F811 - the fixture
    status, cam_a = _register(city, "tech_a", "cam-a", "loa-a", rtsp)
    assert status == 201 and cam_a["ward"] == A, cam_a
    status, cam_b = _register(city, "tech_b", "cam-b", "loa-b", rtsp)
    assert status == 201 and cam_b["ward"] == B, cam_b
    # Another ward's agent is as unknown as none; a ward they cannot see → 404; ambiguous → 422.
    other, unknown = (_register(city, "tech_a", "cam-x", agent, rtsp) for agent in ("loa-b", "nope"))
    assert other[0] == unknown[0] == 404 and other[1]["detail"] == "no agent 'loa-b'", other
    assert _register(city, "tech_a", "cam-x", None, rtsp, ward=B)[0] == 404
    assert _register(city, "tech_a_guard_b", "cam-x", None, rtsp, ward=B)[0] == 403
    with city.db.session() as session:
        assert session.get(Camera, "cam-x") is None

    # Lists show only the caller's wards; the city sees both.
    assert [c["id"] for c in city.call("GET", "/api/v1/cameras", "security_a")[1]] == ["cam-a"]
    assert [c["id"] for c in city.call("GET", "/api/v1/cameras", "city_security")[1]] == ["cam-a", "cam-b"]

    # Every id-taking camera route, by ward A's staff on B's camera: 404 worded as an unknown camera.
    calls: list[tuple[str, str, str, Any]] = [
        ("GET", "/api/v1/cameras/{id}", "security_a", None),
        ("GET", "/api/v1/cameras/{id}/status", "security_a", None),
        ("PATCH", "/api/v1/cameras/{id}", "tech_a", {"name": "hijacked"}),
        ("DELETE", "/api/v1/cameras/{id}", "tech_a", None),
        ("PUT", "/api/v1/cameras/{id}/motion", "security_a", {"enabled": True}),
        ("POST", "/api/v1/cameras/{id}/ptz/move", "security_a", {"pan": 0.5}),
        ("POST", "/api/v1/cameras/{id}/ptz/stop", "security_a", None),
        ("GET", "/api/v1/cameras/{id}/ptz/presets", "security_a", None),
        ("POST", "/api/v1/cameras/{id}/ptz/presets", "security_a", {"name": "gate"}),
        ("POST", "/api/v1/cameras/{id}/ptz/presets/p1/goto", "security_a", None),
    ]
    for method, path, who, body in calls:
        status, answer = city.call(method, path.format(id="cam-b"), who, body)
        unknown_status, unknown_answer = city.call(method, path.format(id="cam-zz"), who, body)
        assert status == unknown_status == 404, (method, path, answer)
        assert answer["detail"].replace("cam-b", "?") == unknown_answer["detail"].replace("cam-zz", "?")
    for path in ("/api/v1/cameras/cam-b/live.mjpeg", "/api/v1/cameras/cam-b/snapshot.jpg"):
        status, data, _ = get_bytes(city.ctl, path, city.tokens["security_a"])
        assert status == 404 and json.loads(data)["detail"] == "no camera 'cam-b'", data
    with city.db.session() as session:
        row = session.get(Camera, "cam-b")
        assert row is not None and row.name == "cam-b" and not row.motion.get("enabled")
        views = session.scalars(select(AuditEvent).where(AuditEvent.action == "camera.view")).all()
        assert views == []

    # Visible, but without the role in that ward: 403, nothing changed.
    assert city.call("DELETE", "/api/v1/cameras/cam-b", "tech_a_guard_b")[0] == 403
    assert city.call("PATCH", "/api/v1/cameras/cam-b", "tech_a_guard_b", {"name": "x"})[0] == 403
    status, data, _ = get_bytes(city.ctl, "/api/v1/cameras/cam-a/snapshot.jpg", city.tokens["tech_a_guard_b"])
    assert status == 403, data
    with city.db.session() as session:
        row = session.get(Camera, "cam-b")
        assert row is not None and row.name == "cam-b"

    # A guard of B watches B's camera live; the view is audited under B.
    host, port = city.ctl.api.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/api/v1/cameras/cam-b/live.mjpeg",
                     headers={"Authorization": f"Bearer {city.tokens['security_b']}"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.readline().strip() in (b"", b"--frame")
    finally:
        conn.close()
    with city.db.session() as session:
        assert session.scalar(select(AuditEvent.unit_id).where(AuditEvent.action == "camera.view")) == B

    # Events and discoveries: each ward sees its own.
    with city.db.session() as session:
        for camera, ward in (("cam-a", A), ("cam-b", B)):
            session.add(CameraEvent(id=f"ev-{camera}", ward_id=ward, camera_id=camera, type="camera.fault",
                                    ts_ms=1, snapshot=f"{camera}/x.jpg", detail={}))
        for agent, ward in (("loa-a", A), ("loa-b", B)):
            session.add(CameraDiscovery(ward_id=ward, agent_id=agent, endpoint=f"urn:uuid:{agent}",
                                        host="127.0.0.1", xaddrs=["http://127.0.0.1:9/onvif/device_service"]))
    events = city.call("GET", "/api/v1/camera-events", "security_a")[1]
    assert [(e["camera_id"], e["ward"]) for e in events] == [("cam-a", A)]
    assert len(city.call("GET", "/api/v1/camera-events", "city_security")[1]) == 2
    status, data, _ = get_bytes(city.ctl, "/api/v1/camera-events/ev-cam-b/snapshot.jpg", city.tokens["security_a"])
    assert status == 404 and b"ev-cam-b" in data
    found = city.call("GET", "/api/v1/camera-discoveries", "tech_a")[1]
    assert [(d["agent_id"], d["ward"]) for d in found] == [("loa-a", A)]
    discovery_b = city.call("GET", "/api/v1/camera-discoveries", "tech_b")[1][0]["id"]
    status, body = city.call("POST", f"/api/v1/camera-discoveries/{discovery_b}/register", "tech_a",
                             {"id": "cam-y", "username": "admin", "password": PASSWORD})
    assert status == 404 and body["detail"] == f"no discovery {discovery_b}", body
    status, body = city.call("POST", "/api/v1/cameras/discover", "tech_a", {"agent_id": "loa-b"})
    assert status == 404 and body["detail"] == "no agent 'loa-b'", body

    # The console: the grid shows only the guard's ward, and B's camera view is not found.
    with console_client(city.ctl, city.names["security_a"], STAFF_PASSWORD) as client:
        grid = client.get("/console/cameras")
        assert grid.status_code == 200 and "cam-a" in grid.text and "cam-b" not in grid.text
        for path in ("/console/cameras/cam-b", "/console/cameras/cam-b/status", "/console/cameras/cam-b/presets"):
            fragment = client.get(path)
            # The view and status are 404; the presets fragment says the camera is not there.
            assert fragment.status_code == 404 or "no camera &#39;cam-b&#39;" in fragment.text, path
        assert client.post("/console/cameras/cam-b/motion", data={"enabled": "on"}).status_code == 404
        assert "ev-cam-b" not in client.get("/console/camera-events").text
    with city.db.session() as session:
        row = session.get(Camera, "cam-b")
        assert row is not None and not row.motion.get("enabled")
