"""Wards as tenants, for the fleet: devices, zones, the console's devices page and dashboard, proof of play
and moving a device between wards — against the real controller under uvicorn, its Mosquitto (with the
password and ACL files the controller writes) and a real agent.

Ward A is the deployment's first ward (``ward``), ward B is added beside it under the city. Staff of A,
of B and of the city are made in the controller's own database, with bearer tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from controller.storage.models import FIRST_WARD, ROOT_UNIT, AuditEvent, Device, EnrolmentCode, Play, Zone
from controller.tools.local_stack import http_json, start_agent, write_agent_config
from tests.conftest import ControllerHandle
from tests.console_support import console_client
from tests.mqtt_tools import broker_login
from tests.ward_support import PASSWORD, StaffCity, seed_staff, ward_database

A, B = FIRST_WARD, "ward-b"


class City(StaffCity):
    """Ward-scoped staff of a running controller, and a look at one device's row."""

    def device(self, device_id: str) -> Device | None:
        with self.db.session() as session:
            device = session.get(Device, device_id)
            if device is not None:
                session.expunge(device)
            return device


#: Who is who: (role, unit) grants.
STAFF: dict[str, list[tuple[str, str]]] = {
    "tech_a": [("technician", A)],
    "tech_b": [("technician", B)],
    "officer_b": [("officer", B)],
    "admin_a": [("admin", A)],
    "tech_city": [("technician", ROOT_UNIT)],
    "tech_ab": [("technician", A), ("technician", B)],
    # sees A (as an officer) but is a technician only in B
    "mixed": [("officer", A), ("technician", B)],
}


@pytest.fixture
def city(controller: ControllerHandle) -> Iterator[City]:
    with ward_database(controller, B) as db:
        with db.session() as session:
            tokens, usernames = seed_staff(session, STAFF)
        yield City(controller, db, tokens, usernames)


def _register(city: City, who: str, device_id: str, zones: list[str], ward: str | None = None) -> tuple[int, Any]:
    body: dict[str, Any] = {"id": device_id, "zones": zones}
    if ward is not None:
        body["ward"] = ward
    return city.call("POST", "/api/v1/devices", who, body)


def test_devices_and_zones_stay_in_their_ward(city: City) -> None:
    # registering: into the only ward one acts in, into a named ward, never into one out of reach
    status, body = _register(city, "tech_a", "loa-a", ["khu-a"])
    assert status == 201 and body["device"]["ward"] == A, body
    status, body = _register(city, "tech_b", "loa-b", ["khu-b"])
    assert status == 201 and body["device"]["ward"] == B, body
    status, body = _register(city, "tech_city", "loa-c", [])
    assert status == 422 and "say which ward" in body["detail"], body  # city staff act in two wards
    status, body = _register(city, "tech_city", "loa-c", ["khu-c"], ward=B)
    assert status == 201 and body["device"]["ward"] == B, body
    status, body = _register(city, "tech_a", "loa-x", [], ward=B)
    assert status == 404 and body == {"detail": f"ward {B} not found"}, body
    status, body = _register(city, "tech_a", "loa-x", ["khu-b"])  # B's zone
    assert status == 404, body
    status, body = _register(city, "officer_b", "loa-x", [])
    assert status == 403, body
    assert city.device("loa-x") is None

    # lists: own ward only; the city sees both
    def ids(who: str, path: str) -> list[str]:
        status, rows = city.call("GET", path, who)
        assert status == 200, rows
        return [row["id"] for row in rows]

    assert ids("tech_a", "/api/v1/devices") == ["loa-a"]
    assert ids("tech_b", "/api/v1/devices") == ids("officer_b", "/api/v1/devices") == ["loa-b", "loa-c"]
    assert ids("tech_city", "/api/v1/devices") == ids("root", "/api/v1/devices") == ["loa-a", "loa-b", "loa-c"]
    assert ids("tech_a", "/api/v1/zones") == ["khu-a"]
    assert ids("officer_b", "/api/v1/zones") == ["khu-b", "khu-c"]
    assert ids("tech_city", "/api/v1/zones") == ["khu-a", "khu-b", "khu-c"]

    # every id-taking route, A's staff on B's device: the answer an unknown id gets, and nothing changes
    before = city.device("loa-b")
    assert before is not None
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/api/v1/devices/{}", None),
        ("PATCH", "/api/v1/devices/{}", {"name": "taken over", "zones": ["khu-a"]}),
        ("PATCH", "/api/v1/devices/{}", {"ward": A}),
        ("POST", "/api/v1/devices/{}/enrolment", {}),
        ("POST", "/api/v1/devices/{}/revoke", {}),
        ("POST", "/api/v1/devices/{}/bundle.zip", {"profile": "pi4-usb"}),
        ("POST", "/api/v1/devices/{}/ops/volume?wait_s=1", {"volume": 10}),
    ]
    for method, path, body in routes:
        unknown = city.call(method, path.format("loa-nope"), "tech_a", body)
        theirs = city.call(method, path.format("loa-b"), "tech_a", body)
        assert unknown[0] == theirs[0] == 404, (path, unknown, theirs)
        assert theirs[1] == {"detail": "no device 'loa-b'"}, theirs
        assert unknown[1] == {"detail": "no device 'loa-nope'"}, unknown
    after = city.device("loa-b")
    assert after is not None
    assert (after.name, after.zones, after.ward_id, after.token_hash, after.mqtt_password_hash, after.revoked_at) == \
        (before.name, before.zones, before.ward_id, before.token_hash, before.mqtt_password_hash, None)
    with city.db.session() as session:
        assert session.scalars(select(EnrolmentCode).where(EnrolmentCode.device_id == "loa-b")).all() == []

    # zones: another ward's zone reads as unknown; creating its id again is "taken", without saying whose
    assert city.call("GET", "/api/v1/zones/khu-b", "tech_a") == (404, {"detail": "no zone 'khu-b'"})
    assert city.call("GET", "/api/v1/zones/khu-nope", "tech_a") == (404, {"detail": "no zone 'khu-nope'"})
    status, body = city.call("PUT", "/api/v1/zones/khu-b", "admin_a", {"name": "mine now"})
    assert (status, body) == (409, {"detail": "zone id taken"})
    with city.db.session() as session:
        zone = session.get(Zone, "khu-b")
        assert zone is not None and zone.ward_id == B and zone.name == ""
    status, body = city.call("PUT", "/api/v1/zones/khu-a", "admin_a", {"name": "Khu phố A"})
    assert status == 200 and body["ward"] == A and body["agents"] == ["loa-a"], body
    status, body = city.call("PUT", "/api/v1/zones/khu-a2", "admin_a", {"name": "A2", "ward": B})
    assert status == 404, body
    status, body = city.call("PUT", "/api/v1/zones/khu-new", "root", {"name": "new"})
    assert status == 422, body  # the city's admin names the ward
    status, body = city.call("PUT", "/api/v1/zones/khu-new", "root", {"name": "new", "ward": B})
    assert status == 200 and body["ward"] == B, body
    status, body = city.call("PATCH", "/api/v1/devices/loa-b", "tech_b", {"zones": ["khu-b", "khu-new"]})
    assert status == 200 and body["zones"] == ["khu-b", "khu-new"], body
    status, body = city.call("PATCH", "/api/v1/devices/loa-a", "tech_a", {"zones": ["khu-new"]})
    assert status == 404 and body == {"detail": f"no zone 'khu-new' in ward {A}"}, body
    assert city.call("GET", "/api/v1/devices/loa-a", "root")[1]["zones"] == ["khu-a"]

    # wrong role in the ward: seen, not changed
    status, body = city.call("GET", "/api/v1/devices/loa-a", "mixed")
    assert status == 200 and body["ward"] == A, body
    for method, path, body in [("PATCH", "/api/v1/devices/loa-a", {"name": "x"}),
                               ("POST", "/api/v1/devices/loa-a/enrolment", {}),
                               ("POST", "/api/v1/devices/loa-a/revoke", {}),
                               ("POST", "/api/v1/devices/loa-a/ops/volume?wait_s=1", {"volume": 10})]:
        status, answer = city.call(method, path, "mixed", body)
        assert status == 403, (path, answer)
    status, body = city.call("PATCH", "/api/v1/devices/loa-b", "officer_b", {"name": "x"})
    assert status == 403, body
    device_a = city.device("loa-a")
    assert device_a is not None and device_a.name == "" and device_a.revoked_at is None

    # the audit trail puts each change in the device's ward
    with city.db.session() as session:
        units = {(row.action, row.subject): row.unit_id for row in session.scalars(select(AuditEvent))}
    assert units[("device.register", "loa-a")] == A and units[("device.register", "loa-b")] == B
    assert units[("zone.update", "khu-new")] == B and units[("device.update", "loa-b")] == B

    # the console: the devices page and the dashboard show one's own wards only
    with console_client(city.ctl, city.names["tech_a"], PASSWORD) as client:
        page = client.get("/console/devices").text
        assert "loa-a" in page and "loa-b" not in page and "loa-c" not in page
        assert client.get("/console/devices/loa-b").status_code == 404
        assert client.get("/console/devices/loa-nope").status_code == 404
        assert client.post("/console/devices/loa-b/revoke").status_code == 404
        fleet = client.get("/console/dashboard/fleet").text
        assert "loa-a" in fleet and "loa-b" not in fleet and "khu-b" not in fleet
        dashboard = client.get("/console/").text
        assert "loa-b" not in dashboard and "loa-c" not in dashboard
    assert city.device("loa-b") is not None and city.device("loa-b").revoked_at is None  # type: ignore[union-attr]
    with console_client(city.ctl, city.names["tech_city"], PASSWORD) as client:
        page = client.get("/console/devices").text
        assert all(d in page for d in ("loa-a", "loa-b", "loa-c"))
        assert 'name="ward"' in page  # the city's technician says which ward a new device goes to
        fleet = client.get("/console/dashboard/fleet").text
        assert "loa-a" in fleet and "loa-b" in fleet


def _tone(city: City, who: str, device_id: str) -> str:
    status, reply = city.call("POST", f"/api/v1/devices/{device_id}/ops/tone?wait_s=15", who,
                              {"frequency_hz": 440, "duration_ms": 200})
    assert status == 200 and reply["status"] == "ok", reply
    return str(reply["command_id"])


def _play(city: City, play_id: str) -> Play | None:
    with city.db.session() as session:
        play = session.scalar(select(Play).where(Play.play_id == play_id))
        if play is not None:
            session.expunge(play)
        return play


@contextmanager
def _agent_online(city: City, tmp_path: Path, identity: dict[str, Any], zones: list[str],
                  log: str) -> Iterator[None]:
    """The agent of ``identity`` running and seen online for the body of the block; stopped after it."""
    files = write_agent_config(tmp_path / "agent", identity, zones)
    agent = start_agent(files, tmp_path / log)
    agent_id = identity["device"]["id"]
    try:
        city.ctl.wait_for(lambda: city.ctl.device(agent_id)["online"] or not agent.alive, 30, f"{agent_id} online")
        assert agent.alive, agent.log_text()
        yield
    finally:
        agent.stop()


def _tone_played(city: City, who: str, device_id: str) -> str:
    """A test tone sent by ``who``, once its proof of play is stored; its command id."""
    command = _tone(city, who, device_id)
    city.ctl.wait_for(lambda: _play(city, command), 15, "the tone's proof of play")
    return command


def test_moving_a_device_rotates_its_credentials(tmp_path: Path, city: City) -> None:
    ctl = city.ctl
    status, registered = _register(city, "tech_a", "loa-m", ["khu-a"])
    assert status == 201, registered
    old_password = registered["mqtt_password"]
    with _agent_online(city, tmp_path, registered, ["khu-a"], "agent.log"):
        # proof of play carries the device's ward at the time it played
        first = _tone_played(city, "tech_a", "loa-m")
        assert _play(city, first).ward_id == A  # type: ignore[union-attr]

        # a technician of A alone cannot hand it to B (B is out of reach), nor can B's take it
        assert city.call("PATCH", "/api/v1/devices/loa-m", "tech_a", {"ward": B}) == \
            (404, {"detail": f"ward {B} not found"})
        assert city.call("PATCH", "/api/v1/devices/loa-m", "tech_b", {"ward": B})[0] == 404
        assert city.call("PATCH", "/api/v1/devices/loa-m", "mixed", {"ward": B})[0] == 403
        before = city.device("loa-m")
        assert before is not None and before.ward_id == A and before.zones == ["khu-a"]

        status, moved = city.call("PATCH", "/api/v1/devices/loa-m", "tech_ab", {"ward": B})
        assert status == 200 and moved["ward"] == B and moved["zones"] == [] and not moved["online"], moved
        after = city.device("loa-m")
        assert after is not None and after.token_hash != before.token_hash
        assert after.mqtt_password_hash != before.mqtt_password_hash
        # the broker reloads once the move commits: the old password stops working, the agent is dropped
        ctl.wait_for(lambda: broker_login(ctl.mqtt_port, "loa-m", old_password) != 0, 20, "old password refused")
        assert broker_login(ctl.mqtt_port, "loa-m", old_password) != 0
        status, _ = http_json("GET", ctl.api + "/media/" + "0" * 64, registered["token"])
        assert status == 401  # its old device token is gone too
        with city.db.session() as session:
            moves = session.scalars(select(AuditEvent).where(AuditEvent.action == "device.move")).all()
            assert sorted(m.unit_id for m in moves) == [A, B]
            assert all(m.detail["from"] == A and m.detail["to"] == B for m in moves)
        assert city.call("GET", "/api/v1/devices/loa-m", "tech_a")[0] == 404
        assert city.call("GET", "/api/v1/devices/loa-m", "tech_b")[0] == 200
        # A's zones are not B's
        assert city.call("PATCH", "/api/v1/devices/loa-m", "tech_b", {"zones": ["khu-a"]})[0] == 404

    # B's technician enrols it again: new credentials, and its plays are now B's
    status, issued = city.call("POST", "/api/v1/devices/loa-m/enrolment", "tech_b", {})
    assert status == 201, issued
    status, identity = http_json("POST", ctl.api + "/api/v1/enrol", None, {"code": issued["code"]})
    assert status == 200, identity
    fresh = {**registered, "token": identity["token"], "mqtt_password": identity["mqtt"]["password"]}
    with _agent_online(city, tmp_path, fresh, [], "agent-again.log"):
        second = _tone_played(city, "tech_b", "loa-m")
        assert _play(city, second).ward_id == B  # type: ignore[union-attr]
        assert _play(city, first).ward_id == A  # type: ignore[union-attr]
