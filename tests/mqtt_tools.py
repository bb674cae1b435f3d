"""Test-side MQTT: publish raw payloads and sign commands with the controller's (or a forged) key."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.keys import load_or_create_signing_key
from controller.local_stack import broker_security
from devices.protocol import Envelope, Signer, SpeakerPlay, now_ms


def client_for(port: int) -> mqtt.Client:
    """A paho v5 client logged in with the controller's account of the broker this process started on ``port``
    (anonymous access is off); not connected yet."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sec = broker_security(port)
    if sec is not None:
        client.username_pw_set(sec.username, sec.password)
    return client


def publish(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    """Publishes one QoS 1 message to the broker on 127.0.0.1 (as the controller) and waits for the broker's ack."""
    client = client_for(port)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
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
