"""The schedule across wards, against the real controller (and, for the windows, the real broker and agents).

Two wards A and B under the city: each ward's staff see and touch only their ward's items (another ward's
item answers exactly as an unknown id, and nothing changes); the city's staff see both; the roles needed are
the ones held in the item's own ward; an item's targets and its conflicts are its ward's alone; and each
agent's signed schedule window carries only its own ward's items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from controller.storage.models import AuditEvent, ScheduleItem
from controller.tools.local_stack import http_json, start_agent, write_agent_config
from tests.conftest import Broker, ControllerHandle, RunningAgent
from tests.console_support import console_client
from tests.ward_support import PASSWORD, StaffCity, add_ward, database, seed_staff, window_items

A, B = "ward-a", "ward-b"
SITE = ZoneInfo("Asia/Ho_Chi_Minh")


def at(seconds: float) -> str:
    """An aware ISO time ``seconds`` from now."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def item_body(targets: dict[str, Any], start: str, **over: Any) -> dict[str, Any]:
    return {"title": "Bản tin", "content": [{"kind": "tts", "text": "Bản tin của phường."}], "targets": targets,
            "start": start, **over}


class City(StaffCity):
    """Ward-scoped staff of a running controller, and a look at one schedule item's row."""

    def row(self, item_id: str) -> tuple[str, int, str]:
        with self.db.session() as session:
            row = session.get(ScheduleItem, item_id)
            assert row is not None
            return row.status, row.revision, row.title


STAFF: dict[str, list[tuple[str, str]]] = {
    "officer_a": [("officer", A)],
    "approver_a": [("approver", A)],
    "officer_b": [("officer", B)],
    "city_officer": [("officer", "city")],
    "city_approver": [("approver", "city")],
    "officer_ab": [("officer", A), ("officer", B)],
    # Acts somewhere, but in ward A only as a technician (changing A's items needs officer there).
    "officer_b_tech_a": [("officer", B), ("technician", A)],
    # Approves in B, writes in A: approving A's items needs approver in A.
    "approver_b_officer_a": [("approver", B), ("officer", A)],
}


def seed(ctl: ControllerHandle, agents: dict[str, tuple[str, list[str]]]) -> tuple[City, dict[str, Any]]:
    """Wards A and B, the staff above, and the given agents (id → (ward, zones)) registered into their wards
    through the API as the first admin (who holds every role on the city); returns the registrations too."""
    db = database(ctl)
    with db.session() as session:
        add_ward(session, A)
        add_ward(session, B)
        tokens, names = seed_staff(session, STAFF)
    registered: dict[str, Any] = {}
    for agent_id, (ward, zones) in agents.items():
        status, body = http_json("POST", f"{ctl.api}/api/v1/devices", ctl.token,
                                 {"id": agent_id, "name": agent_id, "zones": zones, "ward": ward})
        assert status == 201, body
        registered[agent_id] = body
    return City(ctl, db, tokens, names), registered


@pytest.fixture
def city(broker: Broker, controller_factory: Any) -> Iterator[City]:
    """A controller requiring approval, with loa-a1 (ward A, zone khu-a), loa-b1 (ward B, khu-b) and loa-b2
    (ward B, in no zone)."""
    ctl: ControllerHandle = controller_factory(broker.port, env={"LP_REQUIRE_APPROVAL": "true"})
    ctl.wait_for(lambda: ctl.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    built, _registered = seed(ctl, {"loa-a1": (A, ["khu-a"]), "loa-b1": (B, ["khu-b"]), "loa-b2": (B, [])})
    try:
        yield built
    finally:
        built.db.dispose()


def test_each_ward_sees_and_touches_only_its_items(city: City) -> None:
    start = at(3600)
    status, item_a = city.call("POST", "/api/v1/schedule/items", "officer_a", item_body({"all": True}, start))
    assert status == 201, item_a
    assert item_a["ward"] == A and item_a["status"] == "pending"
    status, item_b = city.call("POST", "/api/v1/schedule/items", "officer_b",
                               item_body({"zones": ["khu-b"]}, start, title="Phường B"))
    assert status == 201, item_b
    assert item_b["ward"] == B
    a_id, b_id = item_a["id"], item_b["id"]

    # Lists: a ward's staff see their ward; the city sees both, and can narrow to one.
    def listed(who: str, query: str = "") -> set[str]:
        status, items = city.call("GET", f"/api/v1/schedule/items{query}", who)
        assert status == 200, items
        return {i["id"] for i in items}

    assert listed("officer_a") == {a_id}
    assert listed("officer_b") == {b_id}
    assert listed("approver_a", "?status=pending") == {a_id}
    assert listed("city_officer") == {a_id, b_id}
    assert listed("city_officer", f"?ward={B}") == {b_id}
    assert listed("officer_a", f"?ward={B}") == set()

    # Every id-taking route, called by A's staff on B's item: the same 404 and words as an unknown id.
    unknown = uuid.uuid4().hex
    before = city.row(b_id)
    for item_id in (b_id, unknown):
        calls = [("GET", f"/api/v1/schedule/items/{item_id}", "officer_a", None),
                 ("PUT", f"/api/v1/schedule/items/{item_id}", "officer_a",
                  item_body({"zones": ["khu-a"]}, start, title="Đổi")),
                 ("DELETE", f"/api/v1/schedule/items/{item_id}", "officer_a", None),
                 ("POST", f"/api/v1/schedule/items/{item_id}/approve", "approver_a", {}),
                 ("POST", f"/api/v1/schedule/items/{item_id}/reject", "approver_a", {"reason": "không"})]
        for method, path, who, body in calls:
            status, resp = city.call(method, path, who, body)
            assert status == 404, (method, path, resp)
            assert resp == {"detail": f"no schedule item {item_id}"}, resp
    assert city.row(b_id) == before

    # Visible, but the role is not held in that ward: 403, nothing changed.
    before = city.row(a_id)
    status, resp = city.call("PUT", f"/api/v1/schedule/items/{a_id}", "officer_b_tech_a",
                             item_body({"all": True}, start, title="Đổi"))
    assert status == 403, resp
    status, resp = city.call("DELETE", f"/api/v1/schedule/items/{a_id}", "officer_b_tech_a")
    assert status == 403, resp
    status, resp = city.call("POST", f"/api/v1/schedule/items/{a_id}/approve", "approver_b_officer_a", {})
    assert status == 403, resp
    assert city.row(a_id) == before

    # The ward's own approver and the city's approver decide their items.
    status, approved = city.call("POST", f"/api/v1/schedule/items/{a_id}/approve", "approver_a", {})
    assert status == 200 and approved["status"] == "approved", approved
    status, approved = city.call("POST", f"/api/v1/schedule/items/{b_id}/approve", "city_approver", {})
    assert status == 200 and approved["status"] == "approved", approved

    # "all" in ward A is every agent of ward A, and nothing of B; what plays is seen per ward.
    def upcoming(who: str) -> set[tuple[str, str]]:
        status, resp = city.call("GET", "/api/v1/schedule/upcoming?hours=2", who)
        assert status == 200, resp
        return {(p["agent_id"], p["item_id"]) for p in resp["plays"]}

    assert upcoming("officer_a") == {("loa-a1", a_id)}
    assert upcoming("officer_b") == {("loa-b1", b_id)}
    assert upcoming("city_officer") == {("loa-a1", a_id), ("loa-b1", b_id)}

    # Audit rows carry the item's ward.
    with city.db.session() as session:
        units = {(e.action, e.subject): e.unit_id for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("schedule.%")))}
    assert units[("schedule.create", a_id)] == A and units[("schedule.approve", a_id)] == A
    assert units[("schedule.create", b_id)] == B and units[("schedule.approve", b_id)] == B


def test_targets_and_conflicts_stay_in_the_items_ward(city: City) -> None:
    start = at(5400)
    count_before = len(city.call("GET", "/api/v1/schedule/items", "city_officer")[1])
    # Ward B's zone or agent named by A's staff: 404, in the words an unknown one gets.
    for targets, words in (({"zones": ["khu-b"]}, "unknown zone(s): khu-b"),
                           ({"agents": ["loa-b1"]}, "unknown agent(s): loa-b1")):
        status, resp = city.call("POST", "/api/v1/schedule/items", "officer_a", item_body(targets, start))
        assert status == 404, resp
        assert resp == {"detail": words}, resp
    # A ward A's staff cannot see, named for the new item: 404 like an unknown ward.
    status, resp = city.call("POST", "/api/v1/schedule/items", "officer_a",
                             item_body({"all": True}, start, ward=B))
    assert status == 404 and resp == {"detail": f"ward {B} not found"}, resp
    status, resp = city.call("POST", "/api/v1/schedule/items", "officer_a",
                             item_body({"all": True}, start, ward="ward-zz"))
    assert status == 404 and resp == {"detail": "ward ward-zz not found"}, resp
    # Staff of two wards must say which.
    status, resp = city.call("POST", "/api/v1/schedule/items", "officer_ab", item_body({"all": True}, start))
    assert status == 422, resp
    # The city sees both wards: mixing them is refused, naming where the target lives.
    status, resp = city.call("POST", "/api/v1/schedule/items", "city_officer",
                             item_body({"agents": ["loa-a1", "loa-b1"]}, start, ward=A))
    assert status == 422, resp
    assert "loa-b1 (ward ward-b)" in resp["detail"][0]["msg"], resp
    assert len(city.call("GET", "/api/v1/schedule/items", "city_officer")[1]) == count_before

    # "all" of ward A and "all" of ward B at the same time are no conflict: each reaches its own ward's
    # speakers; a second item of ward A then clashes with ward A's alone.
    status, item_a = city.call("POST", "/api/v1/schedule/items", "officer_ab",
                               item_body({"all": True}, start, ward=A))
    assert status == 201 and item_a["ward"] == A, item_a
    status, item_b = city.call("POST", "/api/v1/schedule/items", "officer_b", item_body({"all": True}, start))
    assert status == 201, item_b
    status, clash = city.call("POST", "/api/v1/schedule/items", "officer_a",
                              item_body({"zones": ["khu-a"]}, start))
    assert status == 409, clash
    assert {c["item_id"] for c in clash["detail"]["conflicts"]} == {item_a["id"]}
    for item_id, who in ((item_a["id"], "approver_a"), (item_b["id"], "city_approver")):
        status, resp = city.call("POST", f"/api/v1/schedule/items/{item_id}/approve", who, {})
        assert status == 200, resp
    status, resp = city.call("GET", "/api/v1/schedule/upcoming?hours=3", "city_officer")
    assert {(p["agent_id"], p["item_id"]) for p in resp["plays"]} == {
        ("loa-a1", item_a["id"]), ("loa-b1", item_b["id"]), ("loa-b2", item_b["id"])}


def test_console_schedule_shows_only_the_users_wards(city: City) -> None:
    start = datetime.now(UTC) + timedelta(hours=2)
    status, item_a = city.call("POST", "/api/v1/schedule/items", "officer_a",
                               item_body({"all": True}, start.isoformat(), title="Tin phường A"))
    assert status == 201, item_a
    status, item_b = city.call("POST", "/api/v1/schedule/items", "officer_b",
                               item_body({"all": True}, start.isoformat(), title="Tin phường B"))
    assert status == 201, item_b
    day = start.astimezone(SITE).date().isoformat()
    with console_client(city.ctl, city.names["approver_a"], PASSWORD) as client:
        grid = client.get(f"/console/schedule?date={day}&by=agent")
        assert grid.status_code == 200, grid.text[:2000]
        assert item_a["id"] in grid.text and "loa-a1" in grid.text
        assert item_b["id"] not in grid.text and "loa-b1" not in grid.text and "khu-b" not in grid.text
        detail = client.get(f"/console/schedule/items/{item_a['id']}")
        assert detail.status_code == 200 and "Tin phường A" in detail.text
        unknown = client.get(f"/console/schedule/items/{uuid.uuid4().hex}")
        foreign = client.get(f"/console/schedule/items/{item_b['id']}")
        assert foreign.status_code == unknown.status_code == 404
        assert "Tin phường B" not in foreign.text
        refused = client.post(f"/console/schedule/items/{item_b['id']}/approve", data={"play": ""})
        assert refused.status_code == 404
    assert city.row(item_b["id"])[0] == "pending"
    with console_client(city.ctl, city.names["city_approver"], PASSWORD) as client:
        grid = client.get(f"/console/schedule?date={day}&by=agent")
        assert item_a["id"] in grid.text and item_b["id"] in grid.text
        approved = client.post(f"/console/schedule/items/{item_b['id']}/approve", data={"play": ""})
        assert approved.status_code == 200, approved.text[:2000]
    assert city.row(item_b["id"])[0] == "approved"


def test_each_agents_window_holds_only_its_wards_items(controller: ControllerHandle, tmp_path: Path) -> None:
    city, registered = seed(controller, {"loa-a1": (A, ["khu-a"]), "loa-b1": (B, ["khu-b"])})
    running: dict[str, RunningAgent] = {}
    try:
        for agent_id, zones in (("loa-a1", ["khu-a"]), ("loa-b1", ["khu-b"])):
            files = write_agent_config(tmp_path / "agents" / agent_id, registered[agent_id], zones)
            running[agent_id] = RunningAgent(files, start_agent(files, tmp_path / f"{agent_id}.log"),
                                             registered[agent_id])
        for agent_id in running:
            controller.wait_for(lambda: controller.device(agent_id)["online"], 20,  # noqa: B023 (called at once)
                                f"{agent_id} online")
        # The same programme in both wards: "all" of each ward is its own speakers.
        status, item_a = city.call("POST", "/api/v1/schedule/items", "officer_a",
                                   item_body({"all": True}, at(15), title="Tin A"))
        assert status == 201, item_a
        status, item_b = city.call("POST", "/api/v1/schedule/items", "officer_b",
                                   item_body({"all": True}, at(15), title="Tin B"))
        assert status == 201, item_b  # same time: no conflict across wards
        a_id, b_id = item_a["id"], item_b["id"]

        def published(agent_id: str, item_id: str) -> bool:
            return item_id in window_items(city.db, agent_id)[1]

        controller.wait_for(lambda: published("loa-a1", a_id) and published("loa-b1", b_id), 30,
                            "windows with each ward's item")
        assert window_items(city.db, "loa-a1")[1] == {a_id}
        assert window_items(city.db, "loa-b1")[1] == {b_id}

        # The agents applied those windows and play their own ward's item, never the other's.
        def applied(agent_id: str, version: int) -> bool:
            return int((controller.device(agent_id).get("state") or {}).get("schedule_version") or 0) >= version

        for agent_id in running:
            version = window_items(city.db, agent_id)[0]
            controller.wait_for(lambda: applied(agent_id, version), 30,  # noqa: B023 (called at once)
                                f"{agent_id} applying its window")

        def ended(agent: RunningAgent, item_id: str) -> bool:
            return any(line["event"] == "end" and line["play_id"].startswith(item_id)
                       for line in agent.sink_lines())

        agent_a, agent_b = running["loa-a1"], running["loa-b1"]
        controller.wait_for(lambda: ended(agent_a, a_id) and ended(agent_b, b_id), 60, "both items played")
        assert {line["play_id"].split("-")[0] for line in agent_a.sink_lines()} == {a_id}
        assert {line["play_id"].split("-")[0] for line in agent_b.sink_lines()} == {b_id}
    finally:
        for agent in running.values():
            agent.proc.stop()
        city.db.dispose()
