"""The upper level's API (``/api/v1/source``) with the real controller, broker and agents in two wards.

The test plays the province's source system (hệ thống thông tin nguồn, TT 39/2020): an admin creates its
account (only the ``source`` role, on the city) and a script token for it; the system pushes a text
announcement to both wards and reads back one play per speaker, uploads a recording and schedules it for one
ward, schedules a relay for every ward and withdraws it, and reads the monthly figures. Its account gets 403
from the staff API and the console; ward staff get 403 from the source API.
"""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.storage.engine import Database
from controller.tools.local_stack import http_json, start_agent, write_agent_config
from tests.conftest import ControllerHandle, RunningAgent
from tests.ward_support import PASSWORD, StaffCity, add_staff, add_ward

A, B = "phuong-a", "phuong-b"
AGENTS = {"loa-a1": (A, "khu-a"), "loa-b1": (B, "khu-b")}
STAFF: dict[str, list[tuple[str, str]]] = {"city_officer": [("officer", "city")], "officer_b": [("officer", B)]}
SOURCE = "/api/v1/source"


def at(seconds: float) -> str:
    """An aware ISO time ``seconds`` from now."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@dataclass
class Province(StaffCity):
    """Two wards with a running speaker each, their staff, and the province's source system (``province``)."""

    agents: dict[str, RunningAgent]
    source_id: int
    token_id: int

    def ended(self, agent_id: str, prefix: str) -> bool:
        return any(line["event"] == "end" and line["play_id"].startswith(prefix)
                   for line in self.agents[agent_id].sink_lines())

    def raw(self, method: str, path: str, who: str, content: bytes | None = None) -> httpx.Response:
        token = self.ctl.token if who == "root" else self.tokens[who]
        return httpx.request(method, self.ctl.api + path, content=content, timeout=60,
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})


@pytest.fixture
def province(controller: ControllerHandle, tmp_path: Path) -> Iterator[Province]:
    db = Database(f"sqlite:///{(controller.data_dir / 'loaphuong.sqlite3').resolve()}")
    tokens: dict[str, str] = {}
    names: dict[str, str] = {}
    running: dict[str, RunningAgent] = {}
    try:
        with db.session() as session:
            for ward in (A, B):
                add_ward(session, ward)
            for key, grants in STAFF.items():
                user, tokens[key] = add_staff(session, grants, username=key.replace("_", "-"))
                names[key] = user.username
        # The admin creates the system's account as docs/wards.md says, and a script token for it.
        status, account = http_json("POST", controller.api + "/api/v1/users", controller.token,
                                    {"username": "nguon-tinh", "password": PASSWORD,
                                     "grants": [{"role": "source", "unit": "city"}]})
        assert status == 201, account
        status, issued = http_json("POST", f"{controller.api}/api/v1/users/{account['id']}/tokens", controller.token,
                                   {"name": "Hệ thống thông tin nguồn tỉnh"})
        assert status == 201 and issued["token"], issued
        tokens["province"], names["province"] = issued["token"], "nguon-tinh"
        for agent_id, (ward, zone) in AGENTS.items():
            status, registered = http_json("POST", f"{controller.api}/api/v1/devices", controller.token,
                                           {"id": agent_id, "name": agent_id, "zones": [zone], "ward": ward})
            assert status == 201, registered
            files = write_agent_config(tmp_path / "agents" / agent_id, registered, (zone,))
            running[agent_id] = RunningAgent(files, start_agent(files, tmp_path / f"{agent_id}.log"), registered)
        for agent_id, agent in running.items():
            controller.wait_for(lambda: controller.device(agent_id)["online"] or not agent.proc.alive,  # noqa: B023
                                20, f"{agent_id} online")
            assert agent.proc.alive, agent.log()
        yield Province(controller, db, tokens, names, running, account["id"], issued["id"])
    finally:
        for agent in running.values():
            agent.proc.stop()
        db.dispose()


def test_the_province_pushes_an_announcement_and_reads_back_the_proof_of_play(province: Province) -> None:
    ctl = province.ctl
    status, sent = province.call("POST", f"{SOURCE}/announcements", "province",
                                 {"text": "Ủy ban nhân dân tỉnh thông báo lịch cắt điện ngày mai.",
                                  "targets": {"all": True}, "wards": [A, B]})
    assert status == 202, sent
    assert sent["unit"] == "city" and sent["wards"] == [A, B]
    parts = {p["ward"]: p for p in sent["announcements"]}
    assert parts[A]["targets"] == ["loa-a1"] and parts[B]["targets"] == ["loa-b1"]
    for part in parts.values():
        ctl.wait_deliveries(part["announcement_id"], {"played"}, 60)

    def finished() -> dict[str, Any] | None:
        status, found = province.call("GET", f"{SOURCE}/broadcasts/{sent['id']}/plays", "province")
        assert status == 200, found
        done = len(found["plays"]) == 2 and all(p["outcome"] is not None for p in found["plays"])
        return found if done else None

    proof = ctl.wait_for(finished, 30, "both plays reported ended")
    assert proof["kind"] == "announcement" and proof["unit"] == "city"
    assert [(p["ward"], p["agent_id"], p["outcome"]) for p in proof["plays"]] == \
        [(A, "loa-a1", "completed"), (B, "loa-b1", "completed")], proof
    assert all(p["announcement_id"] == parts[p["ward"]]["announcement_id"] and p["actual_start"]
               and p["scheduled_start"] for p in proof["plays"])
    response = province.raw("GET", f"{SOURCE}/broadcasts/{sent['id']}/plays?format=csv", "province")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["ward"], r["agent_id"], r["outcome"]) for r in rows] == \
        [(A, "loa-a1", "completed"), (B, "loa-b1", "completed")]
    status, again = province.call("GET", f"{SOURCE}/announcements/{sent['id']}", "province")
    assert status == 200 and {p["ward"] for p in again["announcements"]} == {A, B}, again

    # The month's figures as the province reads them: each ward counts the announcement from above.
    status, month = province.call("GET", f"{SOURCE}/reports/monthly?ward={A}", "province")
    assert status == 200 and month["ward"] == A, month
    assert month["by_source"]["city"]["plays"] >= 1, month
    status, city = province.call("GET", f"{SOURCE}/reports/city", "province")
    assert status == 200 and {w["ward"] for w in city["wards"]} >= {A, B}, city
    assert province.call("GET", f"{SOURCE}/reports/monthly", "province")[0] == 422  # several wards: say which
    assert province.call("GET", f"{SOURCE}/reports/monthly?ward=khong-co", "province")[0] == 404
    response = province.raw("GET", f"{SOURCE}/reports/city?format=csv", "province")
    assert response.status_code == 200 and A in response.text and B in response.text


def test_the_province_schedules_a_recording_and_a_relay_and_stays_in_its_lane(province: Province,
                                                                                 tmp_path: Path) -> None:
    ctl = province.ctl
    wav = tmp_path / "ban-tin.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=660:duration=2", "-ar", "48000", "-ac", "1", str(wav)], check=True, timeout=60)
    response = province.raw("POST", f"{SOURCE}/media", "province", wav.read_bytes())
    assert response.status_code == 201, response.text
    sha = response.json()["sha256"]
    # The recording belongs to every ward the system reaches: ward B's staff may hear it.
    assert province.raw("GET", f"/media/{sha}", "officer_b").status_code == 200

    status, item = province.call("POST", f"{SOURCE}/items", "province",
                                 {"title": "Bản tin tỉnh", "wards": [A], "targets": {"all": True},
                                  "content": [{"kind": "media", "sha256": sha}], "start": at(15)})
    assert status == 201, item
    assert [(p["ward"], p["status"], p["parent"]) for p in item["items"]] == [(A, "approved", item["id"])]
    part = item["items"][0]["id"]
    ctl.wait_for(lambda: province.ended("loa-a1", part), 60, "the pushed recording played in ward A")
    assert not any(line["play_id"].startswith(part) for line in province.agents["loa-b1"].sink_lines())

    def reported() -> list[dict[str, Any]] | None:
        found = province.call("GET", f"{SOURCE}/broadcasts/{item['id']}/plays", "province")[1]["plays"]
        return found if found and all(p["outcome"] for p in found) else None

    plays = ctl.wait_for(reported, 30, "the item's play reported")
    assert [(p["ward"], p["agent_id"], p["item_id"], p["outcome"]) for p in plays] == \
        [(A, "loa-a1", part, "completed")]
    assert province.call("GET", f"{SOURCE}/items/{item['id']}", "province")[1]["id"] == item["id"]

    # A relay of the province's station for every ward, tomorrow at 18:00 (site time) for 30 minutes.
    relay = {"title": "Tiếp sóng Đài tỉnh", "wards": "all", "targets": {"all": True},
             "content": [{"kind": "relay", "url": "http://127.0.0.1:9/live.mp3", "duration_s": 1800}],
             "start": (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT18:00:00")}
    status, relayed = province.call("POST", f"{SOURCE}/items", "province", relay)
    assert status == 201, relayed
    assert relayed["all_wards"] and {p["ward"] for p in relayed["items"]} == {"ward", A, B}
    assert all(p["segments"][0]["kind"] == "relay" for p in relayed["items"])
    status, withdrawn = province.call("DELETE", f"{SOURCE}/items/{relayed['id']}", "province")
    assert status == 200 and {p["status"] for p in withdrawn["items"]} == {"cancelled"}, withdrawn

    # An unknown ward: 422 naming it, nothing stored.
    status, body = province.call("POST", f"{SOURCE}/items", "province", {**relay, "wards": [A, "khong-co"]})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "wards"], body
    assert "khong-co" in body["detail"][0]["msg"]
    status, body = province.call("POST", f"{SOURCE}/announcements", "province",
                                 {"text": "Thử", "targets": {"all": True}, "wards": ["khong-co"]})
    assert status == 422 and "khong-co" in body["detail"][0]["msg"], body

    # The system withdraws only what it pushed: the city's staff's items are theirs.
    status, theirs = province.call("POST", "/api/v1/schedule/city-items", "city_officer", {**relay, "wards": [B]})
    assert status == 201, theirs
    assert province.call("GET", f"{SOURCE}/items/{theirs['id']}", "province")[0] == 200
    status, body = province.call("DELETE", f"{SOURCE}/items/{theirs['id']}", "province")
    assert status == 403 and "not pushed by this system" in body["detail"], body

    # The system is no member of staff: the staff API and the console refuse it.
    for path in ("/api/v1/devices", "/api/v1/announcements", "/api/v1/schedule/items", "/api/v1/plays"):
        assert province.call("GET", path, "province")[0] == 403, path
    assert province.call("POST", "/api/v1/announcements", "province",
                         {"text": "Thử", "targets": {"all": True}, "ward": A})[0] == 403
    with httpx.Client(base_url=ctl.api, timeout=20, follow_redirects=False) as client:
        client.post("/console/login", data={"username": "nguon-tinh", "password": PASSWORD, "next": ""})
        assert client.get("/console/").status_code == 403
        assert client.get("/console/announcements").status_code == 403
    # Its password works too (a 12-hour session), and /auth/me says what it reaches.
    status, login = http_json("POST", ctl.api + "/api/v1/auth/login", None,
                              {"username": "nguon-tinh", "password": PASSWORD})
    assert status == 200 and login["roles"] == ["source"], login
    status, me = http_json("GET", ctl.api + "/api/v1/auth/me", login["token"])
    assert status == 200 and set(me["wards"]) == {"ward", A, B}, me

    # Ward staff cannot use the source API.
    assert province.call("GET", f"{SOURCE}/items/{item['id']}", "officer_b")[0] == 403
    assert province.call("POST", f"{SOURCE}/announcements", "officer_b",
                         {"text": "Thử", "targets": {"all": True}, "wards": [B]})[0] == 403
    assert province.call("GET", f"{SOURCE}/reports/city", "officer_b")[0] == 403

    # The admin lists and revokes the system's script token: it stops working at once.
    status, listed = http_json("GET", f"{ctl.api}/api/v1/users/{province.source_id}/tokens", ctl.token)
    assert status == 200 and [(t["id"], t["name"]) for t in listed] == \
        [(province.token_id, "Hệ thống thông tin nguồn tỉnh")], listed
    assert "token" not in listed[0]
    assert http_json("DELETE", f"{ctl.api}/api/v1/users/{province.source_id}/tokens/{province.token_id}",
                     ctl.token)[0] == 204
    assert province.call("GET", f"{SOURCE}/items/{item['id']}", "province")[0] == 401
    assert http_json("DELETE", f"{ctl.api}/api/v1/users/{province.source_id}/tokens/{province.token_id}",
                     ctl.token)[0] == 404


def test_the_openapi_document_describes_the_source_api(controller: ControllerHandle) -> None:
    status, doc = http_json("GET", controller.api + "/openapi.json")
    assert status == 200
    paths = doc["paths"]
    push = paths[f"{SOURCE}/items"]["post"]
    assert push["tags"] == ["upper level (cấp trên)"] and push["summary"]
    assert {"403", "409", "422"} <= set(push["responses"])
    examples = push["requestBody"]["content"]["application/json"]["examples"]
    assert examples["relay"]["value"]["content"][0]["duration_s"] == 1800
    assert examples["flood_warning"]["value"]["wards"] == ["binh-phu", "an-lac"]
    announce = paths[f"{SOURCE}/announcements"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert announce["text_to_all"]["value"]["wards"] == "all"
    for path in ("/items/{item_id}", "/announcements/{announcement_id}", "/media",
                 "/broadcasts/{broadcast_id}/plays", "/reports/monthly", "/reports/city"):
        for operation in paths[SOURCE + path].values():
            assert operation["summary"] and operation["description"] and "401" in operation["responses"], path
