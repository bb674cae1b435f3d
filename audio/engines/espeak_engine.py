"""espeak-ng through pyttsx3: offline, the default voice.

One worker per request, as the same text must give the same samples and espeak-ng carries state from one
synthesis into the next; the next worker is started ahead of need
(see :class:`audio.engines.workers.OneRequestWorkers`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from audio.engines import workers
from audio.engines.base import EngineFailed, SpeechEngine, Synthesis, finish_synthesis, new_output
from audio.engines.config import EspeakEngineConfig

__all__ = ["EspeakEngine"]


class EspeakEngine(SpeechEngine):
    """espeak-ng via pyttsx3 (offline), in a pool of long-lived workers. Writes 22,050 Hz mono WAV."""

    kind = "espeak"

    def __init__(self, config: EspeakEngineConfig, timeout_s: float) -> None:
        super().__init__(config.timeout_s or timeout_s)
        self.config = config

    def worker_command(self) -> list[str]:
        """The child that initialises pyttsx3, says it is ready and answers a JSON-line request."""
        return workers.worker_command(self.kind)

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Speaks through the worker started ahead (or a new one); the timeout covers its start and the synthesis."""
        out = new_output(self.kind, ".wav", out_dir)
        started = time.monotonic()
        try:
            reply, start_s = workers.request_pool(self.kind, self.worker_command(), "starting espeak-ng").speak(
                self.request(text, out), self.timeout_s)
        except EngineFailed:
            out.unlink(missing_ok=True)
            raise
        return finish_synthesis(self.kind, reply, out, started, start_s)

    def request(self, text: str, out: Path) -> dict[str, Any]:
        """Voice, prosody and the output path for the worker."""
        c = self.config
        return {"text": text, "out": str(out), "voice": c.voice, "language": c.language, "rate": c.rate,
                "pitch": c.pitch, "volume": c.volume}

    def fingerprint(self) -> dict[str, Any]:
        """The config without its timeout."""
        return self.config.model_dump(mode="json", exclude={"timeout_s"})
