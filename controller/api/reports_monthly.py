"""``/api/v1/reports/monthly`` and ``/api/v1/reports/city``: a ward's month as it reports upward, and the
city's roll-up of its wards (JSON, CSV, and for a ward a printable PDF page).

Any member of staff of a ward reads its reports (a viewer is enough); city staff read every ward under
them. Another ward answers 404 as an unknown one (docs/wards.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from controller.accounts.reach import WardNeeded, check_ward, unit_tree, wards_of
from controller.api.deps import SessionDep, SettingsDep, StaffDep
from controller.api.errors import AUTHENTICATED
from controller.api.params import MONTH_PATTERN
from controller.reports.documents import FontMissing, month_pdf, months_csv
from controller.reports.monthly import Broadcasts, Month, MonthError, WardMonth, ward_months
from controller.storage.models import User
from controller.web.i18n import using

router = APIRouter(tags=["reports"], responses=AUTHENTICATED)

_MONTH_DOC = "YYYY-MM in the site's time zone; the current month when left out"


class BroadcastFigures(BaseModel):
    """Broadcasts of one group: how many, their speaker plays, air hours and speaker hours."""

    broadcasts: int
    plays: int
    hours: float
    speaker_hours: float


class SpeakerFigures(BaseModel):
    """Speakers in service at the month's end (or now) and the share of the time they were online."""

    in_service: int
    availability: float | None


class FaultFigures(BaseModel):
    """Outages (a speaker's link lost) of the month, their repair, and errors speakers reported."""

    started: int
    repaired: int
    open_at_end: int
    mean_time_to_repair_hours: float | None
    agent_errors: int


class MonthlyReport(BaseModel):
    """One ward's month (see controller/reports/monthly.py for what each figure counts)."""

    ward: str
    ward_name: str
    month: str
    total: BroadcastFigures
    by_priority: dict[str, BroadcastFigures]
    by_source: dict[str, BroadcastFigures]
    speakers: SpeakerFigures
    faults: FaultFigures


class CityReport(BaseModel):
    """Every ward of the caller's for one month, one entry per ward."""

    month: str
    wards: list[MonthlyReport]


def _figures(group: Broadcasts) -> BroadcastFigures:
    return BroadcastFigures(broadcasts=group.broadcasts, plays=group.plays, hours=round(group.hours, 4),
                            speaker_hours=round(group.speaker_hours, 4))


def report_public(report: WardMonth) -> MonthlyReport:
    """A ward's month as the API shows it."""
    share = report.speakers.availability
    mttr = report.faults.mean_time_to_repair_hours
    return MonthlyReport(
        ward=report.ward, ward_name=report.ward_name, month=str(report.month), total=_figures(report.total),
        by_priority={k: _figures(v) for k, v in report.by_priority.items()},
        by_source={k: _figures(v) for k, v in report.by_source.items()},
        speakers=SpeakerFigures(in_service=report.speakers.in_service,
                                availability=None if share is None else round(share, 6)),
        faults=FaultFigures(started=report.faults.started, repaired=report.faults.repaired,
                            open_at_end=report.faults.open_at_end,
                            mean_time_to_repair_hours=None if mttr is None else round(mttr, 4),
                            agent_errors=report.faults.agent_errors))


def parse_month(text: str | None, settings_now: datetime) -> Month:
    """The month asked for (422 when malformed), or the one under way."""
    if not text:
        return Month.of(settings_now.date())
    try:
        return Month.parse(text)
    except MonthError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None


def report_ward(session: Session, user: User, ward: str | None) -> str:
    """The ward named (404 unless the caller sees it), or the caller's only ward (422 when they see several)."""
    if ward:
        check_ward(session, user, ward, None, f"ward {ward} not found")
        return ward
    seen = wards_of(session, user)
    if len(seen) == 1:
        return next(iter(seen))
    raise WardNeeded(f"you see {len(seen)} wards: say which one (ward: one of "
                     f"{', '.join(sorted(seen)[:20])}{'…' if len(seen) > 20 else ''})")


def upper_name(session: Session, ward: str) -> str:
    """The name of the unit above ``ward`` (the city or province), for a report's heading."""
    tree = unit_tree(session)
    path = tree.path(ward)
    return tree.name.get(path[1], "") if len(path) > 1 else ""


def pdf_response(session: Session, report: WardMonth, settings: SettingsDep, language: str) -> Response:
    """The month's PDF page as a download (503 saying what to install when the font is missing)."""
    try:
        body = month_pdf(report, upper_name(session, report.ward), settings.tz, datetime.now(UTC), language)
    except FontMissing as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="report-{report.ward}-{report.month}.pdf"',
        "Cache-Control": "no-store"})


def csv_response(body: bytes, name: str) -> Response:
    """A CSV download."""
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"', "Cache-Control": "no-store"})


@router.get("/api/v1/reports/monthly", response_model=MonthlyReport,
            responses={200: {"content": {"text/csv": {}, "application/pdf": {}}},
                       404: {"description": "no such ward among the caller's"},
                       422: {"description": "malformed month, or no ward named by staff of several"},
                       503: {"description": "the PDF's font is not installed"}})
def monthly_report(
    session: SessionDep, settings: SettingsDep, user: StaffDep,
    ward: Annotated[str | None, Query(max_length=63, description="a ward the caller sees; their only one "
                                                                  "when left out")] = None,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description=_MONTH_DOC)] = None,
    format: Annotated[Literal["json", "csv", "pdf"], Query(description="csv: one row; pdf: an A4 page")] = "json",
    lang: Annotated[Literal["vi", "en"], Query(description="the PDF's language")] = "vi",
) -> MonthlyReport | Response:
    """A ward's broadcasts and their hours by priority and source, speakers in service and their
    availability, and faults with the time to repair them, for one month."""
    ward_id = report_ward(session, user, ward)
    the_month = parse_month(month, datetime.now(settings.tz))
    (report,) = ward_months(session, [ward_id], the_month, settings.tz)
    if format == "pdf":
        return pdf_response(session, report, settings, lang)
    if format == "csv":
        return csv_response(months_csv([report]), f"report-{ward_id}-{the_month}")
    return report_public(report)


@router.get("/api/v1/reports/city", response_model=CityReport,
            responses={200: {"content": {"text/csv": {}}},
                       422: {"description": "malformed month"}})
def city_report(
    session: SessionDep, settings: SettingsDep, user: StaffDep,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description=_MONTH_DOC)] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: one row per ward")] = "json",
) -> CityReport | Response:
    """The month's figures of every ward the caller sees, one entry (or CSV row) per ward."""
    the_month = parse_month(month, datetime.now(settings.tz))
    reports = ward_months(session, wards_of(session, user), the_month, settings.tz)
    if format == "csv":
        with using("vi"):
            return csv_response(months_csv(reports), f"report-wards-{the_month}")
    return CityReport(month=str(the_month), wards=[report_public(r) for r in reports])
