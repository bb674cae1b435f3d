"""Domain events: what happened in the controller, told to whoever reacts to it, once it is committed.

A service says what happened (:class:`DeviceChanged`, :class:`ScheduleChanged`, …) and does not know who
cares; the composition root (controller/runtime.py) subscribes the reactions: the window and sign
publishers rebuild, the broker's accounts are rewritten, the console's change feed moves on. Adding a
reaction is one ``subscribe`` there, never an edit of the service.

An event raised with the database session that made the change waits for that session's transaction to
commit, then goes out from the committing thread; a rollback (or a transaction ended without a commit)
drops it, so nobody rebuilds from a change that never happened, nor from one not yet visible to the
sessions they read in. Raised without a session (or with one holding no open transaction) it goes out
at once. Handlers run in the publishing thread, one after another; one that fails is logged and the
rest still run — a reaction never undoes or fails the change that caused it.

Handlers must be quick and must not block: most only note work for a worker (``request`` calls are
thread-safe and cheap). One that does blocking work (a file rewrite, a database read) subscribes with
``blocking=True`` and, when an event is published on the event loop's thread, runs in the default
executor instead of on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)


def agent_set(agent_ids: Iterable[str] | None) -> frozenset[str] | None:
    """A frozen copy of some agent ids (None stays None: every agent)."""
    return None if agent_ids is None else frozenset(agent_ids)


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened; subclasses are named in the past tense and hold only plain values."""


@dataclass(frozen=True, slots=True)
class DeviceChanged(DomainEvent):
    """Devices were registered, renamed, moved between zones, enrolled or revoked."""

    agent_ids: frozenset[str]
    #: Their broker password or ACL changed (registered, enrolled, revoked, zones moved).
    access: bool = False
    #: What reaches them changed (registered, zones moved, enabled or disabled): windows and signs follow.
    reach: bool = False


@dataclass(frozen=True, slots=True)
class ZoneChanged(DomainEvent):
    """A zone's name, quiet hours or volumes changed; ``agent_ids`` are its members."""

    zone_id: str
    agent_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class ScheduleChanged(DomainEvent):
    """A schedule item was created, revised, approved, rejected or cancelled.

    ``agent_ids`` are the agents it reached before or reaches now (None: every agent).
    """

    agent_ids: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class StandbyChanged(DomainEvent):
    """The set of standby alarm recordings changed (every agent's window lists them)."""


@dataclass(frozen=True, slots=True)
class SignChanged(DomainEvent):
    """Signs, sign content or sign items changed for these agents' boards (None: every agent)."""

    agent_ids: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class AnnouncementChanged(DomainEvent):
    """An announcement was accepted, or its status moved (rendered and sent, or failed)."""

    announcement_id: str


@dataclass(frozen=True, slots=True)
class CameraEventRaised(DomainEvent):
    """A camera event was recorded: ``kind`` is its type (``camera.motion``, ``camera.fault``, …)."""

    camera_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class LiveChanged(DomainEvent):
    """A live session started or ended."""

    session_id: str


@dataclass(frozen=True, slots=True)
class AgentsReported(DomainEvent):
    """Agents' messages were recorded; ``topics`` are the kinds of topic they came on (status, event, …)."""

    topics: frozenset[str]


E = TypeVar("E", bound=DomainEvent)


@dataclass(frozen=True, slots=True)
class _Subscription:
    handler: Callable[[Any], None]
    blocking: bool

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))


class _Pending:
    """Events raised in one session's transactions and not yet delivered, each with the transaction it was
    raised in (a rolled-back savepoint takes back only its own)."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[tuple[SessionTransaction, DomainEvent]] = []


def _within(tx: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while tx is not None:
        if tx is ancestor:
            return True
        tx = tx.parent
    return False


class EventBus:
    """Subscribers by event type; events delivered now or after the raising session commits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[type[DomainEvent], tuple[_Subscription, ...]] = {}

    def subscribe(self, kind: type[E], handler: Callable[[E], None], *, blocking: bool = False) -> None:
        """Calls ``handler`` with every event of type ``kind`` (or a subclass of it).

        ``blocking``: the handler does blocking work, so it never runs on the event loop's thread.
        """
        with self._lock:
            self._subscribers[kind] = (*self._subscribers.get(kind, ()), _Subscription(handler, blocking))

    def publish(self, event: DomainEvent, session: Session | None = None) -> None:
        """Delivers ``event`` once ``session``'s transaction commits (dropped if it does not); at once if there
        is no session or no open transaction in it."""
        if session is not None:
            tx = session.get_transaction()
            if tx is not None and tx.is_active:
                self._pending(session).events.append((session.get_nested_transaction() or tx, event))
                return
        self._deliver(event)

    # after commit ----------------------------------------------------------------------------------

    def _pending(self, session: Session) -> _Pending:
        pending = session.info.get(self)
        if not isinstance(pending, _Pending):
            pending = session.info[self] = _Pending()
            # Listeners stay with the session for its life; registered once, they serve every transaction.
            sa_event.listen(session, "after_commit", self._committed)
            sa_event.listen(session, "after_soft_rollback", self._rolled_back)
            sa_event.listen(session, "after_transaction_end", self._ended)
        return pending

    def _committed(self, session: Session) -> None:
        # Fired once, for the outermost transaction: every event still pending is now true in the database.
        pending: _Pending = session.info[self]
        events, pending.events = pending.events, []
        for _tx, event in events:
            self._deliver(event)

    def _rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        pending: _Pending = session.info[self]
        dropped = [e for tx, e in pending.events if _within(tx, previous)]
        if dropped:
            pending.events = [(tx, e) for tx, e in pending.events if not _within(tx, previous)]
            log.debug("rolled back: dropped %s", ", ".join(type(e).__name__ for e in dropped))

    def _ended(self, session: Session, transaction: SessionTransaction) -> None:
        # The outermost transaction ended without a commit (a session closed with its work undone).
        if transaction.parent is None:
            pending: _Pending = session.info[self]
            pending.events = []

    # delivery --------------------------------------------------------------------------------------

    def _subscriptions(self, event: DomainEvent) -> list[_Subscription]:
        with self._lock:
            return [s for kind in type(event).__mro__ for s in self._subscribers.get(kind, ())]

    def _deliver(self, event: DomainEvent) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for sub in self._subscriptions(event):
            if sub.blocking and loop is not None:
                future = loop.run_in_executor(None, self._call, sub, event)
                future.add_done_callback(_retrieve)
            else:
                self._call(sub, event)

    @staticmethod
    def _call(sub: _Subscription, event: DomainEvent) -> None:
        try:
            sub.handler(event)
        except Exception:
            log.exception("handler %s failed on %s; the change stands", sub.name, event)


def _retrieve(future: asyncio.Future[None]) -> None:
    # _call logs the handler's own errors; anything else (a cancelled executor at shutdown) is noted here.
    if not future.cancelled() and future.exception() is not None:
        log.error("event handler did not run: %s", future.exception())
