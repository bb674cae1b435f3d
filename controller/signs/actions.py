"""What staff do to LED signs, each recorded in the audit trail: compose content, upload images, attach and
detach boards, put content on signs and decide or cancel those items.

The API's sign routes and the console's signs page both call :class:`SignActions`, so the checks and the
audit trail are the same whoever asks; the work itself is :class:`~controller.signs.SignService`'s.
Refusals are the sign service's own exceptions (:class:`~controller.signs.SignInputError` naming the
field, :class:`~controller.signs.SignNotFound`, :class:`~controller.signs.SignForbidden`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from controller.accounts import audit_chain
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
from controller.storage.models import MediaFile, Sign, SignContent, SignItem, User


class ImageTooLarge(ValueError):
    """An image over the upload limit (→ 413)."""


class SignActions:
    """Audited changes to signs, content and sign items. Every method blocks (database, image decoding)."""

    def __init__(self, signs: SignService) -> None:
        self.signs = signs

    def create_content(self, session: Session, body: SignContentInput, user: User) -> SignContent:
        """New sign content (text pages, or image pages naming uploaded images)."""
        row = self.signs.save_content(session, body, user)
        audit_chain.record(session, user, "sign_content.create", row.id, {"title": row.title})
        return row

    def replace_content(self, session: Session, content_id: str, body: SignContentInput, user: User) -> SignContent:
        """Replaces content; signs showing it get it with their next playlist."""
        row = self.signs.save_content(session, body, user, content_id)
        audit_chain.record(session, user, "sign_content.update", row.id, {"title": row.title})
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
        """Attaches a board to an agent (its id is ``{agent}.{name}``)."""
        row = self.signs.attach(session, body)
        audit_chain.record(session, user, "sign.attach", row.id, body.model_dump(mode="json"))
        return row

    def detach(self, session: Session, sign_id: str, user: User) -> None:
        """Detaches a board; its agent's playlist stops naming it."""
        self.signs.detach(session, sign_id)
        audit_chain.record(session, user, "sign.detach", sign_id)

    def create_item(self, session: Session, body: SignItemInput, user: User) -> SignItem:
        """Puts content on signs; unknown content is a refusal of the ``content_id`` field."""
        try:
            row = self.signs.create_item(session, body, user)
        except SignNotFound as exc:
            raise SignInputError("content_id", str(exc)) from None
        audit_chain.record(session, user, "sign_item.create", row.id, body.model_dump(mode="json"))
        return row

    def decide(self, session: Session, item_id: str, user: User, approve: bool, reason: str = "") -> SignItem:
        """An approver (not the author) puts a pending item on the signs, or refuses it with a reason."""
        row = self.signs.decide(session, item_id, user, approve)
        audit_chain.record(session, user, "sign_item.approve" if approve else "sign_item.reject", item_id,
                           {"reason": reason} if reason else {})
        return row

    def cancel_item(self, session: Session, item_id: str, user: User) -> SignItem:
        """Takes an item off every sign (the record stays, cancelled)."""
        row = self.signs.cancel_item(session, item_id)
        audit_chain.record(session, user, "sign_item.cancel", item_id)
        return row
