"""The sign service: sign content, signs attached to agents and sign items, with previews, what each sign
shows now and the playlist publisher behind it.

A change to content, signs or items is said on the domain-event bus (``SignChanged``) once its session
commits; the playlist publisher (``playlists.py``) rebuilds the agents it names.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.broadcasts.media_store import MediaStore
from controller.messaging.events import EventBus, SignChanged, agent_set
from controller.messaging.outbox import Outbox, RetainedDoc
from controller.settings import Settings
from controller.signs.errors import SignForbidden, SignInputError, SignNotFound
from controller.signs.images import store_sign_image
from controller.signs.inputs import SignAttach, SignContentInput, SignItemInput, SignTargets
from controller.signs.playlists import PlaylistPublisher
from controller.signs.previews import SignPreviews
from controller.signs.recurrence import local_naive
from controller.signs.status import signs_now
from controller.signs.targets import agents_of, check_targets
from controller.storage.engine import Database
from controller.storage.models import FIRST_WARD, Device, MediaFile, Sign, SignContent, SignItem, User
from devices.led.content import ImagePage, Panel
from devices.led.render import RenderedPage, Renderer
from schedules.errors import ScheduleError
from schedules.rrules import check_fires, parse_rule

#: Who may approve sign items (when the site requires approval, as for speaker items).
APPROVER_ROLES: Final = frozenset({"admin", "approver"})


class SignService:
    """Sign content, signs, items; previews and the playlist publisher are its parts."""

    def __init__(self, settings: Settings, db: Database, media: MediaStore, outbox: Outbox,
                 renderer: Renderer | None = None, *, events: EventBus | None = None) -> None:
        self.settings = settings
        self.db = db
        self.media = media
        self.outbox = outbox
        self.previews = SignPreviews(media, renderer)
        self.playlists = PlaylistPublisher(settings, db, outbox)
        if events is None:
            # On its own (no composition root to subscribe the publisher), it rebuilds on its own changes.
            events = EventBus()
            events.subscribe(SignChanged, lambda e: self.request(e.agent_ids))
        #: Where a change to some agents' boards is told, once committed (the playlist publisher listens).
        self.events = events

    # content ----------------------------------------------------------------------------------------------

    def save_content(self, session: Session, body: SignContentInput, user: User,
                     content_id: str | None = None, ward_id: str = FIRST_WARD) -> SignContent:
        """Creates sign content in ``ward_id`` (or replaces content, which stays in its ward); image pages must
        name uploaded images."""
        for i, page in enumerate(body.pages):
            if isinstance(page, ImagePage):
                row = session.get(MediaFile, page.sha256)
                if row is None or row.mime != page.mime or row.size != page.size:
                    raise SignInputError(f"pages.{i}", "image page names no uploaded image of that size and type")
        if content_id is None:
            content = SignContent(id=secrets.token_hex(16), created_by=user.id, ward_id=ward_id)
            session.add(content)
        else:
            content = self.content(session, content_id)
            if body.ward is not None and body.ward != content.ward_id:
                raise SignInputError("ward", "content stays in its ward: compose it again in the other ward")
        content.title = body.title
        content.pages = [p.model_dump(mode="json") for p in body.pages]
        session.flush()
        if content_id is not None:
            self.request_for_content(session, content.id)
        return content

    def content(self, session: Session, content_id: str, wards: frozenset[str] | None = None) -> SignContent:
        """One content row (of ``wards``; None: any) or :class:`SignNotFound`, worded alike for both."""
        row = session.get(SignContent, content_id)
        if row is None or (wards is not None and row.ward_id not in wards):
            raise SignNotFound(f"no sign content {content_id!r}")
        return row

    def store_image(self, session: Session, data: bytes) -> MediaFile:
        """An uploaded PNG/JPEG, checked by decoding it, stored content-addressed."""
        return store_sign_image(session, self.media, data)

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

    def sign(self, session: Session, sign_id: str, wards: frozenset[str] | None = None) -> Sign:
        """One sign (on an agent of ``wards``; None: any) or :class:`SignNotFound`, worded alike for both."""
        row = session.get(Sign, sign_id)
        if row is None or (wards is not None and self.ward_of(session, row) not in wards):
            raise SignNotFound(f"no sign {sign_id!r}")
        return row

    @staticmethod
    def ward_of(session: Session, sign: Sign) -> str:
        """The ward a board belongs to: its agent's."""
        return session.scalar(select(Device.ward_id).where(Device.id == sign.agent_id)) or FIRST_WARD

    def item(self, session: Session, item_id: str, wards: frozenset[str] | None = None) -> SignItem:
        """One sign item (of ``wards``; None: any) or :class:`SignNotFound`, worded alike for both."""
        row = session.get(SignItem, item_id)
        if row is None or (wards is not None and row.ward_id not in wards):
            raise SignNotFound(f"no sign item {item_id!r}")
        return row

    def detach(self, session: Session, sign_id: str) -> None:
        """Forgets a sign; its agent's playlist no longer names it."""
        row = self.sign(session, sign_id)
        session.delete(row)
        self.changed(session, [row.agent_id])

    # items ------------------------------------------------------------------------------------------------

    def create_item(self, session: Session, body: SignItemInput, user: User,
                    ward_id: str = FIRST_WARD) -> SignItem:
        """A sign item of ``ward_id``, checked (content and targets of that ward, times, rule) before it is
        stored."""
        self.content(session, body.content_id, frozenset({ward_id}))
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
        check_targets(session, body.targets, ward_id)
        row = SignItem(id=secrets.token_hex(16), ward_id=ward_id, revision=0, content_id=body.content_id,
                       title=body.title, priority=body.priority.value, targets=body.targets.model_dump(mode="json"),
                       start_local=start.isoformat(), rrule=rule_text,
                       until_local=until.isoformat() if until else None, duration_ms=body.duration_ms,
                       status="pending" if self.settings.require_approval else "active", created_by=user.id)
        session.add(row)
        session.flush()
        self.changed(session, agents_of(session, body.targets, ward_id))
        return row

    def decide(self, session: Session, item_id: str, user: User, approve: bool) -> SignItem:
        """An approver (not the item's author) puts a pending item on the signs, or rejects it."""
        row = self.item(session, item_id)
        if user.role not in APPROVER_ROLES:
            raise SignForbidden("only an approver or an admin may approve or reject")
        if row.status != "pending":
            raise SignInputError("status", f"sign item {item_id} is {row.status}, not pending")
        if row.created_by == user.id:
            raise SignForbidden("a sign item must be approved by someone other than the person who wrote it")
        row.status = "active" if approve else "rejected"
        # A rejected item reaches no board, but the list of items still changed.
        self.changed(session, agents_of(session, SignTargets.model_validate(row.targets), row.ward_id)
                     if approve else ())
        return row

    def cancel_item(self, session: Session, item_id: str) -> SignItem:
        """Takes an item off every sign (kept as history)."""
        row = self.item(session, item_id)
        row.status = "cancelled"
        row.revision += 1
        self.changed(session, agents_of(session, SignTargets.model_validate(row.targets), row.ward_id))
        return row

    def request_for_content(self, session: Session, content_id: str) -> None:
        """Content changed: rebuild the playlists of the agents its active items reach."""
        agents: set[str] = set()
        for item in session.scalars(select(SignItem).where(SignItem.content_id == content_id,
                                                           SignItem.status == "active")):
            agents |= agents_of(session, SignTargets.model_validate(item.targets), item.ward_id)
        self.changed(session, agents)

    def changed(self, session: Session, agent_ids: Iterable[str] | None) -> None:
        """Says these agents' boards changed (None: all), once ``session`` commits (the builder reads in its
        own session)."""
        self.events.publish(SignChanged(agent_set(agent_ids)), session)

    # previews and "now" ------------------------------------------------------------------------------------

    def warnings(self, pages: list[dict[str, Any]]) -> list[str]:
        """Characters the sign font lacks (they show as a placeholder), named for the officer."""
        return self.previews.warnings(pages)

    def preview_png(self, session: Session, content_id: str, page_index: int, panel: Panel,
                    wards: frozenset[str] | None = None) -> tuple[bytes, RenderedPage]:
        """The exact still a board of ``panel`` shows for one page of content (of ``wards``), as PNG bytes."""
        return self.previews.preview_png(self.content(session, content_id, wards), page_index, panel)

    def now(self, session: Session, wards: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Every sign (of ``wards``; None: all) with what its agent last said it shows and what the
        controller planned for now."""
        return signs_now(session, self.settings.tz, wards)

    # playlists --------------------------------------------------------------------------------------------

    def request(self, agent_ids: Iterable[str] | None) -> None:
        """Asks for these agents' playlists (None: all) to be rebuilt soon. Safe from any thread."""
        self.playlists.request(agent_ids)

    async def run(self) -> None:
        """Runs the playlist publisher: the stored playlists written again, then builds when asked and hourly."""
        await self.playlists.run()

    def build(self, agent_ids: set[str] | None) -> list[RetainedDoc]:
        """New playlists for these agents (None: all with signs) where they changed; stored, then returned."""
        return self.playlists.build(agent_ids)
