"""The controller's speech: the site's engine chain and dictionary, rendering into the media store.

Both paths that produce audio — text rendered by the engines and recordings uploaded by officers —
end the same way: loudness-normalised Opus, stored under its SHA-256, with a media row. Every method
blocks (TTS and ffmpeg run as child processes); callers run them in worker threads.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from audio.cache import SpeechCache
from audio.engines import EspeakEngineConfig
from audio.normalize import load_abbreviations, normalize
from audio.pipeline import RenderedSpeech, SpeechConfig, render
from audio.postprocess import postprocess
from audio.probe import probe_audio
from controller.broadcasts.media_store import MediaStore
from controller.broadcasts.wards import claim_media
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import MediaFile

log = logging.getLogger(__name__)


def load_speech_config(settings: Settings) -> SpeechConfig:
    """The site's speech config file (TOML, the fields of SpeechConfig), or espeak-ng's Vietnamese voice."""
    if settings.speech_config_file is None:
        return SpeechConfig(engines=[EspeakEngineConfig(voice=settings.tts_voice, rate=settings.tts_rate_wpm)])
    return SpeechConfig.from_toml(settings.speech_config_file)


#: ``MediaFile.source`` of an uploaded recording (speech is ``engine:voice``).
RECORDING_SOURCE = "upload"


@dataclass(frozen=True, slots=True)
class StoredAudio:
    """Audio now in the media store."""

    sha256: str
    size: int
    duration_ms: int
    mime: str
    source: str
    loudness_lufs: float | None


class SpeechService:
    """Normalises, renders (with the cache) and imports audio into the media store."""

    def __init__(self, settings: Settings, db: Database, media: MediaStore) -> None:
        self.settings = settings
        self.db = db
        self.media = media
        self.config = load_speech_config(settings)
        self.abbreviations: Mapping[str, str] = load_abbreviations(settings.abbreviations_file)
        self.cache = SpeechCache(settings.data_dir / "speech-cache", max_bytes=settings.speech_cache_bytes)

    def normalize(self, text: str) -> str:
        """The text as the engine will read it."""
        return normalize(text, self.abbreviations)

    def render(self, text: str) -> tuple[RenderedSpeech, StoredAudio]:
        """Renders ``text`` (or takes it from the cache) and makes sure the result is in the media store."""
        speech = render(text, self.config, self.cache, normalize=self.normalize)
        stored = self._store(speech.link_into(self.media.root / "tmp"), speech.sha256, speech.size,
                             speech.duration_ms, speech.mime, speech.source, speech.loudness_lufs)
        return speech, stored

    def import_recording(self, upload: Path) -> StoredAudio:
        """Checks an uploaded recording, normalises it like speech and stores it.

        Raises :class:`audio.probe.ProbeError` (not acceptable) or SpeechError (processing failed).
        """
        probe_audio(upload, self.settings.upload_max_seconds)
        with tempfile.TemporaryDirectory(dir=self.media.root / "tmp") as tmp:
            # Speech's chimes announce machine speech; a recording is played as the officer made it.
            settings = self.config.model_copy(update={"chime_start": None, "chime_end": None, "mp3": False})
            audio = postprocess(upload, Path(tmp), settings, self.cache.chime_dir)
            staged = Path(tmp) / "staged.ogg"
            shutil.move(audio.opus_path, staged)
            return self._store(staged, audio.sha256, audio.size, audio.duration_ms, "audio/ogg", RECORDING_SOURCE,
                               audio.loudness_lufs)

    def claim(self, sha256: str, wards: Iterable[str]) -> None:
        """Records that ``wards`` own the stored file (their staff may then hear and send it); blocking."""
        wanted = list(wards)
        if not wanted:
            return
        with self.db.session() as session:
            claim_media(session, sha256, wanted)

    def _store(self, file: Path, sha256: str, size: int, duration_ms: int, mime: str, source: str,
               loudness: float | None) -> StoredAudio:
        self.media.add(file, sha256)
        try:
            with self.db.session() as session:
                if session.get(MediaFile, sha256) is None:
                    session.add(MediaFile(sha256=sha256, size=size, duration_ms=duration_ms, mime=mime,
                                          source=source, loudness_lufs=loudness))
        except IntegrityError:
            # The same audio rendered at the same moment elsewhere (an announcement and a schedule item of
            # one text, a preview) was stored between our look and our insert: content-addressed, so the
            # row it wrote is this one.
            pass
        return StoredAudio(sha256, size, duration_ms, mime, source, loudness)
