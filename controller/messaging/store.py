"""The outbox table's operations: write a row, claim a batch, settle it, expire, prune (all blocking).

Claiming is a conditional update: a row is taken only if it is still pending and unclaimed (or its
claim has lapsed), and the taker reads back what it got by its claim token. Two publishers running
this against one PostgreSQL database never take the same row, whichever commits first; what the
replicas issue adds on top is in controller/messaging/outbox.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from controller.messaging import outcomes
from controller.messaging.outcomes import Settled
from controller.messaging.routes import Route
from controller.storage.engine import Database
from controller.storage.models import OutboxMessage, utcnow


@dataclass(frozen=True, slots=True)
class Claimed:
    """One row taken for publishing."""

    id: int
    kind: str
    target: str | None
    command_id: str | None
    topics: tuple[str, ...]
    payload: bytes
    retain: bool
    priority: int
    ref: str | None

    @property
    def settled(self) -> Settled:
        """What its outcome needs."""
        return Settled(self.kind, self.target, self.command_id, self.ref)


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim took: rows to publish (one priority level, oldest first) and rows it found expired."""

    rows: list[Claimed]
    expired: list[Settled]


def _free(now_ms: int) -> ColumnElement[bool]:
    """Pending and nobody's (or its claim lapsed: the publisher holding it died)."""
    return and_(OutboxMessage.status == "pending",
                or_(OutboxMessage.claim.is_(None), OutboxMessage.claimed_until_ms.is_(None),
                    OutboxMessage.claimed_until_ms < now_ms))


def insert(session: Session, route: Route, *, payload: bytes, target: str | None, command_id: str | None,
           priority: int, exp_ms: int | None, ref: str | None, now_ms: int) -> None:
    """Writes one row in the caller's transaction; a retained one supersedes older ones for its topic."""
    if route.retain:
        # Only the newest state matters: older copies not yet taken are dropped, so the broker's retained
        # copy can never end older than the newest written (a copy being published now goes out first).
        session.execute(update(OutboxMessage)
                        .where(_free(now_ms), OutboxMessage.retain.is_(True), OutboxMessage.kind == route.kind,
                               OutboxMessage.target == target)
                        .values(status="superseded", settled_at=utcnow(), claim=None, claimed_until_ms=None)
                        .execution_options(synchronize_session=False))
    session.add(OutboxMessage(kind=route.kind, target=target, command_id=command_id, topics=list(route.topics),
                              payload=payload.decode(), retain=route.retain, priority=priority, exp_ms=exp_ms,
                              ref=ref, status="pending", attempts=0))


def claim(db: Database, token: str, now_ms: int, lease_ms: int, limit: int) -> Claim:
    """Expires what is past its time, then takes up to ``limit`` rows of the highest priority waiting."""
    with db.session() as session:
        expired = _expire(session, token, now_ms)
        if limit <= 0:
            return Claim([], expired)
        free = _free(now_ms)
        top = session.scalar(select(func.max(OutboxMessage.priority)).where(free))
        if top is None:
            return Claim([], expired)
        ids = list(session.scalars(select(OutboxMessage.id).where(free, OutboxMessage.priority == top)
                                   .order_by(OutboxMessage.id).limit(limit)))
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids), free)
                        .values(claim=token, claimed_until_ms=now_ms + lease_ms)
                        .execution_options(synchronize_session=False))
        rows = session.execute(select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.target,
                                      OutboxMessage.command_id, OutboxMessage.topics, OutboxMessage.payload,
                                      OutboxMessage.retain, OutboxMessage.priority, OutboxMessage.ref)
                               .where(OutboxMessage.id.in_(ids), OutboxMessage.claim == token,
                                      OutboxMessage.status == "pending")
                               .order_by(OutboxMessage.id)).all()
        return Claim([Claimed(r.id, r.kind, r.target, r.command_id, tuple(r.topics), r.payload.encode(),
                              r.retain, r.priority, r.ref) for r in rows], expired)


def _expire(session: Session, token: str, now_ms: int) -> list[Settled]:
    """Marks free rows past their expiry as expired (and what waits on them); returns them."""
    past = and_(_free(now_ms), OutboxMessage.exp_ms.is_not(None), OutboxMessage.exp_ms <= now_ms)
    ids = list(session.scalars(select(OutboxMessage.id).where(past)))
    if not ids:
        return []
    session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids), past)
                    .values(status="expired", error="expired before the broker could take it", claim=token,
                            claimed_until_ms=None, settled_at=utcnow())
                    .execution_options(synchronize_session=False))
    rows = [Settled(r.kind, r.target, r.command_id, r.ref) for r in session.execute(
        select(OutboxMessage.kind, OutboxMessage.target, OutboxMessage.command_id, OutboxMessage.ref)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.claim == token, OutboxMessage.status == "expired"))]
    outcomes.expired(session, rows)
    return rows


def settle(db: Database, token: str, sent: Sequence[Claimed], broken: Sequence[Claimed], reason: str,
           retry: Sequence[Claimed]) -> None:
    """Records a batch's outcome in one transaction: published, refused, or back in the queue."""
    with db.session() as session:
        now = utcnow()
        for rows, status in ((sent, "sent"), (broken, "failed")):
            if rows:
                session.execute(update(OutboxMessage)
                                .where(OutboxMessage.id.in_([r.id for r in rows]), OutboxMessage.claim == token)
                                .values(status=status, error=reason if status == "failed" else None,
                                        settled_at=now, claimed_until_ms=None,
                                        attempts=OutboxMessage.attempts + 1)
                                .execution_options(synchronize_session=False))
        if sent:
            outcomes.published(session, [r.settled for r in sent])
        if broken:
            outcomes.failed(session, [r.settled for r in broken], reason)
        if retry:
            # Free again: the next claim takes them in priority order with whatever arrived meanwhile.
            session.execute(update(OutboxMessage)
                            .where(OutboxMessage.id.in_([r.id for r in retry]), OutboxMessage.claim == token,
                                   OutboxMessage.status == "pending")
                            .values(claim=None, claimed_until_ms=None, attempts=OutboxMessage.attempts + 1)
                            .execution_options(synchronize_session=False))


def release_claims(db: Database) -> int:
    """Frees every claim (at start: today one publisher serves a database, so any claim is a dead run's)."""
    with db.session() as session:
        result = session.execute(update(OutboxMessage)
                                 .where(OutboxMessage.status == "pending", OutboxMessage.claim.is_not(None))
                                 .values(claim=None, claimed_until_ms=None)
                                 .execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


def waiting_commands(db: Database) -> int:
    """Commands (not retained documents) written and not yet published: what a restart resumes."""
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.status == "pending", OutboxMessage.retain.is_(False),
                                         OutboxMessage.command_id.is_not(None))) or 0)


def prune(db: Database, keep: timedelta, now: datetime | None = None) -> int:
    """Deletes settled rows older than ``keep`` (the deliveries and documents keep their own record)."""
    cutoff = (now or utcnow()) - keep
    with db.session() as session:
        result = session.execute(delete(OutboxMessage)
                                 .where(OutboxMessage.status != "pending", OutboxMessage.settled_at < cutoff)
                                 .execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)
