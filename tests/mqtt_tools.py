"""Test-side MQTT: publish raw payloads and sign commands with the controller's (or a forged) key.

Test clients log in with the local broker's tool accounts, never the controller's: the broker binds
each client id to its account, so a test client using the controller's account would disconnect the
running controller. Each account holds one connection, so a client leases one until it disconnects.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import MQTTErrorCode

from controller.messaging.keys import load_or_create_signing_key
from controller.tools.local_stack import broker_security
from devices.protocol import Envelope, Signer, SpeakerPlay, now_ms

_leases_lock = threading.Lock()
#: Tool accounts in use, by the password file of their broker (unique per broker directory).
_leased: dict[Path, set[str]] = {}


class ToolClient(mqtt.Client):
    """A paho v5 client on a leased tool account; :meth:`disconnect` gives the account back."""

    def __init__(self, key: Path, username: str, password: str) -> None:
        super().__init__(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.username_pw_set(username, password)
        self.account = username
        self._key = key

    def disconnect(self, *args: Any, **kwargs: Any) -> MQTTErrorCode:
        """Disconnects and returns the account to the pool."""
        try:
            return super().disconnect(*args, **kwargs)
        finally:
            with _leases_lock:
                _leased.get(self._key, set()).discard(self.account)


def client_for(port: int) -> mqtt.Client:
    """A paho v5 client logged in with a free tool account (read-write on ``lp/#``) of the broker this
    process started on ``port``; not connected yet. Call ``disconnect()`` when done: it frees the account."""
    sec = broker_security(port)
    if sec is None:
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    with _leases_lock:
        used = _leased.setdefault(sec.password_file, set())
        free = [(user, password) for user, password in sec.tools if user not in used]
        if not free:
            raise RuntimeError(f"all {len(sec.tools)} tool accounts of the broker on {port} are in use "
                               "(a client was not disconnected?)")
        user, password = free[0]
        used.add(user)
    return ToolClient(sec.password_file, user, password)


def broker_login(port: int, username: str, password: str, timeout: float = 10.0) -> int:
    """The CONNACK reason code the broker on ``port`` gives this login (0 = accepted; -1 = the connection
    was dropped before an answer). Raises AssertionError when nothing comes within ``timeout``."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.reconnect_delay_set(60, 60)  # one attempt: a refused login must not be retried behind our back
    rc: list[int] = []
    answered = threading.Event()

    def on_connect(_c: object, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        rc.append(reason.value)
        answered.set()

    def on_disconnect(_c: object, _u: object, _f: object, _reason: mqtt.ReasonCode, _p: object) -> None:
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        assert answered.wait(timeout), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return rc[0] if rc else -1


def publish(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    """Publishes one QoS 1 message to the broker on 127.0.0.1 (with a tool account, as the controller could)
    and waits for the broker's ack."""
    client = client_for(port)
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        client.loop_start()
        info = client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=5)
        assert info.is_published(), f"publish to {topic} not acknowledged"
    finally:
        client.disconnect()
        client.loop_stop()


def controller_signer(data_dir: Path) -> Signer:
    """Signs as the controller does (its key from its data directory)."""
    return Signer(load_or_create_signing_key(data_dir))


def forged_signer() -> Signer:
    """A key the agents have never been told about."""
    return Signer(Ed25519PrivateKey.generate())


def play_command(signer: Signer, to: str, sha256: str, size: int, duration_ms: int, *, lead_ms: int = 1500,
                 ttl_ms: int = 60_000, ts: int | None = None, priority: str = "normal") -> Envelope:
    """A signed speaker.play for ``to``, starting ``lead_ms`` from now."""
    order = SpeakerPlay(sha256=sha256, size=size, duration_ms=duration_ms, start_at=now_ms() + lead_ms,
                        priority=priority)  # type: ignore[arg-type]
    return signer.command("speaker.play", order, to=to, ttl_ms=ttl_ms, ts=ts)


def wait_for_text(read: object, needle: str, timeout: float = 10.0) -> str:
    """Polls a log reader until ``needle`` appears; returns the text."""
    assert callable(read)
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = read()
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not logged within {timeout}s; log:\n{text[-3000:]}")
