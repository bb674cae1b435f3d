"""The audit trail: who did what, when, to which item — written in the same transaction as the change.

Rows are hash-chained: each row stores the previous row's hash and a SHA-256 over its own canonical JSON
and that previous hash, so editing, deleting or reordering a row breaks the chain where it happened
(:func:`verify`). Deleting the newest rows leaves an intact, shorter chain; exports keep the last hash so a
later export shows whether the tail was cut.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from controller.storage.models import FIRST_WARD, AuditEvent, User


def canonical(row_id: int, at: datetime, user_id: int | None, username: str, action: str, subject: str,
              detail: Any, unit: str = FIRST_WARD) -> str:
    """The row as compact JSON with sorted keys: the exact text that is hashed.

    The unit is hashed whenever it is not the first ward: rows written before wards existed (all in the first
    ward) keep their hashes, and moving any row to another unit still breaks the chain either way.
    """
    fields: dict[str, Any] = {"id": row_id, "at": at.astimezone(UTC).isoformat(), "user_id": user_id,
                              "username": username, "action": action, "subject": subject, "detail": detail}
    if unit != FIRST_WARD:
        fields["unit"] = unit
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, canonical_json: str) -> str:
    """SHA-256 of the previous hash and this row's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{canonical_json}".encode()).hexdigest()


def _row_hash(row: AuditEvent, prev_hash: str) -> str:
    return chain_hash(prev_hash, canonical(row.id, row.at, row.user_id, row.username, row.action, row.subject,
                                           row.detail, row.unit_id))


def _lock_chain(session: Session) -> None:
    """Serialises chain appends across concurrent transactions.

    SQLite needs nothing more: the row's INSERT (flushed before the previous hash is read) takes the
    database's single write lock until commit, so no other transaction can append in between. PostgreSQL
    takes a transaction-scoped advisory lock for the same effect.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(74657)"))


def record(session: Session, user: User | None, action: str, subject: str = "",
           detail: dict[str, Any] | None = None, unit: str | None = None) -> AuditEvent:
    """Adds one chained audit row; it commits (or rolls back) with the change it describes.

    ``unit`` is the ward the change belongs to (or the upper unit, for what spans wards); a ward's staff read
    only their wards' rows. None: the first ward, all a single-ward site has.
    """
    _lock_chain(session)
    row = AuditEvent(user_id=user.id if user else None, username=user.username if user else "system",
                     action=action, subject=subject[:100], detail=detail or {}, unit_id=unit or FIRST_WARD)
    session.add(row)
    session.flush()
    prev = session.scalar(select(AuditEvent.hash).where(AuditEvent.id < row.id).order_by(AuditEvent.id.desc())
                          .limit(1))
    row.prev_hash = prev or ""
    row.hash = _row_hash(row, row.prev_hash)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first row where the chain does not hold, and why."""

    row_id: int
    reason: str


def verify_rows(rows: Iterable[AuditEvent]) -> tuple[int, ChainBreak | None]:
    """Checks rows in id order: each links to the one before and hashes to what it stores.

    Returns how many rows were checked and the first break (None when the chain holds).
    """
    prev_hash = ""
    checked = 0
    for row in rows:
        checked += 1
        if row.prev_hash != prev_hash:
            return checked, ChainBreak(row.id, "link broken: a row before it was deleted, edited or reordered"
                                       if row.prev_hash else "row has no hash (written outside the audit log)")
        if row.hash != _row_hash(row, prev_hash):
            return checked, ChainBreak(row.id, "hash mismatch: the row was edited")
        prev_hash = row.hash
    return checked, None


def verify(session: Session) -> tuple[int, ChainBreak | None]:
    """Verifies the whole audit log (streamed in id order)."""
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000))
    return verify_rows(rows)
