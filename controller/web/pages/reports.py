"""Reports (``/console/reports``): proof of play with filters, page by page and as a CSV file, and the
record of live sessions.

The plays come from the API's own query (:func:`controller.broadcasts.proof_of_play.filtered_plays`), so the console,
``GET /api/v1/plays`` and the CSV count exactly the same rows. Dates are the controller's local days;
a day runs from local midnight to the next.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.accounts.reach import wards_of
from controller.api.deps import LiveSessionsDep, SessionDep, SettingsDep
from controller.api.views import LivePublic, live_public
from controller.broadcasts.live.sessions import LiveSessions
from controller.broadcasts.proof_of_play import (
    LIVE_PLAY_PREFIX,
    OutcomeFilter,
    PlayFilters,
    PlayKind,
    filtered_plays,
    play_kind,
)
from controller.storage.models import Announcement, Device, LiveSession, Play, ScheduleItem, User, Zone
from controller.web.errors import error_page
from controller.web.forms import field_errors
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.pages.dashboard import KIND_LABELS, short
from controller.web.session import ConsoleUserDep
from controller.web.templating import PRIORITY_LABELS, render

router = APIRouter(prefix="/console", include_in_schema=False)

#: Rows per page on screen.
PAGE_SIZE = 50
#: The CSV holds at most this many rows (the API's own limit for its CSV).
CSV_MAX_ROWS = 100_000
#: Live sessions listed below the plays.
LIVE_LIMIT = 50
#: Roles that may listen to a live session's recording (the recording endpoint's rule).
RECORDING_ROLES = frozenset({"approver", "admin"})

#: How a play ended (msgids); ``playing``: not finished yet.
OUTCOME_LABELS: dict[str, str] = {
    "completed": N_("Played in full"),
    "preempted": N_("Interrupted by a more urgent broadcast"),
    "stopped": N_("Stopped"),
    "expired": N_("Too late, not played"),
    "failed": N_("Failed"),
    "cut": N_("Cut off when the speaker stopped mid-play"),
    "playing": N_("Playing"),
}
#: A live session's state (msgids).
LIVE_STATUS_LABELS: dict[str, str] = {
    "starting": N_("Starting"),
    "live": N_("On air"),
    "ended": N_("Ended"),
    "failed": N_("Failed"),
}
LIVE_SOURCE_LABELS: dict[str, str] = {"microphone": N_("Microphone"), "relay": N_("Relay")}

_DMY = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")
_ID = r"^[a-z0-9_-]{1,63}$"


class ReportFilters(BaseModel):
    """The report's filters as the form sends them (empty boxes mean "any")."""

    model_config = ConfigDict(extra="forbid")

    date_from: date | None = None
    date_to: date | None = None
    zone: str | None = Field(default=None, max_length=63, pattern=_ID)
    agent_id: str | None = Field(default=None, max_length=63, pattern=_ID)
    outcome: OutcomeFilter | None = None
    kind: PlayKind | None = None
    page: int = Field(default=1, ge=1, le=100_000)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _day_month_year(cls, value: Any) -> Any:
        # Browsers without a date picker let people type the Vietnamese way: 01/12/2026.
        if isinstance(value, str) and (m := _DMY.match(value)):
            try:
                return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            except ValueError:
                return value  # 31/02/2026: left for the date check to refuse
        return value

    @field_validator("page", mode="before")
    @classmethod
    def _page_default(cls, value: Any) -> Any:
        return 1 if value is None else value

    def play_filters(self, zone_info: ZoneInfo, wards: frozenset[str] | None = None) -> PlayFilters:
        """The query's filters within ``wards``: local days → [midnight of the first, midnight after the last)."""
        since = datetime.combine(self.date_from, time.min, zone_info) if self.date_from else None
        until = datetime.combine(self.date_to + timedelta(days=1), time.min, zone_info) if self.date_to else None
        return PlayFilters(agent_id=self.agent_id, zone=self.zone, outcome=self.outcome, kind=self.kind,
                           since=since, until=until, wards=wards)

    def query(self, page: int | None = None) -> str:
        """These filters as a query string (for links to other pages and to the CSV)."""
        values = {"date_from": self.date_from.isoformat() if self.date_from else None,
                  "date_to": self.date_to.isoformat() if self.date_to else None, "zone": self.zone,
                  "agent_id": self.agent_id, "outcome": self.outcome, "kind": self.kind,
                  "page": str(page) if page and page > 1 else None}
        return urlencode({k: v for k, v in values.items() if v})


_FIELDS = ("date_from", "date_to", "zone", "agent_id", "outcome", "kind", "page")


def parse_filters(request: Request, params: Mapping[str, str]) -> tuple[ReportFilters | None, dict[str, list[str]]]:
    """The filters, or the translated errors by field."""
    raw = {k: params[k] for k in _FIELDS if k in params}
    with speaking_to(request):
        try:
            filters = ReportFilters.model_validate(raw)
        except ValidationError as exc:
            # Every way a date can be wrong (13th month, a word, 31/02) is one message: "a valid date".
            found = [{**e, "type": "date_parsing"} if str(e["type"]).startswith("date") else e for e in exc.errors()]
            return None, field_errors(found)
        if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
            return None, {"date_to": [gettext("The end date is before the start date.")]}
    return filters, {}


def ms_to_dt(ms: int) -> datetime:
    """Protocol milliseconds → an aware datetime (the template shows it in local time)."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def duration(value: timedelta) -> str:
    """``H:MM:SS`` (or ``M:SS`` under an hour), as a clock shows it."""
    seconds = max(0, round(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class PlayRow:
    """One play as the report shows it."""

    play: Play
    kind: str | None
    content: str
    agent_name: str
    zones: list[str]

    @property
    def outcome(self) -> str:
        """The outcome, ``playing`` while it has none."""
        return self.play.outcome or "playing"

    @property
    def offset_ms(self) -> int | None:
        """How late (positive) or early it started against its schedule."""
        return None if self.play.actual_start_ms is None else self.play.actual_start_ms - self.play.scheduled_start_ms

    @property
    def duration_s(self) -> float | None:
        """How long it sounded."""
        p = self.play
        if p.actual_start_ms is None or p.ended_at_ms is None:
            return None
        return (p.ended_at_ms - p.actual_start_ms) / 1000


class Names:
    """What plays refer to, looked up once per id however many plays name it: announcement texts, item
    titles, live session titles, agents' names and zones (only the ids not seen yet are queried: a ward's report
    never reads the rest of a city's fleet)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.texts: dict[str, str] = {}
        self.titles: dict[str, str] = {}
        self.lives: dict[str, str] = {}
        self.devices: dict[str, tuple[str, list[str]]] = {}

    def learn(self, plays: list[Play]) -> None:
        """Looks up what these plays name that is not known yet."""
        ann = {p.announcement_id for p in plays if p.announcement_id} - self.texts.keys()
        items = {p.item_id for p in plays if p.item_id} - self.titles.keys()
        lives = {p.play_id.removeprefix(LIVE_PLAY_PREFIX) for p in plays
                 if p.play_id.startswith(LIVE_PLAY_PREFIX)} - self.lives.keys()
        agents = {p.agent_id for p in plays} - self.devices.keys()
        if agents:
            self.devices.update({agent: ("", []) for agent in agents})
            self.devices.update({d.id: (d.name, list(d.zones)) for d in self.session.scalars(
                select(Device).where(Device.id.in_(agents)))})
        if ann:
            self.texts.update(dict.fromkeys(ann, ""))
            self.texts.update(self.session.execute(select(Announcement.id, Announcement.text)
                                                   .where(Announcement.id.in_(ann))).tuples().all())
        if items:
            self.titles.update(dict.fromkeys(items, ""))
            self.titles.update(self.session.execute(select(ScheduleItem.id, ScheduleItem.title)
                                                    .where(ScheduleItem.id.in_(items))).tuples().all())
        if lives:
            self.lives.update(dict.fromkeys(lives, ""))
            self.lives.update(self.session.execute(select(LiveSession.id, LiveSession.title)
                                                   .where(LiveSession.id.in_(lives))).tuples().all())


def describe(session: Session, plays: Iterable[Play], names: Names | None = None) -> list[PlayRow]:
    """Plays with what they were (announcement text, item title or live session title) and their agent."""
    plays = list(plays)
    names = names or Names(session)
    names.learn(plays)
    rows = []
    for play in plays:
        kind = play_kind(play)
        if kind == "live":
            content = names.lives.get(play.play_id.removeprefix(LIVE_PLAY_PREFIX), "")
        elif kind == "announcement":
            content = names.texts.get(play.announcement_id or "", "")
        else:
            content = names.titles.get(play.item_id or "", "")
        agent_name, zones = names.devices.get(play.agent_id, ("", []))
        rows.append(PlayRow(play, kind, content, agent_name, zones))
    return rows


@dataclass(frozen=True)
class Choices:
    """What the filter boxes offer."""

    zones: list[str]
    agents: list[tuple[str, str]]


def choices(session: Session, wards: frozenset[str]) -> Choices:
    """The zones and agents of ``wards``, for the filter boxes."""
    zones = set(session.scalars(select(Zone.id).where(Zone.ward_id.in_(wards))))
    devices = list(session.scalars(select(Device).where(Device.ward_id.in_(wards)).order_by(Device.id)))
    for device in devices:
        zones.update(device.zones)
    return Choices(sorted(zones), [(d.id, d.name) for d in devices])


def _report_context(request: Request, session: Session, user: User, params: Mapping[str, str],
                    zone_info: ZoneInfo) -> tuple[dict[str, Any], int]:
    filters, errors = parse_filters(request, params)
    wards = wards_of(session, user)
    context: dict[str, Any] = {"errors": errors, "form": {k: params.get(k, "") for k in _FIELDS},
                               "short": short, "ms_to_dt": ms_to_dt, "duration": duration,
                               "choices": choices(session, wards), "outcome_labels": OUTCOME_LABELS,
                               "kind_labels": KIND_LABELS, "priority_labels": PRIORITY_LABELS,
                               "rows": [], "total": 0, "page": 1, "pages": 1, "filters": None}
    if filters is None:
        return context, 422
    query = filtered_plays(session, filters.play_filters(zone_info, wards))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(filters.page, pages)
    plays = session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    form = {**context["form"], "date_from": filters.date_from.isoformat() if filters.date_from else "",
            "date_to": filters.date_to.isoformat() if filters.date_to else ""}
    context.update({"rows": describe(session, plays), "total": total, "page": page, "pages": pages,
                    "filters": filters, "form": form})
    return context, 200


def _live_rows(session: Session, live: LiveSessions, filters: ReportFilters | None,
               zone_info: ZoneInfo, user: User) -> list[LivePublic]:
    """The newest live sessions of the user's wards (as the live API lists them), within the report's dates
    when they are valid."""
    sessions = [live_public(r) for r in live.recent(session, 500, wards_of(session, user))]
    if filters is not None:
        start = datetime.combine(filters.date_from, time.min, zone_info) if filters.date_from else None
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, zone_info) if filters.date_to \
            else None
        sessions = [s for s in sessions if (start is None or s.started_at >= start)
                    and (end is None or s.started_at < end)]
    return sessions[:LIVE_LIMIT]


@router.get("/reports")
def reports(request: Request, session: SessionDep, settings: SettingsDep, live: LiveSessionsDep,
            user: ConsoleUserDep) -> Response:
    """The report page; an htmx request (the filter form, the page links) gets the report part only."""
    zone_info = settings.tz
    context, status = _report_context(request, session, user, request.query_params, zone_info)
    context.update({"live": _live_rows(session, live, context["filters"], zone_info, user),
                    "live_status_labels": LIVE_STATUS_LABELS, "live_source_labels": LIVE_SOURCE_LABELS,
                    "may_listen": bool(user.role_set & RECORDING_ROLES)})
    partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "report"
    headers: dict[str, str] = {}
    if partial:
        # The address bar gets the filters without the form's empty boxes; a refused form changes nothing.
        filters = context["filters"]
        headers["HX-Push-Url"] = "false" if filters is None else \
            "/console/reports" + (f"?{q}" if (q := filters.query(context["page"])) else "")
    return render(request, "reports/_report.html" if partial else "reports/index.html", context,
                  status_code=status, headers=headers)


#: CSV columns: header (msgid) and how each row fills it.
_CSV_COLUMNS: tuple[str, ...] = (
    N_("Scheduled start"), N_("Actual start"), N_("Ended at"), N_("Speaker point"), N_("Speaker point name"),
    N_("Zones"), N_("Kind"), N_("Content"), N_("Priority"), N_("Outcome"), N_("Reason"), N_("Start offset (ms)"),
    N_("Duration (s)"), N_("Play id"), N_("Attempt"),
)
#: Cells starting with these would be formulas in a spreadsheet: announcement text is typed by staff.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _chunks(plays: Iterable[Play], size: int) -> Iterator[list[Play]]:
    it = iter(plays)
    while chunk := list(islice(it, size)):
        yield chunk


def _csv(session: Session, plays: Iterable[Play], zone_info: ZoneInfo) -> bytes:
    def local(ms: int | None) -> str:
        return "" if ms is None else datetime.fromtimestamp(ms / 1000, zone_info).strftime("%d/%m/%Y %H:%M:%S")

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([gettext(c) for c in _CSV_COLUMNS])
    names = Names(session)
    for row in (r for chunk in _chunks(plays, 500) for r in describe(session, chunk, names)):
        p = row.play
        writer.writerow([
            local(p.scheduled_start_ms), local(p.actual_start_ms), local(p.ended_at_ms), p.agent_id,
            spreadsheet_safe(row.agent_name), " ".join(row.zones),
            gettext(KIND_LABELS[row.kind]) if row.kind else "", spreadsheet_safe(row.content),
            gettext(PRIORITY_LABELS.get(p.priority, p.priority)), gettext(OUTCOME_LABELS[row.outcome]),
            spreadsheet_safe(p.reason or ""), "" if row.offset_ms is None else row.offset_ms,
            "" if row.duration_s is None else f"{row.duration_s:.1f}", p.play_id, p.attempt,
        ])
    # UTF-8 with a byte order mark: Excel then reads Vietnamese right.
    return out.getvalue().encode("utf-8-sig")


@router.get("/reports/plays.csv")
def plays_csv(request: Request, session: SessionDep, settings: SettingsDep, user: ConsoleUserDep,
              date_from: Annotated[str, Query(max_length=40)] = "",
              date_to: Annotated[str, Query(max_length=40)] = "",
              zone: Annotated[str, Query(max_length=100)] = "",
              agent_id: Annotated[str, Query(max_length=100)] = "",
              outcome: Annotated[str, Query(max_length=40)] = "",
              kind: Annotated[str, Query(max_length=40)] = "") -> Response:
    """Every play the filters select (up to 100,000) as a spreadsheet, headers in the user's language."""
    params = {"date_from": date_from, "date_to": date_to, "zone": zone, "agent_id": agent_id, "outcome": outcome,
              "kind": kind}
    filters, errors = parse_filters(request, params)
    if filters is None:
        detail = " ".join(m for messages in errors.values() for m in messages)
        return error_page(request, 422, detail)
    zone_info = settings.tz
    # Streamed and described a chunk at a time: memory stays flat, and the look-ups stay within the
    # database's limit on query parameters.
    plays = session.scalars(filtered_plays(session, filters.play_filters(zone_info, wards_of(session, user)))
                            .limit(CSV_MAX_ROWS)
                            .execution_options(yield_per=1000))
    with speaking_to(request):
        body = _csv(session, plays, zone_info)
    stamp = datetime.now(zone_info).strftime("%Y%m%d-%H%M")
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="proof-of-play-{stamp}.csv"',
                             "Cache-Control": "no-store"})

