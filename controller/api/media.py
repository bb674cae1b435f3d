"""``GET /media/{sha256}``: audio for agents (their own token) and staff; nothing outside the store."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from controller.api.deps import ControllerDep, SessionDep, StaffOrDeviceDep
from controller.models import MediaFile

router = APIRouter(tags=["media"])


@router.get("/media/{sha256}")
def get_media(sha256: str, session: SessionDep, controller: ControllerDep, _who: StaffOrDeviceDep) -> FileResponse:
    """The file whose SHA-256 is ``sha256``; 404 for anything else."""
    path = controller.media.path_for(sha256)
    row = session.get(MediaFile, sha256) if path is not None else None
    if path is None or row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such media")
    # Content-addressed: the bytes behind a URL never change.
    return FileResponse(path, media_type=row.mime, headers={"Cache-Control": "private, max-age=31536000, immutable",
                                                           "ETag": f'"{sha256}"'})
