"""The audit trail: who did what, when, to which item — written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from controller.models import AuditEvent, User


def record(session: Session, user: User | None, action: str, subject: str = "",
           detail: dict[str, Any] | None = None) -> None:
    """Adds one audit row; it commits (or rolls back) with the change it describes."""
    session.add(AuditEvent(user_id=user.id if user else None, username=user.username if user else "system",
                           action=action, subject=subject[:100], detail=detail or {}))
