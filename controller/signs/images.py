"""Images for sign pages: an upload is checked by decoding it and stored content-addressed (by SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

from sqlalchemy.orm import Session

from controller.broadcasts.media_store import MediaStore
from controller.signs.errors import SignInputError
from controller.storage.models import MediaFile
from devices.led.render import LayoutError, image_mime, open_image

MAX_IMAGE_BYTES: Final = 1024 * 1024


def store_sign_image(session: Session, media: MediaStore, data: bytes) -> MediaFile:
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
        tmp = media.root / "tmp" / f"{sha}.{secrets.token_hex(4)}"
        tmp.write_bytes(data)
        media.add(tmp, sha)
        row = MediaFile(sha256=sha, size=len(data), duration_ms=0, mime=mime, source="sign_image")
        session.add(row)
        session.flush()
    return row


def validate_image(data: bytes) -> tuple[str, int, int]:
    """(mime, width, height) of an uploadable sign image; raises LayoutError."""
    img = open_image(data)
    return image_mime(data), img.width, img.height
