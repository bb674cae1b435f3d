"""One MQTT session that survives broker restarts, used by the controller and by every agent.

The link owns the reconnect loop, the will, the birth message published on every (re)connect and the
subscriptions. Incoming messages are handed to a plain callback that must only enqueue: handlers run
elsewhere, so a slow handler never stalls the socket.

Reconnecting (:class:`Backoff`): a connection that had been up for a while and then dropped is retried
at once (within half a second), however long the outages before it were; jittered exponential back-off
applies only across attempts that fail one after another, so a dead broker is not hammered and a fleet
does not come back in lock-step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.protocol import MAX_PAYLOAD_BYTES

log = logging.getLogger(__name__)

MessageCallback = Callable[[str, bytes, bool], None]
ConnectCallback = Callable[["MqttLink"], Awaitable[None]]


class NotConnected(RuntimeError):
    """Raised by :meth:`MqttLink.publish` while the broker is unreachable."""


@dataclass(frozen=True, slots=True)
class Will:
    """Last will: published by the broker when the link dies without a clean disconnect."""

    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


@dataclass(slots=True)
class LinkSettings:
    """Where and who: broker address, credentials and session behaviour."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive: int = 30
    #: >0 keeps the session (subscriptions and queued QoS 1 messages) on the broker while offline.
    session_expiry_s: int = 0
    tls_ca_file: str | None = None
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    #: A session that lasted this long resets the back-off; one the broker ended sooner counts as a failure.
    backoff_reset_after_s: float = 1.0
    subscriptions: Sequence[str] = field(default_factory=tuple)
    #: Topics unsubscribed on every connect: a persistent session keeps subscriptions a change has dropped.
    unsubscriptions: Sequence[str] = field(default_factory=tuple)


class Backoff:
    """How long to wait before the next connection attempt.

    Each wait is drawn from [ceiling/2, ceiling] (jitter, so a fleet that lost its broker together does
    not reconnect together); the ceiling doubles after every failed attempt, up to ``max_s``. A session
    that stayed up for ``reset_after_s`` puts the ceiling back to ``min_s``, so a drop after a healthy
    link is retried within ``min_s`` whatever outages came before. A session the broker ends at once
    (another client logged in with the same account, say) does not: it counts as a failed attempt, so
    two clients fighting over one account back off instead of reconnecting twice a second forever.
    """

    def __init__(self, min_s: float, max_s: float, reset_after_s: float, rng: random.Random | None = None) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"back-off needs 0 < min_s <= max_s, got {min_s}, {max_s}")
        self.min_s = min_s
        self.max_s = max_s
        self.reset_after_s = reset_after_s
        self.ceiling = min_s
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 -- jitter, not a secret

    def failed(self) -> float:
        """A connection attempt failed: the wait before the next one (the one after waits up to twice as long)."""
        delay = self._rng.uniform(self.ceiling / 2, self.ceiling)
        self.ceiling = min(self.ceiling * 2, self.max_s)
        return delay

    def dropped(self, lasted_s: float) -> float:
        """An established session ended after ``lasted_s`` seconds: the wait before reconnecting."""
        if lasted_s >= self.reset_after_s:
            self.ceiling = self.min_s
        return self.failed()


class MqttLink:
    """A reconnecting MQTT 5 client; call :meth:`run` as a task and :meth:`close` to stop."""

    def __init__(
        self,
        settings: LinkSettings,
        on_message: MessageCallback,
        *,
        will: Will | None = None,
        on_connect: ConnectCallback | None = None,
    ) -> None:
        self.settings = settings
        self._on_message = on_message
        self._will = will
        self._on_connect = on_connect
        self._client: aiomqtt.Client | None = None
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()
        self.connections = 0
        #: When the current session's CONNACK arrived (monotonic); None while not connected.
        self._established_at: float | None = None

    async def run(self) -> None:
        """Connects, serves and reconnects until :meth:`close` is called; never ends on an error."""
        s = self.settings
        backoff = Backoff(s.backoff_min_s, s.backoff_max_s, s.backoff_reset_after_s)
        while not self._stopping.is_set():
            self._established_at = None
            reason = "closed by the broker"
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                reason = str(exc) or type(exc).__name__
            except NotConnected as exc:
                # The birth publish in on_connect met a link that had just dropped.
                reason = f"dropped while starting: {exc}"
            except Exception as exc:  # a bug in on_connect must not leave the process without its link
                log.exception("mqtt session failed")
                reason = type(exc).__name__
            finally:
                self._client = None
                self.connected.clear()
            if self._stopping.is_set():
                break
            if self._established_at is None:
                delay = backoff.failed()
                log.warning("mqtt %s:%s unreachable (%s); retrying in %.1fs", s.host, s.port, reason, delay)
            else:
                lasted = time.monotonic() - self._established_at
                delay = backoff.dropped(lasted)
                log.warning("mqtt connection to %s:%s lost after %.1fs (%s); reconnecting in %.1fs",
                            s.host, s.port, lasted, reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _session(self) -> None:
        s = self.settings
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if s.session_expiry_s > 0:
            props.SessionExpiryInterval = s.session_expiry_s
        props.MaximumPacketSize = MAX_PAYLOAD_BYTES + 4096
        tls: ssl.SSLContext | None = None
        if s.tls_ca_file:
            tls = ssl.create_default_context(cafile=s.tls_ca_file)
        will = aiomqtt.Will(self._will.topic, self._will.payload, self._will.qos, self._will.retain) \
            if self._will else None
        client = aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id,
            username=s.username,
            password=s.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=s.keepalive,
            clean_start=s.session_expiry_s <= 0,
            properties=props,
            tls_context=tls,
            timeout=10,
        )
        async with client:
            self._established_at = time.monotonic()
            self._client = client
            self.connections += 1
            log.info("mqtt connected to %s:%s as %s", s.host, s.port, s.client_id)
            stale = [t for t in s.unsubscriptions if t not in s.subscriptions]
            if stale:
                await client.unsubscribe(stale)
            for topic in s.subscriptions:
                await client.subscribe(topic, qos=1)
            self.connected.set()
            if self._on_connect is not None:
                await self._on_connect(self)
            stop_task = asyncio.ensure_future(self._stopping.wait())
            try:
                reader = asyncio.ensure_future(self._read(client))
                done, _ = await asyncio.wait({reader, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    reader.result()  # re-raises the MqttError that ended the session
                else:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
            finally:
                stop_task.cancel()
                self.connected.clear()

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode() if payload is not None else b""
            try:
                self._on_message(message.topic.value, bytes(payload), bool(message.retain))
            except Exception:  # the callback must never take the link down
                log.exception("mqtt message callback failed on %s", message.topic.value)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                      timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Publishes and, for QoS 1, waits for the broker's acknowledgement."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected(topic)
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)
        except aiomqtt.MqttError as exc:
            raise NotConnected(f"{topic}: {exc}") from exc

    async def change_subscriptions(self, subscriptions: Sequence[str], unsubscriptions: Sequence[str]) -> None:
        """From now on subscribe to ``subscriptions`` and drop ``unsubscriptions`` (at once if connected, and on
        every connect after). Raises :class:`NotConnected` if the link dropped meanwhile: the next connect
        applies the change anyway."""
        old = list(self.settings.subscriptions)
        self.settings.subscriptions = tuple(subscriptions)
        self.settings.unsubscriptions = tuple(dict.fromkeys([*unsubscriptions, *(t for t in old
                                                                                 if t not in subscriptions)]))
        client = self._client
        if client is None or not self.connected.is_set():
            return
        try:
            stale = [t for t in self.settings.unsubscriptions if t not in subscriptions]
            if stale:
                await client.unsubscribe(stale)
            for topic in subscriptions:
                if topic not in old:
                    await client.subscribe(topic, qos=1)
        except aiomqtt.MqttError as exc:
            raise NotConnected(f"changing subscriptions: {exc}") from exc

    async def close(self, final: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        """Publishes ``final`` messages (topic, payload, retain) if connected, then disconnects."""
        for topic, payload, retain in final:
            try:
                await self.publish(topic, payload, retain=retain, timeout=3)
            except NotConnected:
                break
        self._stopping.set()
