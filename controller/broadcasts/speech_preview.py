"""Hearing a text before it goes out: normalised and rendered exactly as an announcement would be.

The API's preview route and the console's "listen" button both call :func:`render_preview`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from audio.pipeline import NothingToSay
from controller.broadcasts.announcements import normalize_text
from controller.broadcasts.speech import SpeechService, StoredAudio


class PreviewRefused(ValueError):
    """The text cannot be read out: too long, or nothing in it to read (→ 422 on ``text``)."""


@dataclass(frozen=True, slots=True)
class Preview:
    """What the speakers would say, and the audio stored to hear it."""

    text: str
    spoken_text: str
    engine: str
    cached: bool
    stored: StoredAudio


async def render_preview(speech: SpeechService, text: str, wards: Iterable[str] = ()) -> Preview:
    """Renders ``text`` off the event loop, owned by ``wards`` (whose staff may then hear it);
    :class:`PreviewRefused`, or the speech stage's own errors (:class:`~audio.engines.AllEnginesFailed` when
    no engine could speak, any other :class:`~audio.speech.SpeechError`)."""
    text = normalize_text(text)
    limit = speech.settings.text_max_chars
    if len(text) > limit:
        raise PreviewRefused(f"text is {len(text)} characters; the limit is {limit}")
    try:
        rendered, stored = await asyncio.to_thread(speech.render, text)
    except NothingToSay:
        raise PreviewRefused("text has nothing to read aloud (only symbols or markup)") from None
    await asyncio.to_thread(speech.claim, stored.sha256, list(wards))
    return Preview(text, speech.normalize(text), rendered.source, rendered.cached, stored)
