"""Reading the audit log: the filter the API's list and the console's page share, and the CSV export they
both stream (same columns, same rows)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterator
from datetime import datetime

from sqlalchemy import Select, select

from controller.storage.engine import Database
from controller.storage.models import AuditEvent

#: ``unit`` comes last: exports read by column position before wards existed keep working.
CSV_COLUMNS = ("id", "at", "user_id", "username", "action", "subject", "detail", "prev_hash", "hash", "unit")


def audit_query(units: Collection[str], start: datetime | None, end: datetime | None, user: str | None,
                action: str | None) -> Select[AuditEvent]:
    """Audit events of ``units`` (those an admin administers) oldest first, filtered by time (``end``
    exclusive), username and action (exact, or a prefix such as ``camera``)."""
    q = select(AuditEvent).where(AuditEvent.unit_id.in_(list(units))).order_by(AuditEvent.id)
    if start is not None:
        q = q.where(AuditEvent.at >= start)
    if end is not None:
        q = q.where(AuditEvent.at < end)
    if user:
        q = q.where(AuditEvent.username == user)
    if action:
        # "camera" matches "camera.view" and "camera.move" as well as an exact name
        q = q.where((AuditEvent.action == action) | AuditEvent.action.startswith(action + "."))
    return q


def csv_chunks(db: Database, query: Select[AuditEvent]) -> Iterator[str]:
    """The matching events as CSV text, about 64 KB at a time.

    A session of its own: the export streams after the request's session has closed.
    """
    with db.session() as export:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for e in export.scalars(query.execution_options(yield_per=1000)):
            writer.writerow([e.id, e.at.isoformat(), e.user_id or "", e.username, e.action, e.subject,
                             json.dumps(e.detail, ensure_ascii=False, sort_keys=True), e.prev_hash or "",
                             e.hash or "", e.unit_id])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
