"""The audit log — for admins: who did what and when, filtered by person, action and dates, newest first,
exported as CSV (UTF-8 with a BOM, so spreadsheet programs read Vietnamese correctly), and the hash
chain verified and explained in plain words.

Filtering and the CSV rows are the API's (controller/api/audit.py); verification is
:func:`controller.accounts.audit_chain.verify`, as ``loaphuong audit verify`` runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from controller.accounts import audit_chain
from controller.accounts.audit_log import audit_query, csv_chunks
from controller.accounts.reach import units_of
from controller.api.deps import DatabaseDep, SessionDep, SettingsDep
from controller.settings import Settings
from controller.storage.models import AuditEvent
from controller.web.forms import field_errors
from controller.web.i18n import N_, speaking_to
from controller.web.session import ConsoleAdminDep
from controller.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

#: Rows per page.
PAGE_SIZE = 50
#: Long details are cut in the table (the CSV has them whole).
DETAIL_CHARS = 300
#: A UTF-8 byte order mark: without it Excel opens a CSV as the local code page and garbles Vietnamese.
BOM = "\ufeff"

#: Action names (controller code) → what staff read; unknown actions are shown as they are.
ACTION_LABELS: dict[str, str] = {
    "login.ok": N_("Signed in"),
    "login.failed": N_("Failed sign-in"),
    "logout": N_("Signed out"),
    "user.create": N_("Account created"),
    "user.update": N_("Account changed"),
    "user.password": N_("Own password changed"),
    "user.password_reset": N_("Password reset by an administrator"),
    "announcement.create": N_("Announcement created"),
    "announcement.approve": N_("Announcement approved"),
    "announcement.reject": N_("Announcement rejected"),
    "announcement.cancel": N_("Announcement cancelled"),
    "schedule.create": N_("Schedule item created"),
    "schedule.update": N_("Schedule item changed"),
    "schedule.approve": N_("Schedule item approved"),
    "schedule.cancel": N_("Schedule item cancelled"),
    "zone.update": N_("Zone changed"),
    "device.register": N_("Device registered"),
    "device.update": N_("Device changed"),
    "device.enrolment_code": N_("Enrolment code issued"),
    "device.enrol": N_("Device enrolled"),
    "device.bundle": N_("First-boot bundle downloaded"),
    "device.revoke": N_("Device revoked"),
    "camera.register": N_("Camera added"),
    "camera.update": N_("Camera changed"),
    "camera.delete": N_("Camera removed"),
    "camera.view": N_("Camera watched"),
    "camera.move": N_("Camera moved"),
    "camera.motion": N_("Motion alert handled"),
    "media.standby": N_("Standby alarm recording changed"),
    "sign.attach": N_("LED sign attached"),
    "sign.detach": N_("LED sign detached"),
    "sign_content.create": N_("LED sign content created"),
    "sign_content.update": N_("LED sign content changed"),
    "sign_image.upload": N_("LED sign image uploaded"),
    "sign_item.create": N_("LED sign schedule item created"),
    "sign_item.approve": N_("LED sign schedule item approved"),
    "sign_item.cancel": N_("LED sign schedule item cancelled"),
}
_OPS_LABEL = N_("Remote operation on a device")

#: The chain's break reasons (controller/accounts/audit_chain.py) → an explanation for staff.
_BREAKS: tuple[tuple[str, str], ...] = (
    ("link broken", N_("An entry before it was deleted, edited or moved.")),
    ("row has no hash", N_("The entry was written outside the audit log.")),
    ("hash mismatch", N_("The entry was edited after it was written.")),
)


def action_label(action: str) -> str | None:
    """The msgid naming ``action`` for staff, or None when there is none (the code is shown)."""
    if action.startswith("device.ops."):
        return _OPS_LABEL
    return ACTION_LABELS.get(action)


class AuditFilters(BaseModel):
    """The page's filters: a username, an action (exact or its prefix, e.g. ``device``), a date range in
    the controller's time zone (both days included)."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(default="", max_length=64)
    action: str = Field(default="", max_length=64)
    date_from: date | None = None
    date_to: date | None = None
    before: int | None = Field(default=None, ge=1)

    def query_string(self, **change: Any) -> str:
        """The filters (with ``change`` applied) as a query string for links."""
        values = {"user": self.user, "action": self.action,
                  "date_from": self.date_from.isoformat() if self.date_from else "",
                  "date_to": self.date_to.isoformat() if self.date_to else "",
                  "before": str(self.before) if self.before else ""}
        values.update({k: "" if v is None else str(v) for k, v in change.items()})
        return urlencode({k: v for k, v in values.items() if v})


def _filters(request: Request) -> tuple[AuditFilters, dict[str, list[str]], dict[str, str]]:
    """The filters from the query string, with errors by field (then the filters are empty)."""
    raw = {key: value for key, value in request.query_params.items()
           if key in AuditFilters.model_fields and value.strip()}
    try:
        return AuditFilters.model_validate(raw), {}, raw
    except ValidationError as exc:
        with speaking_to(request):
            return AuditFilters(), field_errors(exc), raw


def _bounds(filters: AuditFilters, settings: Settings) -> tuple[datetime | None, datetime | None]:
    zone = settings.tz
    start = datetime.combine(filters.date_from, time.min, zone) if filters.date_from else None
    end = datetime.combine(filters.date_to + timedelta(days=1), time.min, zone) if filters.date_to else None
    return start, end


def _detail(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"


@router.get("/audit")
def audit_page(request: Request, session: SessionDep, settings: SettingsDep,
               admin: ConsoleAdminDep) -> Response:
    """The log of the units the admin administers, newest first, a page at a time, with its filters, export
    and verification."""
    filters, errors, raw = _filters(request)
    start, end = _bounds(filters, settings)
    units = units_of(session, admin, ["admin"])
    q = audit_query(units, start, end, filters.user or None, filters.action or None).order_by(None) \
        .order_by(AuditEvent.id.desc())
    if filters.before:
        q = q.where(AuditEvent.id < filters.before)
    events = list(session.scalars(q.limit(PAGE_SIZE + 1)))
    more = len(events) > PAGE_SIZE
    rows = [{"id": e.id, "at": e.at, "username": e.username, "action": e.action,
             "label": action_label(e.action), "subject": e.subject, "detail": _detail(e.detail)}
            for e in events[:PAGE_SIZE]]
    context = {
        "rows": rows, "filters": filters, "raw": raw, "errors": errors,
        "older": filters.query_string(before=rows[-1]["id"]) if more and rows else None,
        "newest": filters.query_string(before=None) if filters.before else None,
        "export": filters.query_string(before=None),
        "usernames": list(session.scalars(select(AuditEvent.username).where(AuditEvent.unit_id.in_(units))
                                          .distinct().order_by(AuditEvent.username))),
        "actions": list(session.scalars(select(AuditEvent.action).where(AuditEvent.unit_id.in_(units))
                                        .distinct().order_by(AuditEvent.action))),
    }
    return render(request, "audit/index.html", context, status_code=422 if errors else 200)


@router.get("/audit/export.csv")
def audit_export(request: Request, session: SessionDep, settings: SettingsDep, db: DatabaseDep,
                 admin: ConsoleAdminDep) -> Response:
    """Every entry matching the filters as CSV (the API's columns), UTF-8 with a BOM."""
    filters, errors, _raw = _filters(request)
    if errors:
        return audit_page(request, session, settings, admin)
    start, end = _bounds(filters, settings)
    chunks = csv_chunks(db, audit_query(units_of(session, admin, ["admin"]), start, end, filters.user or None,
                                        filters.action or None))

    def with_bom() -> Iterator[str]:
        yield BOM
        yield from chunks

    stamp = datetime.now(settings.tz).strftime("%Y%m%d-%H%M")
    return StreamingResponse(with_bom(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
                                      "Cache-Control": "no-store"})


@router.get("/audit/verify")
def audit_verify(request: Request, session: SessionDep, _admin: ConsoleAdminDep) -> Response:
    """Walks the whole chain and says, in plain words, whether it holds and if not where it breaks."""
    count, broken = audit_chain.verify(session)
    reason = None
    if broken is not None:
        reason = next((text for prefix, text in _BREAKS if broken.reason.startswith(prefix)),
                      N_("The entry does not match the chain."))
    return render(request, "audit/_verify.html", {"count": count, "broken": broken, "reason": reason})
