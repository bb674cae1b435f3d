"""``GET /healthz`` — the only endpoint that needs no token."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

import loaphuong
from controller.api.deps import DatabaseDep, OutboxDep
from controller.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
def health(db: DatabaseDep, outbox: OutboxDep) -> Health:
    """200 while the API serves; says whether the broker and database answer."""
    try:
        with db.session() as session:
            session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # the point of a health check is to report, not raise
        database = f"error: {type(exc).__name__}"
    mqtt = "connected" if outbox.connected.is_set() else "disconnected"
    return Health(status="ok", mqtt=mqtt, database=database, version=loaphuong.__version__)
