"""``/media``: audio for agents (their own token) and staff, and officers' uploaded recordings."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audio.probe import ProbeError
from audio.speech import SpeechError
from controller.accounts import audit_chain
from controller.accounts.reach import wards_of
from controller.api.deps import (
    DatabaseDep,
    EventsDep,
    MediaStoreDep,
    OfficerDep,
    SessionDep,
    SettingsDep,
    SpeechDep,
    StaffDep,
    StaffOrDeviceDep,
)
from controller.api.errors import AUTHENTICATED, errors
from controller.api.schemas import MediaPublic, StandbyUpdate
from controller.api.views import media_public
from controller.broadcasts.media_access import device_may_fetch
from controller.broadcasts.speech import RECORDING_SOURCE, StoredAudio
from controller.broadcasts.wards import media_in_wards, ward_for_broadcast
from controller.messaging.events import StandbyChanged
from controller.storage.models import Device, MediaFile, MediaWard, User
from devices.protocol import ID_PATTERN, MAX_STANDBY

log = logging.getLogger(__name__)

router = APIRouter(tags=["media"], responses=AUTHENTICATED)

UPLOAD_PATH = "/api/v1/media"


@router.get(f"{UPLOAD_PATH}/standby")
def list_standby(session: SessionDep, settings: SettingsDep, user: StaffDep) -> list[MediaPublic]:
    """The standby alarm recordings of the caller's wards: every agent keeps these, so an emergency with one
    starts at once."""
    base = settings.resolved_public_url()
    mine = select(MediaWard.sha256).where(MediaWard.ward_id.in_(wards_of(session, user)))
    return [media_public(m, base) for m in session.scalars(
        select(MediaFile).where(MediaFile.standby.is_(True), MediaFile.sha256.in_(mine))
        .order_by(MediaFile.created_at, MediaFile.sha256))]


@router.put(f"{UPLOAD_PATH}/{{sha256}}/standby", responses=errors(404, 409))
def set_standby(sha256: str, body: StandbyUpdate, session: SessionDep, settings: SettingsDep, events: EventsDep,
                user: OfficerDep) -> MediaPublic:
    """Makes a stored recording a standby alarm (or not); every agent gets a window saying so."""
    row = session.get(MediaFile, sha256)
    if row is None or row.source != RECORDING_SOURCE or not media_in_wards(session, sha256, wards_of(session, user)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no stored recording {sha256}")
    if body.standby and not row.standby:
        count = session.scalar(select(func.count()).select_from(MediaFile).where(MediaFile.standby.is_(True))) or 0
        if count >= MAX_STANDBY:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"{MAX_STANDBY} standby alarms already; take one off before adding another")
    if row.standby != body.standby:
        row.standby = body.standby
        audit_chain.record(session, user, "media.standby", sha256, {"standby": body.standby},
                           unit=_owning_ward(session, sha256, wards_of(session, user)))
        session.flush()
        events.publish(StandbyChanged(), session)  # the list is in every agent's window
    return media_public(row, settings.resolved_public_url())


@router.get("/media/{sha256}", response_class=FileResponse, responses={
    **errors(404), 200: {"description": "the file, as stored: audio (speech and recordings) or an image",
                         "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}},
                                     "image/*": {"schema": {"type": "string", "format": "binary"}}}}})
def get_media(sha256: str, session: SessionDep, media: MediaStoreDep, who: StaffOrDeviceDep) -> FileResponse:
    """The file whose SHA-256 is ``sha256``; 404 for anything else.

    Staff read the files of their wards; a device only what it was given to play or show (controller/
    broadcasts/media_access.py), and the same 404 as for a missing file otherwise: existence is not confirmed.
    """
    path = media.path_for(sha256)
    row = session.get(MediaFile, sha256) if path is not None else None
    if path is None or row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such media")
    if isinstance(who, User) and not media_in_wards(session, sha256, wards_of(session, who)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such media")
    if isinstance(who, Device) and not device_may_fetch(session, who.id, row):
        log.warning("device %s asked for media %s it was never given: refused as not found", who.id, sha256[:12])
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such media")
    # Content-addressed: the bytes behind a URL never change.
    return FileResponse(path, media_type=row.mime, headers={"Cache-Control": "private, max-age=31536000, immutable",
                                                           "ETag": f'"{sha256}"'})


@router.post(UPLOAD_PATH, responses=errors(404, 415, e404="no such ward among the caller's"),
             status_code=status.HTTP_201_CREATED)
async def upload_recording(request: Request, media: MediaStoreDep, speech: SpeechDep, settings: SettingsDep,
                           db: DatabaseDep, user: OfficerDep,
                           ward: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=63,
                                                             description="the ward it is for; needed only by "
                                                                         "staff of several wards")] = None,
                           ) -> MediaPublic:
    """A recorded bulletin as the request body (any audio type): checked, normalised like speech, stored for
    ``ward`` (or the caller's only ward): its staff may then hear it and send it.

    413 over the size limit (``upload_max_bytes``), 415 for anything that is not one audio recording;
    nothing is kept then.
    """
    owner, _ = await run_in_threadpool(ward_for_broadcast, db, user, ward)
    stored = await receive_recording(request, media, speech, [owner])
    return media_public(stored, settings.resolved_public_url())


async def receive_recording(request: Request, media: MediaStoreDep, speech: SpeechDep,
                            owners: list[str]) -> StoredAudio:
    """Streams the request body to disk, checks and normalises it like speech, stores it and gives it to
    ``owners`` (wards): their staff may then hear it and send it. 413/415/422 as :func:`upload_recording` says;
    nothing is kept then."""
    scratch = media.root / "tmp"
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        upload = Path(tmp) / "upload"
        size = 0
        with upload.open("wb") as out:
            # Chunk by chunk to disk, never whole in memory. The size limit is BodyLimit's (controller/
            # body_limit.py): it counts the body as it arrives, chunked or not, and raises the 413 out of
            # this loop the moment the limit is passed; the temporary directory goes with it.
            async for chunk in request.stream():
                size += len(chunk)
                await run_in_threadpool(out.write, chunk)
        if size == 0:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the request body is empty; send the file")
        try:
            stored = await run_in_threadpool(speech.import_recording, upload)
            await run_in_threadpool(speech.claim, stored.sha256, owners)
        except ProbeError as exc:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(exc)) from None
        except SpeechError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"the recording could not be processed: {exc}") \
                from None
    return stored


def _owning_ward(session: Session, sha256: str, wards: frozenset[str]) -> str | None:
    """One of ``wards`` that owns the file (the first by id): the ward an audit row about it goes to."""
    return session.scalar(select(MediaWard.ward_id).where(MediaWard.sha256 == sha256,
                                                          MediaWard.ward_id.in_(wards))
                          .order_by(MediaWard.ward_id).limit(1))
