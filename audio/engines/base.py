"""The engine interface every engine implements, what it returns, and how it fails."""

from __future__ import annotations

import abc
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from audio.profile import note
from audio.speech import SpeechError

__all__ = ["AllEnginesFailed", "EngineFailed", "SpeechEngine", "Synthesis", "new_output", "note_engine"]


class EngineFailed(SpeechError):
    """One engine could not speak (no network, missing voice, timeout, empty audio...)."""


class AllEnginesFailed(SpeechError):
    """Every engine in the chain failed; ``failures`` holds one message per engine, in order."""

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = tuple(failures)
        super().__init__("no TTS engine could speak: " + "; ".join(self.failures))


@dataclass(frozen=True, slots=True)
class Synthesis:
    """Raw engine output, before post-processing."""

    path: Path
    engine: str
    voice: str
    sample_rate: int
    elapsed_s: float
    #: Why the engines tried before this one failed (empty when the first engine spoke).
    failures: tuple[str, ...] = ()


class SpeechEngine(abc.ABC):
    """One way of turning text into an audio file."""

    kind: ClassVar[str]

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    @abc.abstractmethod
    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Speaks ``text`` into a new file inside ``out_dir``; raises :class:`EngineFailed`."""

    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes this engine's audio, as JSON-able data (for cache keys)."""


def new_output(kind: str, suffix: str, out_dir: Path) -> Path:
    """A fresh, not yet existing file name in ``out_dir`` for the engine to write."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{kind}-", suffix=suffix, dir=out_dir)
    os.close(fd)
    out = Path(name)
    out.unlink()  # the engine creates it; an existing empty file would hide "wrote nothing"
    return out


def finish_synthesis(kind: str, reply: dict[str, Any], out: Path, started: float, start_s: float,
                     voice: str = "") -> Synthesis:
    """What a worker's reply means: its error, or the audio it wrote (refused when empty), profiled.

    ``started`` is the ``time.monotonic()`` of the request, ``start_s`` how much of it went to starting the
    worker; ``voice`` names the voice when the reply does not.
    """
    if not reply.get("ok"):
        out.unlink(missing_ok=True)
        raise EngineFailed(f"{kind}: {reply.get('error', 'failed')}")
    if not out.exists() or out.stat().st_size == 0:
        raise EngineFailed(f"{kind}: produced no audio")
    elapsed = time.monotonic() - started
    note_engine(kind, reply, start_s, elapsed)
    return Synthesis(path=out, engine=kind, voice=str(reply.get("voice", voice)),
                     sample_rate=int(reply.get("sample_rate", 0)), elapsed_s=elapsed)


def note_engine(kind: str, reply: dict[str, Any], started_s: float, elapsed_s: float) -> None:
    """Profile rows: the synthesis inside the worker, and everything else (start, IPC, checks)."""
    synth = float(reply.get("synth_s", 0.0))
    note(f"engine: {kind} synthesis (inside the worker)", synth)
    note(f"engine: {kind} worker start", started_s)
    note(f"engine: {kind} IPC + checks", max(0.0, elapsed_s - synth - started_s))
