"""Live sessions as staff start, end and look them up — the API's routes and the console's live page both
call :class:`LiveSessions`, so the checks (priority, targets, zone scope, ownership) are the same. The hub
(controller/broadcasts/live/hub.py) runs the sessions themselves; a start or an end is told as a
:class:`~controller.messaging.events.LiveChanged` (the console's pages look again).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts.reach import check_ward, ward_for_new, wards_of
from controller.accounts.scope import check_agents_in_scope, check_zone_scope
from controller.broadcasts.live.hub import LiveHub
from controller.broadcasts.proof_of_play import LIVE_PLAY_PREFIX
from controller.broadcasts.wards import COMPOSER_ROLES, every_ward
from controller.messaging.events import EventBus, LiveChanged
from controller.storage.engine import Database
from controller.storage.models import LiveSession, Play, User
from devices.protocol import ID_PATTERN, Priority
from devices.protocol.segments import relay_url_pattern


def _start_schema(schema: dict[str, Any]) -> None:
    # What start() and the hub refuse before looking anything up, in the API's document: no agent and no
    # zone; a microphone at normal priority; a relay without an http(s) URL.
    schema["allOf"] = [
        {"anyOf": [{"required": ["agents"], "properties": {"agents": {"minItems": 1}}},
                   {"required": ["zones"], "properties": {"zones": {"minItems": 1}}}]},
        {"anyOf": [{"properties": {"source": {"const": "microphone"}, "priority": {"not": {"const": "normal"}}}},
                   {"required": ["source", "relay_url"],
                    "properties": {"source": {"const": "relay"},
                                   "relay_url": {"type": "string", "pattern": relay_url_pattern()}}}]}]


class LiveStart(BaseModel):
    """A request to go live: targets, priority, and where the audio comes from."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_start_schema)

    agents: list[str] = Field(default_factory=list, max_length=1000)
    zones: list[str] = Field(default_factory=list, max_length=200)
    priority: Priority = Priority.PRIORITY
    title: str = Field(default="", max_length=200)
    source: Literal["microphone", "relay"] = "microphone"
    relay_url: str | None = Field(default=None, max_length=2000)
    ward: str | None = Field(default=None, pattern=ID_PATTERN, max_length=63,
                             description="the ward it is for (its targets must be that ward's); needed only by "
                                         "staff of several wards")


class LiveInvalid(ValueError):
    """A start request that cannot be a session (→ 422)."""


class LiveSessionNotFound(LookupError):
    """No such live session (→ 404)."""

    def __init__(self) -> None:
        super().__init__("no such live session")


class NotYourSession(PermissionError):
    """Only a session's owner (or an admin) may end it (→ 403)."""

    def __init__(self) -> None:
        super().__init__("not your live session")


class LiveStillOnAir(Exception):
    """The session has no recording yet: it is still on air (→ 409)."""


class NoRecording(LookupError):
    """The session's recording was not kept, or is gone (→ 404)."""


class LiveSessions:
    """Starting, ending and reading live sessions for staff."""

    def __init__(self, hub: LiveHub, db: Database, events: EventBus) -> None:
        self.hub = hub
        self.db = db
        self.events = events

    async def availability(self) -> str | None:
        """None if a session can go live now, else why not."""
        return await self.hub.availability()

    async def start(self, body: LiveStart, user: User) -> str:
        """Creates a session (a relay goes live at once, a microphone once its audio comes); its id.

        Raises :class:`LiveInvalid`, :class:`~controller.accounts.scope.OutOfScope`, or the hub's
        :class:`~controller.broadcasts.live.active.LiveError` (Icecast down, speakers held by someone else).
        """
        if body.source == "microphone" and body.priority is Priority.NORMAL:
            raise LiveInvalid("a live microphone is priority or emergency")
        if not body.agents and not body.zones:
            raise LiveInvalid("choose at least one agent or zone")
        # Its own short read (in a thread): the caller's session must hold no lock while the hub writes.
        ward, hide = await asyncio.to_thread(self._check_scope, user, body.agents, body.zones, body.ward)
        sess = await self.hub.create(user, body.agents, body.zones, body.priority, body.title, body.source,
                                     body.relay_url, ward=ward, hide_unknown=hide)
        self.events.publish(LiveChanged(sess.id))
        return sess.id

    def _check_scope(self, user: User, agents: list[str], zones: list[str],
                     requested: str | None) -> tuple[str, bool]:
        """The session's ward, and whether the caller is kept from seeing some wards (an unknown agent then
        answers as another ward's would)."""
        with self.db.session() as session:
            ward = ward_for_new(session, user, requested, COMPOSER_ROLES)
            if zones:
                check_zone_scope(user, False, zones, [])
            check_agents_in_scope(session, user, agents)
            return ward, wards_of(session, user) != every_ward(session)

    async def end(self, session_id: str, user: User) -> LiveSession:
        """Ends a session (its owner, or an admin) of the caller's wards; its record, or
        :class:`LiveSessionNotFound` (also for another ward's)."""
        await asyncio.to_thread(self._check_ward, session_id, user, COMPOSER_ROLES)
        sess = self.hub.get(session_id)
        if sess is not None:
            if sess.owner_id != user.id and user.role != "admin":
                raise NotYourSession()
            await self.hub.end(sess, f"ended by {user.username}")
            self.events.publish(LiveChanged(session_id))
        return await asyncio.to_thread(self._record, session_id)

    def _check_ward(self, session_id: str, user: User, roles: tuple[str, ...]) -> None:
        with self.db.session() as session:
            row = self.get(session, session_id)
            check_ward(session, user, row.ward_id, roles, str(LiveSessionNotFound()))

    def _record(self, session_id: str) -> LiveSession:
        with self.db.session() as session:
            return self.get(session, session_id)

    def recent(self, session: Session, limit: int, wards: frozenset[str]) -> list[LiveSession]:
        """The record of the wards' live sessions, newest first."""
        return list(session.scalars(select(LiveSession).where(LiveSession.ward_id.in_(wards))
                                    .order_by(LiveSession.started_at.desc()).limit(limit)))

    def get(self, session: Session, session_id: str, wards: frozenset[str] | None = None) -> LiveSession:
        """One session's record (of ``wards``, when given), or :class:`LiveSessionNotFound`."""
        row = session.get(LiveSession, session_id)
        if row is None or (wards is not None and row.ward_id not in wards):
            raise LiveSessionNotFound()
        return row

    def plays(self, session: Session, row: LiveSession) -> list[Play]:
        """The proof of play of every agent the session reached."""
        return list(session.scalars(select(Play).where(Play.play_id == f"{LIVE_PLAY_PREFIX}{row.id}")
                                    .order_by(Play.agent_id, Play.attempt)))

    def recording_path(self, session: Session, session_id: str, user: User) -> Path:
        """The session's recording for an approver of its ward; :class:`LiveSessionNotFound` (also for another
        ward's), :class:`~controller.accounts.reach.OutsideRole`, :class:`LiveStillOnAir` or
        :class:`NoRecording`."""
        row = self.get(session, session_id)
        check_ward(session, user, row.ward_id, ("approver",), str(LiveSessionNotFound()))
        if row.status not in ("ended", "failed"):
            raise LiveStillOnAir("the session is still on air")
        path = self.hub.recording_path(row)
        if path is None:
            raise NoRecording("no recording kept for this session")
        return path
