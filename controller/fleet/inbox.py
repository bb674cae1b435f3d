"""The controller's inbox: every agent gets its own queue and rate, served round-robin.

One shared FIFO let a single noisy (or stolen) device fill it, so every other device's messages and
the replies remote operations wait for were dropped. Here each agent has a lane:

- a token bucket (``rate`` per second, ``burst`` at once) for events and replies: generous enough for
  a real agent emptying its whole event outbox after an outage (edge_agent sends everything
  unacknowledged at once on reconnect and again every 20 s until acknowledged, so whatever is
  dropped here comes back later and nothing is lost);
- a bound on how many messages and bytes it may have waiting;
- its retained state topics (status, info, state) coalesced: only the newest of each is kept, they
  cost no tokens and at most one slot each, so a device's online/offline is never dropped.

The worker takes one message from each waiting lane in turn, so a message from a quiet agent waits
for at most one batch however much a noisy one has queued. Messages over a lane's rate or share are
dropped, counted per agent, flushed to ``devices.inbox_dropped`` and logged at most every 30 s per
agent. :meth:`FairInbox.put` is O(1) and never blocks: it is the MQTT callback's only work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import update

from controller.storage.engine import Database
from controller.storage.models import Device
from devices.protocol import TOPIC_ROOT

log = logging.getLogger(__name__)

_AGENT_PREFIX: Final = f"{TOPIC_ROOT}/agent/"
#: Retained state: only the newest message on such a topic matters.
COALESCED_KINDS: Final = frozenset({"status", "info", "state"})
#: Drops are logged at most this often per agent.
LOG_EVERY_S: Final = 30.0
#: Lane of messages on topics that name no agent (none are subscribed to today).
OTHER: Final = ""


@dataclass(frozen=True)
class InboxLimits:
    """How much each agent, and everyone together, may have waiting, and each agent's rate."""

    rate_per_s: float = 20.0
    burst: int = 2000
    agent_messages: int = 5000
    agent_bytes: int = 16 * 1024 * 1024
    total_messages: int = 100_000
    total_bytes: int = 128 * 1024 * 1024


@dataclass(slots=True)
class _Entry:
    topic: str
    payload: bytes


@dataclass
class _Lane:
    tokens: float
    stamp: float
    queue: deque[_Entry] = field(default_factory=deque)
    nbytes: int = 0
    #: The queued entry of each coalesced topic (updated in place by a newer message).
    latest: dict[str, _Entry] = field(default_factory=dict)
    ready: bool = False
    over_rate: int = 0
    over_share: int = 0
    #: Drops not yet written to the database / not yet logged.
    unflushed: int = 0
    unlogged: int = 0
    logged_at: float | None = None


def agent_of(topic: str) -> tuple[str, str]:
    """(agent id, topic kind) of an agent topic; (:data:`OTHER`, "") for anything else. No validation:
    the handlers validate; this only picks a lane."""
    if not topic.startswith(_AGENT_PREFIX):
        return OTHER, ""
    agent, _, rest = topic[len(_AGENT_PREFIX):].partition("/")
    return agent, rest.partition("/")[0]


class FairInbox:
    """Per-agent queues with a token bucket each, drained round-robin. Use from one event loop."""

    def __init__(self, limits: InboxLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or InboxLimits()
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        #: Agents with something waiting, in serving order.
        self._ring: deque[str] = deque()
        self._messages = 0
        self._bytes = 0
        self._wake = asyncio.Event()

    # in (the MQTT callback) ---------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes) -> bool:
        """Queues one message; False if it was dropped (over its agent's rate or share, or inbox full)."""
        agent, kind = agent_of(topic)
        lane = self._lanes.get(agent)
        now = self._clock()
        if lane is None:
            lane = self._lanes[agent] = _Lane(tokens=float(self.limits.burst), stamp=now)
        if kind in COALESCED_KINDS:
            entry = lane.latest.get(topic)
            if entry is not None:
                delta = len(payload) - len(entry.payload)
                entry.payload = payload
                lane.nbytes += delta
                self._bytes += delta
                return True
        else:
            lane.tokens = min(float(self.limits.burst), lane.tokens + (now - lane.stamp) * self.limits.rate_per_s)
            lane.stamp = now
            if lane.tokens < 1.0:
                lane.over_rate += 1
                self._dropped(agent, lane, "over its rate", now)
                return False
        size = len(payload)
        lim = self.limits
        if (len(lane.queue) >= lim.agent_messages or lane.nbytes + size > lim.agent_bytes
                or self._messages >= lim.total_messages or self._bytes + size > lim.total_bytes):
            lane.over_share += 1
            self._dropped(agent, lane, "over its share of the inbox", now)
            return False
        if kind not in COALESCED_KINDS:
            lane.tokens -= 1.0
        entry = _Entry(topic, payload)
        lane.queue.append(entry)
        if kind in COALESCED_KINDS:
            lane.latest[topic] = entry
        lane.nbytes += size
        self._messages += 1
        self._bytes += size
        if not lane.ready:
            lane.ready = True
            self._ring.append(agent)
        self._wake.set()
        return True

    def _dropped(self, agent: str, lane: _Lane, why: str, now: float) -> None:
        lane.unflushed += 1
        lane.unlogged += 1
        if lane.logged_at is None or now - lane.logged_at >= LOG_EVERY_S:
            self._log_drops(agent or "(no agent)", lane, now, why)

    @staticmethod
    def _log_drops(agent: str, lane: _Lane, now: float, why: str) -> None:
        log.warning("inbox: dropped %d message(s) from %s (%s); %d over its rate and %d over its share so far",
                    lane.unlogged, agent, why, lane.over_rate, lane.over_share)
        lane.unlogged = 0
        lane.logged_at = now

    # out (the worker) -------------------------------------------------------------------------------

    def get_nowait(self, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` messages, one from each waiting agent in turn."""
        batch: list[tuple[str, bytes]] = []
        while self._ring and len(batch) < limit:
            agent = self._ring.popleft()
            lane = self._lanes[agent]
            entry = lane.queue.popleft()
            if lane.latest.get(entry.topic) is entry:
                del lane.latest[entry.topic]
            lane.nbytes -= len(entry.payload)
            self._messages -= 1
            self._bytes -= len(entry.payload)
            batch.append((entry.topic, entry.payload))
            if lane.queue:
                self._ring.append(agent)
            else:
                lane.ready = False
        if not self._ring:
            self._wake.clear()
        return batch

    async def get(self, limit: int, timeout: float | None = None) -> list[tuple[str, bytes]]:  # noqa: ASYNC109
        """Waits (up to ``timeout`` s; None: for ever) for messages and returns up to ``limit`` of them,
        fairly; an empty list after a timeout."""
        if not self._ring:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return []
        return self.get_nowait(limit)

    # bookkeeping ------------------------------------------------------------------------------------

    def take_drops(self) -> dict[str, int]:
        """Drops per agent since the last call (for ``devices.inbox_dropped``); logs drops not yet
        logged once their agent's quiet period is over, and forgets idle agents' lanes."""
        now = self._clock()
        drops: dict[str, int] = {}
        for agent, lane in list(self._lanes.items()):
            if lane.unflushed:
                drops[agent] = lane.unflushed
                lane.unflushed = 0
            if lane.unlogged and (lane.logged_at is None or now - lane.logged_at >= LOG_EVERY_S):
                self._log_drops(agent or "(no agent)", lane, now, "summary")
            refilled = lane.tokens + (now - lane.stamp) * self.limits.rate_per_s >= self.limits.burst
            if not lane.queue and not lane.unlogged and refilled and (
                    lane.logged_at is None or now - lane.logged_at >= LOG_EVERY_S):
                # Nothing waiting and nothing owed: a fresh lane would behave the same.
                del self._lanes[agent]
        return drops

    def stats(self) -> dict[str, dict[str, int]]:
        """Per agent with a lane: messages waiting and drops over its rate and over its share."""
        return {agent: {"waiting": len(lane.queue), "over_rate": lane.over_rate, "over_share": lane.over_share}
                for agent, lane in self._lanes.items()}

    @property
    def waiting(self) -> int:
        """Messages waiting in every lane."""
        return self._messages


def record_drops(db: Database, drops: dict[str, int]) -> None:
    """Adds drop counts to ``devices.inbox_dropped`` (blocking; unknown agents are ignored)."""
    if not drops:
        return
    with db.session() as session:
        for agent, count in drops.items():
            if agent != OTHER:
                session.execute(update(Device).where(Device.id == agent)
                                .values(inbox_dropped=Device.inbox_dropped + count))
