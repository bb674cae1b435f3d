"""Sends queued deliveries to the broker, emergency first, and marks them sent.

Deliveries live in the database with their signed payload, so a broker outage or a controller
restart delays a command but does not lose it; one that expires while waiting is marked expired.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass

from sqlalchemy import select

from controller.db import Database
from controller.fleet import advance_delivery
from controller.models import Announcement, Delivery
from devices.mqtt_link import MqttLink, NotConnected
from devices.protocol import Priority, now_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    delivery_id: int
    topic: str
    payload: bytes
    exp_ms: int


class CommandSender:
    """One task drains a priority queue of deliveries into the MQTT link."""

    def __init__(self, db: Database, link: MqttLink) -> None:
        self.db = db
        self.link = link
        self._queue: asyncio.PriorityQueue[tuple[int, int, _Outgoing]] = asyncio.PriorityQueue()
        self._seq = itertools.count()

    def enqueue(self, delivery_id: int, topic: str, payload: bytes, exp_ms: int, priority: Priority) -> None:
        """Queues one delivery; higher priority goes out first."""
        self._queue.put_nowait((-priority.rank, next(self._seq), _Outgoing(delivery_id, topic, payload, exp_ms)))

    async def load_queued(self) -> int:
        """Re-queues what a previous run left unsent (once, at start)."""
        def queued() -> list[tuple[int, str, bytes, int, Priority]]:
            with self.db.session() as session:
                rows = session.execute(select(Delivery, Announcement.priority).join(Announcement)
                                       .where(Delivery.status == "queued").order_by(Delivery.id)).all()
                return [(d.id, d.topic, d.payload.encode(), d.exp_ms, Priority(p)) for d, p in rows]

        rows = await asyncio.to_thread(queued)
        for row in rows:
            self.enqueue(*row)  # the queue is the loop's: filled here, never from a worker thread
        return len(rows)

    def _set_status(self, delivery_id: int, status: str, error: str | None = None) -> None:
        with self.db.session() as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is not None:
                advance_delivery(delivery, status, error)

    async def run(self) -> None:
        """Sends forever; waits for the link whenever it is down."""
        while True:
            prio, seq, item = await self._queue.get()
            if item.exp_ms <= now_ms():
                await asyncio.to_thread(self._set_status, item.delivery_id, "expired",
                                        "expired before the broker could take it")
                continue
            await self.link.connected.wait()
            try:
                await self.link.publish(item.topic, item.payload, qos=1)
            except NotConnected as exc:
                log.info("delivery %d waits for the broker (%s)", item.delivery_id, exc)
                self._queue.put_nowait((prio, seq, item))
                await asyncio.sleep(0.5)
                continue
            await asyncio.to_thread(self._set_status, item.delivery_id, "sent")
