"""The engines a site configured, tried in order: the first that produces audio speaks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audio.engines.base import AllEnginesFailed, EngineFailed, SpeechEngine, Synthesis
from audio.engines.config import EspeakEngineConfig, GttsEngineConfig, PiperEngineConfig
from audio.engines.espeak_engine import EspeakEngine
from audio.engines.gtts_engine import GttsEngine
from audio.engines.piper_engine import PiperEngine

__all__ = ["EngineChain", "build_engine"]


def build_engine(config: EspeakEngineConfig | PiperEngineConfig | GttsEngineConfig, timeout_s: float) -> SpeechEngine:
    """The engine for one config entry; ``timeout_s`` applies unless the entry sets its own."""
    if isinstance(config, EspeakEngineConfig):
        return EspeakEngine(config, timeout_s)
    if isinstance(config, PiperEngineConfig):
        return PiperEngine(config, timeout_s)
    return GttsEngine(config, timeout_s)


class EngineChain:
    """Engines tried in order; the first that produces audio speaks."""

    def __init__(self, engines: Sequence[SpeechEngine]) -> None:
        if not engines:
            raise ValueError("an engine chain needs at least one engine")
        self.engines = tuple(engines)

    @classmethod
    def from_configs(cls, configs: Sequence[EspeakEngineConfig | PiperEngineConfig | GttsEngineConfig],
                     timeout_s: float) -> EngineChain:
        """A chain built from config entries, in order."""
        return cls([build_engine(c, timeout_s) for c in configs])

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Tries each engine in turn; raises :class:`AllEnginesFailed` when none speaks."""
        failures: list[str] = []
        for engine in self.engines:
            try:
                result = engine.synthesize(text, out_dir)
            except EngineFailed as exc:
                failures.append(str(exc))
                continue
            return Synthesis(path=result.path, engine=result.engine, voice=result.voice,
                             sample_rate=result.sample_rate, elapsed_s=result.elapsed_s, failures=tuple(failures))
        raise AllEnginesFailed(failures)

    def fingerprint(self) -> list[dict[str, Any]]:
        """Every engine's fingerprint, in order, tagged with its kind."""
        return [{"kind": e.kind, **e.fingerprint()} for e in self.engines]
