"""The controller's outbox (controller/messaging/outbox.py) on real components.

In-process tests run the real ``Outbox`` on a real SQLite database and a real Mosquitto, and watch the
broker with a second client; the end-to-end ones run the controller and agents as processes and stop
the broker, or kill the controller with SIGKILL between the commit and the publish.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from sqlalchemy import select

from controller.fleet.remote_ops import OpError, OpsService
from controller.messaging.outbox import BrokerUnavailable, Outbox
from controller.messaging.routes import _reverse, route
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import (
    FIRST_WARD,
    AgentSchedule,
    Announcement,
    Delivery,
    Device,
    GroupCommand,
    OutboxMessage,
)
from controller.tools.local_stack import (
    broker_security,
    free_port,
    register_agent,
    start_agent,
    start_controller,
    write_agent_config,
)
from devices.mqtt_link import LinkSettings, MqttLink
from devices.protocol import (
    AgentStatus,
    Ping,
    Priority,
    ProtocolError,
    ScheduleWindow,
    Signer,
    SpeakerLive,
    SpeakerPlay,
    StatusPayload,
    Topics,
    now_ms,
    ward_capability,
    ward_target,
    zone_target,
)
from tests.conftest import Broker, ControllerHandle
from tests.mqtt_tools import client_for, wait_for_text

SHA = "ab" * 32


def _database(tmp_path: Path, *agents: str) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    migrate.upgrade(db.engine)
    with db.session() as session:
        for agent_id in agents:
            session.add(Device(id=agent_id, zones=["khu-1"], token_hash=agent_id * 4))
    return db


def _play(priority: Priority = Priority.NORMAL, title: str = "") -> SpeakerPlay:
    return SpeakerPlay(sha256=SHA, size=1000, duration_ms=1000, start_at=now_ms() + 60_000, priority=priority,
                       title=title)


def _rows(db: Database) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def _until(predicate: Callable[[], Any], within: float, what: str) -> Any:
    """Polls (off the loop, the predicates read the database) until ``predicate`` is truthy."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


class Watcher:
    """A second MQTT client on a tool account that records what arrives, in order."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = client_for(port)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10), "the watcher's subscription was not acknowledged"

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def ids(self) -> list[str]:
        """The envelope ids received, in order."""
        with self._lock:
            return [json.loads(payload)["id"] for _topic, payload, _retain in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def watching(port: int, topic: str = "lp/v1/#") -> Iterator[Watcher]:
    watcher = Watcher(port, topic)
    try:
        yield watcher
    finally:
        watcher.close()


class Running:
    """An outbox on a real link; its publisher task is started by :meth:`publish`."""

    def __init__(self, db: Database, port: int) -> None:
        sec = broker_security(port)
        user = sec.username if sec else "outbox-test"
        self.link = MqttLink(LinkSettings(host="127.0.0.1", port=port, client_id=user, username=user,
                                          password=sec.password if sec else None, backoff_max_s=1.0),
                             lambda *_args: None)
        self.outbox = Outbox(db, Signer(Ed25519PrivateKey.generate()), self.link, poll_s=0.2)
        self.tasks = [asyncio.create_task(self.link.run())]

    def publish(self) -> None:
        self.tasks.append(asyncio.create_task(self.outbox.run()))

    async def close(self) -> None:
        await self.outbox.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@asynccontextmanager
async def running(db: Database, port: int, *, publisher: bool = True,
                  connected: bool = True) -> AsyncIterator[Running]:
    run = Running(db, port)
    try:
        if connected:
            await asyncio.wait_for(run.link.connected.wait(), 15)
        if publisher:
            run.publish()
        yield run
    finally:
        await asyncio.wait_for(run.close(), 15)


# --------------------------------------------------------------------------------------------------
# Routes


def test_the_type_and_topic_follow_from_the_model() -> None:
    class Twice(BaseModel):
        pass

    with pytest.raises(RuntimeError, match="model of both"):
        _reverse({"a.one": Twice, "a.two": Twice})
    r = route(_play(), zone_target(["khu-1", "khu-2"]))
    assert (r.kind, r.topics, r.retain, r.signed) == (
        "speaker.play", (Topics.group_command("khu-1", "speaker.play"), Topics.group_command("khu-2", "speaker.play")),
        False, True)
    assert route(_play(), "loa-01").topics == (Topics.command("loa-01", "speaker.play"),)
    window = ScheduleWindow(version=1, window_start=0, window_end=1)
    assert route(window, "loa-01").topics == (Topics.schedule("loa-01"),) and route(window, "loa-01").retain
    assert route(StatusPayload(status=AgentStatus.ONLINE), None).topics == (Topics.CONTROLLER_STATUS,)
    assert route(StatusPayload(status=AgentStatus.OFFLINE), "loa-01").topics == (Topics.status("loa-01"),)
    with pytest.raises(ProtocolError):
        route(_play(), None)
    with pytest.raises(ProtocolError):
        route(Twice(), "loa-01")


# --------------------------------------------------------------------------------------------------
# In-process, real broker and database


async def test_a_command_whose_transaction_rolls_back_is_never_published(tmp_path: Path, broker: Broker) -> None:
    db = _database(tmp_path, "loa-01")
    with watching(broker.port, "lp/v1/agent/loa-01/cmd/#") as watcher:
        async with running(db, broker.port) as run:
            def rolled_back() -> str:
                with pytest.raises(RuntimeError), db.session() as session:
                    doomed = run.outbox.send(session, _play(title="doomed"), "loa-01", ttl_ms=60_000)
                    session.flush()  # the row was really written in the transaction, then undone
                    raise RuntimeError("the change failed")
                assert doomed.id is not None
                return doomed.id

            doomed_id = await asyncio.to_thread(rolled_back)

            def committed() -> str:
                with db.session() as session:
                    kept = run.outbox.send(session, _play(title="kept"), "loa-01", ttl_ms=60_000)
                assert kept.id is not None
                return kept.id

            kept_id = await asyncio.to_thread(committed)
            await _until(lambda: kept_id in watcher.ids(), 15, "the committed command at the broker")
            await _until(lambda: [r.status for r in _rows(db)] == ["sent"], 15, "the row settled")
            await asyncio.sleep(1.0)  # five polls more: nothing else may come
    assert watcher.ids() == [kept_id] and doomed_id not in watcher.ids()
    assert [r.command_id for r in _rows(db)] == [kept_id]
    db.dispose()


async def test_emergency_goes_out_before_what_waited_longer(tmp_path: Path, broker: Broker) -> None:
    db = _database(tmp_path, "loa-01")
    with watching(broker.port, "lp/v1/agent/loa-01/cmd/#") as watcher:
        async with running(db, broker.port, publisher=False) as run:
            def write(priority: Priority) -> str:
                with db.session() as session:
                    cmd = run.outbox.send(session, _play(priority), "loa-01", ttl_ms=60_000, priority=priority)
                assert cmd.id is not None
                return cmd.id

            normal = [await asyncio.to_thread(write, Priority.NORMAL) for _ in range(3)]
            urgent = await asyncio.to_thread(write, Priority.PRIORITY)
            alarm = await asyncio.to_thread(write, Priority.EMERGENCY)
            run.publish()
            await _until(lambda: len(watcher.ids()) == 5, 15, "five commands at the broker")
            await _until(lambda: {r.status for r in _rows(db)} == {"sent"}, 15, "every row settled")
    got = watcher.ids()
    assert got[:2] == [alarm, urgent], got
    assert set(got[2:]) == set(normal)
    db.dispose()


async def test_expired_rows_and_their_deliveries_are_marked_expired(tmp_path: Path) -> None:
    db = _database(tmp_path, "loa-01", "loa-02")
    dead_port = free_port()  # no broker there: nothing can be published
    async with running(db, dead_port, connected=False) as run:
        def write(ann_id: str, ttl_ms: int, to: str) -> str:
            with db.session() as session:
                session.add(Announcement(id=ann_id, text="x", priority="normal", targets=[to], status="sent"))
                cmd = run.outbox.send(session, _play(), to, ttl_ms=ttl_ms)
                assert cmd.id is not None
                if to.startswith("zone:"):
                    session.add(GroupCommand(id=cmd.id, announcement_id=ann_id, topics=list(cmd.route.topics),
                                             payload=cmd.payload.decode(), exp_ms=cmd.exp_ms or 0, status="queued"))
                    session.flush()
                    for agent_id in ("loa-01", "loa-02"):
                        session.add(Delivery(announcement_id=ann_id, agent_id=agent_id, command_id=cmd.id,
                                             group_id=cmd.id, exp_ms=cmd.exp_ms or 0, status="queued"))
                else:
                    session.add(Delivery(announcement_id=ann_id, agent_id=to, command_id=cmd.id,
                                         exp_ms=cmd.exp_ms or 0, status="queued"))
                return cmd.id

        short = await asyncio.to_thread(write, "a" * 32, 300, zone_target(["khu-1"]))
        long = await asyncio.to_thread(write, "b" * 32, 600_000, "loa-01")

        def short_expired() -> bool:
            return any(r.command_id == short and r.status == "expired" for r in _rows(db))

        await _until(short_expired, 15, "the short-lived row expired")
    with db.session() as session:
        rows = {r.command_id: r for r in session.scalars(select(OutboxMessage))}
        assert rows[long].status == "pending"  # still waiting for the broker, not lost
        group = session.get(GroupCommand, short)
        assert group is not None and group.status == "expired"
        deliveries = {(d.command_id, d.agent_id): d for d in session.scalars(select(Delivery))}
    assert {deliveries[(short, a)].status for a in ("loa-01", "loa-02")} == {"expired"}
    assert deliveries[(short, "loa-01")].error == "expired before the broker could take it"
    assert deliveries[(long, "loa-01")].status == "queued"
    db.dispose()


async def test_deliveries_move_to_sent_and_a_document_is_published_only_while_it_is_current(
        tmp_path: Path, broker: Broker) -> None:
    db = _database(tmp_path, "loa-01", "loa-02", "loa-03")
    with watching(broker.port) as watcher:
        async with running(db, broker.port, publisher=False) as run:
            def write() -> str:
                now = now_ms()
                with db.session() as session:
                    for agent_id, stored in (("loa-01", 1), ("loa-02", 2), ("loa-03", 2)):
                        # loa-02's stored window was rebuilt (version 2) after version 1 was written.
                        session.add(AgentSchedule(agent_id=agent_id, version=stored, digest="d", plays=0,
                                                  window_end_ms=now + 3_600_000, payload="{}", published=False))
                        for version in range(1, stored + 1) if agent_id == "loa-03" else (1,):
                            run.outbox.send(session, ScheduleWindow(version=version, window_start=now,
                                                                    window_end=now + 3_600_000),
                                            agent_id, ttl_ms=3_600_000, ref=str(version))
                    session.add(Announcement(id="c" * 32, text="x", priority="normal", targets=["loa-01"],
                                             status="sent"))
                    cmd = run.outbox.send(session, _play(), "loa-01", ttl_ms=60_000)
                    assert cmd.id is not None
                    session.add(Delivery(announcement_id="c" * 32, agent_id="loa-01", command_id=cmd.id,
                                         exp_ms=cmd.exp_ms or 0, status="queued"))
                    return cmd.id

            play_id = await asyncio.to_thread(write)
            # loa-03's version 1 was superseded by version 2 before anyone took it.
            assert sorted(r.status for r in _rows(db) if r.target == "loa-03") == ["pending", "superseded"]
            run.publish()
            await _until(lambda: not any(r.status == "pending" for r in _rows(db)), 15, "every row settled")
    with db.session() as session:
        published = {s.agent_id: s.published for s in session.scalars(select(AgentSchedule))}
        delivery = session.scalars(select(Delivery).where(Delivery.command_id == play_id)).one()
    assert published == {"loa-01": True, "loa-02": False, "loa-03": True}
    assert delivery.status == "sent"
    schedules = [(topic, json.loads(payload)["data"]["version"], retain) for topic, payload, retain in watcher.messages
                 if topic.endswith("/schedule")]
    assert sorted(schedules) == [(Topics.schedule("loa-01"), 1, False), (Topics.schedule("loa-02"), 1, False),
                                 (Topics.schedule("loa-03"), 2, False)]  # live copies: retain only on a late join
    with watching(broker.port, "lp/v1/agent/+/schedule") as late:
        await _until(lambda: len(late.messages) == 3, 10, "the retained windows for a late subscriber")
    assert {(t, r) for t, _p, r in late.messages} == {(Topics.schedule(a), True)
                                                      for a in ("loa-01", "loa-02", "loa-03")}
    db.dispose()


async def test_the_direct_path_raises_broker_unavailable_and_writes_nothing(tmp_path: Path) -> None:
    db = _database(tmp_path, "loa-01")
    async with running(db, free_port(), connected=False) as run:
        with pytest.raises(BrokerUnavailable):
            await run.outbox.send_now(Ping(), "loa-01", ttl_ms=30_000)
        with pytest.raises(BrokerUnavailable):
            await run.outbox.send_now(SpeakerLive(session_id="L0123456789abcdef", url="http://127.0.0.1/x.ogg",
                                                  token="t" * 32, priority=Priority.PRIORITY),
                                      "loa-01", ttl_ms=30_000)
        with pytest.raises(OpError) as refused:
            await OpsService(run.outbox).run("loa-01", "volume", {"volume": 40}, 1.0)
        assert refused.value.code == "link_down"
    assert _rows(db) == []
    db.dispose()


def test_commands_the_old_sender_left_queued_are_in_the_outbox_after_the_upgrade(tmp_path: Path) -> None:
    # What the old sender left: signed commands stored queued in group_commands and deliveries. Written at
    # the newest schema, then taken back to 0010 (which drops the outbox), so the upgrade meets them.
    db = _database(tmp_path, "loa-01", "loa-02")
    signer = Signer(Ed25519PrivateKey.generate())
    group = signer.command("speaker.play", _play(Priority.EMERGENCY), to=zone_target(["khu-1"]), ttl_ms=60_000)
    direct = signer.command("speaker.play", _play(), to="loa-02", ttl_ms=60_000)
    gone = signer.command("speaker.play", _play(), to="loa-01", ttl_ms=60_000)
    with db.session() as session:
        for ann, prio in (("e" * 32, "emergency"), ("n" * 32, "normal")):
            session.add(Announcement(id=ann, text="x", priority=prio, targets=[], status="sent"))
        session.add(GroupCommand(id=group.id, announcement_id="e" * 32, payload=group.to_bytes().decode(),
                                 topics=[Topics.group_command("khu-1", "speaker.play")], exp_ms=group.exp,
                                 status="queued"))
        session.flush()
        session.add_all([
            Delivery(announcement_id="e" * 32, agent_id="loa-01", command_id=group.id, group_id=group.id,
                     exp_ms=group.exp, status="queued"),
            Delivery(announcement_id="n" * 32, agent_id="loa-02", command_id=direct.id,
                     topic=Topics.command("loa-02", "speaker.play"), payload=direct.to_bytes().decode(),
                     exp_ms=direct.exp, status="queued"),
            Delivery(announcement_id="n" * 32, agent_id="loa-01", command_id=gone.id,  # already sent: stays out
                     topic=Topics.command("loa-01", "speaker.play"), payload=gone.to_bytes().decode(),
                     exp_ms=gone.exp, status="sent"),
        ])
    migrate.downgrade(db.engine, "0010")
    migrate.upgrade(db.engine)
    rows = _rows(db)
    assert [(r.command_id, r.kind, r.target, r.topics, r.priority, r.status, r.exp_ms) for r in rows] == [
        (group.id, "speaker.play", "zone:khu-1", [Topics.group_command("khu-1", "speaker.play")], 2, "pending",
         group.exp),
        (direct.id, "speaker.play", "loa-02", [Topics.command("loa-02", "speaker.play")], 0, "pending", direct.exp),
    ]
    assert [r.payload for r in rows] == [group.to_bytes().decode(), direct.to_bytes().decode()]
    db.dispose()


# --------------------------------------------------------------------------------------------------
# End to end: the controller and agents as processes


def _outbox_rows(data_dir: Path) -> list[tuple[str, str | None, str]]:
    """(kind, target, status) of the controller's outbox, read beside it (SQLite WAL: a reader never blocks)."""
    conn = sqlite3.connect(f"file:{data_dir / 'loaphuong.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return [(k, t, s) for k, t, s in conn.execute("SELECT kind, target, status FROM outbox ORDER BY id")]
    finally:
        conn.close()


def _pending_plays(data_dir: Path) -> list[tuple[str, str | None, str]]:
    return [r for r in _outbox_rows(data_dir) if r[0] == "speaker.play" and r[2] == "pending"]


def test_a_broker_outage_delays_commands_and_loses_none(tmp_path: Path, broker: Broker,
                                                        controller: ControllerHandle) -> None:
    procs = []
    try:
        for agent_id, zone in (("loa-01", "khu-1"), ("loa-02", "khu-2")):
            registered = register_agent(controller.api, controller.token, agent_id, [zone])
            files = write_agent_config(tmp_path / "agents" / agent_id, registered, [zone])
            procs.append(start_agent(files, tmp_path / f"{agent_id}.log"))
        for agent_id in ("loa-01", "loa-02"):
            # Online, and on its ward's group topics (its info says so), where the zone's command goes.
            controller.wait_for(lambda a=agent_id: controller.device(a)["online"] and ward_capability(FIRST_WARD)
                                in controller.device(a)["capabilities"], 20, f"{agent_id} online")
        broker.stop()
        controller.wait_for(lambda: controller.get("/healthz")[1]["mqtt"] == "disconnected", 15, "link down")
        status, body = controller.post("/api/v1/announcements", {"text": "Thông báo khi mất kết nối.",
                                                                 "targets": ["zone:khu-1", "loa-02"]})
        assert status == 202, body
        controller.wait_for(lambda: controller.announcement(body["id"])["status"] == "sent", 30, "speech rendered")
        # Written, waiting for the broker: one group command for the zone, one command for loa-02.
        pending = controller.wait_for(lambda: _pending_plays(controller.data_dir), 10, "the commands in the outbox")
        assert sorted(t or "" for _k, t, _s in pending) == ["loa-02", ward_target(FIRST_WARD, ["khu-1"])]
        assert {d["status"] for d in controller.announcement(body["id"])["deliveries"]} == {"queued"}
        broker.start()
        ann = controller.wait_deliveries(body["id"], {"played"}, timeout=90)
        assert sorted(d["agent_id"] for d in ann["deliveries"]) == ["loa-01", "loa-02"]
        assert {d["play"]["outcome"] for d in ann["deliveries"]} == {"completed"}
        assert not _pending_plays(controller.data_dir)
    finally:
        for proc in procs:
            proc.stop()


def test_a_command_committed_before_a_kill_9_is_published_after_restart(
        tmp_path: Path, broker: Broker, controller_factory: Callable[..., ControllerHandle]) -> None:
    # The publisher is held: the command is committed and nothing publishes it before the kill.
    controller = controller_factory(broker.port, env={"LP_OUTBOX_HOLD": "1"})
    controller.wait_for(lambda: controller.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    wait_for_text(controller.proc.log_text, "the outbox is held")
    registered = register_agent(controller.api, controller.token, "loa-01", ["khu-1"])
    files = write_agent_config(tmp_path / "agents" / "loa-01", registered, ["khu-1"])
    agent = start_agent(files, tmp_path / "loa-01.log")
    try:
        controller.wait_for(lambda: controller.device("loa-01")["online"], 20, "loa-01 online")
        status, body = controller.post("/api/v1/announcements", {"text": "Lệnh còn trong hộp thư đi.",
                                                                 "targets": ["loa-01"]})
        assert status == 202, body
        controller.wait_for(lambda: controller.announcement(body["id"])["status"] == "sent", 30, "speech rendered")
        assert [t for _k, t, _s in _pending_plays(controller.data_dir)] == ["loa-01"]
        controller.proc.signal(signal.SIGKILL)
        controller.wait_for(lambda: not controller.proc.alive, 10, "the controller dead")
        assert not (files.sink_dir / "plays.jsonl").exists()  # nothing reached the agent before the kill
        port = int(controller.api.rsplit(":", 1)[1])
        controller.proc = start_controller(controller.data_dir, port, broker.port, tmp_path / "controller-again.log")
        ann = controller.wait_deliveries(body["id"], {"played"}, timeout=60)
        assert ann["deliveries"][0]["play"]["outcome"] == "completed"
        assert "resuming 1 queued deliveries" in controller.proc.log_text()
        assert not _pending_plays(controller.data_dir)
    finally:
        agent.stop()
