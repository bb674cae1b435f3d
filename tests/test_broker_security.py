"""Real Mosquitto with the project's generated security config: accounts, ACLs, revocation, TLS."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from controller.fleet.broker_accounts import (
    BrokerAccount,
    BrokerFiles,
    agent_acl,
    ensure_tls,
    hash_password,
    verify_password,
)
from controller.processes import ManagedProcess
from controller.tools.local_stack import BrokerSecurity, broker_security, free_port, start_mosquitto
from devices.protocol import Topics


@dataclass
class Client:
    """A paho client that records what happens to it."""

    port: int
    username: str | None
    password: str | None
    ca: Path | None = None
    connect_rc: list[int] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)
    dropped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        if self.ca is not None:
            self.client.tls_set(ca_certs=str(self.ca))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        # A refused or dropped client must stay down for the test to see it, not reconnect at once.
        self.client.reconnect_delay_set(60, 60)

    def _on_disconnect(self, _c: object, _u: object, _f: object, rc: mqtt.ReasonCode, _p: object) -> None:
        self.disconnects.append(str(rc))
        self.dropped.set()  # a connection dropped before its CONNACK (a reload mid-handshake) is an answer too

    def _on_connect(self, _c: object, _u: object, _f: object, rc: mqtt.ReasonCode, _p: object) -> None:
        self.connect_rc.append(rc.value)
        if rc.value == 0:
            self.connected.set()
        self.answered.set()

    def connect(self, timeout: float = 5.0) -> int:
        """Connects; returns the CONNACK reason code (0 = accepted, 135 = not authorised, 134 = bad login)."""
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self.answered.wait(timeout), "no CONNACK"
        return self.connect_rc[-1]

    def subscribe(self, *topics: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe([(t, 1) for t in topics])
        assert done.wait(5), "SUBACK missing"

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class SecuredBroker:
    proc: ManagedProcess
    sec: BrokerSecurity
    files: BrokerFiles
    passwords: dict[str, str]

    def set_agents(self, agents: dict[str, tuple[str, ...]]) -> None:
        """Rewrites the files for these agents (id → zones) and waits until the broker took them."""
        # A fresh canary account in every version of the files: once it can log in, the broker has reloaded.
        self._version += 1
        canary = f"canary-{self._version}"
        accounts = [BrokerAccount(a, hash_password(self.passwords[a]), z) for a, z in agents.items()]
        accounts.append(BrokerAccount(canary, hash_password("canary-password")))
        assert self.files.write(BrokerAccount(self.sec.username, hash_password(self.sec.password)), accounts)
        deadline = time.monotonic() + 20
        while True:
            probe = Client(self.sec.port, canary, "canary-password")
            probe.client.connect("127.0.0.1", self.sec.port, keepalive=10)
            probe.client.loop_start()
            # Refused (not reloaded yet) or dropped mid-handshake by the reload itself: try again.
            until = time.monotonic() + 5
            while not (probe.answered.is_set() or probe.dropped.is_set()) and time.monotonic() < until:
                time.sleep(0.02)
            probe.close()
            if probe.connect_rc[-1:] == [0]:
                return
            assert time.monotonic() < deadline, "the broker did not reload its files"
            time.sleep(0.05)

    def client(self, username: str | None, password: str | None = None, tls: bool = False,
               ca: Path | None = None) -> Client:
        port = self.sec.tls_port if tls else self.sec.port
        assert port is not None
        c = Client(port, username, password if password is not None else self.passwords.get(username or ""), ca)
        self._clients.append(c)
        return c

    _clients: list[Client] = field(default_factory=list)
    _version: int = 0


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[SecuredBroker]:
    port, tls_port = free_port(), free_port()
    proc = start_mosquitto(tmp_path / "mq", port, tls_port=tls_port)
    sec = broker_security(port)
    assert sec is not None
    b = SecuredBroker(proc, sec, BrokerFiles(sec.password_file, sec.acl_file, sec.pid_file),
                      {"loa-a": "pw-a-" + "x" * 20, "loa-b": "pw-b-" + "y" * 20})
    b.set_agents({"loa-a": ("khu-1",), "loa-b": ("khu-2",)})
    try:
        yield b
    finally:
        for c in b._clients:
            c.close()
        proc.stop()


def test_password_hash_is_mosquittos_format() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("$7$101$")
    assert verify_password("s3cret", stored)
    assert not verify_password("S3cret", stored)
    assert not verify_password("s3cret", "garbage")


def test_agent_acl_is_its_own_topics_only() -> None:
    read, write = agent_acl("loa-a", ["khu-1"])
    assert "lp/v1/agent/loa-a/cmd/+" in read and "lp/v1/group/khu-1/cmd/+" in read
    assert "lp/v1/group/all/cmd/+" in read and Topics.CONTROLLER_STATUS in read
    assert all("loa-a" in t or "/group/" in t or t == Topics.CONTROLLER_STATUS for t in read + write)
    assert set(write) == {Topics.status("loa-a"), Topics.info("loa-a"), Topics.state("loa-a"),
                          "lp/v1/agent/loa-a/event/+", Topics.reply("loa-a")}


def test_anonymous_and_never_issued_passwords_are_refused(secured: SecuredBroker) -> None:
    assert secured.client(None).connect() != 0
    assert secured.client("loa-a", "a-password-never-issued").connect() != 0
    assert secured.client("loa-zz", "whatever").connect() != 0
    # Nobody else is affected by the refusals.
    assert secured.client("loa-a").connect() == 0
    assert secured.client("loa-b").connect() == 0


def test_a_cannot_read_b_nor_speak_as_b(secured: SecuredBroker) -> None:
    ctl = secured.client(secured.sec.username, secured.sec.password)
    assert ctl.connect() == 0
    ctl.subscribe("lp/v1/agent/+/status", "lp/v1/agent/+/event/+")
    a, b = secured.client("loa-a"), secured.client("loa-b")
    assert a.connect() == 0 and b.connect() == 0
    b.subscribe(*Topics.agent_subscriptions("loa-b", ["khu-2"]))
    # A tries every way to see B's traffic: its exact topic, wildcards, the whole tree.
    a.subscribe(Topics.command("loa-b", "speaker.play"), "lp/v1/agent/loa-b/#", "lp/v1/agent/+/cmd/+",
                "lp/v1/group/khu-2/cmd/+", "#")
    ctl.publish(Topics.command("loa-b", "speaker.play"), b"for-b")
    ctl.publish(Topics.group_command("khu-2", "speaker.play"), b"for-khu-2")
    ctl.publish(Topics.command("loa-a", "speaker.play"), b"for-a")
    # A publishes as B; B publishes as itself.
    a.publish(Topics.status("loa-b"), b"forged-by-a")
    a.publish(Topics.event("loa-b", "play.completed"), b"forged-by-a")
    b.publish(Topics.status("loa-b"), b"genuine")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (len(b.messages) >= 2 and (b"genuine" in [p for _, p in ctl.messages])
                                                and (b"for-a" in [p for _, p in a.messages])):
        time.sleep(0.05)
    time.sleep(0.3)  # anything A was (wrongly) going to get has arrived by now
    assert {p for _, p in b.messages} == {b"for-b", b"for-khu-2"}
    # (A's overlapping subscriptions may deliver its own command twice; nothing of B's ever arrives.)
    assert {p for _, p in a.messages} == {b"for-a"}, a.messages
    assert [p for _, p in ctl.messages] == [b"genuine"], ctl.messages


def test_revoked_device_is_dropped_and_cannot_reconnect(secured: SecuredBroker) -> None:
    a, b = secured.client("loa-a"), secured.client("loa-b")
    assert a.connect() == 0 and b.connect() == 0
    secured.set_agents({"loa-b": ("khu-2",)})
    deadline = time.monotonic() + 5
    while not a.disconnects:
        assert time.monotonic() < deadline, "revoked device still connected"
        time.sleep(0.05)
    assert not b.disconnects, "revoking A must not disturb B"
    assert secured.client("loa-a").connect() != 0
    # Rotating B's password (re-enrolment) drops the old session too: a clone with the old password is out.
    secured.passwords["loa-b"] = "rotated-" + "z" * 20
    secured.set_agents({"loa-b": ("khu-2",)})
    deadline = time.monotonic() + 5
    while not b.disconnects:
        assert time.monotonic() < deadline, "old password's session survived the rotation"
        time.sleep(0.05)
    assert secured.client("loa-b").connect() == 0


def test_tls_listener_verifies_against_the_project_ca(secured: SecuredBroker) -> None:
    assert secured.sec.tls_port is not None
    ok = secured.client("loa-a", tls=True, ca=secured.sec.tls.ca_cert)
    assert ok.connect() == 0
    # A client that does not trust the project's CA (system roots only) refuses the broker.
    untrusting = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    untrusting.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    untrusting.username_pw_set("loa-a", secured.passwords["loa-a"])
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusting.connect("127.0.0.1", secured.sec.tls_port, keepalive=10)
    # And a client trusting the CA still needs a valid account: a certificate the project never issued
    # (its own CA, presented as a client certificate) gets it nowhere, with or without a username.
    forged = ensure_tls(secured.sec.tls.ca_cert.parent.parent / "forged", ["loa-a"])
    for user in (None, "loa-a"):
        c = secured.client(user, "not-issued" if user else None, tls=True)
        c.client.tls_set(ca_certs=str(secured.sec.tls.ca_cert), certfile=str(forged.server_cert),
                         keyfile=str(forged.server_key))
        assert c.connect() != 0
    assert secured.client("loa-a", tls=True, ca=secured.sec.tls.ca_cert).connect() == 0  # others unaffected
