"""City-level broadcasts with the real controller, broker and agents in three wards (A, B, C under the city).

The city schedules an item for two of the three wards: it plays on those wards' speakers and never the
third's, each ward sees its part marked as coming from above and cannot change it. A ward that approves the
city's items holds a normal city announcement until its approver approves, while the other ward plays it at
once; an emergency from the city plays at once in every chosen ward; a ward nobody has is 422 naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ControllerHandle, RunningAgent
from tests.console_support import console_client
from tests.ward_support import (
    PASSWORD,
    StaffCity,
    add_ward,
    database,
    seed_staff,
    start_ward_agent,
    wait_online,
    window_items,
)

A, B, C = "phuong-a", "phuong-b", "phuong-c"
AGENTS = {"loa-a1": (A, "khu-a"), "loa-b1": (B, "khu-b"), "loa-c1": (C, "khu-c")}
STAFF: dict[str, list[tuple[str, str]]] = {
    "city_officer": [("officer", "city")],
    "city_approver": [("approver", "city")],
    "officer_b": [("officer", B)],
    "approver_b": [("approver", B)],
    "admin_b": [("admin", B)],
}


def at(seconds: float) -> str:
    """An aware ISO time ``seconds`` from now."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@dataclass
class City(StaffCity):
    """Three wards, their running agents, and staff tokens by name."""

    agents: dict[str, RunningAgent]

    def starts(self, agent_id: str, prefix: str = "") -> list[dict[str, Any]]:
        return [line for line in self.agents[agent_id].sink_lines()
                if line["event"] == "start" and line["play_id"].startswith(prefix)]

    def played(self, ann_id: str) -> bool:
        ann = self.ctl.announcement(ann_id)
        return bool(ann["deliveries"]) and all(d["status"] == "played" for d in ann["deliveries"])


@pytest.fixture
def city(controller: ControllerHandle, tmp_path: Path) -> Iterator[City]:
    db = database(controller)
    running: dict[str, RunningAgent] = {}
    try:
        with db.session() as session:
            for ward in (A, B, C):
                add_ward(session, ward)
            tokens, names = seed_staff(session, STAFF)
        for agent_id, (ward, zone) in AGENTS.items():
            running[agent_id] = start_ward_agent(controller, tmp_path, agent_id, zone, ward)
        for agent in running.values():
            wait_online(controller, agent)
        yield City(controller, db, tokens, names, running)
    finally:
        for agent in running.values():
            agent.proc.stop()
        db.dispose()


def item_body(wards: Any, targets: dict[str, Any], start: str, **over: Any) -> dict[str, Any]:
    return {"title": "Bản tin thành phố", "content": [{"kind": "tts", "text": "Thông báo của thành phố."}],
            "targets": targets, "start": start, "wards": wards, **over}


def test_city_item_plays_in_the_chosen_wards_only_and_wards_cannot_change_it(city: City) -> None:
    ctl = city.ctl
    status, made = city.call("POST", "/api/v1/schedule/city-items", "city_officer",
                             item_body([A, B], {"all": True}, at(20)))
    assert status == 201, made
    assert made["unit"] == "city" and made["wards"] == [A, B] and made["status"] == "active"
    parts = {i["ward"]: i for i in made["items"]}
    assert set(parts) == {A, B}
    assert all(p["status"] == "approved" and p["parent"] == made["id"] and p["from_unit"] == "city"
               for p in parts.values())
    a_id, b_id = parts[A]["id"], parts[B]["id"]

    def published() -> bool:
        return a_id in window_items(city.db, "loa-a1")[1] and b_id in window_items(city.db, "loa-b1")[1]

    ctl.wait_for(published, 30, "windows with each ward's part")
    assert window_items(city.db, "loa-c1")[1] == set()

    def ended(agent_id: str, item_id: str) -> bool:
        return any(line["event"] == "end" and line["play_id"].startswith(item_id)
                   for line in city.agents[agent_id].sink_lines())

    ctl.wait_for(lambda: ended("loa-a1", a_id) and ended("loa-b1", b_id), 60, "the city item played in A and B")
    assert city.starts("loa-c1") == [], city.agents["loa-c1"].sink_lines()
    assert window_items(city.db, "loa-c1")[1] == set()

    # The console's schedule marks B's part as coming from above, and offers B no cancel button for it.
    with console_client(ctl, "officer-b", PASSWORD) as client:
        page = client.get("/console/schedule", params={"view": "day", "date": parts[B]["start"][:10]})
        assert page.status_code == 200 and "Cấp trên" in page.text, page.text[-2000:]
        detail = client.get(f"/console/schedule/items/{b_id}")
        assert detail.status_code == 200 and "Cấp trên" in detail.text and "Thành phố" in detail.text
        assert "cancel-item" not in detail.text

    # Ward B sees its part, marked from above; it may not change or cancel it (nor the city item).
    status, listed = city.call("GET", "/api/v1/schedule/items", "officer_b")
    assert status == 200 and [(i["id"], i["parent"], i["from_unit"]) for i in listed] == [(b_id, made["id"], "city")]
    status, body = city.call("PUT", f"/api/v1/schedule/items/{b_id}", "officer_b",
                             {k: v for k, v in item_body(None, {"all": True}, at(3600)).items() if k != "wards"})
    assert status == 403 and "from above" in body["detail"], body
    status, body = city.call("DELETE", f"/api/v1/schedule/items/{b_id}", "officer_b")
    assert status == 403 and "from above" in body["detail"], body
    assert city.call("GET", f"/api/v1/schedule/city-items/{made['id']}", "officer_b")[0] == 404
    assert city.call("DELETE", f"/api/v1/schedule/city-items/{made['id']}", "officer_b")[0] == 404
    assert city.call("GET", "/api/v1/schedule/city-items", "officer_b") == (200, [])
    # Ward staff cannot send to several wards.
    status, body = city.call("POST", "/api/v1/schedule/city-items", "officer_b",
                             item_body([B], {"all": True}, at(3600)))
    assert status == 403, body

    # Unknown wards: 422 naming them; nothing stored.
    before = len(city.call("GET", "/api/v1/schedule/city-items", "city_officer")[1])
    status, body = city.call("POST", "/api/v1/schedule/city-items", "city_officer",
                             item_body([A, "khong-co", "ward-x"], {"all": True}, at(3600)))
    assert status == 422, body
    assert body["detail"][0]["loc"] == ["body", "wards"]
    assert "khong-co" in body["detail"][0]["msg"] and "ward-x" in body["detail"][0]["msg"]
    status, body = city.call("POST", "/api/v1/announcements/city", "city_officer",
                             {"text": "Thử", "targets": {"all": True}, "wards": ["khong-co"]})
    assert status == 422 and "khong-co" in body["detail"][0]["msg"], body
    # Targets must lie in the chosen wards, each ward given some.
    status, body = city.call("POST", "/api/v1/schedule/city-items", "city_officer",
                             item_body([A, B], {"zones": ["khu-a", "khu-c"]}, at(3600)))
    assert status == 422 and "khu-c" in body["detail"][0]["msg"], body
    status, body = city.call("POST", "/api/v1/schedule/city-items", "city_officer",
                             item_body([A, B], {"zones": ["khu-a"]}, at(3600)))
    assert status == 422 and B in body["detail"][0]["msg"], body
    assert len(city.call("GET", "/api/v1/schedule/city-items", "city_officer")[1]) == before

    # The city changes the whole: C added, B left out (its part cancelled); then cancels it everywhere.
    status, changed = city.call("PUT", f"/api/v1/schedule/city-items/{made['id']}", "city_officer",
                                item_body([A, C], {"all": True}, at(3600), title="Đổi giờ"))
    assert status == 200, changed
    states = {(i["ward"], i["status"]) for i in changed["items"]}
    assert states == {(A, "approved"), (B, "cancelled"), (C, "approved")}, states
    status, cancelled = city.call("DELETE", f"/api/v1/schedule/city-items/{made['id']}", "city_officer")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert {i["status"] for i in cancelled["items"]} == {"cancelled"}


def test_ward_approval_holds_normal_city_items_and_emergencies_go_straight_through(city: City) -> None:
    ctl = city.ctl
    # Ward B approves the city's normal items itself (its admin says so).
    status, unit = city.call("PATCH", f"/api/v1/units/{B}", "admin_b", {"approve_city_items": True})
    assert status == 200 and unit["approve_city_items"] is True, unit
    assert city.call("PATCH", f"/api/v1/units/{A}", "admin_b", {"approve_city_items": True})[0] == 404

    status, sent = city.call("POST", "/api/v1/announcements/city", "city_officer",
                             {"text": "Lịch tiêm chủng tuần này.", "targets": {"all": True}, "wards": [A, B]})
    assert status == 202, sent
    parts = {p["ward"]: p for p in sent["announcements"]}
    assert parts[A]["status"] == "rendering" and parts[B]["status"] == "pending"
    assert parts[A]["targets"] == ["loa-a1"] and parts[B]["targets"] == ["loa-b1"]
    ctl.wait_deliveries(parts[A]["announcement_id"], {"played"}, timeout=40)
    # A has played it; B still holds it: no command reached B's speaker.
    b_ann = ctl.announcement(parts[B]["announcement_id"])
    assert b_ann["status"] == "pending" and b_ann["deliveries"] == []
    assert city.starts("loa-b1") == [] and "speaker.play" not in city.agents["loa-b1"].log()
    # Only B's approver decides, never the sender; then it goes out in B.
    b_path = f"/api/v1/announcements/{parts[B]['announcement_id']}"
    assert city.call("POST", f"{b_path}/approve", "officer_b")[0] == 403
    status, decided = city.call("POST", f"{b_path}/approve", "approver_b")
    assert status == 200 and decided["ward"] == B, decided
    ctl.wait_deliveries(parts[B]["announcement_id"], {"played"}, timeout=40)
    assert city.call("POST", f"{b_path}/approve", "approver_b")[0] == 409
    status, whole = city.call("GET", f"/api/v1/announcements/city/{sent['id']}", "city_officer")
    assert status == 200 and {p["ward"] for p in whole["announcements"]} == {A, B}
    assert city.call("GET", f"/api/v1/announcements/city/{sent['id']}", "officer_b")[0] == 404
    assert len(city.starts("loa-c1")) == 0

    # A normal city item waits in B (for B's approver) and not in A; an emergency one waits nowhere.
    status, item = city.call("POST", "/api/v1/schedule/city-items", "city_officer",
                             item_body([A, B], {"all": True}, at(7200)))
    assert status == 201, item
    assert {(i["ward"], i["status"]) for i in item["items"]} == {(A, "approved"), (B, "pending")}
    pending_b = next(i["id"] for i in item["items"] if i["ward"] == B)
    status, listed = city.call("GET", "/api/v1/schedule/items?status=pending", "approver_b")
    assert [i["id"] for i in listed] == [pending_b]
    status, approved = city.call("POST", f"/api/v1/schedule/items/{pending_b}/approve", "approver_b")
    assert status == 200 and approved["status"] == "approved", approved
    status, urgent = city.call("POST", "/api/v1/schedule/city-items", "city_officer",
                               item_body("all", {"all": True}, at(10_800), priority="emergency", title="Khẩn"))
    assert status == 201, urgent
    assert urgent["all_wards"] is True
    assert {(i["ward"], i["status"]) for i in urgent["items"]} >= {(A, "approved"), (B, "approved"), (C, "approved")}

    # A relay of the city's station for every ward at once: a part in each, B holding its normal one.
    status, relay = city.call("POST", "/api/v1/schedule/city-items", "city_officer", item_body(
        "all", {"all": True}, at(14_400), title="Tiếp sóng Đài thành phố",
        content=[{"kind": "relay", "url": "http://127.0.0.1:9/dai-thanh-pho.mp3", "duration_s": 600}]))
    assert status == 201, relay
    relay_parts = {i["ward"]: i for i in relay["items"]}
    assert {A, B, C} <= set(relay_parts)
    assert all(p["segments"][0]["kind"] == "relay" for p in relay_parts.values())
    assert relay_parts[B]["status"] == "pending" and relay_parts[A]["status"] == "approved"

    # An emergency announcement from the city: at once in every chosen ward, B's approval or not.
    before = {a: len(city.starts(a)) for a in AGENTS}
    status, alarm = city.call("POST", "/api/v1/announcements/city", "city_officer",
                              {"text": "Cảnh báo lũ. Người dân di chuyển lên chỗ cao.", "targets": {"all": True},
                               "priority": "emergency", "wards": "all"})
    assert status == 202, alarm
    assert {p["status"] for p in alarm["announcements"]} == {"rendering"}
    for part in alarm["announcements"]:
        ctl.wait_deliveries(part["announcement_id"], {"played"}, timeout=40)
    assert all(len(city.starts(a)) == before[a] + 1 for a in AGENTS), {a: city.starts(a) for a in AGENTS}


def test_console_compose_lets_city_staff_choose_wards(city: City) -> None:
    with console_client(city.ctl, "city-officer", PASSWORD) as client:
        page = client.get("/console/announcements")
        assert page.status_code == 200
        assert 'name="city_wards"' in page.text and 'name="all_wards"' in page.text
        for ward in (A, B, C):
            assert f'value="{ward}"' in page.text
        sent = client.post("/console/announcements", data={
            "text": "Thành phố thông báo lịch cắt điện.", "everyone": "1", "when": "now", "priority": "normal",
            "city_wards": [A, C]})
        assert sent.status_code == 200, sent.text[-1500:]
        unknown = client.post("/console/announcements", data={
            "text": "Thử.", "everyone": "1", "when": "now", "priority": "normal", "city_wards": ["khong-co"]})
        assert unknown.status_code == 422 and "khong-co" in unknown.text
    with console_client(city.ctl, "officer-b", PASSWORD) as client:
        assert 'name="city_wards"' not in client.get("/console/announcements").text
    status, listed = city.call("GET", "/api/v1/announcements", "city_officer")
    assert status == 200
    assert sorted(a["ward"] for a in listed) == [A, C]
    for ann in listed:
        city.ctl.wait_deliveries(ann["id"], {"played"}, timeout=40)
    assert city.starts("loa-b1") == []
