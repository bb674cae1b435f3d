"""The agent's event outbox: every event is queued on disk first and sent until the controller acknowledges it.

A dropped link delays events, never loses them (docs/protocol.md §6): :meth:`EventOutbox.emit` writes
the event to the store and wakes the sender; the sender publishes what is due (never sent, or sent
more than ``RESEND_AFTER_MS`` ago without an ``events.ack``), oldest first, in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial

from pydantic import BaseModel

from devices.mqtt_link import MqttLink, NotConnected
from devices.protocol import Topics, make_event
from edge_agent.hooks import InThread
from edge_agent.store import AgentStore, PlayEnd

log = logging.getLogger(__name__)

#: Unacknowledged events are sent again after this long.
RESEND_AFTER_MS = 20_000
#: Events sent per store round trip; a full batch is followed by the next at once.
_BATCH = 200


class EventOutbox:
    """Queues one agent's events on disk and sends them while the link is up."""

    def __init__(self, agent_id: str, store: AgentStore, link: MqttLink, in_thread: InThread,
                 on_sent: Callable[[], None]) -> None:
        self._agent_id = agent_id
        self._store = store
        self._link = link
        self._in_thread = in_thread
        #: Called after each round of sending (the count of unacknowledged events in the state may change).
        self._on_sent = on_sent
        self._flush_now = asyncio.Event()

    async def emit(self, msg_type: str, data: BaseModel, play_end: PlayEnd | None = None) -> None:
        """Queues an event on disk and wakes the sender; it goes out when the link allows.

        ``play_end``: what a ``play.finished`` does to the play's records, written in the same transaction.
        """
        env = make_event(self._agent_id, msg_type, data)
        await self._in_thread(partial(self._store.enqueue_event, env.id, Topics.event(self._agent_id, msg_type),
                                      env.to_bytes(), play_end))
        self._flush_now.set()

    async def resend_all(self) -> None:
        """Sends every unacknowledged event again now (a new connection, or a controller that restarted)."""
        # Whatever was sent on the previous connection may have died with it.
        await self._in_thread(self._store.mark_all_unsent)
        self._flush_now.set()

    async def ack(self, ids: list[str]) -> int:
        """Forgets the events the controller has stored; returns how many of them were known."""
        known: int = await self._in_thread(partial(self._store.ack_events, ids))
        return known

    async def unacked_count(self) -> int:
        """Events queued and not yet acknowledged (reported in the agent's state)."""
        count: int = await self._in_thread(self._store.unacked_count)
        return count

    async def run(self) -> None:
        """Sends what is due whenever woken, and every ``RESEND_AFTER_MS`` anyway."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), timeout=RESEND_AFTER_MS / 1000)
            self._flush_now.clear()
            if not self._link.connected.is_set():
                continue
            try:
                while rows := await self._in_thread(partial(self._store.events_due, RESEND_AFTER_MS, _BATCH)):
                    for row in rows:
                        await self._link.publish(row.topic, row.payload)
                    await self._in_thread(partial(self._store.mark_sent, [r.id for r in rows]))
                    if len(rows) < _BATCH:
                        break
            except NotConnected:
                log.info("link dropped while sending events; they stay queued")
            self._on_sent()
