"""Text → normalise → engine chain → post-process → cache: the one call the controller makes.

``render`` is blocking (TTS and ffmpeg run as child processes); call it from a worker thread.
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

from audio.cache import SpeechCache
from audio.chimes import CHIME_VERSION
from audio.engines import EngineChain, EngineConfig, EspeakEngineConfig
from audio.postprocess import NothingToSay, PostProcessSettings, postprocess
from audio.speech import SpeechError, file_sha256

__all__ = ["FORMAT_VERSION", "NothingToSay", "RenderedSpeech", "SpeechConfig", "SpeechError", "cache_key", "render"]

#: Bump whenever post-processing or the stored layout changes in a way that alters the files.
FORMAT_VERSION = 1


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
    """A finished render. ``path`` (Opus) and ``mp3_path`` live in the cache: link or copy, never move."""

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
    """sha256 of the normalised text, the engine chain (with voice files' identity) and post-processing."""
    chain = chain or EngineChain.from_configs(config.engines, config.timeout_s)
    post = config.model_dump(mode="json", exclude={"engines", "timeout_s", "ffmpeg", "ffmpeg_timeout_s",
                                                   "chime_start", "chime_end"})
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
           normalize: Callable[[str], str] = _identity) -> RenderedSpeech:
    """Renders ``text`` (or returns the cached render of the same normalised text and settings).

    Raises :class:`NothingToSay` when nothing is left after normalisation (or the audio is silent),
    :class:`audio.engines.AllEnginesFailed` when no engine could speak, :class:`SpeechError` otherwise.
    """
    normalized = normalize(text).strip()
    if not normalized:
        raise NothingToSay("the text is empty after normalisation")
    store = cache if isinstance(cache, SpeechCache) else SpeechCache(cache)
    chain = EngineChain.from_configs(config.engines, config.timeout_s)
    key = cache_key(normalized, config, chain)

    def produce(directory: Path) -> dict[str, Any]:
        scratch = store.tmp_dir / f"raw-{uuid.uuid4().hex}"
        try:
            synthesis = chain.synthesize(normalized, scratch)
            audio = postprocess(synthesis.path, directory, config, store.chime_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return {"opus": audio.opus_path.name, "mp3": audio.mp3_path.name if audio.mp3_path else None,
                "sha256": audio.sha256, "size": audio.size, "duration_ms": audio.duration_ms,
                "sample_rate": audio.sample_rate, "loudness_lufs": audio.loudness_lufs,
                "true_peak_db": audio.true_peak_db, "source_loudness_lufs": audio.source_loudness_lufs,
                "engine": synthesis.engine, "voice": synthesis.voice, "failures": list(synthesis.failures),
                "text": normalized}

    entry, hit = store.get_or_create(key, produce)
    return _from_entry(entry.directory, entry.meta, key, hit)
