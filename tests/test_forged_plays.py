"""A stolen device forges proof of play and floods the controller; the rest of the fleet is unaffected.

Real Mosquitto with the project's generated config, the controller under uvicorn, a real agent
(loa-02). The thief is loa-01: registered, never started, and its own broker account used by a paho
client (client id = its username, as the broker binds them) to publish well-formed ``play.*`` events
on its own event topic, which its ACL allows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from alembic import command

from controller.fleet.play_guard import GIVEN_RETENTION_MS, give_plays, prune_given, was_given
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import Announcement, Delivery, Device, GivenPlay, LiveSession
from controller.tools.local_stack import http_json, register_agent
from devices.protocol import PlayFinished, PlayOutcome, PlayStarted, Priority, Topics, make_event, now_ms
from tests.conftest import AgentFactory, ControllerHandle


def forged_events(agent_id: str, count: int, claims: Sequence[str] = ()) -> list[tuple[str, bytes]]:
    """``count`` well-formed play events: first one per play id in ``claims``, then fresh play ids."""
    now = now_ms()
    events: list[tuple[str, bytes]] = []
    for i in range(count):
        play_id = claims[i] if i < len(claims) else f"forged{i:06d}" + "f" * 20
        if i % 2 == 0:
            started = PlayStarted(play_id=play_id, sha256="ab" * 32, priority=Priority.NORMAL, scheduled_start=now,
                                  actual_start=now + 5, output="speaker")
            env = make_event(agent_id, "play.started", started)
        else:
            finished = PlayFinished(play_id=play_id, sha256="ab" * 32, priority=Priority.NORMAL, scheduled_start=now,
                                    actual_start=now + 5, ended_at=now + 60_000, outcome=PlayOutcome.COMPLETED,
                                    output="speaker")
            env = make_event(agent_id, "play.finished", finished)
        events.append((Topics.event(agent_id, env.type), env.to_bytes()))
    return events


class StolenDevice:
    """A paho client on a registered device's own broker account, publishing QoS 1 as fast as it can."""

    def __init__(self, port: int, registered: dict[str, Any]) -> None:
        username = registered["mqtt_username"]
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, registered["mqtt_password"])
        self.client.on_publish = self._on_publish
        self.acked = 0
        self._lock = threading.Lock()
        self.port = port
        self.started_at = 0.0
        self.finished_at = 0.0
        self._last: mqtt.MQTTMessageInfo | None = None

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        with self._lock:
            self.acked += 1

    def __enter__(self) -> StolenDevice:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, events: Sequence[tuple[str, bytes]]) -> None:
        """Hands every event to paho (it sends them as the broker's receive window allows)."""
        self.started_at = time.monotonic()
        for topic, payload in events:
            self._last = self.client.publish(topic, payload, qos=1)

    def wait(self, total: int, timeout: float) -> None:
        """Until the broker has acknowledged ``total`` messages."""
        deadline = time.monotonic() + timeout
        while self.acked < total:
            assert time.monotonic() < deadline, f"broker acknowledged {self.acked} of {total}"
            time.sleep(0.05)
        self.finished_at = time.monotonic()


def devices_count(controller: ControllerHandle, agent_id: str, total: int) -> dict[str, Any] | None:
    """The device once every one of ``total`` messages is accounted for (suspicious or dropped)."""
    device = controller.device(agent_id)
    return device if device["suspicious_plays"] + device["inbox_dropped"] >= total else None


def plays_of(controller: ControllerHandle, query: str = "") -> list[dict[str, Any]]:
    status, plays = controller.get(f"/api/v1/plays?limit=1000{query}")
    assert status == 200, plays
    assert isinstance(plays, list)
    return plays


def announce(controller: ControllerHandle, agent_id: str, text: str) -> str:
    status, body = controller.post("/api/v1/announcements", {"text": text, "targets": [agent_id]})
    assert status == 202, body
    ann_id: str = body["id"]
    return ann_id


def test_forged_proof_of_play_is_counted_not_stored(controller: ControllerHandle, agents: AgentFactory) -> None:
    agents("loa-02", zones=("khu-pho-2",))
    stolen = register_agent(controller.api, controller.token, "loa-01", ["khu-pho-1"])
    first = controller.wait_deliveries(announce(controller, "loa-02", "Thông báo thử loa."), {"played"}, 40)
    real_play = first["deliveries"][0]["command_id"]

    # Fresh play ids, plus loa-02's real play and a live session that never existed, claimed by loa-01.
    forged = forged_events("loa-01", 2000, claims=[real_play] * 4 + ["live-" + "0" * 32] * 2)
    with StolenDevice(controller.mqtt_port, stolen) as thief:
        thief.send(forged)
        thief.wait(len(forged), 60)
        device = controller.wait_for(lambda: devices_count(controller, "loa-01", len(forged)), 60,
                                     "every forged event counted")

    print(f"\nforged {len(forged)}: suspicious {device['suspicious_plays']}, dropped {device['inbox_dropped']}, "
          f"plays stored for loa-01: {len(plays_of(controller, '&agent_id=loa-01'))}")
    assert device["suspicious_plays"] == len(forged) and device["inbox_dropped"] == 0
    assert device["suspicious_at"] is not None
    assert plays_of(controller, "&agent_id=loa-01") == []
    assert [(p["agent_id"], p["play_id"]) for p in plays_of(controller)] == [("loa-02", real_play)]
    # Logged and recorded, but once a minute per device, not once per forged event.
    assert 1 <= controller.proc.log_text().count("was never given") <= 2
    with sqlite3.connect(f"file:{controller.data_dir / 'loaphuong.sqlite3'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT data FROM device_events WHERE agent_id = 'loa-01' "
                          "AND type = 'play.suspicious'").fetchall()
    assert 1 <= len(rows) <= 2 and all(json.loads(r[0])["count"] >= 1 for r in rows), rows

    # The real device's proof of play is stored as before.
    ann_id = announce(controller, "loa-02", "Thông báo thứ hai.")
    second = controller.wait_deliveries(ann_id, {"played"}, 40)
    assert second["deliveries"][0]["play"]["outcome"] == "completed"
    assert controller.device("loa-02")["suspicious_plays"] == 0


def test_a_flooding_device_does_not_crowd_out_the_others(controller: ControllerHandle, agents: AgentFactory) -> None:
    agents("loa-02", zones=("khu-pho-2",))
    stolen = register_agent(controller.api, controller.token, "loa-01", ["khu-pho-1"])
    flood = forged_events("loa-01", 20_000)

    with StolenDevice(controller.mqtt_port, stolen) as thief:
        thief.send(flood)
        # Under way: the controller is receiving it while the fleet is asked to work.
        controller.wait_for(lambda: thief.acked >= 2000, 60, "the flood to be under way")
        ann_id = announce(controller, "loa-02", "Thông báo trong lúc bị tấn công.")
        op_started = time.monotonic()
        # Waited for up to 25 s: answering at all is what is checked (the time is reported, not asserted).
        status, reply = http_json("POST", f"{controller.api}/api/v1/devices/loa-02/ops/volume?wait_s=25",
                                  controller.token, {"volume": 70}, timeout=30)
        op_took = time.monotonic() - op_started
        acked_at_op = thief.acked
        thief.wait(len(flood), 120)
        published_s = thief.finished_at - thief.started_at
        ann = controller.wait_deliveries(ann_id, {"played"}, 60)
        device = controller.wait_for(lambda: devices_count(controller, "loa-01", len(flood)), 120,
                                     "every flooding event counted")

    assert status == 200, reply
    assert reply["status"] == "ok" and reply["data"] == {"volume": 70}
    play = ann["deliveries"][0]["play"]
    assert play is not None and play["outcome"] == "completed"
    assert [p["agent_id"] for p in plays_of(controller, f"&announcement_id={ann_id}")] == ["loa-02"]
    assert plays_of(controller, "&agent_id=loa-01") == []
    assert device["suspicious_plays"] + device["inbox_dropped"] == len(flood)
    assert device["inbox_dropped"] > 0
    loa02 = controller.device("loa-02")
    assert loa02["online"] and loa02["inbox_dropped"] == 0 and loa02["suspicious_plays"] == 0
    print(f"\nflood {len(flood)} in {published_s:.1f} s: suspicious {device['suspicious_plays']}, "
          f"dropped {device['inbox_dropped']}, plays stored for loa-01: 0; loa-02's volume op answered in "
          f"{op_took * 1000:.0f} ms with {acked_at_op} of the flood in; its announcement played "
          f"({play['start_offset_ms']} ms from its start) and its proof of play is stored")


# ------------------------------------------------------------------ the rule itself, on a real database


def test_was_given_knows_deliveries_windows_tones_and_live_sessions(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    migrate.upgrade(db.engine)
    now = now_ms()
    with db.session() as session:
        session.add_all([Device(id="loa-01", token_hash="a"), Device(id="loa-02", token_hash="b")])
        session.add(Announcement(id="a1", text="t", priority="normal", targets=["khu-pho-1"]))
        session.flush()
        session.add(Delivery(announcement_id="a1", agent_id="loa-01", command_id="c" * 32, exp_ms=now))
        session.add(LiveSession(id="s1", username="u", source="microphone", priority="normal",
                                targets=["loa-01"]))
        assert give_plays(session, "loa-01", [("item-0-1", now), ("t" * 32, now)], "window") == 2
        assert give_plays(session, "loa-01", [("item-0-1", now), ("item-0-2", now)], "window") == 1
    with db.session() as session:
        for play_id in ("c" * 32, "item-0-1", "item-0-2", "t" * 32, "live-s1"):
            assert was_given(session, "loa-01", play_id), play_id
            assert not was_given(session, "loa-02", play_id), play_id
        assert not was_given(session, "loa-01", "live-s2")
        assert not was_given(session, "loa-01", "d" * 32)
        assert not was_given(session, "loa-01", "item-0-3")
    with db.session() as session:
        session.add(GivenPlay(agent_id="loa-02", play_id="old-0-1", source="window",
                              start_ms=now - GIVEN_RETENTION_MS - 1))
    with db.session() as session:
        assert prune_given(session, now) == 1
        assert was_given(session, "loa-01", "item-0-1")


def test_upgrade_gives_the_plays_of_windows_already_sent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    engine = sa.create_engine(url)
    cfg = migrate.alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
    window = {"v": 1, "id": "w", "type": "schedule.window", "ts": 1,
              "data": {"version": 3, "plays": [{"play_id": "it1-0-1000", "start_at": 1000},
                                               {"play_id": "it1-0-2000", "start_at": 2000}]}}
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO devices (id, name, zones, token_hash, enabled, status, capabilities, "
                             "outputs, created_at) VALUES ('loa-01', '', '[]', 'h', 1, 'unknown', '[]', '[]', "
                             "'2026-01-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO agent_schedules (agent_id, version, digest, plays, window_end_ms, payload, "
                             "pushed_at, published) VALUES ('loa-01', 3, 'd', 2, 3000, :p, '2026-01-01 00:00:00', 1)"),
                     {"p": json.dumps(window)})
    engine.dispose()
    db = Database(url)
    migrate.upgrade(db.engine)
    with db.session() as session:
        assert was_given(session, "loa-01", "it1-0-1000") and was_given(session, "loa-01", "it1-0-2000")
        device = session.get(Device, "loa-01")
        assert device is not None and device.suspicious_plays == 0 and device.inbox_dropped == 0
