"""Text → normalise → engine chain → post-process → cache: the one call the controller makes.

``render`` is blocking (TTS and ffmpeg run as child processes); call it from a worker thread.
Wrap a call in :func:`audio.profile.recording` to see where its time went.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from audio.cache import CacheEntry, SpeechCache
from audio.chimes import CHIME_VERSION
from audio.engines import EngineChain, EngineConfig, EspeakEngineConfig, Synthesis
from audio.postprocess import NothingToSay, PostProcessSettings, mp3_from_opus, postprocess
from audio.profile import stage
from audio.speech import SpeechError, file_sha256

__all__ = ["FORMAT_VERSION", "NothingToSay", "RenderedSpeech", "SpeechConfig", "SpeechError", "cache_key", "render"]

#: Bump whenever post-processing or the stored layout changes in a way that alters the files.
#: 2: the limiter search steered by the 48 kHz sample peak; the MP3 made from the Opus file.
FORMAT_VERSION = 2


def _default_engines() -> list[EngineConfig]:
    return [EspeakEngineConfig()]


class SpeechConfig(PostProcessSettings):
    """Engines to try, in order, and how their output is post-processed (``extra="forbid"``)."""

    engines: list[EngineConfig] = Field(default_factory=_default_engines, min_length=1)
    #: Seconds one engine may take for one text before it is killed and the next engine is tried.
    timeout_s: float = Field(default=60.0, gt=0)

    @classmethod
    def from_toml(cls, path: Path) -> SpeechConfig:
        """Reads a site's speech settings file; ValueError naming the file and the problem."""
        try:
            return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
            raise ValueError(f"speech config {path}: {exc}") from None


@dataclass(frozen=True, slots=True)
class RenderedSpeech:
    """A finished render. ``path`` (Opus) and ``mp3_path`` live in the cache: link or copy, never move.

    ``mp3_path`` is None unless the config's ``mp3`` or the caller (``render(..., mp3=True)``) asked for one.
    """

    path: Path
    mp3_path: Path | None
    sha256: str
    size: int
    duration_ms: int
    sample_rate: int
    loudness_lufs: float
    true_peak_db: float
    engine: str
    voice: str
    cache_key: str
    cached: bool
    #: Why the engines before ``engine`` failed, in chain order (as recorded when first rendered).
    failures: tuple[str, ...] = ()
    mime: str = "audio/ogg"

    @property
    def source(self) -> str:
        """``engine:voice``, the label stored with the media file."""
        return f"{self.engine}:{self.voice}"

    def link_into(self, directory: Path) -> Path:
        """A private copy of the Opus file in ``directory`` (hard link when possible) that the caller may move."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"speech-{uuid.uuid4().hex}.ogg"
        try:
            os.link(self.path, target)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(self.path, target)
        return target


def _identity(text: str) -> str:
    return text


def _chime_fingerprint(setting: Path | str | None) -> Any:
    if setting is None:
        return None
    if setting == "default":
        return ["default", CHIME_VERSION]
    path = Path(setting)
    # Content, not path: a site that replaces its chime file gets new renders.
    return ["file", file_sha256(path) if path.is_file() else f"missing:{path}"]


def cache_key(normalized_text: str, config: SpeechConfig, chain: EngineChain | None = None) -> str:
    """sha256 of the normalised text, the engine chain (with voice files' identity) and post-processing.

    ``mp3`` is left out: whether the MP3 is made with the render or later, it is the same file made from
    the same Opus file, so one entry serves both.
    """
    chain = chain or EngineChain.from_configs(config.engines, config.timeout_s)
    post = config.model_dump(mode="json", exclude={"engines", "timeout_s", "ffmpeg", "ffmpeg_timeout_s",
                                                   "chime_start", "chime_end", "mp3"})
    post["chime_start"] = _chime_fingerprint(config.chime_start)
    post["chime_end"] = _chime_fingerprint(config.chime_end)
    material = {"format": FORMAT_VERSION, "text": normalized_text, "engines": chain.fingerprint(), "post": post}
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _from_entry(directory: Path, meta: dict[str, Any], key: str, cached: bool) -> RenderedSpeech:
    mp3 = meta.get("mp3")
    return RenderedSpeech(path=directory / str(meta["opus"]), mp3_path=directory / str(mp3) if mp3 else None,
                          sha256=str(meta["sha256"]), size=int(meta["size"]), duration_ms=int(meta["duration_ms"]),
                          sample_rate=int(meta["sample_rate"]), loudness_lufs=float(meta["loudness_lufs"]),
                          true_peak_db=float(meta["true_peak_db"]), engine=str(meta["engine"]),
                          voice=str(meta["voice"]), cache_key=key, cached=cached,
                          failures=tuple(str(f) for f in meta.get("failures", [])))


def render(text: str, config: SpeechConfig, cache: SpeechCache | Path,
           normalize: Callable[[str], str] = _identity, *, mp3: bool | None = None) -> RenderedSpeech:
    """Renders ``text`` (or returns the cached render of the same normalised text and settings).

    ``mp3``: whether the result must carry an MP3 copy (None: as ``config.mp3`` says). A render asked for one
    writes it alongside the Opus file; a cached render without one gets it now, made from its Opus file
    (about 1 s for a minute of speech) and kept in the entry.

    Raises :class:`NothingToSay` when nothing is left after normalisation (or the audio is silent),
    :class:`audio.engines.AllEnginesFailed` when no engine could speak, :class:`SpeechError` otherwise.
    """
    want_mp3 = config.mp3 if mp3 is None else mp3
    with stage("normalise"):
        normalized = normalize(text).strip()
    if not normalized:
        raise NothingToSay("the text is empty after normalisation")
    store = cache if isinstance(cache, SpeechCache) else SpeechCache(cache)
    chain = EngineChain.from_configs(config.engines, config.timeout_s)
    with stage("cache key"):
        key = cache_key(normalized, config, chain)
    settings = config.model_copy(update={"mp3": want_mp3}) if want_mp3 != config.mp3 else config

    def produce(directory: Path) -> dict[str, Any]:
        scratch = store.tmp_dir / f"raw-{uuid.uuid4().hex}"
        spoken: list[Synthesis] = []

        def speak() -> Path:
            spoken.append(chain.synthesize(normalized, scratch))
            return spoken[0].path

        try:
            # Given the engine rather than its file, post-processing starts its ffmpeg runs while it speaks.
            audio = postprocess(speak, directory, settings, store.chime_dir)
            synthesis = spoken[0]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return {"opus": audio.opus_path.name, "mp3": audio.mp3_path.name if audio.mp3_path else None,
                "sha256": audio.sha256, "size": audio.size, "duration_ms": audio.duration_ms,
                "sample_rate": audio.sample_rate, "loudness_lufs": audio.loudness_lufs,
                "true_peak_db": audio.true_peak_db, "source_loudness_lufs": audio.source_loudness_lufs,
                "engine": synthesis.engine, "voice": synthesis.voice, "failures": list(synthesis.failures),
                "text": normalized}

    def add_mp3(entry: CacheEntry, path: Path) -> dict[str, Any]:
        mp3_from_opus(entry.file(str(entry.meta["opus"])), path, settings)
        return {"mp3": path.name}

    for _ in range(2):  # a second round only if the entry was evicted between the render and the MP3
        entry, hit = store.get_or_create(key, produce)
        if not want_mp3 or entry.meta.get("mp3"):
            return _from_entry(entry.directory, entry.meta, key, hit)
        with stage("MP3 from the cached Opus (on demand)"):
            added = store.add_file(key, "speech.mp3", add_mp3)
        if added is not None:
            return _from_entry(added.directory, added.meta, key, hit)
    raise SpeechError(f"cache entry {key} was evicted twice while its MP3 was being made")
