"""LED signs on the controller: sign content, signs attached to agents, sign items, and signed playlists.

Sign items use the schedule model's recurrence (``schedules.rrules`` and ``schedules.localtime``: local
wall-clock starts, RRULEs, DST handled the same way as speaker schedules). Each agent with signs gets a
signed, retained ``sign.playlist`` on ``lp/v1/agent/{id}/signs`` holding every entry for its signs in
the next ``schedule_window_hours``; it is rebuilt when content, items, signs or devices change and every
hour, and sent only when it changed (or is getting old). Previews are drawn by the same renderer the
agents use, so the PNG is exactly what the board shows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.db import Database
from controller.media_store import MediaStore
from controller.messaging.events import EventBus, SignChanged, agent_set
from controller.messaging.outbox import Outbox, Prepared, RetainedDoc
from controller.models import (
    AgentSignPlaylist,
    Device,
    DeviceEvent,
    MediaFile,
    Sign,
    SignContent,
    SignItem,
    User,
    utcnow,
)
from controller.settings import Settings
from devices.led.content import ImagePage, Panel, SignPage, TextPage
from devices.led.fonts import FontError
from devices.led.render import LayoutError, RenderedPage, Renderer, image_mime, open_image, png_bytes
from devices.protocol import (
    ID_PATTERN,
    MAX_PAYLOAD_BYTES,
    MAX_WINDOW_PLAYS,
    Envelope,
    Priority,
    SignPlaylist,
    SignPlaylistEntry,
    SignStatus,
    now_ms,
)
from schedules.errors import ScheduleError
from schedules.localtime import offset_ms, to_utc_ms
from schedules.rrules import as_daily, between, check_fires, explicit_rule, parse_rule

log = logging.getLogger(__name__)

#: Longest one occurrence of a sign item may stay up (a standing notice for a year).
MAX_ITEM_DURATION_MS: Final = 366 * 24 * 3_600_000
MAX_IMAGE_BYTES: Final = 1024 * 1024
RESEND_BEFORE_EXPIRY_MS: Final = 24 * 3_600_000
_PAGES: TypeAdapter[list[SignPage]] = TypeAdapter(list[SignPage])
_EPOCH: Final = datetime(1970, 1, 1)
_SLACK: Final = timedelta(hours=3)

SignId = Annotated[str, Field(pattern=ID_PATTERN)]
#: A sign's id: ``{agent id}.{sign name}``.
FullSignId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9_-]*$", max_length=63)]


class SignInputError(ValueError):
    """Bad input; ``field`` names the body field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class SignNotFound(LookupError):
    """No such sign, content or item."""


class SignForbidden(PermissionError):
    """The caller's role does not allow this."""


#: Who may approve sign items (when the site requires approval, as for speaker items).
APPROVER_ROLES: Final = frozenset({"admin", "approver"})


# inputs -------------------------------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignContentInput(_Input):
    """What an officer composes: a title and pages (text or uploaded images)."""

    title: str = Field(default="", max_length=200)
    pages: list[SignPage] = Field(min_length=1, max_length=50)


class SignAttach(_Input):
    """A technician attaches a board to an agent: ``name`` is its ``[[signs]]`` name in the agent's config."""

    agent_id: SignId
    name: SignId
    width: int = Field(ge=8, le=1920)
    height: int = Field(ge=7, le=1080)
    description: str = Field(default="", max_length=200)


class SignTargets(_Input):
    """Which signs show an item: all, the signs of some zones' or agents' agents, or named signs."""

    all: bool = False
    zones: list[SignId] = Field(default_factory=list, max_length=1000)
    agents: list[SignId] = Field(default_factory=list, max_length=10_000)
    signs: list[FullSignId] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _something(self) -> SignTargets:
        if self.all and (self.zones or self.agents or self.signs):
            raise ValueError("targets: choose either all, or zones/agents/signs, not both")
        if not (self.all or self.zones or self.agents or self.signs):
            raise ValueError("targets must be all, or name at least one zone, agent or sign")
        return self


class SignItemInput(_Input):
    """Content on signs from ``start`` for ``duration_ms``; with ``rrule`` at every recurrence until ``until``."""

    content_id: str = Field(min_length=1, max_length=32)
    title: str = Field(default="", max_length=200)
    priority: Priority = Priority.NORMAL
    targets: SignTargets
    start: datetime
    rrule: str | None = Field(default=None, max_length=500)
    until: datetime | None = None
    duration_ms: int = Field(gt=0, le=MAX_ITEM_DURATION_MS)


# recurrence (the schedule model's rules) -----------------------------------------------------------------


def occurrences(start: datetime, rrule: str | None, until: datetime | None, duration_ms: int,
                window_start_ms: int, window_end_ms: int, tz: ZoneInfo) -> list[int]:
    """UTC ms starts of occurrences overlapping the window (local wall-clock rules, as schedule items)."""
    earliest = window_start_ms - duration_ms + 1
    if rrule is None:
        candidates = [start]
    else:
        offsets = (offset_ms(earliest, tz), offset_ms(window_end_ms, tz))
        low = _EPOCH + timedelta(milliseconds=earliest + min(offsets)) - _SLACK
        high = _EPOCH + timedelta(milliseconds=window_end_ms + max(offsets)) + _SLACK
        if until is not None and until < high:
            high = until
        rule = as_daily(explicit_rule(parse_rule(rrule), start), start)
        candidates = between(rule, start, low, high)
    found = {to_utc_ms(local, tz) for local in candidates if until is None or local <= until}
    return sorted(ms for ms in found if earliest <= ms < window_end_ms)


def local_naive(value: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in the site's zone (aware values converted)."""
    if value.tzinfo is not None:
        value = value.astimezone(tz).replace(tzinfo=None)
    return value.replace(microsecond=0)


# the service --------------------------------------------------------------------------------------------


class SignService:
    """Sign content, signs, items, previews and the playlist publisher."""

    def __init__(self, settings: Settings, db: Database, media: MediaStore, outbox: Outbox,
                 renderer: Renderer | None = None, *, events: EventBus | None = None) -> None:
        self.settings = settings
        self.db = db
        self.media = media
        self.outbox = outbox
        self._renderer = renderer
        if events is None:
            # On its own (no composition root to subscribe the publisher), it rebuilds on its own changes.
            events = EventBus()
            events.subscribe(SignChanged, lambda e: self.request(e.agent_ids))
        #: Where a change to some agents' boards is told, once committed (the playlist publisher listens).
        self.events = events
        self._pending: set[str] = set()
        self._all = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.builds = 0

    @property
    def renderer(self) -> Renderer:
        """The renderer (the font is found on first use, so a controller without it still starts)."""
        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer

    # content ----------------------------------------------------------------------------------------------

    def save_content(self, session: Session, body: SignContentInput, user: User,
                     content_id: str | None = None) -> SignContent:
        """Creates (or replaces) sign content; image pages must name uploaded images."""
        for i, page in enumerate(body.pages):
            if isinstance(page, ImagePage):
                row = session.get(MediaFile, page.sha256)
                if row is None or row.mime != page.mime or row.size != page.size:
                    raise SignInputError(f"pages.{i}", "image page names no uploaded image of that size and type")
        if content_id is None:
            content = SignContent(id=secrets.token_hex(16), created_by=user.id)
            session.add(content)
        else:
            content = self.content(session, content_id)
        content.title = body.title
        content.pages = [p.model_dump(mode="json") for p in body.pages]
        session.flush()
        if content_id is not None:
            self.request_for_content(session, content.id)
        return content

    def warnings(self, pages: list[dict[str, Any]]) -> list[str]:
        """Characters the sign font lacks (they show as a placeholder), named for the officer."""
        out: list[str] = []
        try:
            _ = self.renderer
        except FontError as exc:
            return [f"không kiểm tra được phông chữ (cannot check the sign font): {exc}"]
        for i, page in enumerate(_PAGES.validate_python(pages)):
            if isinstance(page, TextPage):
                for ch in self.renderer.substitute(" ".join(page.lines))[1]:
                    out.append(f"trang {i + 1}: không có chữ {ch!r} (U+{ord(ch):04X}) trong phông, sẽ hiện thành □ "
                               f"(page {i + 1}: U+{ord(ch):04X} is not in the sign font; it shows as a box)")
        return out

    def content(self, session: Session, content_id: str) -> SignContent:
        """One content row or :class:`SignNotFound`."""
        row = session.get(SignContent, content_id)
        if row is None:
            raise SignNotFound(f"no sign content {content_id!r}")
        return row

    def store_image(self, session: Session, data: bytes) -> MediaFile:
        """An uploaded PNG/JPEG, checked by decoding it, stored content-addressed."""
        if len(data) > MAX_IMAGE_BYTES:
            raise SignInputError("body", f"images are limited to {MAX_IMAGE_BYTES // 1024} KB")
        try:
            mime = image_mime(data)
        except LayoutError as exc:
            raise SignInputError("body", str(exc)) from None
        sha = hashlib.sha256(data).hexdigest()
        row = session.get(MediaFile, sha)
        if row is None:
            tmp = self.media.root / "tmp" / f"{sha}.{secrets.token_hex(4)}"
            tmp.write_bytes(data)
            self.media.add(tmp, sha)
            row = MediaFile(sha256=sha, size=len(data), duration_ms=0, mime=mime, source="sign_image")
            session.add(row)
            session.flush()
        return row

    # signs ------------------------------------------------------------------------------------------------

    def attach(self, session: Session, body: SignAttach) -> Sign:
        """Registers a board on an agent; its playlist follows."""
        if session.get(Device, body.agent_id) is None:
            raise SignInputError("agent_id", f"no agent {body.agent_id!r}")
        sign_id = f"{body.agent_id}.{body.name}"
        if len(sign_id) > 63:
            raise SignInputError("name", f"{sign_id!r}: agent id and sign name together must fit 62 characters")
        if session.get(Sign, sign_id) is not None:
            raise SignInputError("name", f"agent {body.agent_id} already has a sign named {body.name!r}")
        sign = Sign(id=sign_id, agent_id=body.agent_id, name=body.name, width=body.width, height=body.height,
                    description=body.description)
        session.add(sign)
        session.flush()
        self.changed(session, [body.agent_id])
        return sign

    def sign(self, session: Session, sign_id: str) -> Sign:
        """One sign or :class:`SignNotFound`."""
        row = session.get(Sign, sign_id)
        if row is None:
            raise SignNotFound(f"no sign {sign_id!r}")
        return row

    def detach(self, session: Session, sign_id: str) -> None:
        """Forgets a sign; its agent's playlist no longer names it."""
        row = self.sign(session, sign_id)
        session.delete(row)
        self.changed(session, [row.agent_id])

    # items ------------------------------------------------------------------------------------------------

    def create_item(self, session: Session, body: SignItemInput, user: User) -> SignItem:
        """A sign item, checked (content, targets, times, rule) before it is stored."""
        self.content(session, body.content_id)
        tz = self.settings.tz
        start = local_naive(body.start, tz)
        until = local_naive(body.until, tz) if body.until is not None else None
        rule_text = None
        if until is not None and until < start:
            raise SignInputError("until", "until is before start: nothing would show")
        if body.rrule is not None:
            try:
                rule = parse_rule(body.rrule)
                check_fires(rule, start)
            except ScheduleError as exc:
                raise SignInputError("rrule", str(exc)) from None
            rule_text = rule.text
        self._check_targets(session, body.targets)
        row = SignItem(id=secrets.token_hex(16), revision=0, content_id=body.content_id, title=body.title,
                       priority=body.priority.value, targets=body.targets.model_dump(mode="json"),
                       start_local=start.isoformat(), rrule=rule_text,
                       until_local=until.isoformat() if until else None, duration_ms=body.duration_ms,
                       status="pending" if self.settings.require_approval else "active", created_by=user.id)
        session.add(row)
        session.flush()
        self.changed(session, self._agents_of(session, body.targets))
        return row

    def decide(self, session: Session, item_id: str, user: User, approve: bool) -> SignItem:
        """An approver (not the item's author) puts a pending item on the signs, or rejects it."""
        row = session.get(SignItem, item_id)
        if row is None:
            raise SignNotFound(f"no sign item {item_id!r}")
        if user.role not in APPROVER_ROLES:
            raise SignForbidden("only an approver or an admin may approve or reject")
        if row.status != "pending":
            raise SignInputError("status", f"sign item {item_id} is {row.status}, not pending")
        if row.created_by == user.id:
            raise SignForbidden("a sign item must be approved by someone other than the person who wrote it")
        row.status = "active" if approve else "rejected"
        # A rejected item reaches no board, but the list of items still changed.
        self.changed(session, self._agents_of(session, SignTargets.model_validate(row.targets)) if approve else ())
        return row

    def cancel_item(self, session: Session, item_id: str) -> SignItem:
        """Takes an item off every sign (kept as history)."""
        row = session.get(SignItem, item_id)
        if row is None:
            raise SignNotFound(f"no sign item {item_id!r}")
        row.status = "cancelled"
        row.revision += 1
        self.changed(session, self._agents_of(session, SignTargets.model_validate(row.targets)))
        return row

    def _check_targets(self, session: Session, targets: SignTargets) -> None:
        known = {s.id for s in session.scalars(select(Sign))}
        missing = [s for s in targets.signs if s not in known]
        if missing:
            raise SignInputError("targets", f"unknown signs: {', '.join(missing)}")
        agents = set(session.scalars(select(Device.id)))
        missing = [a for a in targets.agents if a not in agents]
        if missing:
            raise SignInputError("targets", f"unknown agents: {', '.join(missing)}")

    def _agents_of(self, session: Session, targets: SignTargets) -> set[str]:
        return {s.agent_id for s in self.signs_for(session, targets)}

    def signs_for(self, session: Session, targets: SignTargets) -> list[Sign]:
        """The registered signs an item's targets reach (on enabled agents)."""
        devices = {d.id: d for d in session.scalars(select(Device).where(Device.enabled.is_(True)))}
        out = []
        for sign in session.scalars(select(Sign).order_by(Sign.id)):
            device = devices.get(sign.agent_id)
            if device is None:
                continue
            if targets.all or sign.id in targets.signs or sign.agent_id in targets.agents \
                    or set(device.zones) & set(targets.zones):
                out.append(sign)
        return out

    def request_for_content(self, session: Session, content_id: str) -> None:
        """Content changed: rebuild the playlists of the agents its active items reach."""
        agents: set[str] = set()
        for item in session.scalars(select(SignItem).where(SignItem.content_id == content_id,
                                                           SignItem.status == "active")):
            agents |= self._agents_of(session, SignTargets.model_validate(item.targets))
        self.changed(session, agents)

    # previews and "now" --------------------------------------------------------------------------------------

    def render_page(self, session: Session, content: SignContent, page_index: int, panel: Panel) -> RenderedPage:
        """One page of content drawn for a panel, as the agent draws it (raises LayoutError, IndexError)."""
        pages = _PAGES.validate_python(content.pages)
        page = pages[page_index]
        if isinstance(page, TextPage):
            return self.renderer.render_text(page, panel)
        path = self.media.path_for(page.sha256)
        if path is None:
            raise LayoutError("the page's image is missing from the media store")
        return self.renderer.render_image(page, path.read_bytes(), panel)

    def preview_png(self, session: Session, content_id: str, page_index: int,
                    panel: Panel) -> tuple[bytes, RenderedPage]:
        """The exact still a board of ``panel`` shows for one page, as PNG bytes."""
        content = self.content(session, content_id)
        if not 0 <= page_index < len(content.pages):
            raise SignNotFound(f"content {content_id} has {len(content.pages)} pages; no page {page_index}")
        rendered = self.render_page(session, content, page_index, panel)
        return png_bytes(rendered.preview()), rendered

    def now(self, session: Session) -> list[dict[str, Any]]:
        """Every sign with what its agent last said it shows and what the controller planned for now."""
        devices = {d.id: d for d in session.scalars(select(Device))}
        planned = self._planned_now(session)
        statuses: dict[str, list[DeviceEvent]] = {}
        out = []
        for sign in session.scalars(select(Sign).order_by(Sign.id)):
            device = devices.get(sign.agent_id)
            state = (device.state or {}) if device is not None else {}
            reported = next((s for s in state.get("signs", []) if s.get("sign") == sign.name), None)
            fault = self._last_status(session, sign.agent_id, sign.name, statuses)
            out.append({"sign": sign, "agent_status": device.status if device else "unknown",
                        "reported": reported, "state_ts": state.get("ts"),
                        "playlist_version": state.get("sign_playlist_version"),
                        "planned": planned.get(sign.id), "last_fault": fault})
        return out

    @staticmethod
    def _last_status(session: Session, agent_id: str, name: str,
                     cache: dict[str, list[DeviceEvent]]) -> dict[str, Any] | None:
        """The sign's latest ``sign.status`` if it is a fault (a recovery clears it)."""
        if agent_id not in cache:
            cache[agent_id] = list(session.scalars(
                select(DeviceEvent).where(DeviceEvent.agent_id == agent_id, DeviceEvent.type == "sign.status")
                .order_by(DeviceEvent.ts_ms.desc()).limit(200)))
        latest = next((e for e in cache[agent_id] if e.data.get("sign") == name), None)
        return None if latest is None or latest.data.get("ok") else dict(latest.data)

    def _planned_now(self, session: Session) -> dict[str, dict[str, Any]]:
        now = now_ms()
        best: dict[str, tuple[int, int, dict[str, Any]]] = {}
        for agent_id, entries in self._entries(session, now, now + 1, None).items():
            for entry in entries:
                for name in entry.signs:
                    key = f"{agent_id}.{name}"
                    rank = (entry.priority.rank, -entry.start_at)
                    if key not in best or rank > best[key][:2]:
                        best[key] = (*rank, {"entry_id": entry.entry_id, "item_id": entry.item_id,
                                             "title": entry.title, "priority": entry.priority.value,
                                             "end_at": entry.end_at})
        return {k: v[2] for k, v in best.items()}

    # playlists --------------------------------------------------------------------------------------------

    def changed(self, session: Session, agent_ids: Iterable[str] | None) -> None:
        """Says these agents' boards changed (None: all), once ``session`` commits (the builder reads in its
        own session)."""
        self.events.publish(SignChanged(agent_set(agent_ids)), session)

    def request(self, agent_ids: Iterable[str] | None) -> None:
        """Asks for these agents' playlists (None: all) to be rebuilt soon. Safe from any thread."""
        ids = None if agent_ids is None else set(agent_ids)
        if self._loop is None:
            self._note(ids)
        else:
            self._loop.call_soon_threadsafe(self._note, ids)

    def _note(self, ids: set[str] | None) -> None:
        if ids is None:
            self._all = True
        else:
            self._pending |= ids
        self._wake.set()

    async def run(self) -> None:
        """Writes the stored playlists again for the broker (it may have lost them), then rebuilds when asked
        and hourly."""
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self.write_stored)
        except Exception:
            log.exception("writing the stored sign playlists again failed; new builds still go out")
        self._note(None)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=3600)
            except TimeoutError:
                self._all = True
            await asyncio.sleep(0.2)  # a burst of changes becomes one build
            self._wake.clear()
            every, ids = self._all, self._pending
            self._all, self._pending = False, set()
            try:
                outgoing = await asyncio.to_thread(self.build, None if every else ids)
            except Exception:
                log.exception("building sign playlists failed; retrying in 30 s")
                await asyncio.sleep(30)
                self._note(None if every else ids)
                continue
            if outgoing:
                log.info("new sign playlists for %d agent(s)", len(outgoing))

    def write_stored(self) -> int:
        """Writes every stored playlist to the outbox again (blocking); agents that hold one drop the repeat."""
        with self.db.session() as session:
            rows = session.execute(select(AgentSignPlaylist.version, AgentSignPlaylist.payload)).all()
            for version, payload in rows:
                self.outbox.send_stored(session, payload.encode(), ref=str(version))
            return len(rows)

    def _entries(self, session: Session, start_ms: int, end_ms: int,
                 agent_ids: set[str] | None) -> dict[str, list[SignPlaylistEntry]]:
        tz = self.settings.tz
        contents = {c.id: c for c in session.scalars(select(SignContent))}
        result: dict[str, list[SignPlaylistEntry]] = {}
        for item in session.scalars(select(SignItem).where(SignItem.status == "active")):
            try:
                targets = SignTargets.model_validate(item.targets)
                pages = _PAGES.validate_python(contents[item.content_id].pages)
                starts = occurrences(datetime.fromisoformat(item.start_local), item.rrule,
                                     datetime.fromisoformat(item.until_local) if item.until_local else None,
                                     item.duration_ms, start_ms, end_ms, tz)
            except (KeyError, ValueError, ValidationError) as exc:  # one bad row must not blank every sign
                log.error("sign item %s skipped: %s", item.id, exc)
                continue
            if not starts:
                continue
            by_agent: dict[str, list[str]] = {}
            for sign in self.signs_for(session, targets):
                if agent_ids is None or sign.agent_id in agent_ids:
                    by_agent.setdefault(sign.agent_id, []).append(sign.name)
            for agent_id, names in by_agent.items():
                for start in starts:
                    result.setdefault(agent_id, []).append(SignPlaylistEntry(
                        entry_id=f"{item.id}-{item.revision}-{start}", item_id=item.id,
                        title=item.title or contents[item.content_id].title, signs=sorted(names),
                        priority=Priority(item.priority), start_at=start, end_at=start + item.duration_ms,
                        pages=pages))
        for entries in result.values():
            entries.sort(key=lambda e: (e.start_at, e.entry_id))
        return result

    def build(self, agent_ids: set[str] | None) -> list[RetainedDoc]:
        """New playlists for these agents (None: all with signs) where they changed; stored, then returned."""
        self.builds += 1
        now = now_ms()
        end = now + self.settings.schedule_window_hours * 3_600_000
        outgoing: list[RetainedDoc] = []
        with self.db.session() as session:
            with_signs = set(session.scalars(select(Sign.agent_id)))
            stored_for = set(session.scalars(select(AgentSignPlaylist.agent_id)))
            enabled = set(session.scalars(select(Device.id).where(Device.enabled.is_(True))))
            # Agents whose signs were all removed still get an (empty) playlist, so their boards go dark.
            targets = (with_signs | stored_for) & enabled
            if agent_ids is not None:
                targets &= agent_ids
            entries = self._entries(session, now, end, targets)
            for agent_id in sorted(targets):
                mine = entries.get(agent_id, [])[:MAX_WINDOW_PLAYS]
                window_end = end if len(entries.get(agent_id, [])) <= MAX_WINDOW_PLAYS else mine[-1].start_at + 1
                digest = hashlib.sha256(json.dumps([e.model_dump(mode="json") for e in mine],
                                                   sort_keys=True).encode()).hexdigest()
                row = session.get(AgentSignPlaylist, agent_id)
                if row is not None and row.digest == digest and row.window_end_ms - now > RESEND_BEFORE_EXPIRY_MS:
                    continue
                version = (row.version if row is not None else 0) + 1
                prepared = self._sign(agent_id, version, now, window_end, mine)
                while len(prepared.payload) > MAX_PAYLOAD_BYTES and mine:
                    mine = mine[: len(mine) * 3 // 4]
                    window_end = mine[-1].start_at + 1 if mine else now + 1
                    prepared = self._sign(agent_id, version, now, window_end, mine)
                    log.warning("agent %s: sign playlist cut to %d entries to fit the broker's limit",
                                agent_id, len(mine))
                payload = prepared.payload
                if row is None:
                    row = AgentSignPlaylist(agent_id=agent_id)
                    session.add(row)
                row.version, row.digest, row.window_end_ms = version, digest, window_end
                row.payload, row.pushed_at, row.published = payload.decode(), utcnow(), False
                # Published once this transaction commits, and only then.
                self.outbox.write(session, prepared, ref=str(version))
                outgoing.append(RetainedDoc(agent_id, version, payload))
        return outgoing

    def _sign(self, agent_id: str, version: int, now: int, window_end: int,
              entries: list[SignPlaylistEntry]) -> Prepared:
        return self.outbox.prepare(SignPlaylist(version=version, window_start=now, window_end=window_end,
                                                entries=entries),
                                   agent_id, ttl_ms=max(60_000, window_end - now))


def record_sign_status(session: Session, device: Device, env: Envelope, data: Any) -> None:
    """``sign.status`` events: stored by the fleet recorder already; faults are logged for the operator."""
    if isinstance(data, SignStatus) and not data.ok:
        log.warning("agent %s: sign %s fault %s: %s", device.id, data.sign, data.code, data.message)


def validate_image(data: bytes) -> tuple[str, int, int]:
    """(mime, width, height) of an uploadable sign image; raises LayoutError."""
    img = open_image(data)
    return image_mime(data), img.width, img.height
