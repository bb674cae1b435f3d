"""The city's view (``/console/city``): every ward at a glance, and a ward's monthly report
(``/console/reports/monthly``) with its CSV and printable PDF.

The wards shown are the user's (``wards_of``): city staff see every ward under them, a ward's staff their
own. The figures come from controller/reports/, the same code as ``/api/v1/reports/…``, so the page, the
API, the CSV and the PDF say the same numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from controller.accounts.reach import holds_upper, unit_tree, wards_of
from controller.api.deps import SessionDep, SettingsDep
from controller.api.reports_monthly import csv_response, pdf_response, report_ward
from controller.reports.city import city_glance
from controller.reports.documents import PRIORITY_NAMES, SOURCE_NAMES, months_csv
from controller.reports.monthly import PRIORITIES, SOURCES, Month, MonthError, WardMonth, ward_months
from controller.settings import Settings
from controller.storage.models import User
from controller.web.errors import error_page
from controller.web.i18n import gettext, pick_language, speaking_to
from controller.web.session import ConsoleUserDep
from controller.web.templating import PRIORITY_LABELS, render

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/city")
def city(request: Request, session: SessionDep, settings: SettingsDep, user: ConsoleUserDep) -> Response:
    """One card per ward the user sees: speakers online of all, faults, what plays now, broadcasts today."""
    zone = settings.tz
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(zone).date(), time.min, zone)
    glances = city_glance(session, wards_of(session, user), int(midnight.timestamp() * 1000),
                          int(now.timestamp() * 1000))
    tree = unit_tree(session)
    uppers = sorted({tree.name.get(g.unit_id, g.unit_id) for g in user.grants
                     if g.unit_id in tree.kind and g.unit_id not in tree.wards()})
    totals = {"wards": len(glances), "online": sum(g.online for g in glances),
              "total": sum(g.total for g in glances), "faults": sum(g.faults for g in glances),
              "playing": sum(1 for g in glances if g.playing.speakers),
              "broadcasts": sum(g.broadcasts_today for g in glances)}
    return render(request, "city/index.html", {
        "glances": glances, "totals": totals, "uppers": uppers, "city_staff": holds_upper(session, user),
        "priority_labels": PRIORITY_LABELS, "month": str(Month.of(now.astimezone(zone).date())),
        "ms_time": lambda ms: datetime.fromtimestamp(ms / 1000, UTC)})


def _month_report(request: Request, session: Session, settings: Settings, user: User, ward: str,
                  month: str) -> WardMonth | Response:
    """The report of the ward and month asked for (this month by default), or the error page saying what is
    wrong; the page, its CSV and its PDF read it the same way."""
    try:
        the_month = Month.parse(month) if month else Month.of(datetime.now(settings.tz).date())
    except MonthError:
        with speaking_to(request):
            return error_page(request, 422, gettext("Choose a month (YYYY-MM)."))
    (report,) = ward_months(session, [report_ward(session, user, ward or None)], the_month, settings.tz)
    return report


@router.get("/reports/monthly")
def monthly(request: Request, session: SessionDep, settings: SettingsDep, user: ConsoleUserDep,
            ward: Annotated[str, Query(max_length=63)] = "",
            month: Annotated[str, Query(max_length=16)] = "") -> Response:
    """A ward's month: broadcasts by priority and source, speakers and availability, faults; CSV and PDF."""
    tree = unit_tree(session)
    choices = sorted(((w, tree.name.get(w) or w) for w in wards_of(session, user)),
                     key=lambda c: (c[1].casefold(), c[0]))
    if not ward and len(choices) > 1:
        ward = choices[0][0]  # staff of several wards start from the first by name, and choose another in the form
    report = _month_report(request, session, settings, user, ward, month)
    if isinstance(report, Response):
        return report
    the_month = report.month
    context: dict[str, Any] = {
        "report": report, "ward_choices": choices, "month": str(the_month),
        "previous": str(the_month.previous()), "next": str(the_month.next()),
        "priorities": PRIORITIES, "sources": SOURCES, "priority_names": PRIORITY_NAMES,
        "source_names": SOURCE_NAMES, "query": f"ward={report.ward}&month={the_month}",
    }
    return render(request, "reports/monthly.html", context)


def _asked_report(request: Request, session: SessionDep, settings: SettingsDep, user: ConsoleUserDep,
                  ward: Annotated[str, Query(max_length=63)] = "",
                  month: Annotated[str, Query(max_length=16)] = "") -> WardMonth | Response:
    """The month's report the query asks for, or the error page (the CSV and PDF downloads)."""
    return _month_report(request, session, settings, user, ward, month)


AskedReportDep = Annotated[WardMonth | Response, Depends(_asked_report)]


@router.get("/reports/monthly.csv")
def monthly_csv(request: Request, report: AskedReportDep) -> Response:
    """The month as a spreadsheet row, headers in the user's language."""
    if isinstance(report, Response):
        return report
    with speaking_to(request):
        return csv_response(months_csv([report], labelled=True), f"report-{report.ward}-{report.month}")


@router.get("/reports/monthly.pdf")
def monthly_pdf(request: Request, session: SessionDep, settings: SettingsDep, report: AskedReportDep) -> Response:
    """The month on one printable A4 page, in the user's language."""
    if isinstance(report, Response):
        return report
    return pdf_response(session, report, settings, pick_language(request))


@router.get("/reports/city.csv")
def city_csv(request: Request, session: SessionDep, settings: SettingsDep, user: ConsoleUserDep,
             month: Annotated[str, Query(max_length=16)] = "") -> Response:
    """Every ward the user sees for the month, one row each, headers in the user's language."""
    try:
        the_month = Month.parse(month) if month else Month.of(datetime.now(settings.tz).date())
    except MonthError:
        with speaking_to(request):
            return error_page(request, 422, gettext("Choose a month (YYYY-MM)."))
    reports = ward_months(session, wards_of(session, user), the_month, settings.tz)
    with speaking_to(request):
        return csv_response(months_csv(reports, labelled=True), f"report-wards-{the_month}")
