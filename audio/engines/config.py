"""What a site writes to choose and tune an engine: one pydantic model per engine kind."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EngineConfig", "EspeakEngineConfig", "GttsEngineConfig", "PiperEngineConfig"]


class _EngineModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds one synthesis may take before the engine is killed; None uses the chain's default.
    timeout_s: float | None = Field(default=None, gt=0)


class EspeakEngineConfig(_EngineModel):
    """espeak-ng through pyttsx3. ``voice`` is an id (``aav/vi``) or its last part (``vi``)."""

    kind: Literal["espeak"] = "espeak"
    voice: str | None = "vi"
    #: Used when ``voice`` is None or not installed: the first voice that lists this language.
    language: str | None = "vi"
    rate: int = Field(default=150, ge=80, le=450)
    pitch: int = Field(default=50, ge=0, le=99)
    volume: float = Field(default=1.0, ge=0.0, le=1.0)


class PiperEngineConfig(_EngineModel):
    """piper-tts with a voice file; ``config`` defaults to ``model`` + ``.json``."""

    kind: Literal["piper"] = "piper"
    model: Path
    config: Path | None = None
    speaker_id: int | None = Field(default=None, ge=0)
    length_scale: float | None = Field(default=None, gt=0)
    noise_scale: float | None = Field(default=None, ge=0)
    noise_w_scale: float | None = Field(default=None, ge=0)
    volume: float = Field(default=1.0, gt=0)
    #: Loading a voice takes seconds, so it has its own, longer limit.
    load_timeout_s: float = Field(default=60.0, gt=0)


class GttsEngineConfig(_EngineModel):
    """gTTS (online)."""

    kind: Literal["gtts"] = "gtts"
    lang: str = "vi"
    tld: str = "com"
    slow: bool = False


EngineConfig = Annotated[EspeakEngineConfig | PiperEngineConfig | GttsEngineConfig, Field(discriminator="kind")]
