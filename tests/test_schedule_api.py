"""The schedule API against a real controller: validation, conflicts, queueing, approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.tools.local_stack import http_json
from tests.conftest import AgentFactory, Broker, ControllerHandle


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"title": "Bản tin", "content": [{"kind": "tts", "text": "Bản tin của phường."}],
                            "targets": {"agents": ["loa-01"]}, "start": at(3600)}
    return {**base, **over}


def field_of(resp: Any) -> str:
    return ".".join(str(p) for p in resp["detail"][0]["loc"][1:])


def test_bad_items_get_a_clear_422(controller: ControllerHandle, agents: AgentFactory) -> None:
    agents("loa-01", wait_online=False)
    cases = [
        (body(rrule="FREQ=SOMETIMES"), "rrule"),
        (body(rrule="FREQ=DAILY", until=at(-7200)), "until"),
        (body(rrule="FREQ=DAILY", start=at(3600), until=at(1800)), "until"),
        (body(start=at(-3600)), "start"),
        (body(targets={"zones": ["khu-pho-99"]}), "targets"),
        (body(targets={"agents": ["loa-77"]}), "targets"),
        (body(targets={}), "targets"),
        (body(content=[{"kind": "relay", "url": "ftp://radio.local/vov1", "duration_s": 60}]), "content.0.relay.url"),
        (body(content=[{"kind": "relay", "url": "javascript:alert(1)", "duration_s": 60}]), "content.0.relay.url"),
        (body(content=[{"kind": "media", "sha256": "0" * 64}]), "content.0.sha256"),
        (body(content=[]), "content"),
        (body(priority="urgent"), "priority"),
    ]
    for item, field in cases:
        status, resp = controller.post("/api/v1/schedule/items", item)
        assert status == 422, (item, resp)
        assert field_of(resp).startswith(field.split(".")[0]), (field, resp)
        assert resp["detail"][0]["msg"]
    status, items = controller.get("/api/v1/schedule/items")
    assert items == []  # nothing was stored


def test_conflicts_are_named_unless_queued(controller: ControllerHandle, agents: AgentFactory) -> None:
    agents("loa-01", wait_online=False)
    start = at(7200)
    status, first = controller.post("/api/v1/schedule/items", body(title="Sáng", start=start,
                                                                   rrule="FREQ=DAILY;COUNT=5"))
    assert status == 201, first
    assert len(first["next_starts"]) == 5
    status, clash = controller.post("/api/v1/schedule/items", body(title="Trùng", start=start))
    assert status == 409, clash
    assert clash["detail"]["conflicts"][0]["item_id"] == first["id"]
    assert clash["detail"]["conflicts"][0]["agent_id"] == "loa-01"
    status, other_level = controller.post("/api/v1/schedule/items", body(start=start, priority="priority"))
    assert status == 201, other_level
    status, queued = controller.post("/api/v1/schedule/items", body(title="Xếp hàng", start=start, queue=True))
    assert status == 201, queued
    # Editing an item does not conflict with itself; deleting it frees the slot.
    status, _edited = controller.post("/api/v1/schedule/items", body(start=start))
    assert status == 409
    status, _ = http_json("PUT", f"{controller.api}/api/v1/schedule/items/{first['id']}", controller.token,
                          body(title="Sáng (sửa)", start=start, rrule="FREQ=DAILY;COUNT=5"))
    assert status == 200
    status, cancelled = http_json("DELETE", f"{controller.api}/api/v1/schedule/items/{first['id']}",
                                  controller.token)
    assert status == 200 and cancelled["status"] == "cancelled"
    status, later = controller.post("/api/v1/schedule/items", body(start=start))
    assert status == 201, later


def test_approval_needs_a_second_person(broker: Broker, controller_factory: Any, tmp_path: Any) -> None:
    ctl: ControllerHandle = controller_factory(broker.port, env={"LP_REQUIRE_APPROVAL": "true"})
    ctl.wait_for(lambda: ctl.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    status, _ = ctl.post("/api/v1/devices", {"id": "loa-01", "zones": ["khu-pho-1"]})
    assert status == 201
    for name, role in (("canbo", "officer"), ("duyet", "approver")):
        status, user = ctl.post("/api/v1/users", {"username": name, "password": "mat-khau-dai-123", "role": role})
        assert status == 201, user
    tokens = {}
    for name in ("canbo", "duyet"):
        status, login = ctl.post("/api/v1/auth/login", {"username": name, "password": "mat-khau-dai-123"}, token=None)
        assert status == 200, login
        tokens[name] = login["token"]
    status, item = ctl.post("/api/v1/schedule/items", body(targets={"zones": ["khu-pho-1"]}), token=tokens["canbo"])
    assert status == 201, item
    assert item["status"] == "pending" and item["created_by"] == "canbo"
    status, upcoming = ctl.get("/api/v1/schedule/upcoming?hours=2")
    assert upcoming["plays"] == []  # nothing goes out before approval
    status, _resp = ctl.post(f"/api/v1/schedule/items/{item['id']}/approve", {}, token=tokens["canbo"])
    assert status == 403
    status, pending = ctl.get("/api/v1/schedule/items?status=pending", token=tokens["duyet"])
    assert [p["id"] for p in pending] == [item["id"]]
    status, approved = ctl.post(f"/api/v1/schedule/items/{item['id']}/approve", {}, token=tokens["duyet"])
    assert status == 200, approved
    assert approved["status"] == "approved" and approved["decided_by"] == "duyet"
    status, upcoming = ctl.get("/api/v1/schedule/upcoming?hours=2")
    assert [p["item_id"] for p in upcoming["plays"]] == [item["id"]]
    status, _again = ctl.post(f"/api/v1/schedule/items/{item['id']}/reject", {"reason": "muộn"},
                             token=tokens["duyet"])
    assert status == 409  # no longer pending


def test_plays_csv_export(controller: ControllerHandle) -> None:
    import urllib.request

    req = urllib.request.Request(f"{controller.api}/api/v1/plays?format=csv",
                                 headers={"Authorization": f"Bearer {controller.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/csv")
        text = resp.read().decode("utf-8-sig")
    assert text.splitlines()[0].startswith("agent_id,play_id,attempt")


