"""Broadcasts across wards, with the real controller, broker and agents: an announcement to everyone of ward A
plays on A's speakers only; a ward's staff see, fetch and export only their wards' announcements, plays,
recordings and live sessions, and another ward's ids answer exactly as unknown ones, with nothing changed."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.storage.engine import Database
from controller.storage.models import FIRST_WARD, Announcement, LiveSession
from controller.tools.local_stack import http_json
from tests.conftest import ControllerHandle, RunningAgent
from tests.console_support import console_client
from tests.ward_support import PASSWORD, add_staff, start_ward_agent, wait_online, ward_database

WARD_B = "ward-b"


@dataclass
class City:
    """Two wards (the first, A, and B) and staff of A, of B and of the city."""

    db: Database
    officer_a: str
    officer_b: str
    city: str
    #: approver in A, officer in B: sees B, is no approver there.
    mixed: str
    #: technician in B only: sees B, may not compose there.
    tech_b: str


@pytest.fixture
def city(controller: ControllerHandle) -> Iterator[City]:
    with ward_database(controller, WARD_B) as db:
        with db.session() as session:
            _, officer_a = add_staff(session, [("officer", FIRST_WARD)])
            _, officer_b = add_staff(session, [("officer", WARD_B)])
            _, city_staff = add_staff(session, [("officer", "city"), ("approver", "city")])
            _, mixed = add_staff(session, [("approver", FIRST_WARD), ("officer", WARD_B)])
            _, tech_b = add_staff(session, [("technician", WARD_B)])
        yield City(db, officer_a, officer_b, city_staff, mixed, tech_b)


def _agent(controller: ControllerHandle, tmp_path: Path, started: list[RunningAgent], agent_id: str, zone: str,
           ward: str) -> RunningAgent:
    agent = start_ward_agent(controller, tmp_path, agent_id, zone, ward)
    started.append(agent)
    wait_online(controller, agent)
    return agent


@pytest.fixture
def two_agents(controller: ControllerHandle, city: City,
               tmp_path: Path) -> Iterator[tuple[RunningAgent, RunningAgent]]:
    started: list[RunningAgent] = []
    try:
        a = _agent(controller, tmp_path, started, "loa-a1", "khu-pho-a", FIRST_WARD)
        b = _agent(controller, tmp_path, started, "loa-b1", "khu-pho-b", WARD_B)
        yield a, b
    finally:
        for agent in started:
            agent.proc.stop()


def _get(controller: ControllerHandle, path: str, token: str) -> tuple[int, Any]:
    return http_json("GET", controller.api + path, token)


def _raw(controller: ControllerHandle, path: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(controller.api + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _text(controller: ControllerHandle, path: str, token: str) -> str:
    status, body = _raw(controller, path, token)
    assert status == 200, body[:500]
    return body.decode("utf-8-sig")


def _post(controller: ControllerHandle, path: str, token: str, body: Any) -> tuple[int, Any]:
    return http_json("POST", controller.api + path, token, body)


def _starts(agent: RunningAgent) -> list[dict[str, Any]]:
    return [line for line in agent.sink_lines() if line["event"] == "start"]


def test_everyone_of_ward_a_is_a_only_and_staff_see_their_wards(
        controller: ControllerHandle, city: City, two_agents: tuple[RunningAgent, RunningAgent]) -> None:
    a1, b1 = two_agents
    status, accepted = _post(controller, "/api/v1/announcements", city.officer_a,
                             {"text": "Họp tổ dân phố lúc bảy giờ tối.", "targets": {"all": True}})
    assert status == 202, accepted
    assert accepted["targets"] == ["loa-a1"]
    ann = controller.wait_deliveries(accepted["id"], {"played"}, timeout=40)
    assert ann["ward"] == FIRST_WARD
    assert [d["agent_id"] for d in ann["deliveries"]] == ["loa-a1"]
    assert len(_starts(a1)) == 1
    # B's speaker heard nothing (it had as long as A's to get the command: A's has already finished).
    assert _starts(b1) == [], b1.sink_lines()
    assert "speaker.play" not in b1.log()

    status, b_accepted = _post(controller, "/api/v1/announcements", city.officer_b,
                               {"text": "Thông báo phường B.", "targets": {"zones": ["khu-pho-b"]}})
    assert status == 202, b_accepted
    controller.wait_deliveries(b_accepted["id"], {"played"}, timeout=40)
    assert len(_starts(a1)) == 1

    # Lists: own ward only; the city sees both.
    ids = {"a": accepted["id"], "b": b_accepted["id"]}
    assert [x["id"] for x in _get(controller, "/api/v1/announcements", city.officer_a)[1]] == [ids["a"]]
    assert [x["id"] for x in _get(controller, "/api/v1/announcements", city.officer_b)[1]] == [ids["b"]]
    assert {x["id"] for x in _get(controller, "/api/v1/announcements", city.city)[1]} == set(ids.values())
    # Another ward's announcement answers as an unknown one.
    unknown = _get(controller, "/api/v1/announcements/nope", city.officer_b)
    assert unknown[0] == 404
    foreign = _get(controller, f"/api/v1/announcements/{ids['a']}", city.officer_b)
    assert foreign == (404, {"detail": f"no announcement {ids['a']!r}"})

    # Proof of play: JSON and CSV filtered by ward.
    plays_a = _get(controller, "/api/v1/plays", city.officer_a)[1]
    assert {(p["agent_id"], p["ward"]) for p in plays_a} == {("loa-a1", FIRST_WARD)}
    assert {p["agent_id"] for p in _get(controller, "/api/v1/plays", city.officer_b)[1]} == {"loa-b1"}
    assert {p["agent_id"] for p in _get(controller, "/api/v1/plays", city.city)[1]} == {"loa-a1", "loa-b1"}
    csv_b = _text(controller, "/api/v1/plays?format=csv", city.officer_b)
    assert "loa-b1" in csv_b and "loa-a1" not in csv_b

    # Media: A's rendered speech is A's.
    sha = ann["media"]["sha256"]
    assert _raw(controller, f"/media/{sha}", city.officer_b)[0] == 404
    assert _raw(controller, f"/media/{sha}", city.officer_a)[0] == 200
    assert _raw(controller, f"/media/{sha}", city.city)[0] == 200

    # Naming another ward's speaker, zone or recording: the same 404 as an unknown name; nothing stored.
    before = len(_get(controller, "/api/v1/announcements", city.city)[1])
    for targets, words in (({"agents": ["loa-b1"]}, "unknown agent(s): loa-b1"),
                           ({"agents": ["ghost"]}, "unknown agent(s): ghost"),
                           ({"zones": ["khu-pho-b"]}, "unknown zone(s): khu-pho-b"),
                           ({"zones": ["khong-co"]}, "unknown zone(s): khong-co")):
        assert _post(controller, "/api/v1/announcements", city.officer_a,
                     {"text": "Thử", "targets": targets}) == (404, {"detail": words})
    assert _post(controller, "/api/v1/announcements", city.officer_b,
                 {"recording": sha, "targets": {"all": True}}) == (404, {"detail": f"no stored recording {sha}"})
    # City staff act in two wards: they say which; a ward not theirs to see is unknown.
    status, body = _post(controller, "/api/v1/announcements", city.city, {"text": "Thử", "targets": {"all": True}})
    assert status == 422 and "ward" in body["detail"], body
    assert _post(controller, "/api/v1/announcements", city.officer_a,
                 {"text": "Thử", "targets": {"all": True}, "ward": WARD_B}) \
        == (404, {"detail": f"ward {WARD_B} not found"})
    # Visible but not a composer there.
    assert _post(controller, "/api/v1/announcements", city.tech_b,
                 {"text": "Thử", "targets": {"all": True}, "ward": WARD_B})[0] == 403
    assert len(_get(controller, "/api/v1/announcements", city.city)[1]) == before
    # The city names the ward: B's speaker only.
    status, c_accepted = _post(controller, "/api/v1/announcements", city.city,
                               {"text": "Thành phố gửi phường B.", "targets": {"all": True}, "ward": WARD_B})
    assert status == 202 and c_accepted["targets"] == ["loa-b1"], c_accepted


def _live_row(db: Database, ward: str) -> str:
    session_id = uuid.uuid4().hex[:12]
    with db.session() as session:
        session.add(LiveSession(id=session_id, ward_id=ward, user_id=None, username="x", source="relay",
                                relay_url="http://127.0.0.1:9/s", priority="priority", title="Tiếp sóng",
                                zones=[], targets=[], status="ended", notes=[], recording=None,
                                recording_bytes=0))
    return session_id


def test_live_sessions_and_recordings_within_wards(controller: ControllerHandle, city: City) -> None:
    b_id = _live_row(city.db, WARD_B)
    a_id = _live_row(city.db, FIRST_WARD)
    assert [s["id"] for s in _get(controller, "/api/v1/live/sessions", city.officer_a)[1]] == [a_id]
    assert {s["id"] for s in _get(controller, "/api/v1/live/sessions", city.city)[1]} == {a_id, b_id}
    not_found = (404, {"detail": "no such live session"})
    assert _get(controller, f"/api/v1/live/sessions/{b_id}", city.officer_a) == not_found
    assert _post(controller, f"/api/v1/live/sessions/{b_id}/end", city.officer_a, {}) == not_found
    assert _get(controller, f"/api/v1/live/sessions/{b_id}/recording", city.officer_a)[0] == 403  # no approver
    # An approver of A: B's recording is unknown to them; one who sees B without approving there: 403.
    assert _get(controller, f"/api/v1/live/sessions/{b_id}/recording", city.mixed)[0] == 403
    status, _ = _get(controller, f"/api/v1/live/sessions/{a_id}/recording", city.mixed)
    assert status == 404  # theirs, but nothing was recorded
    with city.db.session() as session:
        row = session.get(LiveSession, b_id)
        assert row is not None and row.status == "ended" and row.ended_at is None
    # Starting: the ward named must be visible; staff of two wards must name one; another ward's agent is unknown.
    body = {"source": "relay", "relay_url": "http://127.0.0.1:9/s", "agents": ["loa-x"]}
    assert _post(controller, "/api/v1/live/sessions", city.officer_a,
                 {**body, "ward": WARD_B}) == (404, {"detail": f"ward {WARD_B} not found"})
    status, answer = _post(controller, "/api/v1/live/sessions", city.city, body)
    assert status == 422 and "ward" in answer["detail"], answer
    with city.db.session() as session:
        assert session.query(LiveSession).count() == 2
        assert session.query(Announcement).count() == 0


def _upload(controller: ControllerHandle, data: bytes, query: str = "") -> tuple[int, Any]:
    request = urllib.request.Request(controller.api + "/api/v1/media" + query, data=data, method="POST",
                                     headers={"Content-Type": "application/octet-stream",
                                              "Authorization": f"Bearer {controller.token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_uploads_belong_to_the_ward_named(controller: ControllerHandle, city: City, tmp_path: Path) -> None:
    wav = tmp_path / "siren.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=700:duration=2", "-ar", "48000", "-ac", "1", str(wav)], check=True, timeout=60)
    # The admin (granted on the city) of a two-ward site says which ward the recording is for.
    status, body = _upload(controller, wav.read_bytes())
    assert status == 422 and "ward" in body["detail"], body
    status, stored = _upload(controller, wav.read_bytes(), f"?ward={WARD_B}")
    assert status == 201, stored
    sha = stored["sha256"]
    assert _raw(controller, f"/media/{sha}", city.officer_a)[0] == 404
    assert _raw(controller, f"/media/{sha}", city.officer_b)[0] == 200
    # A's officer cannot announce B's recording: the same words as one never stored.
    assert _post(controller, "/api/v1/announcements", city.officer_a,
                 {"recording": sha, "targets": {"all": True}}) == (404, {"detail": f"no stored recording {sha}"})


def test_console_asks_staff_of_several_wards_which_one(controller: ControllerHandle, city: City) -> None:
    with city.db.session() as session:
        add_staff(session, [("officer", "city")], username="thanh-pho")
        add_staff(session, [("officer", WARD_B)], username="phuong-b")
    with console_client(controller, "thanh-pho", PASSWORD) as client:
        page = client.get("/console/announcements").text
        assert 'name="ward"' in page and f'value="{WARD_B}"' in page
        # Without a ward the form comes back asking for one; nothing is sent.
        assert client.post("/console/announcements", data={"text": "Họp", "everyone": "1"}).status_code == 422
    with console_client(controller, "phuong-b", PASSWORD) as client:
        assert 'name="ward"' not in client.get("/console/announcements").text
        csv_text = client.get("/console/reports/plays.csv").content.decode("utf-8-sig")
        assert csv_text.count("\n") == 1  # the header only: no play of ward A
    with city.db.session() as session:
        assert session.query(Announcement).count() == 0
