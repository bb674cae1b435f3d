"""Public views of stored rows: what the API answers and the console's pages show, built in one place
(and the way back, from an API body to a service's input).

Routes and pages both import from here (never from each other), so a field added to a view shows up in
both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.api.schedule_schemas import ScheduleItemCreate, ScheduleItemPublic, ZonePublic
from controller.api.schemas import AnnouncementSummary, DevicePublic, MediaPublic, PlayPublic, SpeechPreview, ms_iso
from controller.broadcasts.speech import StoredAudio
from controller.broadcasts.speech_preview import Preview
from controller.schedule.items import ItemInput, ScheduleService
from controller.schedule.zones import ZoneView
from controller.storage.models import (
    Announcement,
    CityBroadcast,
    Device,
    LiveSession,
    MediaFile,
    Play,
    ScheduleItem,
    User,
)


def device_public(device: Device) -> DevicePublic:
    """The public view of a device (never its token hash)."""
    return DevicePublic(id=device.id, name=device.name, zones=list(device.zones), enabled=device.enabled,
                        status=device.status, online=device.status == "online",
                        status_changed_at=device.status_changed_at, last_seen_at=device.last_seen_at,
                        version=device.version, hostname=device.hostname,
                        capabilities=list(device.capabilities), outputs=list(device.outputs), state=device.state,
                        board_profile=device.board_profile, ward=device.ward_id, revoked_at=device.revoked_at,
                        suspicious_plays=device.suspicious_plays or 0, suspicious_at=device.suspicious_at,
                        inbox_dropped=device.inbox_dropped or 0, lat=device.lat, lon=device.lon)


def play_public(play: Play) -> PlayPublic:
    """The public view of a play."""
    offset = None if play.actual_start_ms is None else play.actual_start_ms - play.scheduled_start_ms
    duration = None if play.actual_start_ms is None or play.ended_at_ms is None \
        else play.ended_at_ms - play.actual_start_ms
    return PlayPublic(agent_id=play.agent_id, play_id=play.play_id, attempt=play.attempt,
                      announcement_id=play.announcement_id, item_id=play.item_id,
                      sha256=play.sha256, priority=play.priority, output=play.output,
                      scheduled_start=ms_iso(play.scheduled_start_ms), actual_start=ms_iso(play.actual_start_ms),
                      ended_at=ms_iso(play.ended_at_ms), start_offset_ms=offset, duration_ms=duration,
                      outcome=play.outcome, reason=play.reason)


class LiveNote(BaseModel):
    """A take-over written in a session's record (``takeover_failed``: it never got on air, and why)."""

    at: str
    kind: Literal["took_over", "taken_over", "takeover_failed"]
    session: str
    username: str
    priority: str
    agents: list[str]
    reason: str | None = None


class LivePublic(BaseModel):
    """A live session and its record."""

    id: str
    ward: str
    username: str
    source: str
    relay_url: str | None
    priority: str
    title: str
    zones: list[str]
    targets: list[str]
    status: str
    started_at: datetime
    live_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    notes: list[LiveNote]
    recording_available: bool
    recording_bytes: int
    recording_deleted_at: datetime | None
    ws_path: str
    plays: list[PlayPublic] = Field(default_factory=list)


def live_public(row: LiveSession, plays: list[Play] | None = None) -> LivePublic:
    """A live session's record as the API shows it (with the plays given, if any)."""
    return LivePublic(id=row.id, ward=row.ward_id, username=row.username, source=row.source, relay_url=row.relay_url,
                      priority=row.priority, title=row.title, zones=list(row.zones), targets=list(row.targets),
                      status=row.status, started_at=row.started_at, live_at=row.live_at, ended_at=row.ended_at,
                      end_reason=row.end_reason, notes=[LiveNote.model_validate(n) for n in row.notes],
                      recording_available=row.recording is not None and row.status in ("ended", "failed"),
                      recording_bytes=row.recording_bytes, recording_deleted_at=row.recording_deleted_at,
                      ws_path=f"/api/v1/live/sessions/{row.id}/audio",
                      plays=[play_public(p) for p in plays or []])


def zone_public(zone: ZoneView) -> ZonePublic:
    """A zone as the API shows it (a zone only named by agents has no rules yet)."""
    row = zone.row
    return ZonePublic(id=zone.id, name=row.name if row else "", ward=zone.ward, agents=list(zone.agents),
                      quiet_hours=list(row.quiet_hours) if row else [], volumes=list(row.volumes) if row else [])


def _local(value: str | None, schedule: ScheduleService) -> datetime | None:
    """Stored wall-clock text → an aware datetime in the site's zone."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=schedule.settings.tz)


def item_public(row: ScheduleItem, session: Session, schedule: ScheduleService) -> ScheduleItemPublic:
    """The public view of a schedule item, with the names of the people involved and its next starts."""
    names = {u.id: u.username for u in session.scalars(
        select(User).where(User.id.in_([i for i in (row.created_by, row.updated_by, row.decided_by) if i])))}
    start = _local(row.start_local, schedule)
    assert start is not None
    return ScheduleItemPublic(
        id=row.id, revision=row.revision, title=row.title, priority=row.priority, content=list(row.content),
        segments=list(row.segments), duration_ms=sum(int(s["duration_ms"]) for s in row.segments),
        targets=dict(row.targets), ward=row.ward_id, timezone=schedule.settings.timezone, start=start,
        rrule=row.rrule,
        until=_local(row.until_local, schedule), exdates=[_local(x, schedule) for x in row.exdates],  # type: ignore[misc]
        queue=row.queue, status=row.status, rejection_reason=row.rejection_reason,
        created_by=names.get(row.created_by or 0), updated_by=names.get(row.updated_by or 0),
        decided_by=names.get(row.decided_by or 0), decided_at=row.decided_at, created_at=row.created_at,
        updated_at=row.updated_at,
        next_starts=[d for d in (ms_iso(ms) for ms in schedule.next_starts(row)) if d is not None],
        parent=row.parent_id, from_unit=parent.unit_id if (parent := _parent(session, row.parent_id)) else None)


def _parent(session: Session, parent_id: str | None) -> CityBroadcast | None:
    """The city broadcast a ward's item or announcement is part of."""
    return session.get(CityBroadcast, parent_id) if parent_id else None


def item_input(body: ScheduleItemCreate) -> ItemInput:
    """What the schedule service takes from an item's API body."""
    return ItemInput(title=body.title, priority=body.priority,
                     content=[c.model_dump(mode="json") for c in body.content],
                     targets=body.targets.model_dump(mode="json"), start=body.start, rrule=body.rrule,
                     until=body.until, exdates=list(body.exdates), queue=body.queue, ward=body.ward)


def media_public(row: MediaFile | StoredAudio, base_url: str) -> MediaPublic:
    """The public view of a stored file (its database row, or what the speech service just stored)."""
    return MediaPublic(sha256=row.sha256, size=row.size, duration_ms=row.duration_ms, mime=row.mime,
                       url=f"{base_url}/media/{row.sha256}", source=row.source, loudness_lufs=row.loudness_lufs,
                       standby=isinstance(row, MediaFile) and row.standby)


def preview_public(preview: Preview, base_url: str) -> SpeechPreview:
    """A speech preview as the API answers it (and the console shows it)."""
    return SpeechPreview(text=preview.text, spoken_text=preview.spoken_text, engine=preview.engine,
                         cached=preview.cached, media=media_public(preview.stored, base_url))


def announcement_summary(ann: Announcement, deliveries: dict[str, int]) -> AnnouncementSummary:
    """One line of the announcements list."""
    return AnnouncementSummary(id=ann.id, text=ann.text, priority=ann.priority, status=ann.status,
                               start_at=ms_iso(ann.start_ms), created_at=ann.created_at,
                               media_sha256=ann.media_sha256, deliveries=deliveries)


class GrantPublic(BaseModel):
    """A role held on a unit."""

    role: str
    unit: str


class UserPublic(BaseModel):
    """A member of staff (never the password hash): ``roles`` held anywhere, and where (``grants``)."""

    id: int
    username: str
    role: str
    roles: list[str]
    grants: list[GrantPublic]
    zones: list[str]
    disabled: bool
    created_at: datetime


def user_public(user: User) -> UserPublic:
    """The public view of a user."""
    return UserPublic(id=user.id, username=user.username, role=user.role,
                      roles=[r for r in user.roles] if user.roles else [user.role],
                      grants=[GrantPublic(role=g.role, unit=g.unit_id) for g in user.grants],
                      zones=list(user.zones or []), disabled=user.disabled, created_at=user.created_at)
