"""Isolation at the broker (issue 18, item 4), with real Mosquitto, real clients, the real controller and agents:
an agent of ward A can neither read nor write anything of ward B; "all" of a ward is one publish that reaches
that ward alone; an agent configured before wards keeps playing and is moved to its ward's topics by the
controller; a device moved to another ward hears nothing more of the old one, with its old or new password."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import select

from controller.fleet.broker_accounts import BrokerAccount, agent_acl, hash_password, render_acl_file
from controller.storage.engine import Database
from controller.storage.models import FIRST_WARD, Delivery, GroupCommand
from controller.tools.local_stack import broker_security, http_json, start_agent
from devices.protocol import (
    ALL_ZONE,
    ProtocolError,
    Signer,
    SpeakerStop,
    TopicInfo,
    Topics,
    Verifier,
    parse_topic,
    ward_target,
    zone_target,
)
from tests.conftest import ControllerHandle, RunningAgent
from tests.mqtt_tools import controller_signer, publish
from tests.test_broker_security import SecuredBroker, secured  # noqa: F401 -- the fixture, used by name
from tests.ward_support import start_ward_agent, ward_database

WARD_B = "ward-b"


# ------------------------------------------------------------------------------------ protocol, no broker


def test_ward_topics_and_targets_round_trip() -> None:
    assert Topics.ward_command("ward-a", "speaker.play") == "lp/v1/ward/ward-a/all/cmd/speaker.play"
    assert Topics.ward_zone_command("ward-a", "kp-1", "speaker.stop") == "lp/v1/ward/ward-a/zone/kp-1/cmd/speaker.stop"
    assert parse_topic("lp/v1/ward/ward-a/all/cmd/speaker.play") == TopicInfo("cmd", ward="ward-a",
                                                                              msg_type="speaker.play")
    assert parse_topic("lp/v1/ward/ward-a/zone/kp-1/cmd/x.y") == TopicInfo("cmd", ward="ward-a", zone="kp-1",
                                                                           msg_type="x.y")
    for bad in ("lp/v1/ward/Ward/all/cmd/x", "lp/v1/ward/w/zone/cmd/x", "lp/v1/ward/w/all/x", "lp/v1/ward/w"):
        with pytest.raises(ProtocolError):
            parse_topic(bad)
    assert ward_target("ward-a") == "ward:ward-a"
    assert ward_target("ward-a", ["kp-1", "kp-2", "kp-1"]) == "ward:ward-a/zone:kp-1,kp-2"
    assert Topics.agent_subscriptions("loa-1", ["kp-1"], "ward-a")[-2:] == [
        "lp/v1/ward/ward-a/all/cmd/+", "lp/v1/ward/ward-a/zone/kp-1/cmd/+"]
    assert "lp/v1/group/all/cmd/+" in Topics.agent_subscriptions("loa-1", ["kp-1"])  # no ward: the legacy tree


def _verify(verifier: Verifier, signer: Signer, to: str, topic: str) -> str:
    env = signer.command("speaker.stop", SpeakerStop(), to=to, ttl_ms=60_000)
    try:
        verifier.verify(env.to_bytes(), parse_topic(topic))
    except ProtocolError as exc:
        return exc.reason
    return "ok"


def test_the_verifier_takes_only_its_own_wards_groups() -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    ward_agent = Verifier(signer.public_key, "loa-1", ["kp-1"], lambda _i, _e: False, ward="ward-a")
    stop = "speaker.stop"
    zone_1 = Topics.ward_zone_command("ward-a", "kp-1", stop)
    assert _verify(ward_agent, signer, "ward:ward-a", Topics.ward_command("ward-a", stop)) == "ok"
    assert _verify(ward_agent, signer, "ward:ward-a/zone:kp-1", zone_1) == "ok"
    # Another ward's command, even replayed onto this ward's topic, or a legacy one (even "all"): refused.
    assert _verify(ward_agent, signer, "ward:ward-b", Topics.ward_command("ward-a", stop)) == "wrong_target"
    assert _verify(ward_agent, signer, "ward:ward-b", Topics.ward_command("ward-b", stop)) == "wrong_target"
    assert _verify(ward_agent, signer, zone_target([ALL_ZONE]), Topics.group_command(ALL_ZONE, stop)) == "wrong_target"
    assert _verify(ward_agent, signer, "zone:kp-1", Topics.group_command("kp-1", stop)) == "wrong_target"
    # A ward command moved onto a zone's topic, or a zone's onto the ward's: refused.
    assert _verify(ward_agent, signer, "ward:ward-a", zone_1) == "wrong_target"
    assert _verify(ward_agent, signer, "ward:ward-a/zone:kp-1", Topics.ward_command("ward-a", stop)) == "wrong_target"
    assert _verify(ward_agent, signer, "ward:ward-a/zone:kp-2", Topics.ward_zone_command("ward-a", "kp-2", stop)) \
        == "wrong_target"
    # An agent without a ward works as before wards; once given its ward, it moves.
    legacy = Verifier(signer.public_key, "loa-2", ["kp-1"], lambda _i, _e: False)
    assert _verify(legacy, signer, zone_target([ALL_ZONE]), Topics.group_command(ALL_ZONE, stop)) == "ok"
    assert _verify(legacy, signer, "ward:ward-a", Topics.ward_command("ward-a", stop)) == "wrong_target"
    legacy.set_groups("ward-a", ["kp-1"])
    assert _verify(legacy, signer, "ward:ward-a", Topics.ward_command("ward-a", stop)) == "ok"
    assert _verify(legacy, signer, zone_target([ALL_ZONE]), Topics.group_command(ALL_ZONE, stop)) == "wrong_target"


def test_acl_reads_own_ward_only_and_the_fleet_wide_all_only_with_one_ward() -> None:
    read, write = agent_acl("loa-a", ["kp-a"], "ward-a", legacy=False, fleet_wide=False)
    assert read == [*Topics.own_subscriptions("loa-a"), "lp/v1/ward/ward-a/all/cmd/+",
                    "lp/v1/ward/ward-a/zone/kp-a/cmd/+"]
    assert all(t.startswith("lp/v1/agent/loa-a/") for t in write)
    read, _ = agent_acl("loa-a", ["kp-a"], "ward-a", legacy=True, fleet_wide=False)
    assert "lp/v1/group/kp-a/cmd/+" in read and "lp/v1/group/all/cmd/+" not in read
    one = render_acl_file("ctl", [BrokerAccount("loa-a", "h", ("kp-a",), "ward-a")])
    two = render_acl_file("ctl", [BrokerAccount("loa-a", "h", ("kp-a",), "ward-a"),
                                  BrokerAccount("loa-b", "h", ("kp-b",), WARD_B)])
    assert "topic read lp/v1/group/all/cmd/+" in one and "lp/v1/group/all" not in two


# ----------------------------------------------------------------------------------- real broker, raw clients


@dataclass
class Probe:
    """A paho client that records its SUBACK reason codes and the messages it gets."""

    port: int
    username: str
    password: str
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    granted: dict[str, int] = field(default_factory=dict)
    clean_start: bool = True

    def __post_init__(self) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.username, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(self.username, self.password)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.reconnect_delay_set(60, 60)
        self._answer: list[int] = []
        self._connack = threading.Event()
        self.client.on_connect = self._on_connect

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self._answer.append(rc.value)
        self._connack.set()

    def connect(self) -> int:
        """The CONNACK reason code (0: accepted)."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0 if self.clean_start else 3600
        self.client.connect("127.0.0.1", self.port, keepalive=10, clean_start=self.clean_start, properties=props)
        self.client.loop_start()
        assert self._connack.wait(5), "no CONNACK"
        return self._answer[-1]

    def subscribe(self, *topics: str) -> None:
        done = threading.Event()

        def on_subscribe(_c: object, _u: object, _mid: int, codes: list[ReasonCode], _p: object) -> None:
            for topic, code in zip(topics, codes, strict=True):
                self.granted[topic] = code.value
            done.set()

        self.client.on_subscribe = on_subscribe
        self.client.subscribe([(t, 1) for t in topics])
        assert done.wait(5), "SUBACK missing"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _reload(b: SecuredBroker, accounts: list[BrokerAccount], version: str) -> None:
    """Writes the broker's files for ``accounts`` and waits until it took them (a canary account logs in)."""
    canary = BrokerAccount(f"canary-{version}", hash_password("canary-password"))
    assert b.files.write(BrokerAccount(b.sec.username, hash_password(b.sec.password)), [*accounts, canary])
    deadline = time.monotonic() + 20
    while True:
        probe = Probe(b.sec.port, canary.username, "canary-password")
        try:
            if probe.connect() == 0:
                return
        except (AssertionError, OSError):
            pass
        finally:
            probe.close()
        assert time.monotonic() < deadline, "the broker did not reload its files"
        time.sleep(0.05)


def test_an_agent_of_ward_a_can_neither_read_nor_write_anything_of_ward_b(secured: SecuredBroker) -> None:  # noqa: F811
    pw = secured.passwords
    pw["loa-old"] = "pw-old-" + "q" * 20
    _reload(secured, [BrokerAccount("loa-a", hash_password(pw["loa-a"]), ("kp-a",), "ward-a", legacy=False),
                      BrokerAccount("loa-b", hash_password(pw["loa-b"]), ("kp-b",), WARD_B, legacy=False),
                      BrokerAccount("loa-old", hash_password(pw["loa-old"]), ("kp-a2",), "ward-a", legacy=True)],
            "1")
    port = secured.sec.port
    ctl, a, b, old = (Probe(port, secured.sec.username, secured.sec.password), Probe(port, "loa-a", pw["loa-a"]),
                      Probe(port, "loa-b", pw["loa-b"]), Probe(port, "loa-old", pw["loa-old"]))
    probes = [ctl, a, b, old]
    try:
        for p in probes:
            assert p.connect() == 0
        ctl.subscribe("lp/v1/agent/+/status")
        b.subscribe(*Topics.agent_subscriptions("loa-b", ["kp-b"], WARD_B))
        theirs = [Topics.ward_command(WARD_B, "speaker.play").replace("speaker.play", "+"),
                  "lp/v1/ward/ward-b/zone/kp-b/cmd/+", "lp/v1/agent/loa-b/cmd/+", Topics.schedule("loa-b")]
        a.subscribe(*theirs, "lp/v1/ward/+/all/cmd/+", "lp/v1/ward/#", "lp/v1/group/all/cmd/+", "#",
                    *Topics.agent_subscriptions("loa-a", ["kp-a"], "ward-a"))
        # Mosquitto 2.0 grants any subscription (the SUBACK says nothing) and checks read access on every message
        # it would deliver: what counts is what arrives, below.
        assert set(theirs) <= set(a.granted)
        # A legacy agent of A, in a deployment of two wards: its zone's legacy topic, not the fleet's all.
        old.subscribe(*Topics.legacy_group_subscriptions(["kp-a2"]), "lp/v1/ward/ward-a/all/cmd/+")

        ctl.publish(Topics.ward_command(WARD_B, "speaker.play"), b"b-all")
        ctl.publish(Topics.ward_zone_command(WARD_B, "kp-b", "speaker.play"), b"b-zone")
        ctl.publish(Topics.command("loa-b", "speaker.play"), b"b-own")
        ctl.publish(Topics.group_command(ALL_ZONE, "speaker.play"), b"fleet-all")
        ctl.publish(Topics.ward_command("ward-a", "speaker.play"), b"a-all")
        ctl.publish(Topics.group_command("kp-a2", "speaker.play"), b"a2-legacy")
        # A tries to speak on B's group and agent topics and as B.
        for topic in (Topics.ward_command(WARD_B, "speaker.play"), Topics.ward_zone_command(WARD_B, "kp-b", "x.y"),
                      Topics.command("loa-b", "speaker.stop"), Topics.status("loa-b"), Topics.reply("loa-b")):
            a.publish(topic, b"forged-by-a")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (len(b.messages) >= 3 and a.messages and len(old.messages) >= 2):
            time.sleep(0.05)
        time.sleep(0.3)  # anything (wrongly) on its way has arrived by now
        assert {p for _, p in b.messages} == {b"b-all", b"b-zone", b"b-own"}, b.messages
        assert {p for _, p in a.messages} == {b"a-all"}, a.messages
        assert {p for _, p in old.messages} == {b"a-all", b"a2-legacy"}, old.messages  # not the fleet-wide one
        assert b"forged-by-a" not in {p for _, p in ctl.messages}
    finally:
        for p in probes:
            p.close()


# ------------------------------------------------------------------------ real controller and agents, two wards


@pytest.fixture
def two_wards(controller: ControllerHandle) -> Iterator[Database]:
    with ward_database(controller, WARD_B) as db:
        yield db


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[RunningAgent]]:
    agents: list[RunningAgent] = []
    try:
        yield agents
    finally:
        for agent in agents:
            agent.proc.stop()


def _agent(controller: ControllerHandle, tmp_path: Path, started: list[RunningAgent], agent_id: str, zone: str,
           ward: str, with_ward: bool = True) -> RunningAgent:
    agent = start_ward_agent(controller, tmp_path, agent_id, zone, ward, with_ward=with_ward)
    started.append(agent)
    _wait_listening(controller, agent, ward)
    return agent


def _wait_listening(controller: ControllerHandle, agent: RunningAgent, ward: str) -> None:
    """Until the controller knows the agent listens on ``ward``'s group topics (its info says so)."""
    agent_id = agent.files.agent_id
    controller.wait_for(lambda: f"ward:{ward}" in controller.device(agent_id)["capabilities"]
                        or not agent.proc.alive, 30, f"{agent_id} on ward {ward}'s topics")
    assert agent.proc.alive, agent.log()


def _starts(agent: RunningAgent) -> list[dict[str, Any]]:
    return [line for line in agent.sink_lines() if line["event"] == "start"]


def _acl_of(controller: ControllerHandle, agent_id: str) -> list[str]:
    sec = broker_security(controller.mqtt_port)
    assert sec is not None
    blocks = sec.acl_file.read_text(encoding="utf-8").split("\n\n")
    return next(b.splitlines()[1:] for b in blocks if b.startswith(f"user {agent_id}\n"))


def test_all_of_ward_a_is_one_publish_reaching_a_alone(controller: ControllerHandle, two_wards: Database,
                                                         tmp_path: Path, started: list[RunningAgent]) -> None:
    a1 = _agent(controller, tmp_path, started, "loa-a1", "kp-a1", FIRST_WARD)
    a2 = _agent(controller, tmp_path, started, "loa-a2", "kp-a2", FIRST_WARD)
    b1 = _agent(controller, tmp_path, started, "loa-b1", "kp-b1", WARD_B)
    status, accepted = http_json("POST", f"{controller.api}/api/v1/announcements", controller.token,
                                 {"text": "Thông báo toàn phường.", "targets": {"all": True}, "ward": FIRST_WARD})
    assert status == 202, accepted
    controller.wait_deliveries(accepted["id"], {"played"}, timeout=60)
    with two_wards.session() as session:
        groups = list(session.scalars(select(GroupCommand).where(GroupCommand.announcement_id == accepted["id"])))
        deliveries = list(session.scalars(select(Delivery).where(Delivery.announcement_id == accepted["id"])))
    assert [g.topics for g in groups] == [[Topics.ward_command(FIRST_WARD, "speaker.play")]]
    assert sorted(d.agent_id for d in deliveries) == ["loa-a1", "loa-a2"]
    assert {d.group_id for d in deliveries} == {groups[0].id}
    assert len(_starts(a1)) == 1 and len(_starts(a2)) == 1
    assert _starts(b1) == [] and "speaker.play" not in b1.log()
    # Their ACLs: each its own ward only, no legacy topic left.
    assert not [t for t in _acl_of(controller, "loa-b1") if "/group/" in t or f"/ward/{FIRST_WARD}/" in t]
    assert "topic read lp/v1/ward/ward-b/all/cmd/+" in _acl_of(controller, "loa-b1")


def test_an_agent_configured_before_wards_is_moved_by_the_controller(
        controller: ControllerHandle, two_wards: Database, tmp_path: Path, started: list[RunningAgent]) -> None:
    old = _agent(controller, tmp_path, started, "loa-old", "kp-old", WARD_B, with_ward=False)
    # It started on the legacy topics; the controller gave it its ward; it kept it and moved.
    assert "ward: - (legacy groups)" in old.log()
    assert (old.files.data_dir / "groups.json").exists()
    controller.wait_for(lambda: not [t for t in _acl_of(controller, "loa-old") if "/group/" in t], 20,
                        "the legacy topics leave its ACL once it reports its ward")
    assert "topic read lp/v1/ward/ward-b/zone/kp-old/cmd/+" in _acl_of(controller, "loa-old")
    status, accepted = http_json("POST", f"{controller.api}/api/v1/announcements", controller.token,
                                 {"text": "Loa cũ vẫn phát.", "targets": {"zones": ["kp-old"]}, "ward": WARD_B})
    assert status == 202, accepted
    controller.wait_deliveries(accepted["id"], {"played"}, timeout=60)
    assert len(_starts(old)) == 1
    # After a restart it comes back on its ward's topics (the groups file wins over the config).
    old.proc.stop()
    started.remove(old)
    again = RunningAgent(old.files, start_agent(old.files, tmp_path / "loa-old-2.log"), old.registered)
    started.append(again)
    controller.wait_for(lambda: "ward: ward-b" in again.log() or not again.proc.alive, 20, "restarted on ward-b")
    assert again.proc.alive, again.log()


def test_a_moved_device_hears_nothing_more_of_its_old_ward(
        controller: ControllerHandle, two_wards: Database, tmp_path: Path, started: list[RunningAgent]) -> None:
    mover = _agent(controller, tmp_path, started, "loa-mv", "kp-mv", FIRST_WARD)
    old_password = mover.registered["mqtt_password"]
    status, moved = http_json("PATCH", f"{controller.api}/api/v1/devices/loa-mv", controller.token,
                              {"ward": WARD_B, "zones": []})
    assert status == 200, moved
    # The old password no longer logs in.
    deadline = time.monotonic() + 20
    while True:
        probe = Probe(controller.mqtt_port, "loa-mv", old_password)
        try:
            refused = probe.connect() != 0
        finally:
            probe.close()
        if refused:
            break
        assert time.monotonic() < deadline, "the old password still logs in after the move"
        time.sleep(0.2)
    mover.proc.stop()
    started.remove(mover)
    # Enrolled again for B: new credentials, and the old ward's topics stay silent even for its old session.
    status, issued = http_json("POST", f"{controller.api}/api/v1/devices/loa-mv/enrolment", controller.token, {})
    assert status == 201, issued
    status, identity = http_json("POST", f"{controller.api}/api/v1/enrol", None, {"code": issued["code"]})
    assert status == 200, identity
    assert identity["ward"] == WARD_B
    probe = Probe(controller.mqtt_port, "loa-mv", identity["mqtt"]["password"], clean_start=False)
    try:
        assert probe.connect() == 0
        probe.subscribe("lp/v1/ward/ward/all/cmd/+", "lp/v1/ward/ward/zone/kp-mv/cmd/+", "lp/v1/group/all/cmd/+",
                        "lp/v1/ward/ward-b/all/cmd/+")
        signer = controller_signer(controller.data_dir)
        # Two wards: no fleet-wide all either.
        for to, topic in ((zone_target([ALL_ZONE]), Topics.group_command(ALL_ZONE, "speaker.stop")),
                          (ward_target(FIRST_WARD), Topics.ward_command(FIRST_WARD, "speaker.stop")),
                          (ward_target(FIRST_WARD, ["kp-mv"]), Topics.ward_zone_command(FIRST_WARD, "kp-mv",
                                                                                        "speaker.stop")),
                          (ward_target(WARD_B), Topics.ward_command(WARD_B, "speaker.stop"))):
            publish(controller.mqtt_port, topic, signer.command("speaker.stop", SpeakerStop(), to=to,
                                                                ttl_ms=60_000).to_bytes())
        deadline = time.monotonic() + 5
        while not probe.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert [t for t, _ in probe.messages] == [Topics.ward_command(WARD_B, "speaker.stop")], probe.messages
    finally:
        probe.close()
