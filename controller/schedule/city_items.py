"""City items: one schedule item the city (or province) writes for chosen wards, held as one part per ward.

Each part is an ordinary item of its ward (``parent_id`` names the city item), so targets, windows, quiet
hours, conflicts, approval and proof of play work per ward exactly as for the ward's own items. The city
changes or cancels the whole (every part follows); a ward never changes its part, and approves or rejects
it only when it approves the city's items itself (``units.approve_city_items``, for normal priority).
Every method blocks and runs in a worker thread, inside the caller's session.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from audio.speech import SpeechError
from controller.accounts import audit_chain
from controller.accounts.reach import OutsideRole, units_of
from controller.broadcasts.from_above import (
    WardChoice,
    choose_wards,
    split_targets,
    targets_dict,
    visible_parent,
)
from controller.schedule.items import (
    WRITER_ROLES,
    ItemInput,
    ItemInvalid,
    ItemNotFound,
    ItemStateError,
    ScheduleService,
    check_item_scope,
)
from controller.storage.models import CityBroadcast, ScheduleItem, User

KIND = "schedule"


@dataclass(frozen=True, slots=True)
class CityItem:
    """A city item and its wards' parts (every revision's, cancelled ones too, by ward)."""

    parent: CityBroadcast
    parts: list[ScheduleItem]


class CityItems:
    """Creates, lists, changes and cancels city items through the schedule service's per-ward rules."""

    def __init__(self, schedule: ScheduleService) -> None:
        self.schedule = schedule

    def create(self, session: Session, body: ItemInput, wards: WardChoice, user: User,
               roles: Collection[str] = WRITER_ROLES) -> CityItem:
        """One part per chosen ward; any part's refusal (a conflict, a quiet rule, a bad recording) refuses all.

        ``roles``: what the sender must hold above the wards (the upper level's source system holds ``source``).
        """
        chosen = choose_wards(session, user, wards, roles)
        check_item_scope(user, body.targets)
        parts = self._parts(session, chosen.wards, body)
        self._prerender(body)
        parent = CityBroadcast(id=uuid.uuid4().hex, kind=KIND, unit_id=chosen.unit, wards=chosen.wards,
                               all_wards=chosen.all_wards, title=body.title, priority=body.priority.value,
                               status="active", revision=0, created_by=user.id)
        session.add(parent)
        session.flush()
        children = [self.schedule.add_child(session, parent.id, ward, part, user) for ward, part in parts.items()]
        audit_chain.record(session, user, "city_item.create", parent.id,
                           {"title": body.title, "priority": parent.priority, "wards": chosen.wards,
                            "items": {c.ward_id: c.id for c in children}}, unit=chosen.unit)
        session.flush()
        return CityItem(parent, children)

    def get(self, session: Session, parent_id: str, user: User) -> CityItem:
        """A city item the caller sees (they hold a role on its unit or above it), or :class:`ItemNotFound`."""
        parent = visible_parent(session, user, parent_id, KIND)
        if parent is None:
            raise ItemNotFound(parent_id)
        return CityItem(parent, self._children(session, parent.id))

    def visible(self, session: Session, user: User) -> list[CityItem]:
        """The city items of the units the caller sees, newest first."""
        parents = list(session.scalars(select(CityBroadcast).where(
            CityBroadcast.kind == KIND, CityBroadcast.unit_id.in_(list(units_of(session, user))))
            .order_by(CityBroadcast.created_at.desc()).limit(500)))
        return [CityItem(p, self._children(session, p.id)) for p in parents]

    def replace(self, session: Session, parent_id: str, body: ItemInput, wards: WardChoice,
                user: User) -> CityItem:
        """A new revision for every ward still chosen, a new part for a ward added, and the part of a ward
        left out cancelled."""
        current = self.get(session, parent_id, user)
        parent = current.parent
        self._writer(session, user, parent)
        if parent.status == "cancelled":
            raise ItemStateError(f"city item {parent_id} is cancelled")
        chosen = choose_wards(session, user, wards, WRITER_ROLES)
        check_item_scope(user, body.targets)
        parts = self._parts(session, chosen.wards, body)
        self._prerender(body)
        live = {c.ward_id: c for c in current.parts if c.status != "cancelled"}
        for ward, part in parts.items():
            if ward in live:
                self.schedule.revise(session, live[ward], part, user)
            else:
                self.schedule.add_child(session, parent.id, ward, part, user)
        for ward, child in live.items():
            if ward not in parts:
                self.schedule.withdraw(session, child, user)
        parent.unit_id, parent.wards, parent.all_wards = chosen.unit, chosen.wards, chosen.all_wards
        parent.title, parent.priority, parent.revision = body.title, body.priority.value, parent.revision + 1
        audit_chain.record(session, user, "city_item.update", parent.id,
                           {"revision": parent.revision, "title": body.title, "wards": chosen.wards},
                           unit=chosen.unit)
        session.flush()
        return CityItem(parent, self._children(session, parent.id))

    def cancel(self, session: Session, parent_id: str, user: User,
               roles: Collection[str] = WRITER_ROLES) -> CityItem:
        """Cancels every ward's part; the history stays. ``roles`` as for :meth:`create`."""
        current = self.get(session, parent_id, user)
        parent = current.parent
        self._writer(session, user, parent, roles)
        for child in current.parts:
            if child.status != "cancelled":
                self.schedule.withdraw(session, child, user)
        parent.status = "cancelled"
        audit_chain.record(session, user, "city_item.cancel", parent.id, {"title": parent.title},
                           unit=parent.unit_id)
        session.flush()
        return CityItem(parent, self._children(session, parent.id))

    # internals --------------------------------------------------------------------------------------

    @staticmethod
    def _writer(session: Session, user: User, parent: CityBroadcast,
                roles: Collection[str] = WRITER_ROLES) -> None:
        if parent.unit_id not in units_of(session, user, roles):
            raise OutsideRole(f"needs one of the roles {', '.join(sorted(set(roles) | {'admin'}))} on unit "
                              f"{parent.unit_id} or above it")

    def _prerender(self, body: ItemInput) -> None:
        """Renders the item's speech before this session writes anything: storing new audio takes a write of
        its own, which would wait on this session's once it holds one (each part then finds it stored)."""
        for index, part in enumerate(body.content):
            if part["kind"] == "tts":
                try:
                    self.schedule.speech.render(part["text"])
                except SpeechError as exc:
                    raise ItemInvalid(f"content.{index}.text", f"speech could not be rendered: {exc}") from None

    @staticmethod
    def _parts(session: Session, wards: list[str], body: ItemInput) -> dict[str, ItemInput]:
        targets = body.targets
        split = split_targets(session, wards, bool(targets.get("all")), list(targets.get("zones") or []),
                              list(targets.get("agents") or []))
        return {ward: dataclasses.replace(body, targets=targets_dict(part), ward=ward) for ward, part in split.items()}

    @staticmethod
    def _children(session: Session, parent_id: str) -> list[ScheduleItem]:
        return list(session.scalars(select(ScheduleItem).where(ScheduleItem.parent_id == parent_id)
                                    .order_by(ScheduleItem.ward_id, ScheduleItem.created_at)))
