"""LED signs on the controller: sign content, signs attached to agents, sign items, and signed playlists.

Import from here; the modules are

- ``inputs`` (what staff send: content, a board on an agent, items and their targets) and ``errors``;
- ``service``: :class:`SignService`, content, signs and items, with the parts below;
- ``recurrence``: when an item shows (the schedule model's rules: local wall-clock starts, RRULEs, DST);
- ``targets``: which registered signs an item reaches;
- ``images``: uploaded images, checked and stored by SHA-256;
- ``previews``: pages drawn by the same renderer the agents use, so the PNG is exactly what the board shows;
- ``playlists``: the signed, retained ``sign.playlist`` each agent with signs gets for the next
  ``schedule_window_hours``, rebuilt on changes and hourly, written through the outbox only when it changed;
- ``status``: what each sign shows now, and the ``sign.status`` events agents send.
"""

from __future__ import annotations

from controller.signs.errors import SignForbidden, SignInputError, SignNotFound
from controller.signs.images import MAX_IMAGE_BYTES, store_sign_image, validate_image
from controller.signs.inputs import (
    MAX_ITEM_DURATION_MS,
    FullSignId,
    SignAttach,
    SignContentInput,
    SignId,
    SignItemInput,
    SignTargets,
)
from controller.signs.playlists import RESEND_BEFORE_EXPIRY_MS, PlaylistPublisher, playlist_entries
from controller.signs.previews import SignPreviews
from controller.signs.recurrence import local_naive, occurrences
from controller.signs.service import APPROVER_ROLES, SignService
from controller.signs.status import record_sign_status, signs_now
from controller.signs.targets import signs_for

__all__ = [
    "APPROVER_ROLES",
    "MAX_IMAGE_BYTES",
    "MAX_ITEM_DURATION_MS",
    "RESEND_BEFORE_EXPIRY_MS",
    "FullSignId",
    "PlaylistPublisher",
    "SignAttach",
    "SignContentInput",
    "SignForbidden",
    "SignId",
    "SignInputError",
    "SignItemInput",
    "SignNotFound",
    "SignPreviews",
    "SignService",
    "SignTargets",
    "local_naive",
    "occurrences",
    "playlist_entries",
    "record_sign_status",
    "signs_for",
    "signs_now",
    "store_sign_image",
    "validate_image",
]
