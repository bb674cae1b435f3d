"""Google Translate's TTS through gTTS: needs the network, so it is the last resort.

It waits on the network anyway, so each request runs in a fresh child process started when asked
(:class:`OneShotEngine`), killed when it exceeds its timeout.
"""

from __future__ import annotations

import abc
import json
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

from audio.engines import workers
from audio.engines.base import EngineFailed, SpeechEngine, Synthesis, finish_synthesis, new_output
from audio.engines.config import GttsEngineConfig

__all__ = ["GttsEngine", "OneShotEngine"]


class OneShotEngine(SpeechEngine):
    """An engine whose every request runs in a fresh child process."""

    suffix: ClassVar[str] = ".wav"

    def worker_command(self) -> list[str]:
        """The child process that answers one JSON request on stdin."""
        return workers.worker_command(self.kind)

    @abc.abstractmethod
    def request(self, text: str, out: Path) -> dict[str, Any]:
        """The JSON request for ``text``."""

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Runs one child; kills it when it exceeds the timeout."""
        out = new_output(self.kind, self.suffix, out_dir)
        started = time.monotonic()
        try:
            proc = subprocess.run(self.worker_command(), input=json.dumps(self.request(text, out)).encode(),
                                  capture_output=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            out.unlink(missing_ok=True)
            raise EngineFailed(f"{self.kind}: killed after {self.timeout_s:g}s timeout") from None
        except OSError as exc:
            raise EngineFailed(f"{self.kind}: cannot start worker: {exc}") from None
        try:
            reply = workers.decode_reply(proc.stdout, self.kind)
        except EngineFailed as exc:
            tail = proc.stderr.decode(errors="replace").strip()[-300:]
            out.unlink(missing_ok=True)
            raise EngineFailed(f"{exc} (exit {proc.returncode}: {tail})") from None
        return finish_synthesis(self.kind, reply, out, started, 0.0)


class GttsEngine(OneShotEngine):
    """gTTS (online). Writes MP3; fails at once without a network."""

    kind = "gtts"
    suffix = ".mp3"

    def __init__(self, config: GttsEngineConfig, timeout_s: float) -> None:
        super().__init__(config.timeout_s or timeout_s)
        self.config = config

    def request(self, text: str, out: Path) -> dict[str, Any]:
        """Language, domain and the output path for the worker."""
        c = self.config
        return {"text": text, "out": str(out), "lang": c.lang, "tld": c.tld, "slow": c.slow,
                "timeout_s": self.timeout_s}

    def fingerprint(self) -> dict[str, Any]:
        """The config without its timeout."""
        return self.config.model_dump(mode="json", exclude={"timeout_s"})
