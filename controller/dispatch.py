"""Sends queued commands to the broker, emergency first, and marks them sent.

A command is a delivery to one agent or a group command to zones (one publish per zone, the broker
fans it out). Both live in the database with their signed payload, so a broker outage or a
controller restart delays a command but does not lose it; one that expires while waiting is marked
expired.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from controller.db import Database
from controller.fleet import advance_delivery
from controller.models import Announcement, Delivery, GroupCommand
from devices.mqtt_link import MqttLink, NotConnected
from devices.protocol import Priority, now_ms

log = logging.getLogger(__name__)

#: Commands published together before their "sent" state is written in one transaction.
BATCH_MAX = 1000


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One signed command to publish: ``key`` is a delivery id (int) or a group command id (str)."""

    key: int | str
    topics: tuple[str, ...]
    payload: bytes
    exp_ms: int
    priority: Priority

    @classmethod
    def of_delivery(cls, delivery: Delivery, priority: Priority) -> Outgoing:
        """A delivery to one agent on its own topic."""
        assert delivery.topic is not None and delivery.payload is not None
        return cls(delivery.id, (delivery.topic,), delivery.payload.encode(), delivery.exp_ms, priority)

    @classmethod
    def of_group(cls, group: GroupCommand, priority: Priority) -> Outgoing:
        """A group command, published once on each of its zones' topics."""
        return cls(group.id, tuple(group.topics), group.payload.encode(), group.exp_ms, priority)


def set_status(db: Database, keys: Iterable[int | str], status: str, error: str | None = None) -> None:
    """Moves deliveries, and the deliveries of group commands, forward to ``status`` in one transaction."""
    keys = list(keys)
    delivery_ids = [k for k in keys if isinstance(k, int)]
    group_ids = [k for k in keys if isinstance(k, str)]
    with db.session() as session:
        if group_ids:
            for group in session.scalars(select(GroupCommand).where(GroupCommand.id.in_(group_ids))):
                if group.status == "queued":
                    group.status = status
            delivery_ids += session.scalars(select(Delivery.id).where(Delivery.group_id.in_(group_ids)))
        for delivery in session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids))):
            advance_delivery(delivery, status, error)


class CommandSender:
    """One task drains a priority queue of commands into the MQTT link."""

    def __init__(self, db: Database, link: MqttLink) -> None:
        self.db = db
        self.link = link
        self._queue: asyncio.PriorityQueue[tuple[int, int, Outgoing]] = asyncio.PriorityQueue()
        self._seq = itertools.count()

    def enqueue(self, out: Outgoing) -> None:
        """Queues one command; higher priority goes out first."""
        self._queue.put_nowait((-out.priority.rank, next(self._seq), out))

    async def load_queued(self) -> int:
        """Re-queues what a previous run left unsent (once, at start)."""
        def queued() -> list[Outgoing]:
            with self.db.session() as session:
                groups = session.execute(select(GroupCommand, Announcement.priority).join(Announcement)
                                         .where(GroupCommand.status == "queued")).all()
                rows = session.execute(select(Delivery, Announcement.priority).join(Announcement)
                                       .where(Delivery.status == "queued", Delivery.group_id.is_(None))
                                       .order_by(Delivery.id)).all()
                return ([Outgoing.of_group(g, Priority(p)) for g, p in groups]
                        + [Outgoing.of_delivery(d, Priority(p)) for d, p in rows])

        outgoing = await asyncio.to_thread(queued)
        for out in outgoing:
            self.enqueue(out)  # the queue is the loop's: filled here, never from a worker thread
        return len(outgoing)

    def _take_batch(self, first: tuple[int, int, Outgoing]) -> list[tuple[int, int, Outgoing]]:
        """``first`` and whatever else is queued at the same priority (the queue hands them out in order)."""
        batch = [first]
        while len(batch) < BATCH_MAX and not self._queue.empty():
            nxt = self._queue.get_nowait()
            if nxt[0] != first[0]:
                self._queue.put_nowait(nxt)  # a different level waits for the next batch
                break
            batch.append(nxt)
        return batch

    async def _publish(self, out: Outgoing) -> None:
        for topic in out.topics:
            await self.link.publish(topic, out.payload, qos=1)

    async def run(self) -> None:
        """Sends forever, a batch at a time; waits for the link whenever it is down."""
        while True:
            batch = self._take_batch(await self._queue.get())
            now = now_ms()
            expired = [out.key for _, _, out in batch if out.exp_ms <= now]
            if expired:
                await asyncio.to_thread(set_status, self.db, expired, "expired",
                                        "expired before the broker could take it")
            live = [entry for entry in batch if entry[2].exp_ms > now]
            if not live:
                continue
            await self.link.connected.wait()
            # Publishing concurrently lets the broker acknowledge a whole batch in about one round trip.
            results = await asyncio.gather(*(self._publish(out) for _, _, out in live), return_exceptions=True)
            sent: list[int | str] = []
            broken: list[int | str] = []
            for entry, result in zip(live, results, strict=True):
                if result is None:
                    sent.append(entry[2].key)
                elif isinstance(result, NotConnected):
                    self._queue.put_nowait(entry)  # a zone that got it already drops the copy as a replay
                else:
                    log.error("command %s could not be published: %r", entry[2].key, result)
                    broken.append(entry[2].key)
            if sent:
                await asyncio.to_thread(set_status, self.db, sent, "sent")
            if broken:
                await asyncio.to_thread(set_status, self.db, broken, "failed", "the broker refused the command")
            if len(sent) < len(live):
                log.info("%d commands wait for the broker", len(live) - len(sent) - len(broken))
                await asyncio.sleep(0.5)
