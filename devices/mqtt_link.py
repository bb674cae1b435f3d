"""One MQTT session that survives broker restarts, used by the controller and by every agent.

The link owns the reconnect loop (exponential back-off with jitter), the will, the birth message
published on every (re)connect and the subscriptions. Incoming messages are handed to a plain
callback that must only enqueue: handlers run elsewhere, so a slow handler never stalls the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
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
    subscriptions: Sequence[str] = field(default_factory=tuple)


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

    async def run(self) -> None:
        """Connects, serves and reconnects until :meth:`close` is called."""
        delay = self.settings.backoff_min_s
        while not self._stopping.is_set():
            try:
                await self._session()
                delay = self.settings.backoff_min_s
            except aiomqtt.MqttError as exc:
                if self._stopping.is_set():
                    break
                log.warning("mqtt %s:%s unreachable (%s); retrying in %.1fs",
                            self.settings.host, self.settings.port, exc, delay)
            finally:
                self._client = None
                self.connected.clear()
            if self._stopping.is_set():
                break
            # Full jitter keeps a fleet from reconnecting in lock-step after a broker restart.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=random.uniform(delay / 2, delay))  # noqa: S311
            delay = min(delay * 2, self.settings.backoff_max_s)

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
            self._client = client
            self.connections += 1
            log.info("mqtt connected to %s:%s as %s", s.host, s.port, s.client_id)
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

    async def close(self, final: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        """Publishes ``final`` messages (topic, payload, retain) if connected, then disconnects."""
        for topic, payload, retain in final:
            try:
                await self.publish(topic, payload, retain=retain, timeout=3)
            except NotConnected:
                break
        self._stopping.set()
