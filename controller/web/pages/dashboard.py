"""The dashboard (``/console/``): the fleet by zone, what plays now and next, faults, and motion events.

Each panel is a fragment (``/console/dashboard/<panel>``) the page fetches again when the change feed
says its kind of state moved (SSE), with a slow poll as a fallback. The panels read what the API's
read endpoints read (devices, plays, the schedule's plan, camera events) and, like those endpoints,
show the whole fleet of the user's wards (each query filters on the ward in SQL) to every member of staff
there: zone scope limits what a user may *send*, not what they may see. A zone-limited user's zones come
first.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts.reach import wards_of
from controller.api.deps import SessionDep, WindowsDep
from controller.broadcasts.proof_of_play import LIVE_PLAY_PREFIX
from controller.schedule.agent_windows import WindowPublisher
from controller.storage.models import (
    Announcement,
    Camera,
    CameraEvent,
    Delivery,
    Device,
    DeviceEvent,
    LiveSession,
    Play,
    ScheduleItem,
    User,
    Zone,
)
from controller.web.i18n import N_
from controller.web.session import ConsoleSecurityDep, ConsoleUserDep
from controller.web.templating import AGENT_STATUS_LABELS, PRIORITY_LABELS, render
from devices.protocol import now_ms

router = APIRouter(prefix="/console", include_in_schema=False)

#: What a play is (msgids).
KIND_LABELS: dict[str, str] = {
    "announcement": N_("Announcement"),
    "schedule": N_("Schedule item"),
    "live": N_("Live broadcast"),
}
#: Roles that see camera motion events (the camera events API's own rule).
MOTION_ROLES = frozenset({"security", "admin"})
#: How far ahead "next" looks in the schedule.
NEXT_HOURS = 24
#: How far back faults and motion events are listed.
RECENT = timedelta(hours=24)
#: A play reported started but not finished counts as playing for at most this long (a lost
#: ``play.finished`` must not leave a speaker "playing" forever on the dashboard).
OPEN_PLAY_MAX_MS = 3 * 3600 * 1000
#: Panel names and the change kinds that refresh them.
PANELS: dict[str, str] = {"fleet": "sse:fleet", "playing": "sse:plays, sse:fleet, sse:announcements",
                          "faults": "sse:fleet, sse:cameras", "motion": "sse:motion"}


def short(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut at a word near ``limit`` characters (announcement texts can be long)."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return line[:limit - 1].rsplit(" ", 1)[0] + "…"


def _ms_time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


# fleet ----------------------------------------------------------------------------------------------


@dataclass
class ZoneGroup:
    """The agents of one zone (``zone`` empty: agents in no zone) and how many are online."""

    zone: str
    name: str
    mine: bool
    agents: list[Device] = field(default_factory=list)

    @property
    def online(self) -> int:
        """Agents of the zone that are online."""
        return sum(1 for d in self.agents if d.status == "online")

    @property
    def offline(self) -> list[Device]:
        """Agents of the zone that are not online, longest silent first."""
        return sorted((d for d in self.agents if d.status != "online"),
                      key=lambda d: (d.last_seen_at or datetime.min.replace(tzinfo=UTC), d.id))


def active_devices(session: Session, wards: Collection[str]) -> list[Device]:
    """Registered agents of ``wards`` that are part of the fleet (not revoked), by id."""
    return list(session.scalars(select(Device).where(Device.revoked_at.is_(None), Device.ward_id.in_(wards))
                                .order_by(Device.id)))


def fleet_by_zone(session: Session, user: User, devices: Iterable[Device], wards: Collection[str]) -> list[ZoneGroup]:
    """Agents grouped by zone (an agent in two zones is in both): the user's zones first, then by id,
    agents in no zone last."""
    names = {z.id: z.name for z in session.scalars(select(Zone).where(Zone.ward_id.in_(wards)))}
    groups: dict[str, ZoneGroup] = {}
    mine = set(user.zones or ())
    for device in devices:
        for zone in device.zones or [""]:
            group = groups.get(zone)
            if group is None:
                group = groups[zone] = ZoneGroup(zone, names.get(zone, ""), zone in mine)
            group.agents.append(device)
    return sorted(groups.values(), key=lambda g: (not g.mine, g.zone == "", g.zone))


# playing now and next -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """Something an agent plays (now) or will play (next)."""

    title: str
    priority: str
    at: datetime | None
    #: announcement, schedule or live (None when unknown)
    kind: str | None = None


@dataclass
class AgentActivity:
    """One agent's line on the dashboard."""

    device: Device
    now: Activity | None
    next: Activity | None


@dataclass
class _Titles:
    """What announcements, items and live sessions are called, looked up in one query each."""

    announcements: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, announcement_ids: set[str], item_ids: set[str],
             live_ids: set[str]) -> _Titles:
        titles = cls()
        if announcement_ids:
            titles.announcements = {a.id: short(a.text) for a in session.scalars(
                select(Announcement).where(Announcement.id.in_(announcement_ids)))}
        if item_ids:
            titles.items = {i.id: i.title for i in session.scalars(
                select(ScheduleItem).where(ScheduleItem.id.in_(item_ids)))}
        if live_ids:
            titles.live = {s.id: s.title for s in session.scalars(
                select(LiveSession).where(LiveSession.id.in_(live_ids)))}
        return titles

    def title(self, play_id: str, announcement_id: str | None, item_id: str | None) -> str:
        if play_id.startswith(LIVE_PLAY_PREFIX):
            return self.live.get(play_id.removeprefix(LIVE_PLAY_PREFIX), "")
        if announcement_id:
            return self.announcements.get(announcement_id, "")
        if item_id:
            return self.items.get(item_id, "")
        return ""


def _kind(play_id: str, announcement_id: str | None, item_id: str | None) -> str | None:
    if play_id.startswith(LIVE_PLAY_PREFIX):
        return "live"
    return "announcement" if announcement_id else ("schedule" if item_id else None)


class _Current(NamedTuple):
    play_id: str
    announcement_id: str | None
    item_id: str | None
    priority: str
    started_ms: int
    title: str


def _now_playing(session: Session, devices: list[Device], now: int, wards: Collection[str]) -> dict[str, _Current]:
    """agent → what it plays now.

    The agent's retained state says it best; a play reported started and not yet finished stands in
    while the state is not there yet (both come over the same link, in either order).
    """
    found: dict[str, _Current] = {}
    online = {d.id for d in devices if d.status == "online"}
    for device in devices:
        playing = (device.state or {}).get("now_playing") if device.id in online else None
        if isinstance(playing, dict) and playing.get("play_id"):
            found[device.id] = _Current(str(playing["play_id"]), playing.get("announcement_id"),
                                        playing.get("item_id"), str(playing.get("priority") or "normal"),
                                        int(playing.get("started_at") or now), str(playing.get("title") or ""))
    wanted = online - set(found)
    # By start time only, the agents picked out here: with the agents in the query SQLite chose the
    # (agent_id, play_id) index and read every play of every online agent (all their history) to find
    # the few started in the last hours (bench/console_pages.py: 31 ms at 50,000 plays, 0.25 ms this way).
    open_plays = session.scalars(select(Play).where(Play.outcome.is_(None), Play.actual_start_ms.is_not(None),
                                                    Play.actual_start_ms >= now - OPEN_PLAY_MAX_MS,
                                                    Play.ward_id.in_(wards))
                                 .order_by(Play.actual_start_ms))
    for play in open_plays:
        if play.agent_id not in wanted:
            continue
        found[play.agent_id] = _Current(play.play_id, play.announcement_id, play.item_id, play.priority,
                                        play.actual_start_ms or now, "")
    return found


#: How long a computed plan serves every open dashboard: the fleet's reports refetch the panel up to twice
#: a second per page, and planning a day for a large fleet is not free. A newly approved item shows up
#: as "next" within this.
PLAN_TTL_MS = 10_000
_plan_lock = threading.Lock()
_plan_cache: dict[tuple[int, tuple[str, ...]], tuple[int, dict[str, list[tuple[int, Activity]]]]] = {}


def _planned(windows: WindowPublisher, agent_ids: list[str], now: int) -> dict[str, list[tuple[int, Activity]]]:
    """agent → its first few planned plays (start ms, what) from now until a day ahead, cached briefly."""
    if not agent_ids:
        return {}
    key = (id(windows), tuple(sorted(agent_ids)))
    with _plan_lock:
        cached = _plan_cache.get(key)
        if cached is not None and now < cached[0]:
            return cached[1]
        # The plan the agents' windows are built from (blocking; routes run in a worker thread). It covers
        # the cache's lifetime too, so "next" stays right until it is computed again.
        result, saved = windows.compute(now, now + NEXT_HOURS * 3_600_000 + PLAN_TTL_MS, agent_ids)
        plans = {agent: [(p.start_ms, Activity(p.title, p.priority.value, _ms_time(p.start_ms), "schedule"))
                         for p in plays if p.start_ms >= saved.get(p.item_id, 0)][:5]
                 for agent, plays in result.plays.items()}
        _plan_cache.clear()  # one fleet per controller: the newest entry is the only one worth keeping
        _plan_cache[key] = (now + PLAN_TTL_MS, plans)
        return plans


def _upcoming(session: Session, windows: WindowPublisher, devices: list[Device], now: int,
              wards: Collection[str]) -> dict[str, Activity]:
    """agent → the next thing it will play: the schedule's next occurrence or an announcement set for later."""
    nexts: dict[str, tuple[int, Activity]] = {}

    def offer(agent_id: str, start: int, activity: Activity) -> None:
        if agent_id not in nexts or start < nexts[agent_id][0]:
            nexts[agent_id] = (start, activity)

    for agent_id, plays in _planned(windows, [d.id for d in devices if d.enabled], now).items():
        for start, planned in plays:
            if start > now:
                offer(agent_id, start, planned)
                break
    rows = session.execute(select(Delivery.agent_id, Announcement.start_ms, Announcement.text, Announcement.priority)
                           .join(Announcement, Announcement.id == Delivery.announcement_id)
                           .where(Announcement.start_ms > now, Announcement.ward_id.in_(wards),
                                  Delivery.status.in_(("queued", "sent", "accepted"))))
    shown = {d.id for d in devices}
    for agent_id, start_ms, text, priority in rows:
        if start_ms is None or agent_id not in shown:
            continue
        offer(agent_id, start_ms, Activity(short(text), priority, _ms_time(start_ms), "announcement"))
    return {agent: activity for agent, (_start, activity) in nexts.items()}


def activity(session: Session, windows: WindowPublisher, devices: list[Device],
             wards: Collection[str]) -> list[AgentActivity]:
    """Per agent of ``wards``, what it plays now and what it plays next; agents playing something first."""
    now = now_ms()
    playing = _now_playing(session, devices, now, wards)
    untitled = [c for c in playing.values() if not c.title]
    titles = _Titles.load(session, {c.announcement_id for c in untitled if c.announcement_id},
                          {c.item_id for c in untitled if c.item_id},
                          {c.play_id.removeprefix(LIVE_PLAY_PREFIX) for c in untitled
                           if c.play_id.startswith(LIVE_PLAY_PREFIX)})
    upcoming = _upcoming(session, windows, devices, now, wards)
    lines = []
    for device in devices:
        current = None
        if (c := playing.get(device.id)) is not None:
            current = Activity(c.title or titles.title(c.play_id, c.announcement_id, c.item_id), c.priority,
                               _ms_time(c.started_ms), _kind(c.play_id, c.announcement_id, c.item_id))
        lines.append(AgentActivity(device, current, upcoming.get(device.id)))
    lines.sort(key=lambda line: (line.now is None, line.device.id))
    return lines


# faults ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A fault to look at: what kind (msgid), where, since when, and the device's own words."""

    kind: str
    where: str
    at: datetime | None
    detail: str


_SIGN_FAULT = N_("LED sign fault")
_CAMERA_FAULT = N_("Camera fault")
_AGENT_ERROR = N_("Agent error")


def faults(session: Session, wards: Collection[str]) -> tuple[list[Fault], list[Fault]]:
    """(faults now: signs and cameras of ``wards`` that report one; recent error events of their agents and signs)."""
    current: list[Fault] = []
    for device in active_devices(session, wards):
        for sign in (device.state or {}).get("signs", []) or []:
            if isinstance(sign, dict) and sign.get("fault"):
                current.append(Fault(_SIGN_FAULT, f"{device.id} · {sign.get('sign', '')}",
                                     _ms_time(sign.get("since")), str(sign["fault"])))
    for camera in session.scalars(select(Camera).where(Camera.status == "fault", Camera.ward_id.in_(wards))
                                  .order_by(Camera.id)):
        label = camera.name or camera.id
        current.append(Fault(_CAMERA_FAULT, f"{label} ({camera.zone})" if camera.zone else label,
                             camera.status_changed_at, camera.fault or ""))
    since = now_ms() - int(RECENT.total_seconds() * 1000)
    recent: list[Fault] = []
    events = session.scalars(select(DeviceEvent).join(Device, Device.id == DeviceEvent.agent_id)
                             .where(DeviceEvent.type.in_(("error", "sign.status")), DeviceEvent.ts_ms >= since,
                                    Device.ward_id.in_(wards))
                             .order_by(DeviceEvent.ts_ms.desc()).limit(200))
    for event in events:
        data = event.data or {}
        if event.type == "sign.status":
            if data.get("ok"):
                continue
            recent.append(Fault(_SIGN_FAULT, f"{event.agent_id} · {data.get('sign', '')}", _ms_time(event.ts_ms),
                                f"{data.get('code', '')}: {data.get('message', '')}".strip(": ")))
        else:
            recent.append(Fault(_AGENT_ERROR, event.agent_id, _ms_time(event.ts_ms),
                                f"{data.get('code', '')}: {data.get('message', '')}".strip(": ")))
        if len(recent) >= 20:
            break
    return current, recent


# motion ---------------------------------------------------------------------------------------------


def motion_events(session: Session, wards: Collection[str], limit: int = 12) -> list[tuple[CameraEvent, str]]:
    """The newest motion events of the last day in ``wards``, with their camera's name."""
    since = now_ms() - int(RECENT.total_seconds() * 1000)
    events = list(session.scalars(select(CameraEvent).where(CameraEvent.type == "camera.motion",
                                                           CameraEvent.ts_ms >= since,
                                                           CameraEvent.ward_id.in_(wards))
                                  .order_by(CameraEvent.ts_ms.desc(), CameraEvent.id).limit(limit)))
    names = {c.id: c.name or c.id for c in session.scalars(
        select(Camera).where(Camera.id.in_({e.camera_id for e in events})))} if events else {}
    return [(e, names.get(e.camera_id, e.camera_id)) for e in events]


def sees_motion(user: User) -> bool:
    """Whether the user may see camera motion events."""
    return bool(user.role_set & MOTION_ROLES)


# routes ---------------------------------------------------------------------------------------------


def panel_data(panel: str, session: Session, windows: WindowPublisher, user: User) -> dict[str, Any]:
    """What one panel shows: only the wards the user can see."""
    wards = wards_of(session, user)
    if panel == "fleet":
        devices = active_devices(session, wards)
        return {"zones": fleet_by_zone(session, user, devices, wards), "total": len(devices),
                "online": sum(1 for d in devices if d.status == "online")}
    if panel == "playing":
        return {"lines": activity(session, windows, active_devices(session, wards), wards)}
    if panel == "faults":
        current, recent = faults(session, wards)
        return {"current": current, "recent": recent}
    return {"events": [(e, name, _ms_time(e.ts_ms)) for e, name in motion_events(session, wards)]}


def _panel(request: Request, panel: str, session: Session, windows: WindowPublisher, user: User) -> Response:
    return render(request, f"dashboard/_{panel}.html",
                  {**_labels(), "d": panel_data(panel, session, windows, user)})


def _labels() -> dict[str, Any]:
    return {"priority_labels": PRIORITY_LABELS, "status_labels": AGENT_STATUS_LABELS, "kind_labels": KIND_LABELS,
            "short": short}


@router.get("/")
def dashboard(request: Request, session: SessionDep, windows: WindowsDep, user: ConsoleUserDep) -> Response:
    """The dashboard with every panel the user may see, filled in now and kept live by the change feed."""
    shown = [p for p in PANELS if p != "motion" or sees_motion(user)]
    kinds = sorted({k.strip().removeprefix("sse:") for p in shown for k in PANELS[p].split(",")})
    context: dict[str, Any] = {**_labels(), "shown": shown, "triggers": PANELS, "kinds": ",".join(kinds),
                               "data": {p: panel_data(p, session, windows, user) for p in shown}}
    return render(request, "dashboard/index.html", context)


@router.get("/dashboard/fleet")
def fleet_panel(request: Request, session: SessionDep, windows: WindowsDep, user: ConsoleUserDep) -> Response:
    """Online and offline agents by zone."""
    return _panel(request, "fleet", session, windows, user)


@router.get("/dashboard/playing")
def playing_panel(request: Request, session: SessionDep, windows: WindowsDep,
                  user: ConsoleUserDep) -> Response:
    """What each agent plays now and next."""
    return _panel(request, "playing", session, windows, user)


@router.get("/dashboard/faults")
def faults_panel(request: Request, session: SessionDep, windows: WindowsDep,
                 user: ConsoleUserDep) -> Response:
    """Sign and camera faults now, and agents' recent error reports."""
    return _panel(request, "faults", session, windows, user)


@router.get("/dashboard/motion")
def motion_panel(request: Request, session: SessionDep, windows: WindowsDep,
                 user: ConsoleSecurityDep) -> Response:
    """Recent motion events (security staff and admins)."""
    return _panel(request, "motion", session, windows, user)
