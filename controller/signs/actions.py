"""What staff do to LED signs, each recorded in the audit trail: compose content, upload images, attach and
detach boards, put content on signs and decide or cancel those items.

The API's sign routes and the console's signs page both call :class:`SignActions`, so the checks and the
audit trail are the same whoever asks; the work itself is :class:`~controller.signs.SignService`'s.
Refusals are the sign service's own exceptions (:class:`~controller.signs.SignInputError` naming the
field, :class:`~controller.signs.SignNotFound`, :class:`~controller.signs.SignForbidden`), and the unit
scope's :class:`~controller.accounts.reach.OutsideRole` / :class:`~controller.accounts.reach.WardNeeded`.

Every row belongs to a ward (a board to its agent's): a row of a ward the caller cannot see is answered
as one that does not exist; one they see without the role there is refused (403). Every audit row carries
the ward the change concerns.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.reach import check_ward, ward_for_new, wards_of
from controller.signs import (
    MAX_IMAGE_BYTES,
    SignAttach,
    SignContentInput,
    SignInputError,
    SignItemInput,
    SignNotFound,
    SignService,
    validate_image,
)
from controller.storage.models import Device, MediaFile, Sign, SignContent, SignItem, User

#: Who composes content and puts it on signs (as the API's officer routes), attaches boards, approves.
COMPOSER_ROLES: Final = ("officer", "approver")
TECHNICIAN_ROLES: Final = ("technician",)
DECIDER_ROLES: Final = ("approver",)


class ImageTooLarge(ValueError):
    """An image over the upload limit (→ 413)."""


class SignActions:
    """Audited changes to signs, content and sign items. Every method blocks (database, image decoding)."""

    def __init__(self, signs: SignService) -> None:
        self.signs = signs

    def create_content(self, session: Session, body: SignContentInput, user: User) -> SignContent:
        """New sign content (text pages, or image pages naming uploaded images) in the ward named, or the
        caller's only ward."""
        ward = ward_for_new(session, user, body.ward, COMPOSER_ROLES)
        row = self.signs.save_content(session, body, user, ward_id=ward)
        audit_chain.record(session, user, "sign_content.create", row.id, {"title": row.title}, unit=ward)
        return row

    def replace_content(self, session: Session, content_id: str, body: SignContentInput, user: User) -> SignContent:
        """Replaces content; signs showing it get it with their next playlist."""
        current = self.signs.content(session, content_id, wards_of(session, user))
        check_ward(session, user, current.ward_id, COMPOSER_ROLES, f"no sign content {content_id!r}")
        row = self.signs.save_content(session, body, user, content_id)
        audit_chain.record(session, user, "sign_content.update", row.id, {"title": row.title}, unit=row.ward_id)
        return row

    def upload_image(self, session: Session, data: bytes, user: User) -> tuple[MediaFile, str, int, int]:
        """A PNG or JPEG, decoded to check it, stored by its SHA-256: (row, mime, width, height).

        :class:`ImageTooLarge` over the limit; the renderer's ``LayoutError`` or a
        :class:`~controller.signs.SignInputError` for anything that is not one image.
        """
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageTooLarge(f"images are limited to {MAX_IMAGE_BYTES // 1024} KB")
        mime, width, height = validate_image(data)
        row = self.signs.store_image(session, data)
        audit_chain.record(session, user, "sign_image.upload", row.sha256, {"size": row.size})
        return row, mime, width, height

    def attach(self, session: Session, body: SignAttach, user: User) -> Sign:
        """Attaches a board to an agent of the caller's wards (its id is ``{agent}.{name}``)."""
        device = session.get(Device, body.agent_id)
        if device is None or device.ward_id not in wards_of(session, user):
            raise SignInputError("agent_id", f"no agent {body.agent_id!r}")
        check_ward(session, user, device.ward_id, TECHNICIAN_ROLES, f"no agent {body.agent_id!r}")
        row = self.signs.attach(session, body)
        audit_chain.record(session, user, "sign.attach", row.id, body.model_dump(mode="json"), unit=device.ward_id)
        return row

    def detach(self, session: Session, sign_id: str, user: User) -> None:
        """Detaches a board; its agent's playlist stops naming it."""
        sign = self.signs.sign(session, sign_id, wards_of(session, user))
        ward = self.signs.ward_of(session, sign)
        check_ward(session, user, ward, TECHNICIAN_ROLES, f"no sign {sign_id!r}")
        self.signs.detach(session, sign_id)
        audit_chain.record(session, user, "sign.detach", sign_id, unit=ward)

    def create_item(self, session: Session, body: SignItemInput, user: User) -> SignItem:
        """Puts content on signs of one ward (named, or the caller's only ward); content of another ward is
        refused as unknown content (the ``content_id`` field), boards of another ward as unknown boards."""
        ward = ward_for_new(session, user, body.ward, COMPOSER_ROLES)
        try:
            row = self.signs.create_item(session, body, user, ward_id=ward)
        except SignNotFound as exc:
            raise SignInputError("content_id", str(exc)) from None
        audit_chain.record(session, user, "sign_item.create", row.id, body.model_dump(mode="json"), unit=ward)
        return row

    def decide(self, session: Session, item_id: str, user: User, approve: bool, reason: str = "") -> SignItem:
        """An approver (not the author) of the item's ward puts a pending item on the signs, or refuses it
        with a reason."""
        item = self.signs.item(session, item_id, wards_of(session, user))
        check_ward(session, user, item.ward_id, DECIDER_ROLES, f"no sign item {item_id!r}")
        row = self.signs.decide(session, item_id, user, approve)
        audit_chain.record(session, user, "sign_item.approve" if approve else "sign_item.reject", item_id,
                           {"reason": reason} if reason else {}, unit=row.ward_id)
        return row

    def cancel_item(self, session: Session, item_id: str, user: User) -> SignItem:
        """Takes an item off every sign (the record stays, cancelled)."""
        item = self.signs.item(session, item_id, wards_of(session, user))
        check_ward(session, user, item.ward_id, COMPOSER_ROLES, f"no sign item {item_id!r}")
        row = self.signs.cancel_item(session, item_id)
        audit_chain.record(session, user, "sign_item.cancel", item_id, unit=row.ward_id)
        return row
