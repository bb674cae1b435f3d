"""Every ward at a glance, for the city's staff: speakers online, faults, what plays now, broadcasts today.

A handful of grouped queries for all the caller's wards together (``GROUP BY ward_id``), never one query
per ward: a city of two hundred wards and ten thousand speakers is read in a few milliseconds of SQL.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.broadcasts.proof_of_play import LIVE_PLAY_PREFIX
from controller.reports.monthly import ONLINE, broadcast_key, ward_filter
from controller.storage.models import Announcement, Camera, Device, LiveSession, Play, ScheduleItem, Unit

#: A play reported started but not finished counts as playing for at most this long (as on the dashboard:
#: a lost ``play.finished`` must not leave a ward "playing" for ever).
OPEN_PLAY_MAX_MS = 3 * 3600 * 1000
_RANK = {"emergency": 2, "priority": 1, "normal": 0}


@dataclass
class NowPlaying:
    """What one ward plays now: on how many speakers, and the most urgent of it."""

    speakers: int = 0
    title: str = ""
    priority: str = "normal"
    started_ms: int = 0


@dataclass
class WardGlance:
    """One ward's line on the city dashboard."""

    ward: str
    name: str
    total: int = 0
    online: int = 0
    offline: int = 0
    camera_faults: int = 0
    broadcasts_today: int = 0
    playing: NowPlaying = field(default_factory=NowPlaying)

    @property
    def faults(self) -> int:
        """Faults now: speakers whose link is lost, and cameras reporting a fault."""
        return self.offline + self.camera_faults


def city_glance(session: Session, wards: Collection[str], day_start_ms: int,
                now_ms: int | None = None) -> list[WardGlance]:
    """Each of ``wards`` at a glance (broadcasts counted from ``day_start_ms``, local midnight), by name."""
    if not wards:
        return []
    now = now_ms if now_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
    names = dict(session.execute(select(Unit.id, Unit.name).where(ward_filter(Unit.id, wards))).all())
    glances = {w: WardGlance(w, names.get(w, w)) for w in wards}
    for ward_id, status, count in session.execute(
            select(Device.ward_id, Device.status, func.count())
            .where(ward_filter(Device.ward_id, wards), Device.revoked_at.is_(None))
            .group_by(Device.ward_id, Device.status)):
        glance = glances[ward_id]
        glance.total += count
        if status == ONLINE:
            glance.online += count
        elif status == "offline":
            glance.offline += count
    for ward_id, count in session.execute(
            select(Camera.ward_id, func.count()).where(ward_filter(Camera.ward_id, wards),
                                                       Camera.status == "fault")
            .group_by(Camera.ward_id)):
        glances[ward_id].camera_faults = count
    today = (select(Play.ward_id.label("ward_id"), broadcast_key().label("key"))
             .where(ward_filter(Play.ward_id, wards), Play.scheduled_start_ms >= day_start_ms,
                    Play.scheduled_start_ms <= now, Play.actual_start_ms.is_not(None))
             .group_by(Play.ward_id, "key").subquery())
    for ward_id, count in session.execute(select(today.c.ward_id, func.count()).group_by(today.c.ward_id)):
        glances[ward_id].broadcasts_today = count
    _playing_now(session, glances, now)
    return sorted(glances.values(), key=lambda g: (g.name.casefold(), g.ward))


def _playing_now(session: Session, glances: dict[str, WardGlance], now: int) -> None:
    """Open plays of online speakers started in the last hours.

    No join with devices: SQLite then drove the query from every online device through its whole history of
    plays (bench/city.py: 1.8 s at 10,000 agents and a million plays). The recent plays alone are a small
    range of ``ix_plays_actual_start`` (or of ``ix_plays_ward_scheduled``, bounded by the scheduled start
    too), and the few speakers they name are looked up after.
    """
    since = now - OPEN_PLAY_MAX_MS
    rows = session.execute(
        select(Play.ward_id, Play.agent_id, Play.play_id, Play.announcement_id, Play.item_id, Play.priority,
               Play.actual_start_ms)
        .where(Play.outcome.is_(None), Play.actual_start_ms >= since,
               # A play started in the last hours was scheduled not long before (at most as late again).
               Play.scheduled_start_ms >= since - OPEN_PLAY_MAX_MS, ward_filter(Play.ward_id, glances))).all()
    online = set(session.scalars(select(Device.id).where(Device.id.in_({r.agent_id for r in rows}),
                                                         Device.status == ONLINE))) if rows else set()
    rows = [r for r in rows if r.agent_id in online]
    speakers: dict[str, set[str]] = {}
    top: dict[str, _Open] = {}
    for ward_id, agent_id, play_id, announcement_id, item_id, priority, started in rows:
        speakers.setdefault(ward_id, set()).add(agent_id)
        candidate = _Open(_RANK.get(priority, 0), started or 0, play_id, announcement_id, item_id, priority)
        if ward_id not in top or (candidate.rank, candidate.started) > (top[ward_id].rank, top[ward_id].started):
            top[ward_id] = candidate  # the most urgent, then the newest, names what the ward plays
    titles = _titles(session, top.values())
    for ward_id, agents in speakers.items():
        shown = top[ward_id]
        glances[ward_id].playing = NowPlaying(len(agents), titles.get(shown.key, ""), shown.priority, shown.started)


@dataclass(frozen=True)
class _Open:
    rank: int
    started: int
    play_id: str
    announcement_id: str | None
    item_id: str | None
    priority: str

    @property
    def key(self) -> tuple[str, str]:
        if self.play_id.startswith(LIVE_PLAY_PREFIX):
            return "live", self.play_id.removeprefix(LIVE_PLAY_PREFIX)
        if self.announcement_id:
            return "announcement", self.announcement_id
        return "schedule", self.item_id or ""


def _titles(session: Session, shown: Collection[_Open]) -> dict[tuple[str, str], str]:
    wanted: dict[str, set[str]] = {}
    for play in shown:
        kind, ident = play.key
        wanted.setdefault(kind, set()).add(ident)
    titles: dict[tuple[str, str], str] = {}
    if ids := wanted.get("live"):
        titles.update({("live", i): t for i, t in session.execute(
            select(LiveSession.id, LiveSession.title).where(LiveSession.id.in_(ids)))})
    if ids := wanted.get("announcement"):
        titles.update({("announcement", i): " ".join(t.split())[:120] for i, t in session.execute(
            select(Announcement.id, Announcement.text).where(Announcement.id.in_(ids)))})
    if ids := wanted.get("schedule"):
        titles.update({("schedule", i): t for i, t in session.execute(
            select(ScheduleItem.id, ScheduleItem.title).where(ScheduleItem.id.in_(ids)))})
    return titles
