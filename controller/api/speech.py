"""``/api/v1/speech``: hear an announcement before it goes out.

controller/broadcasts/speech_preview.py does the work.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool

from audio.engines import AllEnginesFailed
from audio.speech import SpeechError
from controller.api.deps import DatabaseDep, OfficerDep, SettingsDep, SpeechDep
from controller.api.errors import AUTHENTICATED, errors
from controller.api.schemas import SpeechPreview, SpeechPreviewRequest
from controller.api.views import preview_public
from controller.broadcasts.speech_preview import PreviewRefused, render_preview
from controller.broadcasts.wards import ward_for_broadcast

router = APIRouter(prefix="/api/v1/speech", tags=["speech"], responses=AUTHENTICATED)


@router.post("/preview", responses=errors(503))
async def preview(body: SpeechPreviewRequest, speech: SpeechDep, settings: SettingsDep, db: DatabaseDep,
                  user: OfficerDep) -> SpeechPreview:
    """Normalises and renders ``text`` exactly as an announcement would be; returns a playable URL, which
    the staff of ``ward`` (or of the caller's only ward) may fetch."""
    ward, _ = await run_in_threadpool(ward_for_broadcast, db, user, body.ward)
    try:
        heard = await render_preview(speech, body.text, [ward])
    except PreviewRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", "text"], "msg": str(exc), "type": "value_error"}]) from None
    except AllEnginesFailed as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"no speech engine could speak: {exc}") from None
    except SpeechError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"speech failed: {exc}") from None
    return preview_public(heard, settings.resolved_public_url())
