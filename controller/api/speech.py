"""``/api/v1/speech``: hear an announcement before it goes out."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool

from audio.engines import AllEnginesFailed
from audio.pipeline import NothingToSay
from audio.speech import SpeechError
from controller.announcements import normalise_text
from controller.api.deps import ControllerDep, OfficerDep
from controller.api.media import media_public
from controller.api.schemas import SpeechPreview, SpeechPreviewRequest

router = APIRouter(prefix="/api/v1/speech", tags=["speech"])


@router.post("/preview")
async def preview(body: SpeechPreviewRequest, controller: ControllerDep, _user: OfficerDep) -> SpeechPreview:
    """Normalises and renders ``text`` exactly as an announcement would be; returns a playable URL."""
    text = normalise_text(body.text)
    limit = controller.settings.text_max_chars
    if len(text) > limit:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", "text"], "msg": f"text is {len(text)} characters; the limit is {limit}",
                              "type": "value_error"}])
    try:
        rendered, stored = await run_in_threadpool(controller.speech.render, text)
    except NothingToSay:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", "text"], "msg": "text has nothing to read aloud (only symbols or markup)",
                              "type": "value_error"}]) from None
    except AllEnginesFailed as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"no speech engine could speak: {exc}") from None
    except SpeechError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"speech failed: {exc}") from None
    return SpeechPreview(text=text, spoken_text=controller.speech.normalize(text), engine=rendered.source,
                         cached=rendered.cached, media=media_public(stored, controller.settings.resolved_public_url()))
