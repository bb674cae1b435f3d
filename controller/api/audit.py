"""``/api/v1/audit``: the hash-chained audit log, for admins — filtered, as JSON or CSV, and verified."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from controller.accounts import audit_chain
from controller.accounts.audit_log import audit_query, csv_chunks
from controller.accounts.reach import units_of
from controller.api.deps import AdminDep, DatabaseDep, SessionDep
from controller.api.errors import AUTHENTICATED
from controller.api.params import IsoDateTime
from controller.storage.models import AuditEvent

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=AUTHENTICATED)

class AuditRow(BaseModel):
    """One audit event with its chain hashes."""

    id: int
    at: datetime
    unit: str
    user_id: int | None
    username: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str | None
    hash: str | None


class ChainStatus(BaseModel):
    """The result of verifying the chain: ``ok``, how many rows were read, the first broken row."""

    ok: bool
    rows: int
    broken_row: int | None = None
    reason: str | None = None


def _row(event: AuditEvent) -> AuditRow:
    return AuditRow(id=event.id, at=event.at, unit=event.unit_id, user_id=event.user_id, username=event.username,
                    action=event.action, subject=event.subject, detail=event.detail, prev_hash=event.prev_hash,
                    hash=event.hash)


@router.get("", response_model=list[AuditRow],
            responses={200: {"content": {"text/csv": {}}, "description": "The events; format=csv: a CSV file."}})
def list_audit(session: SessionDep, db: DatabaseDep, admin: AdminDep,
               start: Annotated[IsoDateTime | None, Query(alias="from")] = None,
               end: Annotated[IsoDateTime | None, Query(alias="to")] = None,
               user: Annotated[str | None, Query(max_length=64)] = None,
               action: Annotated[str | None, Query(max_length=64)] = None,
               fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
               limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
               after_id: Annotated[int, Query(ge=0)] = 0) -> list[AuditRow] | StreamingResponse:
    """Audit events oldest first, filtered by time (``from`` inclusive, ``to`` exclusive), username and
    action (exact or prefix such as ``camera``); ``format=csv`` exports every match as a download. An admin
    reads the rows of the units they administer."""
    q = audit_query(units_of(session, admin, ["admin"]), start, end, user, action)
    if fmt == "json":
        return [_row(e) for e in session.scalars(q.where(AuditEvent.id > after_id).limit(limit))]
    return StreamingResponse(csv_chunks(db, q), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="audit.csv"'})


@router.get("/verify")
def verify_audit(session: SessionDep, _admin: AdminDep) -> ChainStatus:
    """Walks the whole chain and reports the first row whose hash or link is broken.

    The chain runs through every ward's rows, so any admin may check it; the answer names only a row id."""
    count, broken = audit_chain.verify(session)
    if broken is None:
        return ChainStatus(ok=True, rows=count)
    return ChainStatus(ok=False, rows=count, broken_row=broken.row_id, reason=broken.reason)
