"""The schedule page: what plays where, a week or a day at a time, with clashes marked.

The page expands the items that still count (approved, and pending ones awaiting approval) with the same
planner that cuts the agents' windows (``schedules.plan``), so quiet hours and targets are applied
exactly as the speakers will apply them; overlaps on one agent come from ``schedules.conflicts``.
Approving, rejecting and cancelling go through the controller's schedule service, as the API does, so
roles, the four-eyes rule and the audit trail are the same.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from controller.accounts.reach import unit_tree, wards_of
from controller.accounts.scope import OutOfScope
from controller.api.deps import ScheduleDep, SessionDep
from controller.api.schedule_schemas import RejectRequest, ScheduleItemPublic
from controller.api.views import item_public
from controller.schedule.agent_windows import plan_wards
from controller.schedule.items import (
    APPROVER_ROLES,
    LIVE_STATUSES,
    WRITER_ROLES,
    ItemForbidden,
    ItemNotFound,
    ItemStateError,
    ScheduleService,
    known_zones,
)
from controller.storage.models import ScheduleItem, User
from controller.web.errors import error_page
from controller.web.forms import field_errors
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.session import ConsoleApproverDep, ConsoleOfficerDep, ConsoleUserDep
from controller.web.templating import PRIORITY_LABELS, render
from schedules.conflicts import play_overlaps
from schedules.localtime import to_local, to_utc_ms
from schedules.plan import Blocked, PlannedPlay

router = APIRouter(prefix="/console", include_in_schema=False)

View = Literal["week", "day"]
RowsBy = Literal["zone", "agent"]

#: Weekday names, Monday first (msgids).
WEEKDAYS: tuple[str, ...] = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
                             N_("Saturday"), N_("Sunday"))
#: Item states as staff read them (msgids).
STATUS_LABELS: dict[str, str] = {"pending": N_("Awaiting approval"), "approved": N_("Approved"),
                                 "rejected": N_("Rejected"), "cancelled": N_("Cancelled")}
#: What the rows of the grid are (msgids).
ROWS_LABELS: dict[str, str] = {"zone": N_("By zone"), "agent": N_("By speaker")}
#: The row that gathers agents in no zone (msgid).
NO_ZONE = N_("No zone")
_DAY_MS = 86_400_000
#: How much of an occurrence's neighbourhood the detail view searches for overlaps (the longest a
#: programme can run is a day).
_DETAIL_REACH_MS = _DAY_MS


@dataclass
class Slot:
    """One occurrence of an item as the page shows it, on a row (a zone or an agent)."""

    play_id: str
    item_id: str
    title: str
    priority: str
    status: str
    queue: bool
    start: datetime
    end: datetime
    agents: list[str]
    #: Same-level overlap with another play on one of its agents (someone has to wait).
    conflict: bool = False
    #: Cut short by a higher level on one of its agents.
    preempted: bool = False
    #: A ward's part of a city item (cấp trên): the city changes it, the ward at most approves it.
    from_above: bool = False
    #: Day view: position along the day (percent) and the lane it is stacked in.
    left: float = 0.0
    width: float = 0.0
    lane: int = 0


@dataclass
class Row:
    """A zone or an agent, with its slots (all, and per day of the week)."""

    key: str
    label: str
    slots: list[Slot] = field(default_factory=list)
    days: list[list[Slot]] = field(default_factory=list)
    lanes: int = 1


@dataclass
class HeldBack:
    """An occurrence that will not play, and why (a msgid)."""

    title: str
    item_id: str
    agent_id: str
    start: datetime
    reason: str


@dataclass
class Expansion:
    """The plan for a span of time and what the page needs to draw it."""

    plays: list[PlannedPlay]
    blocked: list[Blocked]
    items: dict[str, ScheduleItem]
    agents: dict[str, list[str]]
    zones: list[str]
    conflicts: dict[tuple[str, str], set[str]]
    preempted: set[tuple[str, str]]


def expand(session: Session, schedule: ScheduleService, start_ms: int, end_ms: int,
           agent_ids: set[str] | None = None, wards: Collection[str] | None = None) -> Expansion:
    """Approved and pending items of ``wards`` (None: all) planned over ``[start_ms, end_ms)`` (blocking:
    database and planner), each ward on its own speakers.

    Pending items are included so an officer sees what is waiting for approval where it would go; the
    agents' windows, built by the window publisher, hold approved items only.
    """
    result, rows, agents = plan_wards(session, start_ms, end_ms, schedule.settings.tz, statuses=LIVE_STATUSES,
                                      agent_ids=agent_ids, wards=wards)
    plays = [p for per_agent in result.plays.values() for p in per_agent]
    conflicts: dict[tuple[str, str], set[str]] = {}
    preempted: set[tuple[str, str]] = set()
    by_id = {(p.agent_id, p.play_id): p for p in plays}
    for overlap in play_overlaps(plays):
        first, second = by_id[(overlap.agent_id, overlap.first)], by_id[(overlap.agent_id, overlap.second)]
        if overlap.same_level:
            conflicts.setdefault((overlap.agent_id, first.play_id), set()).add(second.play_id)
            conflicts.setdefault((overlap.agent_id, second.play_id), set()).add(first.play_id)
        else:
            lower = first if first.priority.rank < second.priority.rank else second
            preempted.add((overlap.agent_id, lower.play_id))
    return Expansion(plays=plays, blocked=list(result.blocked), items={r.id: r for r in rows}, agents=agents,
                     zones=sorted(known_zones(session, wards)), conflicts=conflicts, preempted=preempted)


def _aware(ms: int, tz: ZoneInfo) -> datetime:
    return to_local(ms, tz).replace(tzinfo=tz)


def _slots(expansion: Expansion, plays: list[PlannedPlay], tz: ZoneInfo) -> list[Slot]:
    """Plays of one row merged by occurrence (a zone's speakers play one occurrence together)."""
    merged: dict[str, Slot] = {}
    for play in plays:
        item = expansion.items[play.item_id]
        slot = merged.get(play.play_id)
        if slot is None:
            slot = merged[play.play_id] = Slot(
                play_id=play.play_id, item_id=play.item_id, title=play.title, priority=play.priority.value,
                status=item.status, queue=item.queue, start=_aware(play.start_ms, tz),
                end=_aware(play.end_ms, tz), agents=[], from_above=item.parent_id is not None)
        slot.agents.append(play.agent_id)
        slot.conflict = slot.conflict or (play.agent_id, play.play_id) in expansion.conflicts
        slot.preempted = slot.preempted or (play.agent_id, play.play_id) in expansion.preempted
    return sorted(merged.values(), key=lambda s: (s.start, s.play_id))


def _place(row: Row, first_day: datetime, days: int) -> None:
    """Sorts a row's slots into days and, for the day view, into lanes so overlaps do not hide."""
    row.days = [[] for _ in range(days)]
    span = days * _DAY_MS / 1000
    lane_ends: list[datetime] = []
    for slot in row.slots:
        index = (slot.start.date() - first_day.date()).days
        row.days[min(max(index, 0), days - 1)].append(slot)
        offset = (slot.start - first_day).total_seconds()
        length = (slot.end - slot.start).total_seconds()
        slot.left = round(max(0.0, offset) / span * 100, 3)
        slot.width = round(max(0.6, min(length + min(offset, 0.0), span - max(offset, 0.0)) / span * 100), 3)
        lane = next((i for i, end in enumerate(lane_ends) if end <= slot.start), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(slot.end)
        else:
            lane_ends[lane] = slot.end
        slot.lane = lane
    row.lanes = max(1, len(lane_ends))


def build_rows(expansion: Expansion, rows_by: RowsBy, zone: str | None, first_day: datetime, days: int,
               tz: ZoneInfo) -> list[Row]:
    """The page's rows: one per zone (or per agent), each with its slots placed."""
    by_agent: dict[str, list[PlannedPlay]] = {}
    for play in expansion.plays:
        by_agent.setdefault(play.agent_id, []).append(play)
    rows: list[Row] = []
    if rows_by == "agent":
        for agent in sorted(expansion.agents):
            if zone is None or zone in expansion.agents[agent]:
                rows.append(Row(agent, agent, _slots(expansion, by_agent.get(agent, []), tz)))
    else:
        zones = [zone] if zone is not None else expansion.zones
        for name in zones:
            members = [a for a, z in expansion.agents.items() if name in z]
            rows.append(Row(name, name, _slots(expansion, [p for a in members for p in by_agent.get(a, [])], tz)))
        loose = [a for a, z in expansion.agents.items() if not z]
        if zone is None and loose:
            rows.append(Row("", gettext(NO_ZONE), _slots(expansion, [p for a in loose for p in by_agent.get(a, [])],
                                                         tz)))
    for row in rows:
        _place(row, first_day, days)
    return rows


def held_back(expansion: Expansion, tz: ZoneInfo, zone: str | None) -> list[HeldBack]:
    """Occurrences the rules keep off the air in the span (quiet hours, vanished targets)."""
    found = []
    for b in expansion.blocked:
        if zone is not None and b.agent_id and zone not in expansion.agents.get(b.agent_id, []):
            continue
        item = expansion.items.get(b.item_id)
        reason = N_("Targets a speaker or zone that does not exist") if b.reason.startswith("unknown target") \
            else N_("Quiet hours")
        found.append(HeldBack(item.title if item else b.item_id, b.item_id, b.agent_id, _aware(b.start_ms, tz),
                              reason))
    return sorted(found, key=lambda h: (h.start, h.agent_id))


# the page --------------------------------------------------------------------------------------------------


def _today(tz: ZoneInfo) -> date:
    return datetime.now(tz).date()


def _span(view: View, day: date) -> tuple[date, int]:
    """The first day shown and how many: the week (Monday first) holding ``day``, or that day alone."""
    if view == "day":
        return day, 1
    return day - timedelta(days=day.weekday()), 7


def _link(view: View, day: date, zone: str | None, rows_by: RowsBy) -> str:
    query: dict[str, str] = {"view": view, "date": day.isoformat(), "by": rows_by}
    if zone:
        query["zone"] = zone
    return "/console/schedule?" + urlencode(query)


def _context(session: Session, schedule: ScheduleService, user: User, view: View, day: date | None,
             zone: str | None, rows_by: RowsBy) -> dict[str, Any]:
    tz = schedule.settings.tz
    today = _today(tz)
    chosen = day or today
    first, count = _span(view, chosen)
    first_local = datetime.combine(first, datetime.min.time())
    start_ms = to_utc_ms(first_local, tz)
    end_ms = to_utc_ms(first_local + timedelta(days=count), tz)
    expansion = expand(session, schedule, start_ms, end_ms, wards=wards_of(session, user))
    if zone is not None and zone not in expansion.zones:
        raise HTTPException(404, N_("There is no such zone."))
    rows = build_rows(expansion, rows_by, zone, first_local.replace(tzinfo=tz), count, tz)
    days = [first + timedelta(days=i) for i in range(count)]
    step = 1 if view == "day" else 7
    slots_by_day: list[list[tuple[Row, Slot]]] = [[] for _ in days]
    for row in rows:
        for index, slots in enumerate(row.days):
            slots_by_day[index].extend((row, s) for s in slots)
    for entries in slots_by_day:
        entries.sort(key=lambda pair: (pair[1].start, pair[0].label))
    conflicts = sum(1 for row in rows for s in row.slots if s.conflict)
    return {
        "view": view, "rows_by": rows_by, "zone": zone, "zones": expansion.zones, "rows": rows, "days": days,
        "today": today, "chosen": chosen, "weekdays": WEEKDAYS, "priority_labels": PRIORITY_LABELS,
        "status_labels": STATUS_LABELS, "rows_labels": ROWS_LABELS, "slots_by_day": slots_by_day,
        "conflict_count": conflicts,
        "held_back": held_back(expansion, tz, zone),
        "hours": list(range(0, 24, 3)),
        "prev_link": _link(view, chosen - timedelta(days=step), zone, rows_by),
        "next_link": _link(view, chosen + timedelta(days=step), zone, rows_by),
        "today_link": _link(view, today, zone, rows_by),
        "week_link": _link("week", chosen, zone, rows_by),
        "day_links": [_link("day", d, zone, rows_by) for d in days],
        "grid_query": urlencode({k: v for k, v in (("view", view), ("date", chosen.isoformat()), ("by", rows_by),
                                                   ("zone", zone or "")) if v}),
        "week_number": first.isocalendar().week,
    }


ViewQuery = Annotated[View, Query()]
DateQuery = Annotated[date | None, Query()]
ZoneQuery = Annotated[str | None, Query(max_length=63)]
ByQuery = Annotated[RowsBy, Query()]


@router.get("/schedule")
def schedule_page(request: Request, session: SessionDep, schedule: ScheduleDep, user: ConsoleUserDep,
                  view: ViewQuery = "week", date: DateQuery = None, zone: ZoneQuery = None,
                  by: ByQuery = "zone") -> Response:
    """The week (or day) view of what plays where."""
    with speaking_to(request):
        context = _context(session, schedule, user, view, date, zone or None, by)
    return render(request, "schedule/page.html", context)


@router.get("/schedule/grid")
def schedule_grid(request: Request, session: SessionDep, schedule: ScheduleDep, user: ConsoleUserDep,
                  view: ViewQuery = "week", date: DateQuery = None, zone: ZoneQuery = None,
                  by: ByQuery = "zone") -> Response:
    """The grid alone, fetched again when the schedule changes."""
    with speaking_to(request):
        context = _context(session, schedule, user, view, date, zone or None, by)
    return render(request, "schedule/_grid.html", context)


# one item ------------------------------------------------------------------------------------------------


def _occurrence_overlaps(session: Session, schedule: ScheduleService, row: ScheduleItem,
                         play_id: str | None) -> list[dict[str, Any]]:
    """What one occurrence of ``row`` overlaps on its agents: the other item, the agent and whether it is a
    same-level clash or a pre-emption."""
    if not play_id or not play_id.startswith(row.id + "-"):
        return []
    try:
        start_ms = int(play_id.rsplit("-", 1)[1])
    except ValueError:
        return []
    expansion = expand(session, schedule, start_ms - _DETAIL_REACH_MS, start_ms + _DETAIL_REACH_MS,
                       wards=[row.ward_id])
    mine = {(p.agent_id, p.play_id): p for p in expansion.plays if p.play_id == play_id}
    others = {(p.agent_id, p.play_id): p for p in expansion.plays}
    found: list[dict[str, Any]] = []
    tz = schedule.settings.tz
    for (agent, pid), play in sorted(mine.items()):
        for other_id in sorted(expansion.conflicts.get((agent, pid), set())):
            other = others[(agent, other_id)]
            found.append({"agent": agent, "title": other.title, "item_id": other.item_id, "kind": "conflict",
                          "start": _aware(other.start_ms, tz), "end": _aware(other.end_ms, tz)})
        for (other_agent, other_id), other in others.items():
            if other_agent != agent or other_id == pid or other.priority == play.priority:
                continue
            if other.start_ms < play.end_ms and play.start_ms < other.end_ms:
                kind = "preempted" if other.priority.rank > play.priority.rank else "preempts"
                found.append({"agent": agent, "title": other.title, "item_id": other.item_id, "kind": kind,
                              "start": _aware(other.start_ms, tz), "end": _aware(other.end_ms, tz)})
    return found


def _detail_context(session: Session, schedule: ScheduleService, user: User, item_id: str,
                    play_id: str | None) -> dict[str, Any]:
    try:
        row = schedule.get(session, item_id, user)
    except ItemNotFound:
        raise HTTPException(404) from None
    public: ScheduleItemPublic = item_public(row, session, schedule)
    # The buttons follow the roles held in the item's own ward, as the service will check them.
    return {
        "item": public, "play_id": play_id or "", "overlaps": _occurrence_overlaps(session, schedule, row, play_id),
        "priority_labels": PRIORITY_LABELS, "status_labels": STATUS_LABELS,
        "can_decide": public.status == "pending" and row.ward_id in wards_of(session, user, APPROVER_ROLES),
        # A city item's part is cancelled by the city, as a whole; the ward only approves or rejects it.
        "can_cancel": public.status in LIVE_STATUSES and row.parent_id is None
                      and row.ward_id in wards_of(session, user, WRITER_ROLES),
        "from_unit": unit_tree(session).name.get(public.from_unit or "", public.from_unit),
        "errors": {}, "reason": "", "notice": None,
    }


@router.get("/schedule/items/{item_id}")
def item_detail(request: Request, session: SessionDep, schedule: ScheduleDep, user: ConsoleUserDep,
                item_id: str, play: Annotated[str | None, Query(max_length=80)] = None) -> Response:
    """One item: what, when, where, who wrote and approved it, and what this occurrence overlaps."""
    return render(request, "schedule/_detail.html", _detail_context(session, schedule, user, item_id, play))


def _changed(request: Request, session: SessionDep, schedule: ScheduleService, user: User, item_id: str,
             play: str, notice: str) -> Response:
    context = _detail_context(session, schedule, user, item_id, play or None)
    context["notice"] = notice
    # Other open pages (approval queues, dashboards) look again when the schedule service's change is
    # committed (the change feed follows it); this page's grid listens for the HX-Trigger event below.
    return render(request, "schedule/_detail.html", context, headers={"HX-Trigger": "schedule-changed"})


def _refused(request: Request, exc: Exception) -> Response:
    with speaking_to(request):
        if isinstance(exc, OutOfScope):
            return error_page(request, 403, str(exc))
        if isinstance(exc, ItemForbidden):
            if "someone other" in str(exc):
                return error_page(request, 403, gettext(
                    "An item must be approved by someone other than the person who wrote it."))
            return error_page(request, 403)
        if isinstance(exc, ItemStateError):
            return error_page(request, 409, gettext("This item is no longer awaiting approval."))
    return error_page(request, 404)


@router.post("/schedule/items/{item_id}/approve")
def approve(request: Request, session: SessionDep, schedule: ScheduleDep, user: ConsoleApproverDep,
            item_id: str, play: Annotated[str, Form(max_length=80)] = "") -> Response:
    """An approver lets a pending item go out (never their own)."""
    try:
        schedule.decide(session, item_id, user, True)
    except (ItemForbidden, ItemStateError, ItemNotFound, OutOfScope) as exc:
        return _refused(request, exc)
    return _changed(request, session, schedule, user, item_id, play, N_("Approved."))


@router.post("/schedule/items/{item_id}/reject")
def reject(request: Request, session: SessionDep, schedule: ScheduleDep, user: ConsoleApproverDep,
           item_id: str, reason: Annotated[str, Form(max_length=2000)] = "",
           play: Annotated[str, Form(max_length=80)] = "") -> Response:
    """An approver sends a pending item back; the reason is required and shown to its author."""
    try:
        body = RejectRequest(reason=reason.strip())
    except ValidationError as exc:
        context = _detail_context(session, schedule, user, item_id, play or None)
        with speaking_to(request):
            context.update(errors=field_errors(exc), reason=reason[:1000])
        return render(request, "schedule/_detail.html", context, status_code=422)
    try:
        schedule.decide(session, item_id, user, False, body.reason)
    except (ItemForbidden, ItemStateError, ItemNotFound, OutOfScope) as exc:
        return _refused(request, exc)
    return _changed(request, session, schedule, user, item_id, play, N_("Rejected."))


@router.delete("/schedule/items/{item_id}")
def cancel(request: Request, session: SessionDep, schedule: ScheduleDep, user: ConsoleOfficerDep,
           item_id: str, play: Annotated[str, Query(max_length=80)] = "") -> Response:
    """Cancels an item: it leaves every speaker's schedule; its history stays."""
    try:
        schedule.cancel(session, item_id, user)
    except (ItemNotFound, OutOfScope) as exc:
        return _refused(request, exc)
    return _changed(request, session, schedule, user, item_id, play, N_("Cancelled."))
