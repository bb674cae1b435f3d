"""piper-tts with a site's ``.onnx`` voice.

A voice takes seconds to load, so each distinct voice file gets one long-lived worker that loads it once
and answers requests one at a time (see :func:`audio.engines.workers.piper_worker`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from audio.engines.base import EngineFailed, SpeechEngine, Synthesis, finish_synthesis, new_output
from audio.engines.config import PiperEngineConfig
from audio.engines.workers import piper_worker

__all__ = ["PiperEngine"]


class PiperEngine(SpeechEngine):
    """piper-tts with a voice file, loaded once into a long-lived worker shared by all callers."""

    kind = "piper"

    def __init__(self, config: PiperEngineConfig, timeout_s: float) -> None:
        super().__init__(config.timeout_s or timeout_s)
        self.config = config
        self.model = config.model.expanduser().resolve()
        self.voice_config = (config.config or Path(f"{config.model}.json")).expanduser().resolve()

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Speaks through the shared worker for this voice file."""
        for path in (self.model, self.voice_config):
            if not path.is_file():
                raise EngineFailed(f"piper: voice file missing: {path}")
        out = new_output(self.kind, ".wav", out_dir)
        c = self.config
        request = {"text": text, "out": str(out), "speaker_id": c.speaker_id, "length_scale": c.length_scale,
                   "noise_scale": c.noise_scale, "noise_w_scale": c.noise_w_scale, "volume": c.volume}
        started = time.monotonic()
        try:
            reply, start_s = piper_worker(self.model, self.voice_config).speak(request, self.timeout_s,
                                                                              c.load_timeout_s)
        except EngineFailed:
            out.unlink(missing_ok=True)
            raise
        return finish_synthesis(self.kind, reply, out, started, start_s, voice=self.model.stem)

    def fingerprint(self) -> dict[str, Any]:
        """The config plus size and mtime of the voice files, so replacing a voice invalidates the cache."""
        data = self.config.model_dump(mode="json", exclude={"timeout_s", "load_timeout_s", "model", "config"})
        for label, path in (("model", self.model), ("config", self.voice_config)):
            try:
                st = path.stat()
                data[label] = [str(path), st.st_size, st.st_mtime_ns]
            except OSError:
                data[label] = [str(path), None, None]
        return data
